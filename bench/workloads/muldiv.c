/* 64-bit integer multiply and divide: mul, mulh/mulhu (through __int128), div/divu, rem/remu and
 * their 32-bit W forms, on pseudo-random operands (divisors forced non-zero; the signed overflow
 * case INT64_MIN / -1 is avoided since C leaves it undefined). */
#include "bench.h"

#define ITERATIONS 60000000

int main(int argc, char **argv) {
  uint64_t n = bench_scaled(bench_scale(argc, argv), ITERATIONS);
  struct bench_span span;
  bench_begin(&span, "muldiv");
  uint64_t x = 0x0123456789abcdefull, acc = 0;
  for (uint64_t i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;                 /* xorshift64: next operand */
    uint64_t a = x, b = (x >> 29) | 1;
    int64_t sa = (int64_t)a, sb = (int64_t)(b >> 1) - (int64_t)(b >> 2) + 1;
    if (sb == 0) sb = 3;
    acc += a * b;
    acc ^= (uint64_t)(((unsigned __int128)a * b) >> 64);
    acc += (uint64_t)(((__int128)sa * sb) >> 64);
    acc ^= a / b + a % b;
    acc += (uint64_t)(sa / sb) ^ (uint64_t)(sa % sb);
    acc ^= (uint64_t)(uint32_t)((uint32_t)a / ((uint32_t)b | 1)) + (uint32_t)((int32_t)a % ((int32_t)sb | 1));
    acc = (acc << 1) | (acc >> 63);
  }
  bench_end(&span, acc, NULL);
  return 0;
}
