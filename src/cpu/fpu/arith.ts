/**
 * IEEE 754 arithmetic as RISC-V specifies it, on values held in JS doubles (binary32 values are
 * exact in a double). Arguments are never NaN (the executor deals with NaN inputs first); a NaN
 * return means "invalid": the executor writes the canonical NaN. Flags accrue into ctx.flags.
 *
 * Technique: a JS double operation gives the round-to-nearest-even result h; an error-free transform
 * gives the exact error l (TwoSum, Dekker's TwoProduct) or its sign (the remainder of a quotient or a
 * root). Round-to-nearest double results with safe exponents are returned directly; everything else
 * (other modes, binary32 results, extreme exponents) goes through roundPack with the exact h + l.
 * Binary32 add/mul/div/sqrt in RNE may round the double result again: 53 >= 2*24 + 2 makes that
 * double rounding innocuous (Figueroa, "When is double rounding innocuous?", 1995).
 */
import {
  Flag, MAX32, MIN_NORMAL32, Rm, TWO32, ctx, mantExp, mantissa, pow2, signOf, twoProdErr, twoSumErr,
} from './bits.js';
import { fmaD } from './fma.js';
import { roundPack } from './round.js';

const TAIL = 1.3877787807814457e-17; // 2^-56: |h| * TAIL is below a quarter of h's smaller gap

/** Exact operands are safe for TwoProduct when inside (LO, HI) and their product inside (PLO, PHI). */
const LO = 1e-280, HI = 1e280, PLO = 1e-250, PHI = 1e250;

/**
 * Binary32 result for h (+ exact or stand-in l). The RNE fast path rounds h again, which is exact when
 * l = 0 and innocuous when h is the double result of +, -, *, / or sqrt of binary32 operands.
 */
function toSingle(h: number, l: number): number {
  const r = Math.fround(h);
  if (l === 0 && r === h) return h;
  const ar = r < 0 ? -r : r;
  if (ctx.rm === Rm.RNE && ar > MIN_NORMAL32 && ar <= MAX32) { ctx.flags |= Flag.NX; return r; }
  return roundPack(h, l, 0, false);
}

/** The sum of two zeros, or of x and -x (IEEE 754 §6.3). */
function zeroSum(a: number, b: number): number {
  if (a === 0 && b === 0 && signOf(a) === signOf(b)) return a;
  return ctx.rm === Rm.RDN ? -0 : 0;
}

export function add(a: number, b: number, dbl: boolean): number {
  const h = a + b;
  if (h - h !== 0) {
    if (h !== h) { ctx.flags |= Flag.NV; return NaN; } // inf - inf
    if (a - a !== 0 || b - b !== 0) return h;             // an infinite operand
    const a4 = a * 0.25, b4 = b * 0.25, h4 = a4 + b4;     // finite doubles overflowed: both are huge
    return roundPack(h4, twoSumErr(a4, b4, h4), 2, true);
  }
  const l = twoSumErr(a, b, h);
  // TwoSum's s - a overflows when |b| is near the largest double and a + b is a tie; then both
  // operands have bits at 2^970 or above, and scaling them by 1/4 is exact.
  if (l !== l) return roundPack(h * 0.25, twoSumErr(a * 0.25, b * 0.25, h * 0.25), 2, true);
  if (h === 0 && l === 0) return zeroSum(a, b);
  if (!dbl) return toSingle(h, l);
  if (l === 0) return h;
  if (ctx.rm === Rm.RNE) { ctx.flags |= Flag.NX; return h; }
  return roundPack(h, l, 0, true);
}

export function mul(a: number, b: number, dbl: boolean): number {
  const h = a * b;
  if (h !== h) { ctx.flags |= Flag.NV; return NaN; } // 0 * inf
  if (a === 0 || b === 0 || h - h !== 0 && (a - a !== 0 || b - b !== 0)) return h; // exact zero or infinity
  if (!dbl) return toSingle(h, 0); // the product of two binary32 values is exact in a double
  const ah = h < 0 ? -h : h, aa = a < 0 ? -a : a, ab = b < 0 ? -b : b;
  if (ah > PLO && ah < PHI && aa > LO && aa < HI && ab > LO && ab < HI) {
    const l = twoProdErr(a, b, h);
    if (l === 0) return h;
    if (ctx.rm === Rm.RNE) { ctx.flags |= Flag.NX; return h; }
    return roundPack(h, l, 0, true);
  }
  const ma = mantissa(a), ea = mantExp, mb = mantissa(b), eb = mantExp;
  const hm = ma * mb, lm = twoProdErr(ma, mb, hm);
  return (a < 0) !== (b < 0) ? roundPack(-hm, -lm, ea + eb, true) : roundPack(hm, lm, ea + eb, true);
}

