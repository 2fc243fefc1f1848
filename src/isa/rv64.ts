/** RV64I, M, A, Zicsr, Zifencei, the privileged instructions, and FP loads/stores (unpriv spec, "RV32/64G Instruction Set Listings"). */
import { Op } from '../wasm/opcodes.js';
import { LoadKind } from './emit.js';
import type { InsnDef, Operands, Ext } from './types.js';
import { IMM_B, IMM_I, IMM_J, IMM_S, IMM_U, RD, RS1, RS2, SHAMT5, SHAMT6 } from './fields.js';
import * as S from './semantics.js';

export type Row = InsnDef<S.Sem>;

/** Operations of the 'system' host unit. */
export const SysOp = { ECALL: 0, EBREAK: 1, MRET: 2, SRET: 3, WFI: 4, SFENCE_VMA: 5, FENCE_I: 6 } as const;
/** Operations of the 'csr' host unit: funct3 of the instruction. */
export const CsrOp = { RW: 1, RS: 2, RC: 3, RWI: 5, RSI: 6, RCI: 7 } as const;

const row = (name: string, ext: Ext, mask: number, match: number, operands: Operands, sem: Row['sem']): Row =>
  ({ name, ext, len: 4, mask: mask | 0, match: match | 0, operands, sem });

const F3 = 0x707f, R = 0xfe00707f;
const f3 = (opcode: number, funct3: number): number => opcode | (funct3 << 12);
const f7 = (opcode: number, funct3: number, funct7: number): number => opcode | (funct3 << 12) | (funct7 << 25);

const I_OPS: Operands = { rd: RD, rs1: RS1, imm: IMM_I };
const R_OPS: Operands = { rd: RD, rs1: RS1, rs2: RS2 };
const S_OPS: Operands = { rs1: RS1, rs2: RS2, imm: IMM_S };
const B_OPS: Operands = { rs1: RS1, rs2: RS2, imm: IMM_B };
const NONE: Operands = {};

const host = (unit: 'csr' | 'system', op: number) => ({ kind: 'host', unit, op }) as const;

