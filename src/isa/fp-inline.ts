/**
 * Double-precision instructions emitted as WebAssembly instead of calls to the TypeScript FP unit,
 * where WebAssembly's own IEEE 754 arithmetic gives the bit-exact RISC-V result:
 *
 * - moves and sign injection: pure bit operations, no flags;
 * - compares of two non-NaN operands: no flags;
 * - add, sub, mul, div, sqrt when the result cannot raise a flag that is not already set — QEMU's
 *   "hardfloat" condition: the rounding mode is round-to-nearest-even (WebAssembly's only mode),
 *   fflags.NX is already set (so inexactness need not be detected), the operands are zero or
 *   normal and the result is normal (so no overflow, underflow, invalid or divide-by-zero).
 *   Tininess is detected after rounding on RISC-V, so a normal rounded result never underflows.
 *
 * Everything else (the first inexact result, NaNs, subnormals, infinities, other rounding modes,
 * FS = Off) takes the host path, which stays the reference.
 */
import { Op } from '../wasm/opcodes.js';
import type { Emit } from './emit.js';
import type { HostSemantics } from './types.js';
import { H } from '../cpu/layout.js';
import type { Sem } from './semantics.js';

const FCSR = H.CSR + 0x003 * 8;
const SIGN = -0x8000_0000_0000_0000n;

/** Pushes i32 1 when the f64 bits in local `t` are a normal number. */
function isNormal(e: Emit, t: string): void {
  e.b.get(t).i64(52).op(Op.I64ShrU).i64(0x7ff).op(Op.I64And).i64(1).op(Op.I64Sub).i64(0x7fe).op(Op.I64LtU);
}

/** Pushes i32 1 when the f64 bits in local `t` are zero (either sign) or normal. */
function isZeroOrNormal(e: Emit, t: string): void {
  isNormal(e, t);
  e.b.get(t).i64(1).op(Op.I64Shl).op(Op.I64Eqz).op(Op.I32Or);
}

/** Pushes i32 1 when the f64 bits in local `t` are a NaN. */
function isNaN(e: Emit, t: string): void {
  e.b.get(t).i64(1).op(Op.I64Shl).i64(-0x20_0000_0000_0000n).op(Op.I64GtU);
}

/** Pushes i32 1 when the FP unit is on, the instruction's rounding mode is RNE and fflags.NX is set. */
function hardfloatState(e: Emit, rm: string): void {
  const b = e.b;
  e.word(); b.i64(12).op(Op.I64ShrU).i64(7).op(Op.I64And).set(rm);
  // Effective mode: the rm field, or frm when the field says dynamic (7).
  e.hart(); b.mem(Op.I64Load, FCSR).i64(5).op(Op.I64ShrU).i64(7).op(Op.I64And);
  b.get(rm);
  b.get(rm).i64(7).op(Op.I64Eq);
  b.op(Op.Select).op(Op.I64Eqz);
  e.hart(); b.mem(Op.I64Load, FCSR).op(Op.I32WrapI64).i32(1).op(Op.I32And).op(Op.I32And);
  e.hart(); b.mem(Op.I32Load, H.FS_ON).op(Op.I32Eqz).op(Op.I32Eqz).op(Op.I32And);
}

/** fadd.d, fsub.d, fmul.d, fdiv.d (binary) and fsqrt.d (unary) with the host unit as fallback. */
export const arithD = (op: Op.F64Add | Op.F64Sub | Op.F64Mul | Op.F64Div | Op.F64Sqrt, fallback: HostSemantics): Sem => e => {
  const b = e.b;
  const [a, c, r] = e.t64;
  const [ok] = e.t32;
  const unary = op === Op.F64Sqrt;
  hardfloatState(e, r);
  b.set(ok);
  b.get(ok).if();
  e.f('rs1'); b.set(a);
  isZeroOrNormal(e, a);
  if (!unary) { e.f('rs2'); b.set(c); isZeroOrNormal(e, c); b.op(Op.I32And); }
  b.set(ok);
  b.get(ok).if();
  b.get(a).op(Op.F64ReinterpretI64);
  if (!unary) b.get(c).op(Op.F64ReinterpretI64);
  b.op(op, Op.I64ReinterpretF64).set(r);
  isNormal(e, r);
  b.set(ok);
  b.end();
  b.end();
  b.get(ok).if();
  e.setF('rd', () => b.get(r));
  b.else();
  e.host(fallback);
  b.end();
};

/** feq.d, flt.d, fle.d: inline unless an operand is a NaN (then the host raises the flags). */
export const compareD = (op: Op.F64Eq | Op.F64Lt | Op.F64Le, fallback: HostSemantics): Sem => e => {
  const b = e.b;
  const [a, c] = e.t64;
  e.requireFp();
  e.f('rs1'); b.set(a);
  e.f('rs2'); b.set(c);
  isNaN(e, a); isNaN(e, c); b.op(Op.I32Or);
  b.if();
  e.host(fallback);
  b.else();
  e.setX('rd', () => { b.get(a).op(Op.F64ReinterpretI64).get(c).op(Op.F64ReinterpretI64).op(op, Op.I64ExtendI32U); });
  b.end();
};

/** fsgnj.d (0), fsgnjn.d (1), fsgnjx.d (2): the sign from rs2, its inverse, or the XOR of both. */
export const signInjectD = (kind: 0 | 1 | 2): Sem => e => {
  const b = e.b;
  e.requireFp();
  e.setF('rd', () => {
    if (kind === 2) {
      e.f('rs1'); e.f('rs2'); b.i64(SIGN).op(Op.I64And).op(Op.I64Xor);
      return;
    }
    e.f('rs1'); b.i64(~SIGN).op(Op.I64And);
    e.f('rs2'); if (kind === 1) b.i64(-1).op(Op.I64Xor);
    b.i64(SIGN).op(Op.I64And).op(Op.I64Or);
  });
};

/** fmv.x.d: the raw bits of f[rs1] to x[rd] (FP state unchanged). */
export const moveXD: Sem = e => { e.requireFp(); e.setX('rd', () => e.f('rs1')); };

/** fmv.d.x: the raw bits of x[rs1] to f[rd]. */
export const moveDX: Sem = e => { e.requireFp(); e.setF('rd', () => e.x('rs1')); };
