/**
 * Operand values for the differential tests, biased towards the corners where implementations
 * differ: integer overflow and sign boundaries, and IEEE 754 specials (±0, ±inf, quiet and
 * signalling NaNs, subnormals, rounding ties, integer-conversion limits). All values are raw bits.
 */
import type { Rng } from './prng.js';

const M64 = (1n << 64n) - 1n;
export const u64 = (v: bigint): bigint => v & M64;
/** Sign-extends the low 32 bits to 64. */
export const sext32 = (v: bigint): bigint => u64(BigInt.asIntN(32, v));

export const INT_CORNERS: readonly bigint[] = [
  0n, 1n, 2n, u64(-1n), u64(-2n),
  1n << 63n, (1n << 63n) - 1n, (1n << 63n) + 1n,
  sext32(0x8000_0000n), 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn, 0x1_0000_0000n, 0x1_ffff_ffffn,
  sext32(0xffff_ffffn), sext32(0x8000_0001n), 0x7fff_ffff_ffff_fffen,
  3n, 5n, 7n, u64(-3n), u64(-7n), 0x5555_5555_5555_5555n, 0xaaaa_aaaa_aaaa_aaaan,
  63n, 64n, 31n, 32n,
];

/** A 64-bit integer operand: corners, small values, sign-extended 32-bit values, or fully random. */
export function intValue(r: Rng): bigint {
  switch (r.below(8)) {
    case 0: case 1: case 2: return r.pick(INT_CORNERS);
    case 3: return u64(BigInt(r.range(-40, 40)));
    case 4: return sext32(BigInt(r.u32()));
    case 5: return u64(1n << BigInt(r.below(64))) ^ (r.chance(0.5) ? 0n : M64);
    case 6: return BigInt(r.u32());
    default: return r.u64();
  }
}

// ---- binary64 ----

export const D_SPECIALS: readonly bigint[] = [
  0x0000_0000_0000_0000n, 0x8000_0000_0000_0000n, // ±0
  0x7ff0_0000_0000_0000n, 0xfff0_0000_0000_0000n, // ±inf
  0x7ff8_0000_0000_0000n, 0xfff8_0000_0000_0000n, 0x7ff8_0000_0000_0123n, 0xfffc_dead_beef_0001n, // qNaN
  0x7ff0_0000_0000_0001n, 0x7ff4_0000_0000_0000n, 0xfff0_0000_0000_0042n, 0x7ff7_ffff_ffff_ffffn, // sNaN
  0x0000_0000_0000_0001n, 0x000f_ffff_ffff_ffffn, 0x8000_0000_0000_0001n, 0x8008_0000_0000_0000n, // subnormal
  0x0010_0000_0000_0000n, 0x8010_0000_0000_0000n, 0x7fef_ffff_ffff_ffffn, 0xffef_ffff_ffff_ffffn, // min normal, max
  0x3ff0_0000_0000_0000n, 0xbff0_0000_0000_0000n, 0x3fe0_0000_0000_0000n, 0xbfe0_0000_0000_0000n, // ±1, ±0.5
  0x3ff8_0000_0000_0000n, 0x4004_0000_0000_0000n, 0xc004_0000_0000_0000n, 0x4008_0000_0000_0000n, // 1.5, ±2.5, 3
  0x3ca0_0000_0000_0000n, 0x3ff0_0000_0000_0001n, 0x3cb0_0000_0000_0000n, 0x3fef_ffff_ffff_ffffn, // 2^-53, 1+ulp, 2^-52, 1-ulp/2
  0x3fdf_ffff_ffff_ffffn, 0x4330_0000_0000_0000n, 0x4340_0000_0000_0000n, // 0.49999.., 2^52, 2^53
  0x41e0_0000_0000_0000n, 0xc1e0_0000_0000_0000n, 0x41df_ffff_ffe0_0000n, 0x41df_ffff_fff0_0000n, // 2^31, -2^31, 2^31-1, 2^31-0.5
  0xc1e0_0000_0010_0000n, 0xc1e0_0000_0020_0000n, 0x41ef_ffff_ffe0_0000n, 0x41ef_ffff_fff0_0000n, // -2^31-0.5, -2^31-1, 2^32-1, 2^32-0.5
  0x41f0_0000_0000_0000n, 0x43e0_0000_0000_0000n, 0xc3e0_0000_0000_0000n, 0x43df_ffff_ffff_ffffn, // 2^32, ±2^63, <2^63
  0x43f0_0000_0000_0000n, 0x43ef_ffff_ffff_ffffn, 0xc3e0_0000_0000_0001n, 0xbfef_ffff_ffff_ffffn, // 2^64, <2^64, <-2^63, -1+
  0x47ef_ffff_e000_0000n, 0x47ef_ffff_f000_0000n, 0x3690_0000_0000_0000n, 0x36a0_0000_0000_0000n, // f32 max, overflow tie, f32 subnormal range
  0x3810_0000_0000_0000n, 0x380f_ffff_ffff_ffffn, 0x3ff0_0000_1000_0000n, 0x3ff0_0000_3000_0000n, // f32 min normal, f32 ties
];