const base: Row[] = [
  row('lui', 'I', 0x7f, 0x37, { rd: RD, imm: IMM_U }, S.lui),
  row('auipc', 'I', 0x7f, 0x17, { rd: RD, imm: IMM_U }, S.auipc),
  row('jal', 'I', 0x7f, 0x6f, { rd: RD, imm: IMM_J }, S.jal),
  row('jalr', 'I', F3, f3(0x67, 0), I_OPS, S.jalr),
  row('beq', 'I', F3, f3(0x63, 0), B_OPS, S.branch(Op.I64Eq)),
  row('bne', 'I', F3, f3(0x63, 1), B_OPS, S.branch(Op.I64Ne)),
  row('blt', 'I', F3, f3(0x63, 4), B_OPS, S.branch(Op.I64LtS)),
  row('bge', 'I', F3, f3(0x63, 5), B_OPS, S.branch(Op.I64GeS)),
  row('bltu', 'I', F3, f3(0x63, 6), B_OPS, S.branch(Op.I64LtU)),
  row('bgeu', 'I', F3, f3(0x63, 7), B_OPS, S.branch(Op.I64GeU)),
  row('lb', 'I', F3, f3(0x03, 0), I_OPS, S.load(LoadKind.B)),
  row('lh', 'I', F3, f3(0x03, 1), I_OPS, S.load(LoadKind.H)),
  row('lw', 'I', F3, f3(0x03, 2), I_OPS, S.load(LoadKind.W)),
  row('ld', 'I', F3, f3(0x03, 3), I_OPS, S.load(LoadKind.D)),
  row('lbu', 'I', F3, f3(0x03, 4), I_OPS, S.load(LoadKind.BU)),
  row('lhu', 'I', F3, f3(0x03, 5), I_OPS, S.load(LoadKind.HU)),
  row('lwu', 'I', F3, f3(0x03, 6), I_OPS, S.load(LoadKind.WU)),
  row('sb', 'I', F3, f3(0x23, 0), S_OPS, S.store(1)),
  row('sh', 'I', F3, f3(0x23, 1), S_OPS, S.store(2)),
  row('sw', 'I', F3, f3(0x23, 2), S_OPS, S.store(4)),
  row('sd', 'I', F3, f3(0x23, 3), S_OPS, S.store(8)),
  row('addi', 'I', F3, f3(0x13, 0), I_OPS, S.ri(Op.I64Add)),
  row('slti', 'I', F3, f3(0x13, 2), I_OPS, S.setLess(Op.I64LtS, true)),
  row('sltiu', 'I', F3, f3(0x13, 3), I_OPS, S.setLess(Op.I64LtU, true)),
  row('xori', 'I', F3, f3(0x13, 4), I_OPS, S.ri(Op.I64Xor)),
  row('ori', 'I', F3, f3(0x13, 6), I_OPS, S.ri(Op.I64Or)),
  row('andi', 'I', F3, f3(0x13, 7), I_OPS, S.ri(Op.I64And)),
  row('slli', 'I', 0xfc00707f, f3(0x13, 1), { rd: RD, rs1: RS1, imm: SHAMT6 }, S.ri(Op.I64Shl)),
  row('srli', 'I', 0xfc00707f, f3(0x13, 5), { rd: RD, rs1: RS1, imm: SHAMT6 }, S.ri(Op.I64ShrU)),
  row('srai', 'I', 0xfc00707f, f3(0x13, 5) | 0x4000_0000, { rd: RD, rs1: RS1, imm: SHAMT6 }, S.ri(Op.I64ShrS)),
  row('add', 'I', R, f7(0x33, 0, 0), R_OPS, S.rr(Op.I64Add)),
  row('sub', 'I', R, f7(0x33, 0, 0x20), R_OPS, S.rr(Op.I64Sub)),
  row('sll', 'I', R, f7(0x33, 1, 0), R_OPS, S.rr(Op.I64Shl)),
  row('slt', 'I', R, f7(0x33, 2, 0), R_OPS, S.setLess(Op.I64LtS, false)),
  row('sltu', 'I', R, f7(0x33, 3, 0), R_OPS, S.setLess(Op.I64LtU, false)),
  row('xor', 'I', R, f7(0x33, 4, 0), R_OPS, S.rr(Op.I64Xor)),
  row('srl', 'I', R, f7(0x33, 5, 0), R_OPS, S.rr(Op.I64ShrU)),
  row('sra', 'I', R, f7(0x33, 5, 0x20), R_OPS, S.rr(Op.I64ShrS)),
  row('or', 'I', R, f7(0x33, 6, 0), R_OPS, S.rr(Op.I64Or)),
  row('and', 'I', R, f7(0x33, 7, 0), R_OPS, S.rr(Op.I64And)),
  row('addiw', 'I', F3, f3(0x1b, 0), I_OPS, S.riw(Op.I32Add)),
  row('slliw', 'I', R, f7(0x1b, 1, 0), { rd: RD, rs1: RS1, imm: SHAMT5 }, S.riw(Op.I32Shl)),
  row('srliw', 'I', R, f7(0x1b, 5, 0), { rd: RD, rs1: RS1, imm: SHAMT5 }, S.riw(Op.I32ShrU)),
  row('sraiw', 'I', R, f7(0x1b, 5, 0x20), { rd: RD, rs1: RS1, imm: SHAMT5 }, S.riw(Op.I32ShrS)),
  row('addw', 'I', R, f7(0x3b, 0, 0), R_OPS, S.rrw(Op.I32Add)),
  row('subw', 'I', R, f7(0x3b, 0, 0x20), R_OPS, S.rrw(Op.I32Sub)),
  row('sllw', 'I', R, f7(0x3b, 1, 0), R_OPS, S.rrw(Op.I32Shl)),
  row('srlw', 'I', R, f7(0x3b, 5, 0), R_OPS, S.rrw(Op.I32ShrU)),
  row('sraw', 'I', R, f7(0x3b, 5, 0x20), R_OPS, S.rrw(Op.I32ShrS)),
  row('fence', 'I', F3, f3(0x0f, 0), NONE, S.nop),
  row('fence.i', 'Zifencei', F3, f3(0x0f, 1), NONE, host('system', SysOp.FENCE_I)),
  row('ecall', 'I', -1, 0x0000_0073, NONE, host('system', SysOp.ECALL)),
  row('ebreak', 'I', -1, 0x0010_0073, NONE, host('system', SysOp.EBREAK)),
];

