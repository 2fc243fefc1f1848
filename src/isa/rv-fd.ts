/**
 * RV64F and RV64D computational instructions (unpriv spec, "F" and "D" chapters; encodings from
 * "RV32/64G Instruction Set Listings"). Loads and stores (flw/fld/fsw/fsd) live in rv64.ts and rvc.ts.
 *
 * Rows run on the 'fp' host unit (cpu/fpu/execute.ts), which decodes registers and the rm field
 * from the instruction word itself; the common double-precision ones are emitted as WebAssembly with
 * that unit as their fallback (fp-inline.ts). Where an instruction has an rm field (bits 14:12) the mask leaves it
 * out: static modes 101/110 and a dynamic mode with an invalid frm are rejected at execution time. Where
 * funct3 is a fixed opcode extension (sign injection, min/max, compares, moves, classify) it is in the mask.
 */
import { Op } from '../wasm/opcodes.js';
import { RD, RS1, RS2, RS3 } from './fields.js';
import { arithD, compareD, moveDX, moveXD, signInjectD } from './fp-inline.js';
import type { Sem } from './semantics.js';
import type { Ext, HostSemantics, InsnDef, Operands } from './types.js';

/**
 * Operation numbers of the 'fp' host unit, one per instruction. The ones that read the rm field come
 * first (below FP_RM_LIMIT), so the executor can check the rounding mode with one comparison.
 */
export const FpOp = {
  FMADD_S: 0, FMSUB_S: 1, FNMSUB_S: 2, FNMADD_S: 3,
  FADD_S: 4, FSUB_S: 5, FMUL_S: 6, FDIV_S: 7, FSQRT_S: 8,
  FCVT_W_S: 9, FCVT_WU_S: 10, FCVT_L_S: 11, FCVT_LU_S: 12,
  FCVT_S_W: 13, FCVT_S_WU: 14, FCVT_S_L: 15, FCVT_S_LU: 16,
  FMADD_D: 17, FMSUB_D: 18, FNMSUB_D: 19, FNMADD_D: 20,
  FADD_D: 21, FSUB_D: 22, FMUL_D: 23, FDIV_D: 24, FSQRT_D: 25,
  FCVT_W_D: 26, FCVT_WU_D: 27, FCVT_L_D: 28, FCVT_LU_D: 29,
  FCVT_D_W: 30, FCVT_D_WU: 31, FCVT_D_L: 32, FCVT_D_LU: 33,
  FCVT_S_D: 34, FCVT_D_S: 35,
  // No rm field from here on.
  FSGNJ_S: 36, FSGNJN_S: 37, FSGNJX_S: 38, FMIN_S: 39, FMAX_S: 40,
  FEQ_S: 41, FLT_S: 42, FLE_S: 43, FCLASS_S: 44, FMV_X_W: 45, FMV_W_X: 46,
  FSGNJ_D: 47, FSGNJN_D: 48, FSGNJX_D: 49, FMIN_D: 50, FMAX_D: 51,
  FEQ_D: 52, FLT_D: 53, FLE_D: 54, FCLASS_D: 55, FMV_X_D: 56, FMV_D_X: 57,
} as const;
export type FpOp = (typeof FpOp)[keyof typeof FpOp];

/** Ops numbered below this read the rm field (and may be illegal because of it). */
export const FP_RM_LIMIT = 36;
/** One more than the largest FpOp. */
export const FP_OP_COUNT = 58;

const OP_FP = 0x53;
const R4_MASK = 0x0600_007f;      // opcode + fmt (bits 26:25); rs1/rs2/rs3/rm/rd free
const RM_MASK = 0xfe00_007f;      // funct7 + opcode; rm free
const RM_RS2_MASK = 0xfff0_007f;  // funct7 + rs2 field (a sub-opcode) + opcode; rm free
const F3_MASK = 0xfe00_707f;      // funct7 + funct3 + opcode
const F3_RS2_MASK = 0xfff0_707f;  // funct7 + rs2 + funct3 + opcode

const R4: Operands = { rd: RD, rs1: RS1, rs2: RS2, rs3: RS3 };
const R3: Operands = { rd: RD, rs1: RS1, rs2: RS2 };
const R2: Operands = { rd: RD, rs1: RS1 };

/** `fp`: the host unit's operation, the reference semantics (and the fallback of inline rows). */
export type FdRow = InsnDef<Sem> & { readonly fp: HostSemantics };

const host = (op: number): HostSemantics => ({ kind: 'host', unit: 'fp', op });
/** A row on the host unit, or emitted by `inline` (given the host semantics as its fallback) for D. */
const row = (name: string, ext: Ext, mask: number, match: number, operands: Operands, op: number,
  inline?: (fallback: HostSemantics) => Sem): FdRow =>
  ({ name, ext, len: 4, mask: mask | 0, match: match | 0, operands, fp: host(op), sem: inline && ext === 'D' ? inline(host(op)) : host(op) });

const fn7 = (funct7: number): number => (funct7 << 25) | OP_FP;
const fn7rs2 = (funct7: number, rs2: number): number => (funct7 << 25) | (rs2 << 20) | OP_FP;
const fn7f3 = (funct7: number, funct3: number): number => (funct7 << 25) | (funct3 << 12) | OP_FP;
const fn7rs2f3 = (funct7: number, rs2: number, funct3: number): number =>
  (funct7 << 25) | (rs2 << 20) | (funct3 << 12) | OP_FP;

