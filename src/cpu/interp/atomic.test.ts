// A extension: LR/SC pairing, AMO results, misaligned AMOs fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAsm, sx, DATA_BASE } from '../testing/asm.js';

test('lr/sc succeeds once, fails without a reservation', async () => {
  const { hart } = await runAsm(`
    li t0, ${DATA_BASE}
    li t1, 5
    sd t1, 0(t0)
    lr.d a0, (t0)
    addi t2, a0, 1
    sc.d a1, t2, (t0)      # 0: success
    sc.d a2, t2, (t0)      # 1: reservation gone
    ld a3, 0(t0)
    ecall`);
  assert.equal(sx(hart, 10), 5n);
  assert.equal(sx(hart, 11), 0n);
  assert.equal(sx(hart, 12), 1n);
  assert.equal(sx(hart, 13), 6n);
});

test('amo .w sign-extends the old value and compares 32 bits', async () => {
  const { hart } = await runAsm(`
    li t0, ${DATA_BASE}
    li t1, 0xffffffff80000000
    sd t1, 0(t0)
    li t2, 1
    amomin.w a0, t2, (t0)  # old = -2^31 (min stays)
    lw a1, 0(t0)
    amomaxu.w a2, t2, (t0) # unsigned: 0x80000000 > 1
    amoswap.d a3, t2, (t0)
    amoadd.d a4, t2, (t0)
    ld a5, 0(t0)
    ecall`);
  assert.equal(sx(hart, 10), -(1n << 31n));
  assert.equal(sx(hart, 11), -(1n << 31n));
  assert.equal(sx(hart, 12), -(1n << 31n));
  assert.equal(hart.x(13), 0xffffffff80000000n);
  assert.equal(sx(hart, 14), 1n);
  assert.equal(sx(hart, 15), 2n);
});

test('misaligned AMO raises a store/AMO address-misaligned exception', async () => {
  const { hart } = await runAsm(`
    la t0, handler
    csrw mtvec, t0
    li t0, ${DATA_BASE + 2}
    amoadd.w a0, a0, (t0)
    li a1, 1               # skipped
    .align 2
handler:
    csrr a2, mcause
    csrr a3, mtval
    ecall`);
  assert.equal(sx(hart, 12), 6n);
  assert.equal(hart.x(13), BigInt(DATA_BASE + 2));
  assert.equal(sx(hart, 11), 0n);
});
