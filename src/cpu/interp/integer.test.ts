// RV64I corner cases from the unprivileged spec, "RV64I Base Integer Instruction Set".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAsm, sx, DATA_BASE } from '../testing/asm.js';

test('W results are sign-extended from bit 31', async () => {
  const { hart } = await runAsm(`
    li t0, 0x7fffffff
    addiw a0, t0, 1          # 0x80000000 -> sign-extended
    li t1, 0xffffffff
    addw a1, t1, zero        # -1
    subw a2, zero, t0
    li t2, 0x100000000
    addw a3, t2, t2          # upper bits ignored -> 0
    ecall`);
  assert.equal(sx(hart, 10), -0x80000000n);
  assert.equal(sx(hart, 11), -1n);
  assert.equal(sx(hart, 12), -0x7fffffffn);
  assert.equal(sx(hart, 13), 0n);
});

test('shifts by 63 and 31 (W forms use 5 bits, others 6)', async () => {
  const { hart } = await runAsm(`
    li t0, -1
    slli a0, t0, 63
    srli a1, t0, 63
    srai a2, a0, 63
    li t1, 1
    sraiw a3, a0, 31       # low word 0 -> 0
    slliw a4, t1, 31       # 0x80000000 sign-extended
    srliw a5, t0, 31       # 1
    li t2, 95              # shift amount 95: W forms use 95 & 31 = 31, others 95 & 63 = 31
    sllw a6, t1, t2
    sll a7, t1, t2
    ecall`);
  assert.equal(sx(hart, 10), -(1n << 63n));
  assert.equal(sx(hart, 11), 1n);
  assert.equal(sx(hart, 12), -1n);
  assert.equal(sx(hart, 13), 0n);
  assert.equal(sx(hart, 14), -0x80000000n);
  assert.equal(sx(hart, 15), 1n);
  assert.equal(sx(hart, 16), -0x80000000n);
  assert.equal(sx(hart, 17), 1n << 31n);
});

test('comparisons, lui/auipc, x0 stays zero', async () => {
  const { hart } = await runAsm(`
    li t0, -1
    sltu a0, zero, t0      # 0 < 2^64-1
    slt a1, zero, t0       # 0 < -1 false
    sltiu a2, t0, -1       # -1 <u -1 false
    lui a3, 0x80000        # sign-extended
1:  auipc a4, 0
    la a6, 1b
    addi zero, zero, 5
    mv a5, zero
    ecall`);
  assert.equal(sx(hart, 10), 1n);
  assert.equal(sx(hart, 11), 0n);
  assert.equal(sx(hart, 12), 0n);
  assert.equal(sx(hart, 13), -0x80000000n);
  assert.equal(hart.x(14), hart.x(16));
  assert.ok(hart.x(14) > 0x8000_0000n);
  assert.equal(hart.x(0), 0n);
  assert.equal(sx(hart, 15), 0n);
});

test('loads sign- and zero-extend; misaligned and page-crossing accesses work', async () => {
  const { hart } = await runAsm(`
    li t0, ${DATA_BASE + 0xffd}
    li t1, 0x8877665544332211
    sd t1, 0(t0)           # crosses a 4 KiB page
    ld a0, 0(t0)
    lb a1, 7(t0)
    lbu a2, 7(t0)
    lh a3, 6(t0)
    lwu a4, 4(t0)
    lw a5, 4(t0)
    ecall`);
  assert.equal(hart.x(10), 0x8877665544332211n);
  assert.equal(sx(hart, 11), -0x78n);
  assert.equal(hart.x(12), 0x88n);
  assert.equal(sx(hart, 13), BigInt.asIntN(16, 0x8877n));
  assert.equal(hart.x(14), 0x88776655n);
  assert.equal(sx(hart, 15), BigInt.asIntN(32, 0x88776655n));
});

test('branches and jumps, jalr clears bit 0', async () => {
  const { hart } = await runAsm(`
    li a0, 0
    li t0, -1
    bltu zero, t0, 1f
    li a0, 99
1:  blt zero, t0, 2f
    addi a0, a0, 1
2:  la t1, 3f
    addi t1, t1, 1
    jalr ra, 0(t1)
    li a0, 77
3:  ecall`);
  assert.equal(sx(hart, 10), 1n);
});
