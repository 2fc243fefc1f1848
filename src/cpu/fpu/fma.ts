/**
 * Fused multiply-add in binary64 with a single rounding: the exact value a*b + c is formed as an
 * integer in base-2^24 limbs (held in doubles, so every limb product is exact), reduced to its
 * nearest-even 53-bit head plus a stand-in for the tail, and handed to roundPack.
 *
 * A fast path first tries error-free transforms in doubles (below) and only falls back to the limbs
 * when it cannot prove its answer.
 *
 * Operands are split as a = Ma * 2^ea with integer Ma in [2^52, 2^53). When the addend lies entirely
 * below the product's last bit (or the product entirely below the addend's), the far smaller term
 * is replaced by a "sticky" unit placed below every bit that can influence the rounding; its sign and
 * non-zeroness are all the rounding can see.
 */
import { Flag, Rm, ctx, mantExp, mantissa, pow2, twoProdErr, twoSumErr } from './bits.js';
import { roundPack } from './round.js';

const B = 16777216;            // 2^24, the limb base
const INV_B = 1 / B;
const N = 8;                   // limbs: 192 bits, enough for the widest aligned sum (< 2^167)
const TWO52 = 4503599627370496;

const pa = new Float64Array(3), pb = new Float64Array(3), tmp = new Float64Array(3);
const x = new Float64Array(N), y = new Float64Array(N);

/** Splits an integer below 2^53 into three limbs. */
function limbs3(out: Float64Array, m: number): void {
  const q1 = Math.floor(m * INV_B), q2 = Math.floor(q1 * INV_B);
  out[0] = m - q1 * B; out[1] = q1 - q2 * B; out[2] = q2;
}

/** Propagates carries so that every limb is in [0, 2^24); values must be non-negative. */
function normalize(v: Float64Array): void {
  let carry = 0;
  for (let i = 0; i < N; i++) {
    const t = v[i]! + carry;
    carry = Math.floor(t * INV_B);
    v[i] = t - carry * B;
  }
}

/** v += m * 2^s for an integer m < 2^53, s >= 0 (s <= 113 here, so no limb leaves the array). */
function addShifted(v: Float64Array, m: number, s: number): void {
  limbs3(tmp, m);
  const ls = Math.floor(s / 24), bs = s - ls * 24, f = pow2(bs);
  for (let i = 0; i < 3; i++) v[i + ls]! += tmp[i]! * f; // each term < 2^48
  normalize(v);
}

/** v <<= s (limbs already normalized), s >= 0. */
function shiftLeft(v: Float64Array, s: number): void {
  const ls = Math.floor(s / 24), f = pow2(s - ls * 24);
  for (let i = N - 1; i >= 0; i--) v[i] = i - ls >= 0 ? v[i - ls]! * f : 0;
  normalize(v);
}

const W_LO = 4.909093465297727e-91, W_HI = 2.037035976334486e90;     // 2^-300, 2^300
const C_LO = 2.409919865102884e-181, C_HI = 4.149515568880993e180;    // 2^-600, 2^600

/**
 * The fast path: with all magnitudes inside the window nothing over- or underflows, so
 *   a*b = ph + pl, ph + c = s + e1, e1 + pl = t + e2, s + t = r + e3   (all exact)
 * and a*b + c = r + e3 + e2. When e2 = 0, r is the nearest-even result and e3 its exact error.
 * Otherwise, if |t| <= |r|/8, e3 lies on a grid of ulp(t) that also holds 0 and the half-gaps of r,
 * while |e2| <= ulp(t)/2: unless e3 is 0 or exactly half a gap, e2 cannot move a*b + c across
 * either, so r is still the nearest-even result and e3 stands in for the error. Returns NaN when
 * it cannot decide (the caller then uses the limbs).
 */
function fmaFast(a: number, b: number, c: number): number {
  const aa = a < 0 ? -a : a, ab = b < 0 ? -b : b, ac = c < 0 ? -c : c;
  if (!(aa > W_LO && aa < W_HI && ab > W_LO && ab < W_HI && ac > C_LO && ac < C_HI)) return NaN;
  const ph = a * b, pl = twoProdErr(a, b, ph);
  const s = ph + c, e1 = twoSumErr(ph, c, s);
  const t = e1 + pl, e2 = twoSumErr(e1, pl, t);
  const r = s + t, e3 = twoSumErr(s, t, r);
  if (e2 !== 0) {
    if (r === 0 || e3 === 0) return NaN;
    if ((t < 0 ? -t : t) > (r < 0 ? -r : r) * 0.125) return NaN;
    const e32 = e3 * 2;
    if ((r + e32) - r === e32) return NaN; // |e3| is exactly half a gap: e2 breaks the tie
  } else if (r === 0) {
    return ctx.rm === Rm.RDN ? -0 : 0; // exact cancellation
  }
  if (e3 === 0 && e2 === 0) return r;
  if (ctx.rm === Rm.RNE) { ctx.flags |= Flag.NX; return r; }
  return roundPack(r, e3, 0, true);
}

