/**
 * The binary64 FMA's fast path (error-free transforms in doubles) against its exact limb
 * implementation, on operands inside the fast path's window, in every rounding mode. The limb path
 * itself is checked against qemu in qemu.test.ts and case by case in execute.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctx } from './bits.js';
import { fmaD, fmaLimbs } from './fma.js';

let seed = 0x2545f491;
/** xorshift32 in [0, 1). */
function rand(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}
const int = (n: number): number => Math.floor(rand() * n);

/** A double with a random 53-bit significand (sometimes a short one) and exponent in [-lim, lim). */
function num(lim: number): number {
  let m = 1 + int(2 ** 26) / 2 ** 26 + int(2 ** 26) / 2 ** 52;
  if (rand() < 0.3) m = 1 + int(2 ** 8) / 2 ** 8;
  return (rand() < 0.5 ? -1 : 1) * m * 2 ** (int(2 * lim) - lim);
}

const bits = new Float64Array(1), words = new Uint32Array(bits.buffer);
const same = (x: number, y: number): boolean => Object.is(x, y);
const hex = (x: number): string => { bits[0] = x; return words[1]!.toString(16) + words[0]!.toString(16).padStart(8, '0'); };

test('the FMA fast path agrees with the exact limb path (results and flags, all modes)', () => {
  let n = 0;
  for (let i = 0; i < 60_000; i++) {
    const a = num(60), b = num(60);
    let c: number;
    switch (int(4)) {
      case 0: c = num(120); break;
      case 1: c = -(a * b) * (1 + (int(64) - 32) * 2 ** -52); break;          // cancellation
      case 2: c = -(a * b) + (a * b) * 2 ** -(40 + int(30)) * (rand() < 0.5 ? 1 : -1); break;
      default: c = (a * b) * 2 ** -(50 + int(8)) * (1 + int(4)); break;        // near ties
    }
    if (c === 0) continue;
    for (let rm = 0; rm < 5; rm++) {
      ctx.rm = rm; ctx.flags = 0;
      const fast = fmaD(a, b, c), fastFlags = ctx.flags;
      ctx.flags = 0;
      const slow = fmaLimbs(a, b, c), slowFlags = ctx.flags;
      assert.ok(same(fast, slow) && fastFlags === slowFlags,
        `fma(${hex(a)}, ${hex(b)}, ${hex(c)}) rm=${rm}: fast ${hex(fast)}/${fastFlags} limbs ${hex(slow)}/${slowFlags}`);
      n++;
    }
  }
  assert.ok(n > 250_000);
});
