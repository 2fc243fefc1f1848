/*
 * Shared by the guest workloads of bench/cpu.ts and bench/storage.ts (static riscv64 binaries,
 * built by scripts/build-bench-guest.sh). Each workload prints one result line per measurement:
 *
 *   BENCH-START <name>
 *   BENCH <name> guest_s=<seconds> insns=<count|na> [checksum=<16 hex digits>] [key=value ...]
 *
 * BENCH-START is printed just before the measured interval begins, so that the host can time the
 * same interval with its own clock (from the arrival of one line to the arrival of the other).
 * guest_s: CLOCK_MONOTONIC seconds around the measured loop (the guest's clock);
 * insns: instructions retired while this process (and its children, for timed.c) ran the loop, from perf_event_open
 *   (PERF_COUNT_HW_INSTRUCTIONS, which Linux gets through the SBI PMU extension from the hart's
 *   instret; kernel time on its behalf included), or "na" when the kernel offers no such counter.
 *   Exact under QEMU only with -icount (otherwise QEMU's instret follows the host's clock);
 * checksum (all but randread): a function of the work done only, never of time, so two machines
 *   that computed the same thing print the same value.
 * bench/lib.ts parses these lines (parseBenchLine).
 */
#ifndef GASANG_BENCH_H
#define GASANG_BENCH_H

#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A perf counter of the instructions this process and the children it starts afterwards retire
 * (children count once they have exited; kernel time included: without the Sscofpmf extension
 * RISC-V cannot filter by privilege), or -1 when the kernel offers none. */
static int bench_perf_fd = -2;

static inline int bench_perf_open(void) {
  if (bench_perf_fd == -2) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = PERF_COUNT_HW_INSTRUCTIONS;
    a.inherit = 1;
    bench_perf_fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
  }
  return bench_perf_fd;
}

/* The counter's value, or 0 when there is none. */
static inline uint64_t bench_insns(void) {
  uint64_t v = 0;
  if (bench_perf_open() >= 0 && read(bench_perf_fd, &v, sizeof v) != sizeof v) v = 0;
  return v;
}

/* A measured interval: wall (guest monotonic) time and retired instructions. */
struct bench_span { double t0; uint64_t i0; const char *name; };

static inline void bench_begin(struct bench_span *s, const char *name) {
  (void)bench_perf_open(); /* outside the measured interval */
  s->name = name;
  printf("BENCH-START %s\n", name);
  fflush(stdout);
  s->t0 = bench_now();
  s->i0 = bench_insns();
}

/* Prints the result line with `fields` (e.g. "checksum=... ops=123", may be empty) after insns. */
static inline void bench_report(const struct bench_span *s, const char *fields) {
  uint64_t i1 = bench_insns();
  double t1 = bench_now();
  char insns[32];
  if (bench_perf_fd >= 0) snprintf(insns, sizeof insns, "%llu", (unsigned long long)(i1 - s->i0));
  else snprintf(insns, sizeof insns, "na");
  printf("BENCH %s guest_s=%.6f insns=%s%s%s\n", s->name, t1 - s->t0, insns, *fields ? " " : "", fields);
  fflush(stdout);
}

/* bench_report with the checksum first; `extra` (may be NULL) is appended as is. */
static inline void bench_end(const struct bench_span *s, uint64_t checksum, const char *extra) {
  char fields[160];
  snprintf(fields, sizeof fields, "checksum=%016llx%s%s", (unsigned long long)checksum, extra ? " " : "", extra ? extra : "");
  bench_report(s, fields);
}

/* Work scale from argv[1] (default 1.0): lets a quick run do a fraction of the work. */
static inline double bench_scale(int argc, char **argv) {
  double s = argc > 1 ? atof(argv[1]) : 1.0;
  if (!(s > 0 && s <= 100)) {
    fprintf(stderr, "usage: %s [scale in (0, 100]]\n", argv[0]);
    exit(2);
  }
  return s;
}

/* Iteration count `base` scaled, at least 1. */
static inline uint64_t bench_scaled(double scale, uint64_t base) {
  uint64_t n = (uint64_t)((double)base * scale);
  return n ? n : 1;
}

/* splitmix64: deterministic pseudo-random numbers for inputs. */
static inline uint64_t bench_mix(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#endif
