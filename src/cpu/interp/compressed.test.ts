// RV64C expands to the base instructions: check each quadrant's forms against their expansions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAsm, sx, DATA_BASE } from '../testing/asm.js';

test('compressed arithmetic, loads/stores, jumps', async () => {
  const { hart } = await runAsm(`
    li sp, ${DATA_BASE + 0x100}
    c.li a0, -32
    c.addi a0, 31          # -1
    c.lui a1, 0xfffff      # -4096
    c.addiw a1, 1
    c.addi16sp sp, -64
    c.addi4spn s0, sp, 16
    c.li a2, 21
    c.slli a2, 3           # 168
    c.mv s1, a2
    c.srli s1, 2           # 42
    c.srai s1, 1           # 21
    c.andi s1, 5           # 5
    c.sdsp a2, 8(sp)
    c.ldsp a3, 8(sp)
    c.swsp a0, 0(sp)
    c.lwsp a4, 0(sp)
    c.sd a2, 16(s0)
    c.ld a5, 16(s0)
    c.sub a5, s1           # 163
    c.subw a5, s1          # 158
    c.addw a5, s1          # 163
    c.xor a5, s1
    c.or a5, s1
    c.and a5, s1
    c.add a6, a5
    c.beqz a3, 9f          # not taken (a3 = 168)
1:  c.bnez a0, 2f
    c.li a7, 1
2:  la t1, 3f
    c.jr t1
    c.li a7, 2
3:  c.j 4f
    c.li a7, 3
4:  ecall
9:  c.li a7, 4
    ecall`);
  assert.equal(sx(hart, 10), -1n);
  assert.equal(sx(hart, 11), -4095n);
  assert.equal(hart.x(8), BigInt(DATA_BASE + 0x100 - 64 + 16));
  assert.equal(sx(hart, 12), 168n);
  assert.equal(sx(hart, 9), 5n);
  assert.equal(sx(hart, 13), 168n);
  assert.equal(sx(hart, 14), -1n);
  assert.equal(sx(hart, 15), 5n);
  assert.equal(sx(hart, 17), 0n);
});

test('the all-zero halfword is an illegal instruction', async () => {
  const { hart } = await runAsm(`
    la t0, handler
    csrw mtvec, t0
    .2byte 0
    .align 2
handler:
    csrr a0, mcause
    ecall`);
  assert.equal(sx(hart, 10), 2n);
});

test('reserved compressed encodings trap as illegal instructions with their bits in mtval', async () => {
  const reserved = [
    0x0004, // c.addi4spn x9, sp, 0: nzuimm = 0
    0x6081, // c.lui x1, 0: nzimm = 0
    0x6101, // c.addi16sp sp, 0: nzimm = 0
    0x4002, // c.lwsp x0, 0(sp)
    0x6002, // c.ldsp x0, 0(sp)
    0x8002, // c.jr x0
    0x9c41, // quadrant 1, funct6 100111, funct2 10
    0x9c61, // quadrant 1, funct6 100111, funct2 11
  ];
  for (const bits of reserved) {
    const { hart } = await runAsm(`
    la t0, handler
    csrw mtvec, t0
    li a0, 0
    .2byte ${bits}
    .2byte 0x0001          # c.nop: never reached
    .align 2
handler:
    csrr a0, mcause
    csrr a1, mtval
    ecall`);
    assert.equal(sx(hart, 10), 2n, `0x${bits.toString(16)}: mcause`);
    assert.equal(hart.x(11), BigInt(bits), `0x${bits.toString(16)}: mtval`);
  }
});
