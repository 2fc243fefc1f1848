/* Integer hashing: FNV-1a (byte at a time) and an xxHash64-style lane hash (64-bit words) over a
 * 64 KiB buffer, many rounds; each round feeds its result back into the buffer so no round can be
 * skipped. Exercises loads, xor, shifts, rotates and 64-bit multiplies in tight loops. */
#include "bench.h"

#define BUF_BYTES (64 * 1024)
#define ROUNDS 8000

static const uint64_t P1 = 0x9e3779b185ebca87ull, P2 = 0xc2b2ae3d27d4eb4full, P3 = 0x165667b19e3779f9ull;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t lanes(const uint64_t *w, size_t n, uint64_t seed) {
  uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a = rotl(a + w[i] * P2, 31) * P1;
    b = rotl(b + w[i + 1] * P2, 31) * P1;
    c = rotl(c + w[i + 2] * P2, 31) * P1;
    d = rotl(d + w[i + 3] * P2, 31) * P1;
  }
  uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
  h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
  return h;
}

int main(int argc, char **argv) {
  uint64_t rounds = bench_scaled(bench_scale(argc, argv), ROUNDS);
  static uint64_t buf[BUF_BYTES / 8];
  uint64_t seed = 1;
  for (size_t i = 0; i < BUF_BYTES / 8; i++) buf[i] = bench_mix(&seed);

  struct bench_span span;
  bench_begin(&span, "hash");
  uint64_t sum = 0;
  for (uint64_t r = 0; r < rounds; r++) {
    uint64_t f = fnv1a((const uint8_t *)buf, BUF_BYTES);
    uint64_t x = lanes(buf, BUF_BYTES / 8, f);
    buf[r % (BUF_BYTES / 8)] ^= x;
    sum = rotl(sum, 5) ^ f ^ x;
  }
  bench_end(&span, sum, NULL);
  return 0;
}
