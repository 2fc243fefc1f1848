/**
 * The one rounding routine every operation ends in: rounds an exact value, given as a double-double
 * scaled by a power of two, to binary32 or binary64 in any RISC-V rounding mode, and raises NX, UF
 * (tininess detected after rounding) and OF as IEEE 754 and the RISC-V F chapter require.
 *
 * Input contract for roundPack(h, l, k, dbl): the exact value is v = (h + l) * 2^k, v != 0, with
 *   - h = RN(h + l), i.e. h is the value rounded to nearest-even at 53 bits and |l| is at most half the
 *     gap between h and its neighbour on l's side (equal only for an exact tie);
 *   - l either exact, or a stand-in with the same sign, the same "is it exactly half a gap" status, and
 *     a magnitude below half a gap otherwise (for quotients and roots, whose errors are not doubles);
 *   - h a normal double (a subnormal h only with l = 0 and k = 0), so that the result's quantum,
 *     expressed in h's scale, is itself a double.
 */
import { Flag, MAX32, Rm, ctx, expIsPow2, expOf, pow2 } from './bits.js';

/** Inexactness of the last roundAt call. */
let inexact = false;

/**
 * Rounds |v| = h + l (h > 0, in h's scale) to an integer multiple n of q = 2^qe with ctx.rm, where
 * `neg` is the sign of the value; returns n. Requires |v| >= q / 4 and q representable.
 */
function roundAt(h: number, l: number, qe: number, neg: boolean): number {
  const q = pow2(qe);
  let n = Math.floor(h / q);
  let fr = h - n * q; // exact: the bits of h below q
  // The sign of the exact sum of two doubles is the sign of their rounded sum.
  if (fr + l < 0) { n -= 1; fr += q; }
  if (fr + l === 0) { inexact = false; return n; }
  inexact = true;
  const c = (fr - q * 0.5) + l; // sign of (remainder - q/2); fr - q/2 is exact
  let up: boolean;
  switch (ctx.rm) {
    case Rm.RNE: up = c > 0 || (c === 0 && n % 2 === 1); break;
    case Rm.RTZ: up = false; break;
    case Rm.RDN: up = neg; break;
    case Rm.RUP: up = !neg; break;
    default: up = c >= 0; break; // RMM
  }
  return up ? n + 1 : n;
}

/** The result of an overflow in the current rounding mode (unpriv spec / IEEE 754 §7.4). */
function overflow(neg: boolean, dbl: boolean): number {
  ctx.flags |= Flag.OF | Flag.NX;
  const rm = ctx.rm;
  const toInf = rm === Rm.RNE || rm === Rm.RMM || (rm === Rm.RUP && !neg) || (rm === Rm.RDN && neg);
  const mag = toInf ? Infinity : dbl ? Number.MAX_VALUE : MAX32;
  return neg ? -mag : mag;
}

/**
 * Rounds v = (h + l) * 2^k to binary64 (dbl) or binary32, with ctx.rm; accrues flags into ctx.flags.
 * Returns the result as a double (exactly representable in the target format).
 */
export function roundPack(h: number, l: number, k: number, dbl: boolean): number {
  const p = dbl ? 53 : 24, emin = dbl ? -1022 : -126, emax = dbl ? 1023 : 127;
  const neg = h < 0;
  if (neg) { h = -h; l = -l; }
  let x = expOf(h) + k; // exponent of |v|
  if (expIsPow2 && l < 0) x--;
  if (x > emax) return overflow(neg, dbl);
  const q = (x < emin ? emin : x) - p + 1; // exponent of the result's quantum
  let n: number;
  if (x < q - 1) {
    // |v| < q/2 (deep underflow): 0 or one quantum away from zero.
    inexact = true;
    n = (ctx.rm === Rm.RUP && !neg) || (ctx.rm === Rm.RDN && neg) ? 1 : 0;
  } else {
    n = roundAt(h, l, q - k, neg);
  }
  if (inexact) {
    ctx.flags |= Flag.NX;
    if (x < emin) {
      // Tiny after rounding: would |v| rounded to p bits with unbounded exponent be below 2^emin?
      let tiny = true;
      if (x === emin - 1) {
        const n2 = roundAt(h, l, emin - p - k, neg);
        tiny = n2 < pow2(p);
        inexact = true;
      }
      if (tiny) ctx.flags |= Flag.UF;
    } else if (x === emax && n === pow2(p)) {
      return overflow(neg, dbl);
    }
  }
  const r = n * pow2(q);
  return neg ? -r : r;
}