export function div(a: number, b: number, dbl: boolean): number {
  const h = a / b;
  if (h !== h) { ctx.flags |= Flag.NV; return NaN; } // 0/0, inf/inf
  if (b === 0) { if (a - a === 0) ctx.flags |= Flag.DZ; return h; }
  if (a === 0 || a - a !== 0 || b - b !== 0) return h; // exact zero or infinity
  if (!dbl) {
    // Binary32 operands: the remainder a - h*b is exact in doubles.
    const p = h * b, r = (a - p) - twoProdErr(h, b, p);
    return toSingle(h, r === 0 ? 0 : (r < 0) !== (b < 0) ? -h * TAIL : h * TAIL);
  }
  const ah = h < 0 ? -h : h, aa = a < 0 ? -a : a, ab = b < 0 ? -b : b;
  if (ctx.rm === Rm.RNE && ah > PLO && ah < PHI && aa > LO && aa < HI && ab > LO && ab < HI) {
    const p = h * b;
    if ((a - p) - twoProdErr(h, b, p) !== 0) ctx.flags |= Flag.NX;
    return h;
  }
  const ma = mantissa(a), ea = mantExp, mb = mantissa(b), eb = mantExp;
  const q = ma / mb, p = q * mb, r = (ma - p) - twoProdErr(q, mb, p);
  const l = r === 0 ? 0 : r < 0 ? -q * TAIL : q * TAIL;
  return (a < 0) !== (b < 0) ? roundPack(-q, -l, ea - eb, true) : roundPack(q, l, ea - eb, true);
}

export function sqrt(a: number, dbl: boolean): number {
  if (a === 0 || a === Infinity) return a;
  if (a < 0) { ctx.flags |= Flag.NV; return NaN; }
  if (!dbl) {
    const h = Math.sqrt(a), p = h * h, r = (a - p) - twoProdErr(h, h, p);
    return toSingle(h, r === 0 ? 0 : r < 0 ? -h * TAIL : h * TAIL);
  }
  let m = mantissa(a), e = mantExp;
  if (e & 1) { m *= 2; e -= 1; } // m in [1, 4), e even
  const h = Math.sqrt(m), p = h * h, r = (m - p) - twoProdErr(h, h, p);
  if (ctx.rm === Rm.RNE) { // a root of a double is always a normal double
    if (r !== 0) ctx.flags |= Flag.NX;
    return h * pow2(e / 2);
  }
  return roundPack(h, r === 0 ? 0 : r < 0 ? -h * TAIL : h * TAIL, e / 2, true);
}

/** a*b + c with one rounding (the executor negates operands for fmsub/fnmsub/fnmadd). */
export function fma(a: number, b: number, c: number, dbl: boolean): number {
  const p = a * b;
  if (p !== p) { ctx.flags |= Flag.NV; return NaN; } // 0 * inf
  if (p - p !== 0 && (a - a !== 0 || b - b !== 0)) { // infinite product
    const s = p + c;
    if (s !== s) ctx.flags |= Flag.NV;                 // inf - inf
    return s;
  }
  if (c - c !== 0) return c;
  if (a === 0 || b === 0) return c === 0 ? zeroSum(p, c) : c;
  if (c === 0) return mul(a, b, dbl);
  if (dbl) return fmaD(a, b, c);
  // Binary32: the product is exact in a double and TwoSum makes the sum exact as h + l.
  const h = p + c, l = twoSumErr(p, c, h);
  if (h === 0 && l === 0) return ctx.rm === Rm.RDN ? -0 : 0;
  const r = Math.fround(h);
  if (l === 0 && r === h) return h;
  if (ctx.rm === Rm.RNE) {
    // RN24(h) is RN24(h + l) unless h is exactly a binary32 midpoint (then l breaks the tie).
    const ar = r < 0 ? -r : r, d2 = (h - r) * 2;
    if (ar > MIN_NORMAL32 && ar <= MAX32 && (l === 0 || d2 === 0 || Math.fround(r + d2) !== r + d2)) {
      ctx.flags |= Flag.NX;
      return r;
    }
  }
  return roundPack(h, l, 0, false);
}