/**
 * A small palette of operands whose pairings hit rounding corner cases (tininess after rounding,
 * overflow to max-or-inf by rounding mode, ties, exact cancellation); drawing every operand of an
 * instruction from it makes those pairings frequent.
 */
export const D_TRICKY: readonly bigint[] = [
  0x0010_0000_0000_0000n, 0x3fef_ffff_ffff_ffffn, 0x3fe0_0000_0000_0000n, 0x4000_0000_0000_0000n,
  0x7fef_ffff_ffff_ffffn, 0x3ff0_0000_0000_0001n, 0x3ca0_0000_0000_0000n, 0x3ff0_0000_0000_0000n,
  0xbff0_0000_0000_0000n, 0x0000_0000_0000_0001n, 0x000f_ffff_ffff_ffffn, 0x8000_0000_0000_0000n,
  0x0010_0000_0000_0001n, 0x3fd5_5555_5555_5555n, 0x4008_0000_0000_0000n, 0xc008_0000_0000_0000n,
  0x7ff0_0000_0000_0000n, 0x7ff4_0000_0000_0000n,
];
export const F_TRICKY: readonly number[] = [
  0x0080_0000, 0x3f7f_ffff, 0x3f00_0000, 0x4000_0000, 0x7f7f_ffff, 0x3f80_0001, 0x3380_0000, 0x3f80_0000,
  0xbf80_0000, 0x0000_0001, 0x007f_ffff, 0x8000_0000, 0x0080_0001, 0x3eaa_aaab, 0x4040_0000, 0xc040_0000,
  0x7f80_0000, 0x7fa0_0000,
];

/** A binary64 operand. */
export function doubleValue(r: Rng): bigint {
  switch (r.below(8)) {
    case 0: case 1: case 2: return r.pick(D_SPECIALS);
    case 3: { // near 1: sums and products land on rounding ties
      const exp = BigInt(1023 + r.range(-3, 3));
      const mant = r.chance(0.5) ? r.u64() & 0xf_ffff_ffff_ffffn : (BigInt(r.u32() & 0xff) << 44n) | BigInt(r.below(4));
      return (r.chance(0.3) ? 1n << 63n : 0n) | (exp << 52n) | mant;
    }
    case 4: { // small integers and halves (conversions)
      const v = r.range(-600, 600) / (r.chance(0.5) ? 2 : 1);
      return f64Bits(v);
    }
    case 5: { // a binary32 value widened (exact narrowing / widening)
      return f64Bits(f32Of(floatValue(r)));
    }
    case 6: { // tiny or huge exponents
      const exp = BigInt(r.chance(0.5) ? r.range(0, 60) : r.range(2000, 2047));
      return (r.chance(0.5) ? 1n << 63n : 0n) | (exp << 52n) | (r.u64() & 0xf_ffff_ffff_ffffn);
    }
    default: return r.u64();
  }
}

