/* 4 KiB random-read IOPS: O_DIRECT preads at pseudo-random 4 KiB-aligned offsets of a block device
 * for a given time, one at a time (queue depth 1). Usage: randread DEVICE SECONDS [SPAN_MIB]
 * (SPAN_MIB: read only the first SPAN_MIB MiB; default the whole device).
 * The images bench/storage.ts makes hold each 4 KiB block's own index (u64, little-endian) in its
 * first 8 bytes; every read is checked against that, and mismatches are counted in errors=.
 * Prints: BENCH randread guest_s=S insns=N ios=N iops=X errors=N (no checksum: the number of
 * reads depends on the machine's speed). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "bench.h"

#define BLOCK 4096

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s DEVICE SECONDS [SPAN_MIB]\n", argv[0]); return 2; }
  double seconds = atof(argv[2]);
  if (!(seconds > 0 && seconds <= 3600)) { fprintf(stderr, "randread: SECONDS must be in (0, 3600]\n"); return 2; }
  int fd = open(argv[1], O_RDONLY | O_DIRECT);
  if (fd < 0) { perror(argv[1]); return 1; }
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) { perror("BLKGETSIZE64"); return 1; }
  if (argc > 3) {
    uint64_t span = (uint64_t)atoll(argv[3]) << 20;
    if (span == 0 || span > size) { fprintf(stderr, "randread: SPAN_MIB must be in [1, device size]\n"); return 2; }
    size = span;
  }
  uint64_t blocks = size / BLOCK;
  if (blocks == 0) { fprintf(stderr, "randread: device smaller than 4 KiB\n"); return 1; }
  void *buf;
  if (posix_memalign(&buf, BLOCK, BLOCK) != 0) { fprintf(stderr, "randread: out of memory\n"); return 1; }

  uint64_t seed = 42, ios = 0, errors = 0;
  struct bench_span span;
  bench_begin(&span, "randread");
  double end = span.t0 + seconds;
  do {
    for (int i = 0; i < 16; i++, ios++) {   /* check the clock every 16 reads */
      uint64_t block = bench_mix(&seed) % blocks, got;
      if (pread(fd, buf, BLOCK, (off_t)(block * BLOCK)) != BLOCK) { perror("pread"); return 1; }
      memcpy(&got, buf, sizeof got);
      if (got != block) errors++;
    }
  } while (bench_now() < end);
  double elapsed = bench_now() - span.t0;
  char fields[96];
  snprintf(fields, sizeof fields, "ios=%llu iops=%.0f errors=%llu", (unsigned long long)ios, ios / elapsed,
           (unsigned long long)errors);
  bench_report(&span, fields);
  close(fd);
  return errors ? 1 : 0;
}
