/**
 * A small seeded PRNG for the differential tests: sfc32 (Chris Doty-Humphrey's "small fast counting"
 * generator) seeded through splitmix32, all in 32-bit integer arithmetic so a seed reproduces the
 * same programs on every Node version.
 */

/** splitmix32 step: a well-mixed 32-bit value from a 32-bit state. */
export function mix32(x: number): number {
  x = (x + 0x9e37_79b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85eb_ca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2_ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Derives one 32-bit seed from several numbers (seed, group id, sequence index, ...). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x1234_5678;
  for (const p of parts) h = mix32(h ^ mix32(p >>> 0) ^ mix32(Math.floor(p / 0x1_0000_0000)));
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = mix32(seed);
    this.b = mix32(this.a ^ 0x5bd1_e995);
    this.c = mix32(this.b ^ 0x27d4_eb2f);
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned value. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number { return Math.floor((this.u32() / 0x1_0000_0000) * n); }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number { return lo + this.below(hi - lo + 1); }

  /** true with probability p. */
  chance(p: number): boolean { return this.u32() / 0x1_0000_0000 < p; }

  pick<T>(items: readonly T[]): T { return items[this.below(items.length)]; }

  /** Picks an item with probability proportional to its weight. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of items) total += w;
    let r = (this.u32() / 0x1_0000_0000) * total;
    for (const [item, w] of items) {
      if (r < w) return item;
      r -= w;
    }
    return items[items.length - 1][0];
  }

  /** A uniform 64-bit unsigned value. */
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
}
