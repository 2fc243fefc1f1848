/**
 * The rv-bitmanip.ts rows against encodings produced by GNU as 2.40
 * (riscv64-linux-gnu-as -march=rv64gc_zba_zbb_zbs), every one assembled as `<name> a1, a0[, t2 | 37 | 17]`.
 * GNU as 2.40 does not know Zicond: its two words are built from the spec's encoding diagrams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_INSNS } from './index.js';
import { BITMANIP_INSNS } from './rv-bitmanip.js';
import { fieldValue } from './types.js';

const GAS: [string, number][] = [
  ['add.uw', 0x087505bb], ['sh1add', 0x207525b3], ['sh2add', 0x207545b3], ['sh3add', 0x207565b3],
  ['sh1add.uw', 0x207525bb], ['sh2add.uw', 0x207545bb], ['sh3add.uw', 0x207565bb], ['slli.uw', 0x0a55159b],
  ['andn', 0x407575b3], ['orn', 0x407565b3], ['xnor', 0x407545b3], ['clz', 0x60051593], ['clzw', 0x6005159b],
  ['ctz', 0x60151593], ['ctzw', 0x6015159b], ['cpop', 0x60251593], ['cpopw', 0x6025159b], ['max', 0x0a7565b3],
  ['maxu', 0x0a7575b3], ['min', 0x0a7545b3], ['minu', 0x0a7555b3], ['sext.b', 0x60451593], ['sext.h', 0x60551593],
  ['zext.h', 0x080545bb], ['rol', 0x607515b3], ['rolw', 0x607515bb], ['ror', 0x607555b3], ['rori', 0x62555593],
  ['roriw', 0x6115559b], ['rorw', 0x607555bb], ['orc.b', 0x28755593], ['rev8', 0x6b855593], ['bclr', 0x487515b3],
  ['bclri', 0x4a551593], ['bext', 0x487555b3], ['bexti', 0x4a555593], ['binv', 0x687515b3], ['binvi', 0x6a551593],
  ['bset', 0x287515b3], ['bseti', 0x2a551593],
  ['czero.eqz', 0x0e7555b3], ['czero.nez', 0x0e7575b3],
];

const matches = (w: number): string[] => ALL_INSNS.filter(r => ((w & r.mask) | 0) === r.match).map(r => r.name);

test('every Zba/Zbb/Zbs/Zicond instruction has exactly one row', () => {
  assert.deepEqual(BITMANIP_INSNS.map(r => r.name).sort(), GAS.map(([n]) => n).sort());
});

test('each encoding decodes to its own row only, among all rows, with the operand fields in place', () => {
  for (const [name, word] of GAS) {
    assert.deepEqual(matches(word), [name], name);
    const r = BITMANIP_INSNS.find(x => x.name === name)!;
    assert.equal(fieldValue(r.operands.rd!, word), 11, name);
    assert.equal(fieldValue(r.operands.rs1!, word), 10, name);
    if (r.operands.rs2) assert.equal(fieldValue(r.operands.rs2, word), 7, name);
    if (r.operands.imm) assert.equal(fieldValue(r.operands.imm, word), name === 'roriw' ? 17 : 37, name);
  }
});

test('the base shifts keep every shift amount, and reserved neighbours match no row', () => {
  for (let shamt = 0; shamt < 64; shamt++) {
    const at = (word: number): number => word | (shamt << 20);
    assert.deepEqual(matches(at(0x00051593)), ['slli'], `slli ${shamt}`);
    assert.deepEqual(matches(at(0x00055593)), ['srli'], `srli ${shamt}`);
    assert.deepEqual(matches(at(0x40055593)), ['srai'], `srai ${shamt}`);
    if (shamt < 32) assert.deepEqual(matches(at(0x0005159b)), ['slliw'], `slliw ${shamt}`);
  }
  const none = (w: number, why: string): void => assert.deepEqual(matches(w), [], why);
  none(0x60351593, 'clz/ctz/cpop group, rs2=3');
  none(0x6045159b, 'sext.b has no W form');
  none(0x081545bb, 'zext.h with rs2=1 (pack is not Zbb)');
  none(0x6255559b, 'roriw with shamt[5] set');
  none(0x28855593, 'orc.b with another immediate');
  none(0x6b055593, 'rev8 with another immediate (rev8 of RV32)');
  none(0x0e7565b3, 'czero funct3=6');
});
