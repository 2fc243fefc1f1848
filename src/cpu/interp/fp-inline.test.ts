// The inline double-precision paths (isa/fp-inline.ts) must give what the FP unit gives: results
// and fflags, with NX already set (the fast path's precondition) and at its edges, where the host
// path must take over (overflow, underflow, NaN, divide by zero, other rounding modes, zeros).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAsm } from '../testing/asm.js';

const bits = (x: number): bigint => new BigUint64Array(new Float64Array([x]).buffer)[0];
const CANONICAL_NAN = 0x7ff8_0000_0000_0000n;
const NX = 1n, UF = 2n, OF = 4n, DZ = 8n, NV = 16n;

interface Case { insn: string; a: bigint; b?: bigint; frm?: number; want: bigint; flags: bigint }

const cases: Case[] = [
  { insn: 'fdiv.d', a: bits(1), b: bits(3), want: bits(1 / 3), flags: NX },
  { insn: 'fmul.d', a: bits(1.5), b: bits(-2.25), want: bits(-3.375), flags: NX },
  { insn: 'fsub.d', a: bits(10), b: bits(0.1), want: bits(10 - 0.1), flags: NX },
  { insn: 'fsqrt.d', a: bits(2), want: bits(Math.SQRT2), flags: NX },
  { insn: 'fadd.d', a: bits(Number.MAX_VALUE), b: bits(Number.MAX_VALUE), want: bits(Infinity), flags: NX | OF },
  { insn: 'fmul.d', a: bits(1e-200), b: bits(1e-200), want: 0n, flags: NX | UF },
  { insn: 'fmul.d', a: bits(2 ** -1000), b: bits(2 ** -30), want: bits(2 ** -1030), flags: NX }, // exact subnormal: no UF
  { insn: 'fdiv.d', a: bits(1), b: 0n, want: bits(Infinity), flags: NX | DZ },
  { insn: 'fdiv.d', a: 0n, b: 0n, want: CANONICAL_NAN, flags: NX | NV },
  { insn: 'fsqrt.d', a: bits(-1), want: CANONICAL_NAN, flags: NX | NV },
  { insn: 'fsub.d', a: bits(7), b: bits(7), want: 0n, flags: NX },
  { insn: 'fsub.d', a: bits(7), b: bits(7), frm: 2, want: bits(-0), flags: NX }, // RDN: x - x = -0
  { insn: 'fadd.d', a: bits(1), b: bits(2 ** -60), frm: 3, want: bits(1 + 2 ** -52), flags: NX }, // RUP
  { insn: 'fadd.d', a: bits(1), b: bits(2 ** -60), frm: 1, want: bits(1), flags: NX }, // RTZ
  { insn: 'fadd.d', a: 0x0000_0000_0000_0001n, b: bits(1), want: bits(1), flags: NX }, // subnormal operand
  { insn: 'fmul.d', a: 0x7ff4_0000_0000_0000n, b: bits(1), want: CANONICAL_NAN, flags: NX | NV }, // sNaN
  { insn: 'flt.d', a: bits(1), b: bits(2), want: 1n, flags: NX },
  { insn: 'fle.d', a: bits(2), b: bits(2), want: 1n, flags: NX },
  { insn: 'feq.d', a: bits(0), b: bits(-0), want: 1n, flags: NX },
  { insn: 'flt.d', a: CANONICAL_NAN, b: bits(2), want: 0n, flags: NX | NV },
  { insn: 'feq.d', a: CANONICAL_NAN, b: CANONICAL_NAN, want: 0n, flags: NX },
  { insn: 'feq.d', a: 0x7ff4_0000_0000_0000n, b: bits(1), want: 0n, flags: NX | NV },
  { insn: 'fsgnjn.d', a: bits(3), b: bits(3), want: bits(-3), flags: NX },
  { insn: 'fsgnjx.d', a: bits(-3), b: bits(-1), want: bits(3), flags: NX },
  { insn: 'fsgnj.d', a: CANONICAL_NAN, b: bits(-1), want: CANONICAL_NAN | (1n << 63n), flags: NX },
];

test('inline double-precision instructions: results and fflags as the FP unit gives them', async () => {
  for (const c of cases) {
    const toX = /^f(lt|le|eq)\./.test(c.insn);
    const operands = c.insn === 'fsqrt.d' ? 'fa2, fa0' : toX ? 'a2, fa0, fa1' : 'fa2, fa0, fa1';
    const { hart } = await runAsm(`
    li t0, 1 << 13
    csrs mstatus, t0        # FS = Initial
    li t0, ${c.a}
    fmv.d.x fa0, t0
    li t0, ${c.b ?? 0n}
    fmv.d.x fa1, t0
    fsrmi ${c.frm ?? 0}
    fsflagsi 1              # NX already set: the inline path's precondition
    ${c.insn} ${operands}
    ${toX ? '' : 'fmv.x.d a2, fa2'}
    frflags a3
    ecall`);
    const what = `${c.insn} ${c.a.toString(16)} ${c.b?.toString(16) ?? ''} frm=${c.frm ?? 0}`;
    assert.equal(hart.x(12), c.want, `${what}: result`);
    assert.equal(hart.x(13), c.flags, `${what}: fflags`);
  }
});
