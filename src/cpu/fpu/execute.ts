/**
 * The 'fp' host unit: executes one RV64F/D computational instruction (isa/rv-fd.ts) on the hart state
 * in the shared memory (cpu/layout.ts). Operands come from the f and x registers, results go back
 * there, flags accrue into fcsr, and mstatus.FS becomes Dirty whenever f registers or fcsr change.
 *
 * Binary32 operands must be NaN-boxed (upper 32 bits all ones); otherwise they read as the canonical
 * NaN (unpriv spec, "NaN Boxing of Narrower Values"). Transfers (fmv.x.w) take the low bits as they are.
 */
import { FP_RM_LIMIT, FpOp } from '../../isa/rv-fd.js';
import { H } from '../layout.js';
import { CANON_NAN32, CANON_NAN64_HI, Flag, ctx } from './bits.js';
import { IntKind, add, cvtToInt, div, fma, intHi, intLo, intToFloat, mul, narrow, sqrt } from './arith.js';

/** Views over the one WebAssembly.Memory buffer; index with byte offset >> 2 (32-bit) or >> 3 (64-bit). */
export interface FpState {
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
  u8: Uint8Array;
}

const FCSR = H.CSR + 0x003 * 8;
const MSTATUS = H.CSR + 0x300 * 8;
const MSTATUS_FS_DIRTY = 3 << 13;
const MSTATUS_SD_HI = 0x8000_0000 | 0; // bit 63, in the high word

let S: FpState;
let fw = 0; // u32 index of f0's low word
let xw = 0; // u32 index of x0's low word

// ---- Operand access --------------------------------------------------------------------------

/** Binary32 value of f[r] (NaN if not NaN-boxed or NaN); NV for a signalling NaN. */
function rs(r: number): number {
  const i = fw + 2 * r;
  if (S.u32[i + 1] !== 0xffff_ffff) return NaN;
  const v = S.f32[i]!;
  if (v !== v && (S.u32[i]! & 0x0040_0000) === 0) ctx.flags |= Flag.NV;
  return v;
}

/** Binary64 value of f[r]; NV for a signalling NaN. */
function rd64(r: number): number {
  const v = S.f64[(fw >> 1) + r]!;
  if (v !== v && (S.u32[fw + 2 * r + 1]! & 0x0008_0000) === 0) ctx.flags |= Flag.NV;
  return v;
}

/** Bits of f[r] as a binary32 operand: the canonical NaN when not NaN-boxed. */
function bitsS(r: number): number {
  const i = fw + 2 * r;
  return S.u32[i + 1] === 0xffff_ffff ? S.u32[i]! : CANON_NAN32;
}

function writeS(r: number, v: number): void {
  const i = fw + 2 * r;
  if (v !== v) S.u32[i] = CANON_NAN32; else S.f32[i] = v;
  S.u32[i + 1] = 0xffff_ffff;
  dirty();
}

function writeD(r: number, v: number): void {
  if (v !== v) { const i = fw + 2 * r; S.u32[i] = 0; S.u32[i + 1] = CANON_NAN64_HI; } else S.f64[(fw >> 1) + r] = v;
  dirty();
}

function writeBitsS(r: number, bits: number): void {
  const i = fw + 2 * r;
  S.u32[i] = bits; S.u32[i + 1] = 0xffff_ffff;
  dirty();
}

function writeBitsD(r: number, lo: number, hi: number): void {
  const i = fw + 2 * r;
  S.u32[i] = lo; S.u32[i + 1] = hi;
  dirty();
}

function writeX(r: number, lo: number, hi: number): void {
  if (r === 0) return;
  const i = xw + 2 * r;
  S.i32[i] = lo; S.i32[i + 1] = hi;
}

let hbase = 0;
function dirty(): void {
  const i = (hbase + MSTATUS) >> 2;
  S.i32[i] |= MSTATUS_FS_DIRTY;
  S.i32[i + 1] |= MSTATUS_SD_HI;
}

// ---- Bit-level operations ---------------------------------------------------------------------

