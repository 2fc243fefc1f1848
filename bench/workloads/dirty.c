/* Memory dirtying for bench/migrate.ts: rewrites one word in every page of a MiB-sized buffer
 * (argument 1, default 32), then sleeps a few ms (argument 2, default 20), forever. Each pass
 * writes a new non-zero value, so no page is a zero page or the same as before: a migration must
 * send every page written since it last sent it. Prints one line when the buffer is set up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 32;
  long pause_ms = argc > 2 ? strtol(argv[2], 0, 10) : 20;
  size_t words = mib << 17, stride = 4096 / sizeof(uint64_t);
  uint64_t *buf = malloc(words * sizeof *buf);
  if (!buf) { perror("malloc"); return 1; }
  struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
  printf("dirty: %zu MiB, a pass every %ld ms\n", mib, pause_ms);
  fflush(stdout);
  for (uint64_t pass = 1;; pass++) {
    for (size_t i = 0; i < words; i += stride) buf[i] = pass * 0x9e3779b97f4a7c15ull + i;
    nanosleep(&pause, 0);
  }
}