// ---- binary32 (raw 32 bits; box with boxF32) ----

export const F_SPECIALS: readonly number[] = [
  0x0000_0000, 0x8000_0000, 0x7f80_0000, 0xff80_0000, // ±0, ±inf
  0x7fc0_0000, 0xffc0_0000, 0x7fc0_0123, 0xffe0_0001, // qNaN
  0x7f80_0001, 0x7fa0_0000, 0xff80_0042, 0x7fbf_ffff, // sNaN
  0x0000_0001, 0x007f_ffff, 0x8000_0001, 0x8040_0000, // subnormal
  0x0080_0000, 0x8080_0000, 0x7f7f_ffff, 0xff7f_ffff, // min normal, max
  0x3f80_0000, 0xbf80_0000, 0x3f00_0000, 0xbf00_0000, // ±1, ±0.5
  0x3fc0_0000, 0x4020_0000, 0xc020_0000, 0x4040_0000, // 1.5, ±2.5, 3
  0x3380_0000, 0x3f80_0001, 0x3400_0000, 0x3f7f_ffff, // 2^-24, 1+ulp, 2^-23, 1-ulp/2
  0x4f00_0000, 0xcf00_0000, 0x4eff_ffff, 0xcf00_0001, // ±2^31, below 2^31, below -2^31
  0x4f80_0000, 0x4f7f_ffff, 0x5f00_0000, 0xdf00_0000, // 2^32, <2^32, ±2^63
  0x5eff_ffff, 0x5f80_0000, 0x5f7f_ffff, 0xdf00_0001, // <2^63, 2^64, <2^64, <-2^63
  0x3eff_ffff, 0x4b00_0000, 0x4b80_0000, 0xbf7f_ffff, // 0.4999.., 2^23, 2^24, -1+
];

/** A binary32 operand (raw 32 bits). */
export function floatValue(r: Rng): number {
  switch (r.below(7)) {
    case 0: case 1: case 2: return r.pick(F_SPECIALS);
    case 3: {
      const exp = 127 + r.range(-3, 3);
      const mant = r.chance(0.5) ? r.u32() & 0x7f_ffff : ((r.u32() & 0xff) << 15) | r.below(4);
      return ((r.chance(0.3) ? 0x8000_0000 : 0) | (exp << 23) | mant) >>> 0;
    }
    case 4: return f32Bits(r.range(-600, 600) / (r.chance(0.5) ? 2 : 1));
    case 5: {
      const exp = r.chance(0.5) ? r.range(0, 30) : r.range(225, 255);
      return ((r.chance(0.5) ? 0x8000_0000 : 0) | (exp << 23) | (r.u32() & 0x7f_ffff)) >>> 0;
    }
    default: return r.u32();
  }
}

/** NaN-boxes a binary32 value into an f register's 64 bits. */
export const boxF32 = (bits: number): bigint => 0xffff_ffff_0000_0000n | BigInt(bits >>> 0);

/** An f-register value: boxed binary32, binary64, or (rarely) an improperly boxed value. */
export function fregValue(r: Rng): bigint {
  switch (r.below(10)) {
    case 0: return BigInt(floatValue(r)); // upper half zero: not a valid binary32
    case 1: return 0xffff_fffe_0000_0000n | BigInt(floatValue(r)); // almost boxed
    case 2: case 3: case 4: case 5: return boxF32(floatValue(r));
    default: return doubleValue(r);
  }
}

const scratch = new DataView(new ArrayBuffer(8));
export function f64Bits(v: number): bigint { scratch.setFloat64(0, v, true); return scratch.getBigUint64(0, true); }
export function f32Bits(v: number): number { scratch.setFloat32(0, v, true); return scratch.getUint32(0, true); }
function f32Of(bits: number): number { scratch.setUint32(0, bits, true); return scratch.getFloat32(0, true); }