const isNaN32 = (b: number): boolean => (b & 0x7fff_ffff) > 0x7f80_0000;
const isSNaN32 = (b: number): boolean => isNaN32(b) && (b & 0x0040_0000) === 0;
const isNaN64 = (hi: number, lo: number): boolean => (hi & 0x7fff_ffff) > 0x7ff0_0000 || ((hi & 0x7fff_ffff) === 0x7ff0_0000 && lo !== 0);
const isSNaN64 = (hi: number, lo: number): boolean => isNaN64(hi, lo) && (hi & 0x0008_0000) === 0;

const cf32 = new Float32Array(1), cu32 = new Uint32Array(cf32.buffer);
const f32Of = (b: number): number => { cu32[0] = b; return cf32[0]!; };

/** fclass mask from sign, biased exponent (all ones = max), whether the fraction is zero, and its MSB. */
function classify(sign: number, exp: number, maxExp: number, fracZero: boolean, quiet: boolean): number {
  if (exp === maxExp) return fracZero ? (sign ? 1 << 0 : 1 << 7) : quiet ? 1 << 9 : 1 << 8;
  if (exp === 0) return fracZero ? (sign ? 1 << 3 : 1 << 4) : sign ? 1 << 2 : 1 << 5;
  return sign ? 1 << 1 : 1 << 6;
}

/** fmin/fmax (minimumNumber/maximumNumber, -0 < +0) for binary32; returns the result bits. */
function minMaxS(a: number, b: number, max: boolean): number {
  if (isSNaN32(a) || isSNaN32(b)) ctx.flags |= Flag.NV;
  const na = isNaN32(a), nb = isNaN32(b);
  if (na) return nb ? CANON_NAN32 : b;
  if (nb) return a;
  const va = f32Of(a), vb = f32Of(b);
  if (va === vb) return (max ? (a & b) : (a | b)) >>> 0; // differ only for ±0: pick by sign bit
  return (va < vb) !== max ? a : b;
}

let mmLo = 0, mmHi = 0;
/** fmin/fmax for binary64; result words in mmLo/mmHi. */
function minMaxD(r1: number, r2: number, max: boolean): void {
  const i1 = fw + 2 * r1, i2 = fw + 2 * r2;
  const al = S.u32[i1]!, ah = S.u32[i1 + 1]!, bl = S.u32[i2]!, bh = S.u32[i2 + 1]!;
  if (isSNaN64(ah, al) || isSNaN64(bh, bl)) ctx.flags |= Flag.NV;
  const na = isNaN64(ah, al), nb = isNaN64(bh, bl);
  let pickA: boolean;
  if (na && nb) { mmLo = 0; mmHi = CANON_NAN64_HI; return; }
  if (na) pickA = false;
  else if (nb) pickA = true;
  else {
    const va = S.f64[(fw >> 1) + r1]!, vb = S.f64[(fw >> 1) + r2]!;
    pickA = va === vb ? ((ah >>> 31) === 1) !== max : (va < vb) !== max;
  }
  if (pickA) { mmLo = al; mmHi = ah; } else { mmLo = bl; mmHi = bh; }
}

// ---- The executor ---------------------------------------------------------------------------

/**
 * Executes FP operation `op` (an FpOp) of instruction word `insn` for the hart whose state starts at
 * byte `hb`. Returns 0 when done, 1 when the instruction is illegal (a reserved rounding mode, or the
 * dynamic mode with frm holding a reserved value); an illegal instruction changes no state.
 */
