// M extension: the spec's table of division by zero and overflow results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAsm, sx } from '../testing/asm.js';

test('division by zero and signed overflow', async () => {
  const { hart } = await runAsm(`
    li t0, 7
    li t1, 0x8000000000000000
    li t2, -1
    div a0, t0, zero       # -1
    divu a1, t0, zero      # 2^64-1
    rem a2, t0, zero       # 7
    remu a3, t0, zero      # 7
    div a4, t1, t2         # overflow: dividend
    rem a5, t1, t2         # overflow: 0
    li t3, 0x80000000
    divw a6, t3, t2        # -2^31
    remw a7, t3, t2        # 0
    divw s2, t0, zero      # -1
    divuw s3, t0, zero     # -1 (all ones, sign-extended)
    remuw s4, t3, zero     # dividend, sign-extended from 32 bits
    ecall`);
  assert.equal(sx(hart, 10), -1n);
  assert.equal(hart.x(11), (1n << 64n) - 1n);
  assert.equal(sx(hart, 12), 7n);
  assert.equal(sx(hart, 13), 7n);
  assert.equal(sx(hart, 14), -(1n << 63n));
  assert.equal(sx(hart, 15), 0n);
  assert.equal(sx(hart, 16), -(1n << 31n));
  assert.equal(sx(hart, 17), 0n);
  assert.equal(sx(hart, 18), -1n);
  assert.equal(sx(hart, 19), -1n);
  assert.equal(sx(hart, 20), -(1n << 31n));
});

test('high multiplications for every sign combination', async () => {
  const vals = [0n, 1n, -1n, 3n, -(1n << 63n), (1n << 63n) - 1n, 0x123456789abcdef0n, -0x7edcba9876543210n];
  for (const a of vals) for (const b of vals) {
    const { hart } = await runAsm(`
      li t0, ${a}
      li t1, ${b}
      mulh a0, t0, t1
      mulhsu a1, t0, t1
      mulhu a2, t0, t1
      mul a3, t0, t1
      mulw a4, t0, t1
      ecall`);
    const ua = BigInt.asUintN(64, a), ub = BigInt.asUintN(64, b);
    assert.equal(hart.x(10), BigInt.asUintN(64, (a * b) >> 64n), `mulh ${a} ${b}`);
    assert.equal(hart.x(11), BigInt.asUintN(64, (a * ub) >> 64n), `mulhsu ${a} ${b}`);
    assert.equal(hart.x(12), BigInt.asUintN(64, (ua * ub) >> 64n), `mulhu ${a} ${b}`);
    assert.equal(hart.x(13), BigInt.asUintN(64, a * b));
    assert.equal(sx(hart, 14), BigInt.asIntN(32, a * b));
  }
});