/** Rows for one format: fmt 0 = S, 1 = D (the fmt field is bits 26:25, the low bits of funct7). */
function format(fmt: 0 | 1): FdRow[] {
  const s = fmt ? 'd' : 's';
  const ext: Ext = fmt ? 'D' : 'F';
  const o = fmt ? FpOp.FMADD_D : FpOp.FMADD_S; // FMADD..FCVT_*_LU are consecutive per format
  const nr = fmt ? FpOp.FSGNJ_D : FpOp.FSGNJ_S;  // the no-rm group, in the order below
  const f = (funct7: number): number => funct7 | fmt; // funct7 low bits hold fmt
  return [
    row(`fmadd.${s}`, ext, R4_MASK, 0x43 | (fmt << 25), R4, o + 0),
    row(`fmsub.${s}`, ext, R4_MASK, 0x47 | (fmt << 25), R4, o + 1),
    row(`fnmsub.${s}`, ext, R4_MASK, 0x4b | (fmt << 25), R4, o + 2),
    row(`fnmadd.${s}`, ext, R4_MASK, 0x4f | (fmt << 25), R4, o + 3),
    row(`fadd.${s}`, ext, RM_MASK, fn7(f(0x00)), R3, o + 4, h => arithD(Op.F64Add, h)),
    row(`fsub.${s}`, ext, RM_MASK, fn7(f(0x04)), R3, o + 5, h => arithD(Op.F64Sub, h)),
    row(`fmul.${s}`, ext, RM_MASK, fn7(f(0x08)), R3, o + 6, h => arithD(Op.F64Mul, h)),
    row(`fdiv.${s}`, ext, RM_MASK, fn7(f(0x0c)), R3, o + 7, h => arithD(Op.F64Div, h)),
    row(`fsqrt.${s}`, ext, RM_RS2_MASK, fn7rs2(f(0x2c), 0), R2, o + 8, h => arithD(Op.F64Sqrt, h)),
    row(`fcvt.w.${s}`, ext, RM_RS2_MASK, fn7rs2(f(0x60), 0), R2, o + 9),
    row(`fcvt.wu.${s}`, ext, RM_RS2_MASK, fn7rs2(f(0x60), 1), R2, o + 10),
    row(`fcvt.l.${s}`, ext, RM_RS2_MASK, fn7rs2(f(0x60), 2), R2, o + 11),
    row(`fcvt.lu.${s}`, ext, RM_RS2_MASK, fn7rs2(f(0x60), 3), R2, o + 12),
    row(`fcvt.${s}.w`, ext, RM_RS2_MASK, fn7rs2(f(0x68), 0), R2, o + 13),
    row(`fcvt.${s}.wu`, ext, RM_RS2_MASK, fn7rs2(f(0x68), 1), R2, o + 14),
    row(`fcvt.${s}.l`, ext, RM_RS2_MASK, fn7rs2(f(0x68), 2), R2, o + 15),
    row(`fcvt.${s}.lu`, ext, RM_RS2_MASK, fn7rs2(f(0x68), 3), R2, o + 16),
    row(`fsgnj.${s}`, ext, F3_MASK, fn7f3(f(0x10), 0), R3, nr + 0, () => signInjectD(0)),
    row(`fsgnjn.${s}`, ext, F3_MASK, fn7f3(f(0x10), 1), R3, nr + 1, () => signInjectD(1)),
    row(`fsgnjx.${s}`, ext, F3_MASK, fn7f3(f(0x10), 2), R3, nr + 2, () => signInjectD(2)),
    row(`fmin.${s}`, ext, F3_MASK, fn7f3(f(0x14), 0), R3, nr + 3),
    row(`fmax.${s}`, ext, F3_MASK, fn7f3(f(0x14), 1), R3, nr + 4),
    row(`feq.${s}`, ext, F3_MASK, fn7f3(f(0x50), 2), R3, nr + 5, h => compareD(Op.F64Eq, h)),
    row(`flt.${s}`, ext, F3_MASK, fn7f3(f(0x50), 1), R3, nr + 6, h => compareD(Op.F64Lt, h)),
    row(`fle.${s}`, ext, F3_MASK, fn7f3(f(0x50), 0), R3, nr + 7, h => compareD(Op.F64Le, h)),
    row(`fclass.${s}`, ext, F3_RS2_MASK, fn7rs2f3(f(0x70), 0, 1), R2, nr + 8),
    row(fmt ? 'fmv.x.d' : 'fmv.x.w', ext, F3_RS2_MASK, fn7rs2f3(f(0x70), 0, 0), R2, nr + 9, () => moveXD),
    row(fmt ? 'fmv.d.x' : 'fmv.w.x', ext, F3_RS2_MASK, fn7rs2f3(f(0x78), 0, 0), R2, nr + 10, () => moveDX),
  ];
}

export const FD_INSNS: FdRow[] = [
  ...format(0),
  ...format(1),
  row('fcvt.s.d', 'D', RM_RS2_MASK, fn7rs2(0x20, 1), R2, FpOp.FCVT_S_D),
  row('fcvt.d.s', 'D', RM_RS2_MASK, fn7rs2(0x21, 0), R2, FpOp.FCVT_D_S),
];
