/**
 * Semantics of the bit-manipulation extensions Zba, Zbb, Zbs and of Zicond, as WebAssembly emission
 * (see emit.ts). Most are one or two wasm operators: wasm has clz, ctz, popcnt and rotates, and its
 * shifts take the amount modulo the width as RISC-V does.
 */
import { Op } from '../wasm/opcodes.js';
import type { Emit } from './emit.js';
import type { Sem } from './semantics.js';

const BYTES_LOW7 = 0x7f7f_7f7f_7f7f_7f7fn;
const BYTES_HIGH = -0x7f7f_7f7f_7f7f_7f80n; // 0x8080_8080_8080_8080
const BYTES_EVEN = 0x00ff_00ff_00ff_00ffn;
const HALVES_EVEN = 0x0000_ffff_0000_ffffn;

const zext32 = (e: Emit): void => { e.b.op(Op.I32WrapI64, Op.I64ExtendI32U); };

/** Zba: rd = rs2 + (rs1 << shift), rs1 zero-extended from 32 bits for the .uw forms (add.uw is shift 0). */
export const shiftAdd = (shift: number, uw: boolean): Sem => e => e.setX('rd', () => {
  e.x('rs1'); if (uw) zext32(e);
  if (shift) e.b.i64(shift).op(Op.I64Shl);
  e.x('rs2'); e.b.op(Op.I64Add);
});
export const slliUw: Sem = e => e.setX('rd', () => { e.x('rs1'); zext32(e); e.imm(); e.b.op(Op.I64Shl); });

/** andn, orn, xnor: rs1 op ~rs2. */
export const withInverted = (op: Op): Sem => e => e.setX('rd', () => { e.x('rs1'); e.x('rs2'); e.b.i64(-1).op(Op.I64Xor, op); });

/** One-operand instructions that are wasm operators on rs1 (clz, ctz, cpop, sext.b, sext.h). */
export const unary = (op: Op): Sem => e => e.setX('rd', () => { e.x('rs1'); e.b.op(op); });
/** clzw, ctzw, cpopw: on the low word; the count is at most 32, so zero-extending it is the result. */
export const unaryW = (op: Op): Sem => e => e.setX('rd', () => { e.x('rs1'); e.b.op(Op.I32WrapI64, op, Op.I64ExtendI32U); });
export const zextH: Sem = e => e.setX('rd', () => { e.x('rs1'); e.b.i64(0xffff).op(Op.I64And); });

/** min, max, minu, maxu: rs1 where `cmp(rs1, rs2)` holds, else rs2. */
export const pick = (cmp: Op): Sem => e => {
  const [a, b] = e.t64;
  e.x('rs1'); e.b.set(a); e.x('rs2'); e.b.set(b);
  e.setX('rd', () => e.b.get(a).get(b).get(a).get(b).op(cmp, Op.Select));
};

/** Each byte becomes 0xff if it is non-zero, else 0. */
export const orcB: Sem = e => e.setX('rd', () => {
  const [t] = e.t64;
  // Bit 7 of each byte of (x & 0x7f..) + 0x7f.. | x is set iff the byte is non-zero; no carry leaves a byte.
  e.x('rs1'); e.b.tee(t).i64(BYTES_LOW7).op(Op.I64And).i64(BYTES_LOW7).op(Op.I64Add).get(t).op(Op.I64Or);
  // Spread each such bit over its byte: 0x01 * 0xff per byte, again without carries.
  e.b.i64(BYTES_HIGH).op(Op.I64And).i64(7).op(Op.I64ShrU).i64(0xff).op(Op.I64Mul);
});

/** Byte reverse: swap bytes within halfwords, halfwords within words, then the words (wasm has no bswap). */
export const rev8: Sem = e => e.setX('rd', () => {
  const [t] = e.t64;
  const swap = (shift: number, evenMask: bigint): void => {
    e.b.tee(t).i64(shift).op(Op.I64ShrU).i64(evenMask).op(Op.I64And);
    e.b.get(t).i64(evenMask).op(Op.I64And).i64(shift).op(Op.I64Shl).op(Op.I64Or);
  };
  e.x('rs1'); swap(8, BYTES_EVEN); swap(16, HALVES_EVEN); e.b.i64(32).op(Op.I64Rotl);
});

export const enum BitOp { Clear, Extract, Invert, Set }
/** Zbs: one bit of rs1, indexed by rs2 or the immediate (wasm's i64.shl takes it modulo 64, as the spec does). */
export const singleBit = (kind: BitOp, withImm: boolean): Sem => e => e.setX('rd', () => {
  const index = (): void => { if (withImm) e.imm(); else e.x('rs2'); };
  if (kind === BitOp.Extract) { e.x('rs1'); index(); e.b.op(Op.I64ShrU).i64(1).op(Op.I64And); return; }
  e.x('rs1'); e.b.i64(1); index(); e.b.op(Op.I64Shl);
  if (kind === BitOp.Clear) e.b.i64(-1).op(Op.I64Xor, Op.I64And);
  else e.b.op(kind === BitOp.Invert ? Op.I64Xor : Op.I64Or);
});

/** Zicond: rd = 0 if rs2 is zero (czero.eqz) or non-zero (czero.nez), else rs1. */
export const czero = (whenNonZero: boolean): Sem => e => e.setX('rd', () => {
  // select(a, b, c) is a when c != 0; c = (rs2 == 0).
  if (whenNonZero) { e.x('rs1'); e.b.i64(0); } else { e.b.i64(0); e.x('rs1'); }
  e.x('rs2'); e.b.op(Op.I64Eqz, Op.Select);
});
