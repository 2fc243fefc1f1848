/**
 * Bit-level helpers shared by the FPU: IEEE 754 binary32/binary64 fields, exact powers of two,
 * error-free transforms, and the per-instruction context (rounding mode, accrued flags).
 * Everything works on preallocated scratch arrays: nothing here allocates per call.
 */

/** fflags bits (unpriv spec, "Accrued exception flag encoding"). */
export const enum Flag { NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16 }

/** Rounding modes as encoded in rm/frm. */
export const enum Rm { RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4 }

/** The context of the instruction being executed: its rounding mode and the flags it raised so far. */
export const ctx = { rm: 0, flags: 0 };

export const CANON_NAN32 = 0x7fc0_0000;
export const CANON_NAN64_HI = 0x7ff8_0000;

export const TWO32 = 0x1_0000_0000;
export const MAX32 = 3.4028234663852886e38; // (2 - 2^-23) * 2^127
export const MIN_NORMAL32 = 1.1754943508222875e-38; // 2^-126
export const MIN_NORMAL64 = 2.2250738585072014e-308; // 2^-1022

const sf64 = new Float64Array(1);
const su32 = new Uint32Array(sf64.buffer);

/** 2^e exactly, for -1074 <= e <= 1023. */
export function pow2(e: number): number {
  if (e >= -1022) {
    su32[0] = 0; su32[1] = (e + 1023) << 20;
    return sf64[0]!;
  }
  su32[0] = 0; su32[1] = (e + 1022 + 1023) << 20; // 2^(e+1022), exact; e + 1022 >= -52
  return sf64[0]! * MIN_NORMAL64;
}

/** Set by expOf: whether the argument was an exact power of two. */
export let expIsPow2 = false;

/** floor(log2 |x|) for finite non-zero x (subnormals included); sets expIsPow2. */
export function expOf(x: number): number {
  sf64[0] = x;
  let hi = su32[1]!;
  let e = (hi >>> 20) & 0x7ff;
  if (e === 0) {
    sf64[0] = x * 1.8446744073709552e19; // 2^64
    hi = su32[1]!;
    e = ((hi >>> 20) & 0x7ff) - 64;
  }
  expIsPow2 = (hi & 0xfffff) === 0 && su32[0] === 0;
  return e - 1023;
}

/** Set by mantissa: the exponent of the argument. */
export let mantExp = 0;

/** For finite non-zero x: m in [1, 2) with |x| = m * 2^mantExp. */
export function mantissa(x: number): number {
  sf64[0] = x;
  let hi = su32[1]!;
  let e = (hi >>> 20) & 0x7ff;
  if (e === 0) {
    sf64[0] = x * 1.8446744073709552e19;
    hi = su32[1]!;
    e = ((hi >>> 20) & 0x7ff) - 64;
  }
  mantExp = e - 1023;
  su32[1] = (hi & 0xfffff) | 0x3ff0_0000;
  return sf64[0]!;
}

const SPLIT = 134217729; // 2^27 + 1 (Veltkamp)

/**
 * The error of p = fl(a * b): a * b - p exactly (Dekker's TwoProduct). Exact when |a|, |b| < 2^995
 * and the error does not underflow (e.g. |a * b| >= 2^-960).
 */
export function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/** The error of s = fl(a + b): a + b - s exactly (Knuth's TwoSum), for finite s. */
export function twoSumErr(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

/** Sign bit of a double as 0/1 (distinguishes -0). */
export function signOf(x: number): number { return x < 0 || (x === 0 && 1 / x < 0) ? 1 : 0; }
