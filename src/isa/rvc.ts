/**
 * RV64C: each compressed instruction is a row of its own encoding whose semantics are those of the
 * base instruction it expands to (unpriv spec, "C" chapter, RVC opcode map).
 */
import { Op } from '../wasm/opcodes.js';
import { LoadKind } from './emit.js';
import type { Operands } from './types.js';
import {
  C_ADDI16SP, C_ADDI4SPN, C_B, C_IMM6, C_J, C_LD, C_LDSP, C_LUI, C_LW, C_LWSP, C_RD, C_RDP, C_RS1P, C_RS2,
  C_RS2P, C_SDSP, C_SWSP, C_UIMM6, ZERO_IMM, reg,
} from './fields.js';
import * as S from './semantics.js';
import { SysOp, type Row } from './rv64.js';

const c = (name: string, mask: number, match: number, operands: Operands, sem: Row['sem']): Row =>
  ({ name, ext: 'C', len: 2, mask, match, operands, sem });

const Q = 0xe003; // quadrant + funct3
const SP = reg(2), X0 = reg(0), RA = reg(1);

export const RVC_INSNS: readonly Row[] = [
  // An all-zero halfword is defined to be illegal; the reserved encodings (RVC opcode map: a zero
  // immediate where it must not be, x0 as a load or jump register) trap as illegal too. They are
  // more specific than the instructions they would otherwise decode as, so decoders try them first.
  c('c.illegal', 0xffff, 0x0000, {}, S.illegal),
  c('c.addi4spn.zero', 0xffe3, 0x0000, {}, S.illegal),
  c('c.lui.zero', 0xf07f, 0x6001, {}, S.illegal), // also c.addi16sp with a zero immediate
  c('c.lwsp.x0', 0xef83, 0x4002, {}, S.illegal),
  c('c.ldsp.x0', 0xef83, 0x6002, {}, S.illegal),
  c('c.jr.x0', 0xffff, 0x8002, {}, S.illegal),
  c('c.reserved.q1', 0xfc43, 0x9c41, {}, S.illegal), // funct6 100111, funct2 10 and 11
  // Quadrant 0
  c('c.addi4spn', Q, 0x0000, { rd: C_RDP, rs1: SP, imm: C_ADDI4SPN }, S.ri(Op.I64Add)),
  c('c.fld', Q, 0x2000, { rd: C_RDP, rs1: C_RS1P, imm: C_LD }, S.floadD),
  c('c.lw', Q, 0x4000, { rd: C_RDP, rs1: C_RS1P, imm: C_LW }, S.load(LoadKind.W)),
  c('c.ld', Q, 0x6000, { rd: C_RDP, rs1: C_RS1P, imm: C_LD }, S.load(LoadKind.D)),
  c('c.fsd', Q, 0xa000, { rs1: C_RS1P, rs2: C_RS2P, imm: C_LD }, S.fstore(8)),
  c('c.sw', Q, 0xc000, { rs1: C_RS1P, rs2: C_RS2P, imm: C_LW }, S.store(4)),
  c('c.sd', Q, 0xe000, { rs1: C_RS1P, rs2: C_RS2P, imm: C_LD }, S.store(8)),
  // Quadrant 1
  c('c.addi', Q, 0x0001, { rd: C_RD, rs1: C_RD, imm: C_IMM6 }, S.ri(Op.I64Add)),
  c('c.addiw', Q, 0x2001, { rd: C_RD, rs1: C_RD, imm: C_IMM6 }, S.riw(Op.I32Add)),
  c('c.li', Q, 0x4001, { rd: C_RD, rs1: X0, imm: C_IMM6 }, S.ri(Op.I64Add)),
  c('c.addi16sp', 0xef83, 0x6101, { rd: SP, rs1: SP, imm: C_ADDI16SP }, S.ri(Op.I64Add)),
  c('c.lui', Q, 0x6001, { rd: C_RD, imm: C_LUI }, S.lui),
  c('c.srli', 0xec03, 0x8001, { rd: C_RS1P, rs1: C_RS1P, imm: C_UIMM6 }, S.ri(Op.I64ShrU)),
  c('c.srai', 0xec03, 0x8401, { rd: C_RS1P, rs1: C_RS1P, imm: C_UIMM6 }, S.ri(Op.I64ShrS)),
  c('c.andi', 0xec03, 0x8801, { rd: C_RS1P, rs1: C_RS1P, imm: C_IMM6 }, S.ri(Op.I64And)),
  c('c.sub', 0xfc63, 0x8c01, { rd: C_RS1P, rs1: C_RS1P, rs2: C_RS2P }, S.rr(Op.I64Sub)),
  c('c.xor', 0xfc63, 0x8c21, { rd: C_RS1P, rs1: C_RS1P, rs2: C_RS2P }, S.rr(Op.I64Xor)),
  c('c.or', 0xfc63, 0x8c41, { rd: C_RS1P, rs1: C_RS1P, rs2: C_RS2P }, S.rr(Op.I64Or)),
  c('c.and', 0xfc63, 0x8c61, { rd: C_RS1P, rs1: C_RS1P, rs2: C_RS2P }, S.rr(Op.I64And)),
  c('c.subw', 0xfc63, 0x9c01, { rd: C_RS1P, rs1: C_RS1P, rs2: C_RS2P }, S.rrw(Op.I32Sub)),
  c('c.addw', 0xfc63, 0x9c21, { rd: C_RS1P, rs1: C_RS1P, rs2: C_RS2P }, S.rrw(Op.I32Add)),
  c('c.j', Q, 0xa001, { rd: X0, imm: C_J }, S.jal),
  c('c.beqz', Q, 0xc001, { rs1: C_RS1P, rs2: X0, imm: C_B }, S.branch(Op.I64Eq)),
  c('c.bnez', Q, 0xe001, { rs1: C_RS1P, rs2: X0, imm: C_B }, S.branch(Op.I64Ne)),
  // Quadrant 2
  c('c.slli', Q, 0x0002, { rd: C_RD, rs1: C_RD, imm: C_UIMM6 }, S.ri(Op.I64Shl)),
  c('c.fldsp', Q, 0x2002, { rd: C_RD, rs1: SP, imm: C_LDSP }, S.floadD),
  c('c.lwsp', Q, 0x4002, { rd: C_RD, rs1: SP, imm: C_LWSP }, S.load(LoadKind.W)),
  c('c.ldsp', Q, 0x6002, { rd: C_RD, rs1: SP, imm: C_LDSP }, S.load(LoadKind.D)),
  c('c.jr', 0xf07f, 0x8002, { rd: X0, rs1: C_RD, imm: ZERO_IMM }, S.jalr),
  c('c.mv', 0xf003, 0x8002, { rd: C_RD, rs1: X0, rs2: C_RS2 }, S.rr(Op.I64Add)),
  c('c.ebreak', 0xffff, 0x9002, {}, { kind: 'host', unit: 'system', op: SysOp.EBREAK }),
  c('c.jalr', 0xf07f, 0x9002, { rd: RA, rs1: C_RD, imm: ZERO_IMM }, S.jalr),
  c('c.add', 0xf003, 0x9002, { rd: C_RD, rs1: C_RD, rs2: C_RS2 }, S.rr(Op.I64Add)),
  c('c.fsdsp', Q, 0xa002, { rs1: SP, rs2: C_RS2, imm: C_SDSP }, S.fstore(8)),
  c('c.swsp', Q, 0xc002, { rs1: SP, rs2: C_RS2, imm: C_SWSP }, S.store(4)),
  c('c.sdsp', Q, 0xe002, { rs1: SP, rs2: C_RS2, imm: C_SDSP }, S.store(8)),
];
