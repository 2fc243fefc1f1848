/* Times another program (busybox dd prints no transfer summary, so bench/storage.ts times it with
 * this): prints BENCH-START NAME, runs COMMAND, and prints
 *   BENCH NAME guest_s=S insns=N status=X
 * where S is the guest's CLOCK_MONOTONIC seconds from just before the fork to the child's exit,
 * N the instructions the child retired (see bench.h) and X its exit status (or 128 + signal).
 * Usage: timed NAME COMMAND [ARG...] */
#include <sys/wait.h>
#include "bench.h"

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s NAME COMMAND [ARG...]\n", argv[0]); return 2; }
  struct bench_span span;
  bench_begin(&span, argv[1]);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); return 1; }
  int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  char fields[32];
  snprintf(fields, sizeof fields, "status=%d", status);
  bench_report(&span, fields);
  return status;
}
