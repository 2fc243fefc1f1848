/**
 * The rv-fd.ts rows against encodings produced by GNU as 2.40 (riscv64-linux-gnu-as -march=rv64gc):
 * every instruction below was assembled as `<name> f9|a1, f10|t2, f21, f31[, rup]`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FD_INSNS, FP_OP_COUNT, FP_RM_LIMIT, FpOp } from '../../isa/rv-fd.js';
import { fieldValue } from '../../isa/types.js';

const GAS: [string, number][] = [
  ['fmadd.s', 0xf95534c3], ['fmsub.s', 0xf95534c7], ['fnmsub.s', 0xf95534cb], ['fnmadd.s', 0xf95534cf],
  ['fadd.s', 0x015534d3], ['fsub.s', 0x095534d3], ['fmul.s', 0x115534d3], ['fdiv.s', 0x195534d3],
  ['fsqrt.s', 0x580534d3], ['fcvt.w.s', 0xc00535d3], ['fcvt.wu.s', 0xc01535d3], ['fcvt.l.s', 0xc02535d3],
  ['fcvt.lu.s', 0xc03535d3], ['fcvt.s.w', 0xd003b4d3], ['fcvt.s.wu', 0xd013b4d3], ['fcvt.s.l', 0xd023b4d3],
  ['fcvt.s.lu', 0xd033b4d3], ['fsgnj.s', 0x215504d3], ['fsgnjn.s', 0x215514d3], ['fsgnjx.s', 0x215524d3],
  ['fmin.s', 0x295504d3], ['fmax.s', 0x295514d3], ['feq.s', 0xa15525d3], ['flt.s', 0xa15515d3],
  ['fle.s', 0xa15505d3], ['fclass.s', 0xe00515d3], ['fmv.x.w', 0xe00505d3], ['fmv.w.x', 0xf00384d3],
  ['fmadd.d', 0xfb5534c3], ['fmsub.d', 0xfb5534c7], ['fnmsub.d', 0xfb5534cb], ['fnmadd.d', 0xfb5534cf],
  ['fadd.d', 0x035534d3], ['fsub.d', 0x0b5534d3], ['fmul.d', 0x135534d3], ['fdiv.d', 0x1b5534d3],
  ['fsqrt.d', 0x5a0534d3], ['fcvt.w.d', 0xc20535d3], ['fcvt.wu.d', 0xc21535d3], ['fcvt.l.d', 0xc22535d3],
  ['fcvt.lu.d', 0xc23535d3], ['fcvt.d.w', 0xd20384d3], ['fcvt.d.wu', 0xd21384d3], ['fcvt.d.l', 0xd223b4d3],
  ['fcvt.d.lu', 0xd233b4d3], ['fsgnj.d', 0x235504d3], ['fsgnjn.d', 0x235514d3], ['fsgnjx.d', 0x235524d3],
  ['fmin.d', 0x2b5504d3], ['fmax.d', 0x2b5514d3], ['feq.d', 0xa35525d3], ['flt.d', 0xa35515d3],
  ['fle.d', 0xa35505d3], ['fclass.d', 0xe20515d3], ['fmv.x.d', 0xe20505d3], ['fmv.d.x', 0xf20384d3],
  ['fcvt.s.d', 0x401534d3], ['fcvt.d.s', 0x420504d3],
];

const matches = (w: number): string[] => FD_INSNS.filter((r) => ((w & r.mask) | 0) === r.match).map((r) => r.name);

test('every RV64F/D computational instruction has exactly one row', () => {
  assert.equal(FD_INSNS.length, GAS.length);
  assert.deepEqual(FD_INSNS.map((r) => r.name).sort(), GAS.map(([n]) => n).sort());
});

test('each encoding from GNU as decodes to its own row, with the operand fields in place', () => {
  for (const [name, word] of GAS) {
    assert.deepEqual(matches(word), [name], name);
    const r = FD_INSNS.find((x) => x.name === name)!;
    assert.equal(fieldValue(r.operands.rd!, word), /^(fcvt\.(w|wu|l|lu)\.|fmv\.x\.|feq|flt|fle|fclass)/.test(name) ? 11 : 9, name);
    assert.equal(fieldValue(r.operands.rs1!, word), /^(fcvt\.[sd]\.(w|wu|l|lu)$|fmv\.[wd]\.x)/.test(name) ? 7 : 10, name);
    if (r.operands.rs2) assert.equal(fieldValue(r.operands.rs2, word), 21, name);
    if (r.operands.rs3) assert.equal(fieldValue(r.operands.rs3, word), 31, name);
    assert.equal(r.len, 4);
    assert.equal(r.ext, /\.d(\.|$)|^fcvt\.d\.s$/.test(name) ? 'D' : 'F', name);
  }
});

test('the rm field is free exactly where the instruction has one', () => {
  for (const [name, word] of GAS) {
    const r = FD_INSNS.find((x) => x.name === name)!;
    const op = r.fp.op;
    const hasRm = (r.mask & 0x7000) === 0;
    assert.equal(hasRm, op < FP_RM_LIMIT, name);
    for (let rm = 0; rm < 8; rm++) {
      const w = (word & ~0x7000) | (rm << 12);
      if (hasRm || w === (word | 0)) assert.deepEqual(matches(w), [name], `${name} rm=${rm}`);
      else assert.ok(!matches(w).includes(name), `${name} with funct3=${rm}`);
    }
  }
});

test('reserved neighbours of the encodings match no row', () => {
  const none = (w: number, why: string): void => assert.deepEqual(matches(w), [], why);
  none(0x215534d3, 'fsgnj funct3=3');
  none(0x295524d3, 'fmin funct3=2');
  none(0xa15535d3, 'feq funct3=3');
  none(0xc04535d3, 'fcvt.?.s rs2=4');
  none(0xd043b4d3, 'fcvt.s.? rs2=4');
  none(0xe01515d3, 'fclass.s rs2=1');
  none(0xe00525d3, 'fmv.x.w funct3=2');
  none(0x581534d3, 'fsqrt.s rs2=1');
  none(0x402534d3, 'fcvt.s.? rs2=2 (fcvt.s.h, not in RV64GC)');
  none(0x055534d3, 'fadd fmt=2 (H)');
  none(0xfd5534c3, 'fmadd fmt=2 (H)');
  none(0x00002007, 'flw is not ours');
  none(0x00003027, 'fsd is not ours');
});

test('FpOp numbers are distinct, dense, and each used by exactly one row', () => {
  const values = Object.values(FpOp).sort((a, b) => a - b);
  assert.deepEqual(values, Array.from({ length: FP_OP_COUNT }, (_, i) => i));
  const used = FD_INSNS.map((r) => r.fp.op).sort((a, b) => a - b);
  assert.deepEqual(used, values);
  for (const r of FD_INSNS) {
    const sem = r.fp;
    assert.equal(sem.kind, 'host'); assert.equal(sem.unit, 'fp');
    const key = r.name.toUpperCase().replace(/\./g, '_') as keyof typeof FpOp;
    assert.equal(FpOp[key], sem.op, r.name);
  }
});
