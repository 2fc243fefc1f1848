/* TCP throughput for bench/net.ts (busybox nc copies 1 KiB per read and write, so it measures the
 * guest's syscalls more than the network). One connection, 64 KiB per read or write:
 *   tcp send HOST PORT MIB   connect, write MIB MiB, shut down the write side, wait for the peer's close
 *   tcp recv HOST PORT       connect, read to EOF
 *   tcp serve PORT MIB       accept one connection, write MIB MiB to it, close
 * Prints BENCH tcp-<mode> guest_s=S insns=N bytes=B (bytes read for recv, written otherwise); the
 * other end counts what it got. The data is one 64 KiB block of splitmix64 output, stamped with its
 * index, so that nothing on the way can compress it; no checksum is computed in the guest, where it
 * would cost more than the transfer (the tests check contents). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "bench.h"

#define CHUNK 65536

static unsigned char buf[CHUNK];

/* The random block, made once, outside every measured interval. */
static void fill(void) {
  uint64_t s = 1;
  for (size_t i = 0; i < CHUNK; i += 8) {
    uint64_t v = bench_mix(&s);
    memcpy(buf + i, &v, 8);
  }
}

static int dial(const char *host, const char *port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) { fprintf(stderr, "tcp: bad address %s\n", host); exit(2); }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("tcp: connect"); exit(1); }
  return fd;
}

static int accept_one(const char *port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)), .sin_addr.s_addr = htonl(INADDR_ANY) };
  int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0) { perror("tcp: listen"); exit(1); }
  printf("LISTENING %s\n", port);
  fflush(stdout);
  int fd = accept(ls, NULL, NULL);
  if (fd < 0) { perror("tcp: accept"); exit(1); }
  close(ls);
  return fd;
}

/* Writes `mib` MiB; the span starts at the first write so that the handshake is not in it. */
static void send_all(int fd, long mib, struct bench_span *span, const char *name) {
  fill();
  bench_begin(span, name);
  for (uint64_t b = 0; b < (uint64_t)mib * (1048576 / CHUNK); b++) {
    memcpy(buf, &b, sizeof b);
    for (size_t off = 0; off < CHUNK;) {
      ssize_t n = write(fd, buf + off, CHUNK - off);
      if (n <= 0) { perror("tcp: write"); exit(1); }
      off += (size_t)n;
    }
  }
}

static void report(const struct bench_span *span, uint64_t bytes) {
  char fields[32];
  snprintf(fields, sizeof fields, "bytes=%llu", (unsigned long long)bytes);
  bench_report(span, fields);
}

int main(int argc, char **argv) {
  struct bench_span span;
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    long mib = atol(argv[4]);
    int fd = dial(argv[2], argv[3]);
    send_all(fd, mib, &span, "tcp-send");
    shutdown(fd, SHUT_WR);
    /* Done when the peer has read everything and closed: its close is the acknowledgement. */
    while (read(fd, buf, CHUNK) > 0) {}
    report(&span, (uint64_t)mib * 1048576);
  } else if (argc == 4 && strcmp(argv[1], "recv") == 0) {
    int fd = dial(argv[2], argv[3]);
    uint64_t bytes = 0;
    ssize_t n = read(fd, buf, CHUNK);
    bench_begin(&span, "tcp-recv");
    for (; n > 0; n = read(fd, buf, CHUNK)) bytes += (uint64_t)n;
    if (n < 0) { perror("tcp: read"); return 1; }
    report(&span, bytes);
  } else if (argc == 4 && strcmp(argv[1], "serve") == 0) {
    long mib = atol(argv[3]);
    int fd = accept_one(argv[2]);
    send_all(fd, mib, &span, "tcp-serve");
    close(fd);
    report(&span, (uint64_t)mib * 1048576);
  } else {
    fprintf(stderr, "usage: %s send HOST PORT MIB | recv HOST PORT | serve PORT MIB\n", argv[0]);
    return 2;
  }
  return 0;
}