export function fpExecute(s: FpState, hb: number, op: number, insn: number): number {
  if (op < FP_RM_LIMIT) {
    let rm = (insn >>> 12) & 7;
    if (rm === 7) rm = (s.i32[(hb + FCSR) >> 2]! >>> 5) & 7;
    if (rm > 4) return 1;
    ctx.rm = rm;
  }
  S = s; hbase = hb;
  fw = (hb + H.F) >> 2; xw = (hb + H.X) >> 2;
  ctx.flags = 0;
  const rd = (insn >>> 7) & 31, r1 = (insn >>> 15) & 31, r2 = (insn >>> 20) & 31, r3 = insn >>> 27;
  let a: number, b: number, c: number;

  switch (op) {
    // ---- binary32 arithmetic ----
    case FpOp.FMADD_S: case FpOp.FMSUB_S: case FpOp.FNMSUB_S: case FpOp.FNMADD_S:
      a = rs(r1); b = rs(r2); c = rs(r3);
      writeS(rd, fmaOp(op - FpOp.FMADD_S, a, b, c, false));
      break;
    case FpOp.FADD_S: a = rs(r1); b = rs(r2); writeS(rd, a !== a || b !== b ? NaN : add(a, b, false)); break;
    case FpOp.FSUB_S: a = rs(r1); b = rs(r2); writeS(rd, a !== a || b !== b ? NaN : add(a, -b, false)); break;
    case FpOp.FMUL_S: a = rs(r1); b = rs(r2); writeS(rd, a !== a || b !== b ? NaN : mul(a, b, false)); break;
    case FpOp.FDIV_S: a = rs(r1); b = rs(r2); writeS(rd, a !== a || b !== b ? NaN : div(a, b, false)); break;
    case FpOp.FSQRT_S: a = rs(r1); writeS(rd, a !== a ? NaN : sqrt(a, false)); break;
    case FpOp.FCVT_W_S: case FpOp.FCVT_WU_S: case FpOp.FCVT_L_S: case FpOp.FCVT_LU_S:
      cvtToInt(rs(r1), (op - FpOp.FCVT_W_S) as IntKind);
      writeX(rd, intLo, intHi);
      break;
    case FpOp.FCVT_S_W: case FpOp.FCVT_S_WU: case FpOp.FCVT_S_L: case FpOp.FCVT_S_LU:
      writeS(rd, intToFloat(S.i32[xw + 2 * r1]!, S.i32[xw + 2 * r1 + 1]!, (op - FpOp.FCVT_S_W) as IntKind, false));
      break;

    // ---- binary64 arithmetic ----
    case FpOp.FMADD_D: case FpOp.FMSUB_D: case FpOp.FNMSUB_D: case FpOp.FNMADD_D:
      a = rd64(r1); b = rd64(r2); c = rd64(r3);
      writeD(rd, fmaOp(op - FpOp.FMADD_D, a, b, c, true));
      break;
    case FpOp.FADD_D: a = rd64(r1); b = rd64(r2); writeD(rd, a !== a || b !== b ? NaN : add(a, b, true)); break;
    case FpOp.FSUB_D: a = rd64(r1); b = rd64(r2); writeD(rd, a !== a || b !== b ? NaN : add(a, -b, true)); break;
    case FpOp.FMUL_D: a = rd64(r1); b = rd64(r2); writeD(rd, a !== a || b !== b ? NaN : mul(a, b, true)); break;
    case FpOp.FDIV_D: a = rd64(r1); b = rd64(r2); writeD(rd, a !== a || b !== b ? NaN : div(a, b, true)); break;
    case FpOp.FSQRT_D: a = rd64(r1); writeD(rd, a !== a ? NaN : sqrt(a, true)); break;
    case FpOp.FCVT_W_D: case FpOp.FCVT_WU_D: case FpOp.FCVT_L_D: case FpOp.FCVT_LU_D:
      cvtToInt(rd64(r1), (op - FpOp.FCVT_W_D) as IntKind);
      writeX(rd, intLo, intHi);
      break;
    case FpOp.FCVT_D_W: case FpOp.FCVT_D_WU: case FpOp.FCVT_D_L: case FpOp.FCVT_D_LU:
      writeD(rd, intToFloat(S.i32[xw + 2 * r1]!, S.i32[xw + 2 * r1 + 1]!, (op - FpOp.FCVT_D_W) as IntKind, true));
      break;
    case FpOp.FCVT_S_D: a = rd64(r1); writeS(rd, a !== a ? NaN : narrow(a)); break;
    case FpOp.FCVT_D_S: writeD(rd, rs(r1)); break; // exact; NaN becomes the canonical NaN

    // ---- binary32, no rounding ----
    case FpOp.FSGNJ_S: case FpOp.FSGNJN_S: case FpOp.FSGNJX_S: {
      const x = bitsS(r1), y = bitsS(r2);
      const sign = op === FpOp.FSGNJ_S ? y : op === FpOp.FSGNJN_S ? ~y : x ^ y;
      writeBitsS(rd, ((x & 0x7fff_ffff) | (sign & 0x8000_0000)) >>> 0);
      break;
    }
    case FpOp.FMIN_S: case FpOp.FMAX_S:
      writeBitsS(rd, minMaxS(bitsS(r1), bitsS(r2), op === FpOp.FMAX_S));
      break;
    case FpOp.FEQ_S: a = rs(r1); b = rs(r2); writeX(rd, a === b ? 1 : 0, 0); break;
    case FpOp.FLT_S: case FpOp.FLE_S:
      a = rs(r1); b = rs(r2);
      if (a !== a || b !== b) ctx.flags |= Flag.NV;
      writeX(rd, (op === FpOp.FLT_S ? a < b : a <= b) ? 1 : 0, 0);
      break;
    case FpOp.FCLASS_S: {
      const x = bitsS(r1);
      writeX(rd, classify(x >>> 31, (x >>> 23) & 0xff, 0xff, (x & 0x7f_ffff) === 0, (x & 0x40_0000) !== 0), 0);
      break;
    }
    case FpOp.FMV_X_W: { const x = S.i32[fw + 2 * r1]!; writeX(rd, x, x >> 31); break; }
    case FpOp.FMV_W_X: writeBitsS(rd, S.u32[xw + 2 * r1]!); break;

    // ---- binary64, no rounding ----
    case FpOp.FSGNJ_D: case FpOp.FSGNJN_D: case FpOp.FSGNJX_D: {
      const xh = S.u32[fw + 2 * r1 + 1]!, yh = S.u32[fw + 2 * r2 + 1]!;
      const sign = op === FpOp.FSGNJ_D ? yh : op === FpOp.FSGNJN_D ? ~yh : xh ^ yh;
      writeBitsD(rd, S.u32[fw + 2 * r1]!, (xh & 0x7fff_ffff) | (sign & 0x8000_0000));
      break;
    }
    case FpOp.FMIN_D: case FpOp.FMAX_D:
      minMaxD(r1, r2, op === FpOp.FMAX_D);
      writeBitsD(rd, mmLo, mmHi);
      break;
    case FpOp.FEQ_D: a = rd64(r1); b = rd64(r2); writeX(rd, a === b ? 1 : 0, 0); break;
    case FpOp.FLT_D: case FpOp.FLE_D:
      a = rd64(r1); b = rd64(r2);
      if (a !== a || b !== b) ctx.flags |= Flag.NV;
      writeX(rd, (op === FpOp.FLT_D ? a < b : a <= b) ? 1 : 0, 0);
      break;
    case FpOp.FCLASS_D: {
      const xh = S.u32[fw + 2 * r1 + 1]!, xl = S.u32[fw + 2 * r1]!;
      const fracZero = (xh & 0xf_ffff) === 0 && xl === 0;
      writeX(rd, classify(xh >>> 31, (xh >>> 20) & 0x7ff, 0x7ff, fracZero, (xh & 0x8_0000) !== 0), 0);
      break;
    }
    case FpOp.FMV_X_D: writeX(rd, S.i32[fw + 2 * r1]!, S.i32[fw + 2 * r1 + 1]!); break;
    case FpOp.FMV_D_X: writeBitsD(rd, S.u32[xw + 2 * r1]!, S.u32[xw + 2 * r1 + 1]!); break;
    default: return 1;
  }
  if (ctx.flags !== 0) {
    s.i32[(hb + FCSR) >> 2] |= ctx.flags;
    dirty();
  }
  return 0;
}

/**
 * The four fused multiply-adds (variant 0 fmadd, 1 fmsub, 2 fnmsub, 3 fnmadd): (±a*b) ± c.
 * NaN operands give the canonical NaN; ∞×0 raises NV even when c is a quiet NaN.
 */
function fmaOp(variant: number, a: number, b: number, c: number, dbl: boolean): number {
  if (a !== a || b !== b || c !== c) {
    if ((a === 0 && (b === Infinity || b === -Infinity)) || (b === 0 && (a === Infinity || a === -Infinity))) {
      ctx.flags |= Flag.NV;
    }
    return NaN;
  }
  if (variant >= 2) a = -a;            // fnmsub, fnmadd: negate the product
  if (variant === 1 || variant === 3) c = -c; // fmsub, fnmadd: subtract the addend
  return fma(a, b, c, dbl);
}
