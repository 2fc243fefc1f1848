/**
 * Zicond, and a few Zba/Zbb/Zbs corners, against hand-written results, in the interpreter and the JIT.
 * ctzw of a value whose low word is zero is here because QEMU 7.2 gets it wrong (see test/diff/insns.ts).
 * QEMU 7.2 (the differential tests' oracle) has no Zicond, and GNU as 2.40 does not know its
 * mnemonics: the czero instructions are written with `.insn r` (OP, funct3, funct7 = 7).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boot, DATA_BASE, MODES, type Guest } from '../jit/jit-testing.js';

const MIN = 1n << 63n, ONES = (1n << 64n) - 1n;

/** [value, condition, czero.eqz, czero.nez]: the whole 64-bit condition counts, not its low word. */
const CZERO: [bigint, bigint, bigint, bigint][] = [
  [5n, 0n, 0n, 5n],
  [5n, 1n, 5n, 0n],
  [ONES, ONES, ONES, 0n],
  [MIN, MIN, MIN, 0n],
  [ONES, 0x1_0000_0000n, ONES, 0n],
  [0x8000_0000n, 0x8000_0000n, 0x8000_0000n, 0n],
  [0n, ONES, 0n, 0n],
  [0x1234_5678_9abc_def0n, 0n, 0n, 0x1234_5678_9abc_def0n],
];

const czero = (funct3: 5 | 7, rd: string, rs1: string, rs2: string): string => `.insn r 0x33, ${funct3}, 7, ${rd}, ${rs1}, ${rs2}`;

/**
 * Runs `body` twice, so that in JIT mode (threshold 1) the second pass runs translated: blocks
 * start where a jump lands, here the branch back.
 */
async function runTwice(body: string[], jit: boolean): Promise<Guest> {
  const src = ['.option arch, +zba, +zbb, +zbs', `li s10, ${DATA_BASE}`, 'li s9, 2', '2:', ...body, 'addi s9, s9, -1', 'bnez s9, 2b', 'halt'];
  const g = await boot(`${src.join('\n')}\n`, { jit });
  g.run();
  if (jit) assert.ok(g.jitInsns() > 0.45 * Number(g.hart.instret()), `${g.jitInsns()} of ${g.hart.instret()} translated`);
  else assert.equal(g.jitInsns(), 0);
  return g;
}

/** A 64-bit value as `li` takes it. */
const asm = (v: bigint): string => BigInt.asIntN(64, v).toString();
/** Stores `reg` to the next result slot. */
const save = (i: number, reg: string): string => `sd ${reg}, ${8 * i}(s10)`;

for (const { name, jit } of MODES) {
  test(`czero.eqz and czero.nez (${name})`, async () => {
    const lines: string[] = [];
    let slot = 0;
    const want: bigint[] = [];
    for (const [value, cond, eqz, nez] of CZERO) {
      lines.push(`li a0, ${asm(value)}`, `li a1, ${asm(cond)}`, czero(5, 'a2', 'a0', 'a1'), czero(7, 'a3', 'a0', 'a1'), save(slot++, 'a2'), save(slot++, 'a3'));
      want.push(eqz, nez);
      // rd aliasing the condition: the condition is read before rd is written.
      lines.push(czero(5, 'a1', 'a0', 'a1'), save(slot++, 'a1'));
      want.push(eqz);
    }
    lines.push(`li a0, 9`, czero(5, 'a2', 'a0', 'zero'), czero(7, 'a3', 'a0', 'zero'), czero(5, 'a4', 'zero', 'a0'), save(slot++, 'a2'), save(slot++, 'a3'), save(slot++, 'a4'));
    want.push(0n, 9n, 0n);
    const g = await runTwice(lines, jit);
    assert.deepEqual(want.map((_, i) => g.rd64(DATA_BASE + 8 * i)), want);
  });

  test(`Zbb and Zbs corners (${name})`, async () => {
    const cases: [string, bigint][] = [
      ['clz a2, zero', 64n], ['ctz a2, zero', 64n], ['clzw a2, zero', 32n], ['ctzw a2, zero', 32n],
      ['ctzw a2, t6', 32n], ['ctzw a2, s3', 32n], ['cpop a2, t0', 64n], ['cpopw a2, t0', 32n], ['clzw a2, t1', 0n], ['clz a2, t1', 32n], ['ctzw a2, t1', 31n],
      ['orc.b a2, t2', 0xff00_ff00_00ff_00ffn], ['rev8 a2, t2', 0x0100_1000_0010_0030n],
      ['sext.b a2, t1', 0n], ['sext.h a2, t3', ONES - 0x7fffn], ['zext.h a2, t0', 0xffffn],
      ['rolw a2, t1, t4', 1n], ['roriw a2, t1, 31', 1n], ['roriw a2, t5, 1', ONES - 0x7fff_ffffn], ['rori a2, t4, 0', 33n],
      ['bext a2, t0, t4', 1n], ['bclri a2, t0, 63', ONES >> 1n], ['binv a2, zero, t4', 1n << 33n],
      ['max a2, t0, t5', 1n], ['maxu a2, t0, t5', ONES], ['min a2, t5, t6', MIN], ['minu a2, t5, t6', 1n],
      ['slli.uw a2, t0, 63', MIN], ['add.uw a2, s2, zero', 0x8000_0000n], ['sh3add.uw a2, t0, t5', (0xffff_ffffn << 3n) + 1n],
    ];
    const lines = ['li t0, -1', 'li t1, 0x80000000', 'li t2, 0x3000100000100001', 'li t3, 0x8000',
      'li t4, 33', 'li t5, 1', `li t6, ${asm(MIN)}`, 'li s2, -0x80000000', 'li s3, 0x10000000000'];
    cases.forEach(([insn], i) => lines.push(insn, save(i, 'a2')));
    const g = await runTwice(lines, jit);
    for (const [i, [insn, v]] of cases.entries()) assert.equal(g.rd64(DATA_BASE + 8 * i), v, insn);
  });
}
