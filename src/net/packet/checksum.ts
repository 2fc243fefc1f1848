/**
 * The Internet checksum (RFC 1071): the one's-complement sum of 16-bit big-endian words, and the
 * IPv4 pseudo-header that TCP and UDP add to it (RFC 9293 §3.1, RFC 768).
 *
 * Sums are kept unfolded (plain numbers, exact up to 2^53) so that pieces can be added before one
 * final fold; every function works on any byte offset, since frames are subarrays of rings.
 */

/** Adds bytes [from, to) of `b` to `sum` as 16-bit big-endian words (an odd last byte is padded with zero). */
export function sumBytes(b: Uint8Array, from: number, to: number, sum = 0): number {
  let i = from;
  // Four words per step: V8 keeps this in small integers and the loop short.
  const end8 = to - 7;
  for (; i < end8; i += 8) {
    sum += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!) + ((b[i + 4]! << 8) | b[i + 5]!) + ((b[i + 6]! << 8) | b[i + 7]!);
  }
  for (; i + 1 < to; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < to) sum += b[i]! << 8;
  return sum;
}

/** Folds an unfolded sum into 16 bits (end-around carry). */
export function fold(sum: number): number {
  // Above 2^32 bitwise operators would truncate: reduce arithmetically first.
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value for data whose unfolded sum (with the field zero) is `sum`. */
export const finish = (sum: number): number => ~fold(sum) & 0xffff;

/** The IPv4 pseudo-header's sum: source, destination (uint32 each), protocol, L4 length. */
export const pseudoSum = (src: number, dst: number, proto: number, l4Len: number): number =>
  (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4Len;

/** The checksum of bytes [from, to): what goes in a header whose checksum field was zero. */
export const checksum = (b: Uint8Array, from: number, to: number, initial = 0): number => finish(sumBytes(b, from, to, initial));

/** True when a region whose checksum field is filled in sums to all ones (RFC 1071 §1: verification). */
export const verifies = (b: Uint8Array, from: number, to: number, initial = 0): boolean => fold(sumBytes(b, from, to, initial)) === 0xffff;