/** fcvt.s.d: binary64 to binary32. */
export function narrow(a: number): number {
  if (a === 0 || a - a !== 0) return a; // zero or infinity: exact
  return toSingle(a, 0);
}

/** Integer kinds of fcvt: W, WU, L, LU. */
export const enum IntKind { W = 0, WU = 1, L = 2, LU = 3 }

/** The 64-bit result of cvtToInt, as two 32-bit words (signed views). */
export let intLo = 0, intHi = 0;

const MIN_I = [-2147483648, 0, -9223372036854775808, 0];
const LIMIT = [2147483648, 4294967296, 9223372036854775808, 18446744073709551616]; // first invalid

function setInt(v: number, kind: IntKind): void {
  if (kind < IntKind.L) { intLo = v | 0; intHi = intLo >> 31; return; } // 32-bit, sign-extended
  const m = v < 0 ? -v : v;
  const hi = Math.floor(m / TWO32), lo = m - hi * TWO32;
  if (v >= 0) { intLo = lo | 0; intHi = hi | 0; }
  else if (lo === 0) { intLo = 0; intHi = -hi | 0; }
  else { intLo = (TWO32 - lo) | 0; intHi = ~hi; }
}

/** fcvt.{w,wu,l,lu}.{s,d} of x (NaN allowed): the result lands in intLo/intHi. */
export function cvtToInt(x: number, kind: IntKind): void {
  if (x !== x) { ctx.flags |= Flag.NV; setMax(kind); return; }
  const neg = x < 0, ax = neg ? -x : x;
  let n: number, inexact = false;
  if (ax >= 4503599627370496) n = ax; // >= 2^52: already an integer (or infinite)
  else {
    const fl = Math.floor(ax), frac = ax - fl;
    inexact = frac !== 0;
    let up: boolean;
    switch (ctx.rm) {
      case Rm.RNE: up = frac > 0.5 || (frac === 0.5 && fl % 2 === 1); break;
      case Rm.RTZ: up = false; break;
      case Rm.RDN: up = neg && inexact; break;
      case Rm.RUP: up = !neg && inexact; break;
      default: up = frac >= 0.5; break;
    }
    n = up ? fl + 1 : fl;
  }
  const v = neg ? -n : n;
  if (v >= LIMIT[kind]!) { ctx.flags |= Flag.NV; setMax(kind); return; }
  if (v < MIN_I[kind]!) { ctx.flags |= Flag.NV; setInt(MIN_I[kind]!, kind); return; }
  if (inexact) ctx.flags |= Flag.NX;
  setInt(v === 0 ? 0 : v, kind);
}

function setMax(kind: IntKind): void {
  switch (kind) {
    case IntKind.W: intLo = 0x7fffffff; intHi = 0; break;
    case IntKind.WU: intLo = -1; intHi = -1; break; // 2^32 - 1, sign-extended
    case IntKind.L: intLo = -1; intHi = 0x7fffffff; break;
    default: intLo = -1; intHi = -1; break;
  }
}

/** fcvt.{s,d}.{w,wu,l,lu}: the integer in x-register words lo/hi to binary32/64. */
export function intToFloat(lo: number, hi: number, kind: IntKind, dbl: boolean): number {
  let h: number, l = 0;
  switch (kind) {
    case IntKind.W: h = lo | 0; break;
    case IntKind.WU: h = lo >>> 0; break;
    default: {
      const hv = (kind === IntKind.L ? hi | 0 : hi >>> 0) * TWO32, lv = lo >>> 0;
      h = hv + lv; l = twoSumErr(hv, lv, h);
    }
  }
  if (h === 0) return 0;
  // An int64 is not a binary32 operand, so RN24(RN53(x)) may differ from RN24(x): use roundPack.
  if (!dbl) return l === 0 ? toSingle(h, 0) : roundPack(h, l, 0, false);
  if (l === 0) return h;
  if (ctx.rm === Rm.RNE) { ctx.flags |= Flag.NX; return h; }
  return roundPack(h, l, 0, true);
}
