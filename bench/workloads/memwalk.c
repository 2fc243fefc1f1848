/* Memory: a dependent pointer chase through a 32 MiB array arranged as one cycle over all entries
 * in pseudo-random order, so nearly every load goes to another page (missing the host's caches and
 * the emulator's translation caches), then sequential sums over the same array. Two result lines:
 * memwalk-chase and memwalk-seq. */
#include "bench.h"

#define ENTRIES (4u << 20)          /* 4 Mi entries of 8 bytes = 32 MiB */
#define CHASE_STEPS 1500000
#define SEQ_PASSES 80
/* next[i] = (A * i + C) mod ENTRIES is one cycle through every entry (Hull-Dobell: C odd, A - 1 a
 * multiple of 4, ENTRIES a power of two); its high bits, the page, jump around pseudo-randomly. It
 * is built in one sequential pass, unlike a shuffled permutation, so setting up stays cheap. */
#define A 0x5851f42d4c957f2dull
#define C 0x14057b7ef767814full

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  uint64_t steps = bench_scaled(scale, CHASE_STEPS), passes = bench_scaled(scale, SEQ_PASSES);
  uint64_t *next = malloc((size_t)ENTRIES * sizeof *next);
  if (!next) { perror("malloc"); return 1; }
  for (uint64_t i = 0; i < ENTRIES; i++) next[i] = (A * i + C) & (ENTRIES - 1);

  struct bench_span span;
  bench_begin(&span, "memwalk-chase");
  uint64_t p = 0, sum = 0;
  for (uint64_t s = 0; s < steps; s++) { p = next[p]; sum += p; }
  char extra[64];
  snprintf(extra, sizeof extra, "bytes=%llu", (unsigned long long)(steps * 8));
  bench_end(&span, sum ^ p, extra);

  bench_begin(&span, "memwalk-seq");
  sum = 0;
  for (uint64_t r = 0; r < passes; r++)
    for (uint64_t i = 0; i < ENTRIES; i++) sum += next[i] ^ r;
  snprintf(extra, sizeof extra, "bytes=%llu", (unsigned long long)(passes * ENTRIES * 8));
  bench_end(&span, sum, extra);
  free(next);
  return 0;
}
