/* Sieve of Eratosthenes up to 4 million (one byte per number), repeated: byte stores with strides,
 * a branchy scan, and a 4 MB working set. Checksum: prime count and sum of the primes. */
#include "bench.h"

#define LIMIT 4000000
#define REPEATS 6

static uint8_t composite[LIMIT + 1];

int main(int argc, char **argv) {
  uint64_t repeats = bench_scaled(bench_scale(argc, argv), REPEATS);
  struct bench_span span;
  bench_begin(&span, "sieve");
  uint64_t sum = 0;
  for (uint64_t r = 0; r < repeats; r++) {
    memset(composite, 0, sizeof composite);
    uint64_t count = 0, total = 0;
    for (uint64_t i = 2; i <= LIMIT; i++) {
      if (composite[i]) continue;
      count++;
      total += i;
      for (uint64_t j = i * i; j <= LIMIT; j += i) composite[j] = 1;
    }
    sum = sum * 31 + count * 1000003 + total;
  }
  bench_end(&span, sum, NULL);
  return 0;
}
