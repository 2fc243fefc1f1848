/** Zba, Zbb, Zbs (unpriv spec, "B" Extension for Bit Manipulation) and Zicond (Integer Conditional Operations), RV64 forms. */
import { Op } from '../wasm/opcodes.js';
import type { Ext, Operands } from './types.js';
import { RD, RS1, RS2, SHAMT5, SHAMT6 } from './fields.js';
import type { Row } from './rv64.js';
import * as B from './bitmanip.js';
import { BitOp } from './bitmanip.js';
import * as S from './semantics.js';

const OP = 0x33, OP_32 = 0x3b, OP_IMM = 0x13, OP_IMM_32 = 0x1b;
/** funct7, funct3, opcode; funct6 with a 6-bit shift amount; the whole word but rd and rs1 (one-operand forms). */
const R = 0xfe00707f, SHIFT6 = 0xfc00707f, UNARY = 0xfff0707f;
const r = (opcode: number, funct3: number, funct7: number): number => opcode | (funct3 << 12) | (funct7 << 25);
const i6 = (opcode: number, funct3: number, funct6: number): number => opcode | (funct3 << 12) | (funct6 << 26);
const i12 = (opcode: number, funct3: number, imm: number): number => opcode | (funct3 << 12) | (imm << 20);

const R_OPS: Operands = { rd: RD, rs1: RS1, rs2: RS2 };
const SH6_OPS: Operands = { rd: RD, rs1: RS1, imm: SHAMT6 };
const UN_OPS: Operands = { rd: RD, rs1: RS1 };

const row = (name: string, ext: Ext, mask: number, match: number, operands: Operands, sem: Row['sem']): Row =>
  ({ name, ext, len: 4, mask: mask | 0, match: match | 0, operands, sem });

const zba: Row[] = [
  row('add.uw', 'Zba', R, r(OP_32, 0, 0x04), R_OPS, B.shiftAdd(0, true)),
  ...[1, 2, 3].flatMap(n => [
    row(`sh${n}add`, 'Zba', R, r(OP, 2 * n, 0x10), R_OPS, B.shiftAdd(n, false)),
    row(`sh${n}add.uw`, 'Zba', R, r(OP_32, 2 * n, 0x10), R_OPS, B.shiftAdd(n, true)),
  ]),
  row('slli.uw', 'Zba', SHIFT6, i6(OP_IMM_32, 1, 0x02), SH6_OPS, B.slliUw),
];

const zbb: Row[] = [
  row('andn', 'Zbb', R, r(OP, 7, 0x20), R_OPS, B.withInverted(Op.I64And)),
  row('orn', 'Zbb', R, r(OP, 6, 0x20), R_OPS, B.withInverted(Op.I64Or)),
  row('xnor', 'Zbb', R, r(OP, 4, 0x20), R_OPS, B.withInverted(Op.I64Xor)),
  row('clz', 'Zbb', UNARY, i12(OP_IMM, 1, 0x600), UN_OPS, B.unary(Op.I64Clz)),
  row('ctz', 'Zbb', UNARY, i12(OP_IMM, 1, 0x601), UN_OPS, B.unary(Op.I64Ctz)),
  row('cpop', 'Zbb', UNARY, i12(OP_IMM, 1, 0x602), UN_OPS, B.unary(Op.I64Popcnt)),
  row('sext.b', 'Zbb', UNARY, i12(OP_IMM, 1, 0x604), UN_OPS, B.unary(Op.I64Extend8S)),
  row('sext.h', 'Zbb', UNARY, i12(OP_IMM, 1, 0x605), UN_OPS, B.unary(Op.I64Extend16S)),
  row('clzw', 'Zbb', UNARY, i12(OP_IMM_32, 1, 0x600), UN_OPS, B.unaryW(Op.I32Clz)),
  row('ctzw', 'Zbb', UNARY, i12(OP_IMM_32, 1, 0x601), UN_OPS, B.unaryW(Op.I32Ctz)),
  row('cpopw', 'Zbb', UNARY, i12(OP_IMM_32, 1, 0x602), UN_OPS, B.unaryW(Op.I32Popcnt)),
  row('zext.h', 'Zbb', UNARY, r(OP_32, 4, 0x04), UN_OPS, B.zextH),
  row('min', 'Zbb', R, r(OP, 4, 0x05), R_OPS, B.pick(Op.I64LtS)),
  row('minu', 'Zbb', R, r(OP, 5, 0x05), R_OPS, B.pick(Op.I64LtU)),
  row('max', 'Zbb', R, r(OP, 6, 0x05), R_OPS, B.pick(Op.I64GtS)),
  row('maxu', 'Zbb', R, r(OP, 7, 0x05), R_OPS, B.pick(Op.I64GtU)),
  row('rol', 'Zbb', R, r(OP, 1, 0x30), R_OPS, S.rr(Op.I64Rotl)),
  row('ror', 'Zbb', R, r(OP, 5, 0x30), R_OPS, S.rr(Op.I64Rotr)),
  row('rolw', 'Zbb', R, r(OP_32, 1, 0x30), R_OPS, S.rrw(Op.I32Rotl)),
  row('rorw', 'Zbb', R, r(OP_32, 5, 0x30), R_OPS, S.rrw(Op.I32Rotr)),
  row('rori', 'Zbb', SHIFT6, i6(OP_IMM, 5, 0x18), SH6_OPS, S.ri(Op.I64Rotr)),
  row('roriw', 'Zbb', R, r(OP_IMM_32, 5, 0x30), { rd: RD, rs1: RS1, imm: SHAMT5 }, S.riw(Op.I32Rotr)),
  row('orc.b', 'Zbb', UNARY, i12(OP_IMM, 5, 0x287), UN_OPS, B.orcB),
  row('rev8', 'Zbb', UNARY, i12(OP_IMM, 5, 0x6b8), UN_OPS, B.rev8),
];

// The immediate forms' funct6 is the register form's funct7 without bit 0, where shamt[5] goes.
const zbs: Row[] = ([['bclr', 1, 0x24, BitOp.Clear], ['bext', 5, 0x24, BitOp.Extract], ['binv', 1, 0x34, BitOp.Invert],
  ['bset', 1, 0x14, BitOp.Set]] as const).flatMap(([name, funct3, funct7, kind]) => [
  row(name, 'Zbs', R, r(OP, funct3, funct7), R_OPS, B.singleBit(kind, false)),
  row(`${name}i`, 'Zbs', SHIFT6, i6(OP_IMM, funct3, funct7 >> 1), SH6_OPS, B.singleBit(kind, true)),
]);

const zicond: Row[] = [
  row('czero.eqz', 'Zicond', R, r(OP, 5, 0x07), R_OPS, B.czero(false)),
  row('czero.nez', 'Zicond', R, r(OP, 7, 0x07), R_OPS, B.czero(true)),
];

export const BITMANIP_INSNS: readonly Row[] = [...zba, ...zbb, ...zbs, ...zicond];