/**
 * a*b + c for finite non-zero a, b, c, rounded once to binary64 with ctx.rm. Accrues flags.
 */
export function fmaD(a: number, b: number, c: number): number {
  const f = fmaFast(a, b, c);
  return f === f ? f : fmaLimbs(a, b, c);
}

/** The general case: exact integer arithmetic in limbs. Exported for tests. */
export function fmaLimbs(a: number, b: number, c: number): number {
  const ma = mantissa(a), ea = mantExp, mb = mantissa(b), eb = mantExp, mc = mantissa(c), ec = mantExp;
  const negP = (a < 0) !== (b < 0), negC = c < 0;
  const Ma = ma * TWO52, Mb = mb * TWO52, Mc = mc * TWO52;
  let ep = ea + eb - 104; // product = Ma*Mb * 2^ep, Ma*Mb in [2^104, 2^106)
  let ecc = ec - 52;      // addend = Mc * 2^ecc
  const shift = ecc - ep;

  // x = |product| in limbs
  x.fill(0);
  let cm = Mc;
  if (shift > 110) {
    // Product < 2^(ecc-4): a sticky unit at 2^(ecc-3).
    x[0] = 1; ep = ecc - 3;
  } else {
    limbs3(pa, Ma); limbs3(pb, Mb);
    const a0 = pa[0]!, a1 = pa[1]!, a2 = pa[2]!, b0 = pb[0]!, b1 = pb[1]!, b2 = pb[2]!;
    x[0] = a0 * b0;
    x[1] = a0 * b1 + a1 * b0;
    x[2] = a0 * b2 + a1 * b1 + a2 * b0;
    x[3] = a1 * b2 + a2 * b1;
    x[4] = a2 * b2;
    normalize(x);
    if (shift < -60) { cm = 1; ecc = ep - 3; } // addend < 2^(ep-7): a sticky unit at 2^(ep-3)
  }
  // Align at the lower exponent: y = |addend| in limbs.
  y.fill(0);
  let base: number;
  if (ecc >= ep) { base = ep; addShifted(y, cm, ecc - ep); } else { base = ecc; shiftLeft(x, ep - ecc); addShifted(y, cm, 0); }

  // r = x ± y, with its sign.
  let neg = negP;
  if (negP === negC) {
    for (let i = 0; i < N; i++) x[i]! += y[i]!;
    normalize(x);
  } else {
    let cmp = 0;
    for (let i = N - 1; i >= 0 && cmp === 0; i--) cmp = x[i]! > y[i]! ? 1 : x[i]! < y[i]! ? -1 : 0;
    if (cmp === 0) return ctx.rm === Rm.RDN ? -0 : 0; // exact cancellation
    const big = cmp > 0 ? x : y, small = cmp > 0 ? y : x;
    if (cmp < 0) neg = negC;
    let borrow = 0;
    for (let i = 0; i < N; i++) {
      let t = big[i]! - small[i]! - borrow;
      borrow = t < 0 ? 1 : 0;
      if (borrow) t += B;
      x[i] = t;
    }
  }

  // Top bit t of the magnitude.
  let ti = N - 1;
  while (x[ti] === 0) ti--;
  const t = ti * 24 + 31 - Math.clz32(x[ti]!);
  let h: number, l: number;
  if (t <= 52) {
    h = 0;
    for (let i = ti; i >= 0; i--) h = h * B + x[i]!; // exact: < 2^53
    l = 0;
  } else {
    // n53 = the top 53 bits (exact in a double), rb = the next bit, sticky = any bit below it.
    const j = t - 52, rbit = j - 1, ri = Math.floor(rbit / 24), rs = rbit - ri * 24;
    let n53 = 0;
    for (let i = ti; i >= 0; i--) {
      const lo = i * 24, v = x[i]!;
      if (lo >= j) n53 += v * pow2(lo - j);
      else if (lo + 24 > j) n53 += Math.floor(v / pow2(j - lo));
    }
    const rv = x[ri]!;
    const rb = (rv >>> rs) & 1;
    let sticky = (rv & ((1 << rs) - 1)) !== 0;
    for (let i = ri - 1; i >= 0 && !sticky; i--) sticky = x[i] !== 0;
    const up = rb === 1 && (sticky || n53 % 2 === 1);
    h = (up ? n53 + 1 : n53) * pow2(j);
    if (rb === 0 && !sticky) l = 0;
    else {
      const mag = rb === 1 && !sticky ? pow2(j - 1) : pow2(j - 3); // exactly half a gap, or less
      l = up ? -mag : mag;
    }
  }
  return roundPack(neg ? -h : h, neg ? -l : l, base, true);
}