const priv: Row[] = [
  row('mret', 'priv', -1, 0x3020_0073, NONE, host('system', SysOp.MRET)),
  row('sret', 'priv', -1, 0x1020_0073, NONE, host('system', SysOp.SRET)),
  row('wfi', 'priv', -1, 0x1050_0073, NONE, host('system', SysOp.WFI)),
  row('sfence.vma', 'priv', 0xfe007fff, 0x1200_0073, { rs1: RS1, rs2: RS2 }, host('system', SysOp.SFENCE_VMA)),
];

const csr: Row[] = (['csrrw', 'csrrs', 'csrrc', '', 'csrrwi', 'csrrsi', 'csrrci'] as const)
  .map((name, i) => name && row(name, 'Zicsr', F3, f3(0x73, i + 1), { rd: RD, rs1: RS1 }, host('csr', i + 1)))
  .filter((r): r is Row => !!r);

const mul: Row[] = [
  row('mul', 'M', R, f7(0x33, 0, 1), R_OPS, S.rr(Op.I64Mul)),
  row('mulh', 'M', R, f7(0x33, 1, 1), R_OPS, S.mulh(true, true)),
  row('mulhsu', 'M', R, f7(0x33, 2, 1), R_OPS, S.mulh(true, false)),
  row('mulhu', 'M', R, f7(0x33, 3, 1), R_OPS, S.mulh(false, false)),
  row('div', 'M', R, f7(0x33, 4, 1), R_OPS, S.div),
  row('divu', 'M', R, f7(0x33, 5, 1), R_OPS, S.divu),
  row('rem', 'M', R, f7(0x33, 6, 1), R_OPS, S.rem),
  row('remu', 'M', R, f7(0x33, 7, 1), R_OPS, S.remu),
  row('mulw', 'M', R, f7(0x3b, 0, 1), R_OPS, S.rrw(Op.I32Mul)),
  row('divw', 'M', R, f7(0x3b, 4, 1), R_OPS, S.divw),
  row('divuw', 'M', R, f7(0x3b, 5, 1), R_OPS, S.divuw),
  row('remw', 'M', R, f7(0x3b, 6, 1), R_OPS, S.remw),
  row('remuw', 'M', R, f7(0x3b, 7, 1), R_OPS, S.remuw),
];

function atomics(size: 4 | 8): Row[] {
  const sfx = size === 4 ? '.w' : '.d';
  const fn3 = size === 4 ? 2 : 3;
  const a = (funct5: number): number => f3(0x2f, fn3) | (funct5 << 27);
  const ops = S.amoOps(size);
  const AMO = 0xf800707f;
  return [
    row('lr' + sfx, 'A', AMO | (0x1f << 20), a(0x02), { rd: RD, rs1: RS1 }, S.lr(size)),
    row('sc' + sfx, 'A', AMO, a(0x03), R_OPS, S.sc(size)),
    row('amoswap' + sfx, 'A', AMO, a(0x01), R_OPS, ops.swap),
    row('amoadd' + sfx, 'A', AMO, a(0x00), R_OPS, ops.add),
    row('amoxor' + sfx, 'A', AMO, a(0x04), R_OPS, ops.xor),
    row('amoand' + sfx, 'A', AMO, a(0x0c), R_OPS, ops.and),
    row('amoor' + sfx, 'A', AMO, a(0x08), R_OPS, ops.or),
    row('amomin' + sfx, 'A', AMO, a(0x10), R_OPS, ops.min),
    row('amomax' + sfx, 'A', AMO, a(0x14), R_OPS, ops.max),
    row('amominu' + sfx, 'A', AMO, a(0x18), R_OPS, ops.minu),
    row('amomaxu' + sfx, 'A', AMO, a(0x1c), R_OPS, ops.maxu),
  ];
}

const fpMem: Row[] = [
  row('flw', 'F', F3, f3(0x07, 2), I_OPS, S.floadW),
  row('fld', 'D', F3, f3(0x07, 3), I_OPS, S.floadD),
  row('fsw', 'F', F3, f3(0x27, 2), S_OPS, S.fstore(4)),
  row('fsd', 'D', F3, f3(0x27, 3), S_OPS, S.fstore(8)),
];

export const RV64_INSNS: readonly Row[] = [...base, ...priv, ...csr, ...mul, ...atomics(4), ...atomics(8), ...fpMem];
