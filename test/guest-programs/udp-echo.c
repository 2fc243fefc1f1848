/*
 * udp-echo: the guest side of the network tests' UDP checks (busybox's nc has no UDP).
 *   udp-echo ask HOST PORT MESSAGE   send MESSAGE, print the reply; status 1 if none comes in 5 s
 *   udp-echo serve PORT COUNT        answer COUNT datagrams with "echo:" and their contents
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int fail(const char *what) { perror(what); return 2; }

int main(int argc, char **argv) {
  char buf[65536];
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return fail("socket");
  if (argc == 5 && strcmp(argv[1], "ask") == 0) {
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
    if (inet_pton(AF_INET, argv[2], &to.sin_addr) != 1) return fail("address");
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&to, sizeof to) < 0) return fail("sendto");
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) { fprintf(stderr, "udp-echo: no reply\n"); return 1; }
    fwrite(buf, 1, n, stdout);
    putchar('\n');
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "serve") == 0) {
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])), .sin_addr.s_addr = INADDR_ANY };
    if (bind(s, (struct sockaddr *)&at, sizeof at) < 0) return fail("bind");
    printf("udp-echo: listening\n");
    fflush(stdout);
    for (int i = 0, count = atoi(argv[3]); i < count; i++) {
      struct sockaddr_in from;
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &len);
      if (n < 0) return fail("recvfrom");
      memcpy(buf, "echo:", 5);
      if (sendto(s, buf, n + 5, 0, (struct sockaddr *)&from, len) < 0) return fail("sendto");
    }
    return 0;
  }
  fprintf(stderr, "usage: udp-echo ask HOST PORT MESSAGE | udp-echo serve PORT COUNT\n");
  return 2;
}
