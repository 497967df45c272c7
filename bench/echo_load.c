/* echo_load: the load generator of the echo benchmarks (bench/echo.sh),
 * plain C and epoll, the same for every server.
 *
 *   echo_load -p PORT [-c CONNS] [-s SIZE] [-t SECONDS | -n ROUNDTRIPS]
 *             [-a NADDRS] [-i]
 *
 * Opens CONNS connections to 127.0.0.1:PORT (from the source addresses
 * 127.0.0.1 .. 127.0.0.NADDRS, to avoid running out of ports), then each
 * connection plays ping-pong: send SIZE bytes, wait for all SIZE bytes
 * back, again.  After a 0.3 s warm-up it counts round trips for SECONDS
 * (or until ROUNDTRIPS) and prints
 *   rt_per_s R
 *   us_per_rt U        (per connection: CONNS / R, in microseconds)
 * With -i it only connects, prints "connected N" and holds the connections
 * until its stdin is closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
  int fd;
  size_t sent, got;
} conn;

static size_t size = 64;
static char *msg, *scratch;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int open_conn(int port, int src) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET};
  if (src > 1) {
    a.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)src);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
      die("bind");
  }
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
    die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* Send what is left of the message; 1 when all of it is out. */
static int pump_out(conn *c) {
  while (c->sent < size) {
    ssize_t n = write(c->fd, msg + c->sent, size - c->sent);
    if (n < 0) {
      if (errno == EAGAIN)
        return 0;
      die("write");
    }
    c->sent += (size_t)n;
  }
  return 1;
}

int main(int argc, char **argv) {
  int port = 0, nconns = 1, naddrs = 1, idle = 0, opt;
  double seconds = 2;
  long limit = 0;
  while ((opt = getopt(argc, argv, "p:c:s:t:n:a:i")) != -1) {
    switch (opt) {
    case 'p': port = atoi(optarg); break;
    case 'c': nconns = atoi(optarg); break;
    case 's': size = (size_t)atol(optarg); break;
    case 't': seconds = atof(optarg); break;
    case 'n': limit = atol(optarg); break;
    case 'a': naddrs = atoi(optarg); break;
    case 'i': idle = 1; break;
    default:
      fprintf(stderr, "usage: echo_load -p PORT [-c N] [-s SIZE] [-t S | -n RT] [-a NADDRS] [-i]\n");
      return 2;
    }
  }
  conn *cs = calloc((size_t)nconns, sizeof *cs);
  msg = malloc(size);
  scratch = malloc(size > 65536 ? size : 65536);
  memset(msg, 'x', size);
  for (int i = 0; i < nconns; i++)
    cs[i].fd = open_conn(port, 1 + i % naddrs);
  if (idle) {
    printf("connected %d\n", nconns);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < nconns; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
      die("epoll_ctl");
    if (!pump_out(&cs[i])) {
      ev.events = EPOLLIN | EPOLLOUT;
      epoll_ctl(ep, EPOLL_CTL_MOD, cs[i].fd, &ev);
    }
  }
  double t0 = now(), start = t0 + 0.3, end = start + seconds;
  long count = 0;
  int counting = 0;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    for (int k = 0; k < n; k++) {
      conn *c = &cs[evs[k].data.u32];
      if (evs[k].events & EPOLLOUT && pump_out(c)) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        continue;
      ssize_t r = read(c->fd, scratch, size - c->got);
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        fprintf(stderr, "echo_load: connection lost\n");
        return 1;
      }
      if (r < 0)
        continue;
      c->got += (size_t)r;
      if (c->got < size || c->sent < size)
        continue;
      count += counting;
      c->got = c->sent = 0;
      if (!pump_out(c)) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = evs[k].data.u32};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
    }
    double t = now();
    if (!counting && (t >= start || limit)) {
      counting = 1;
      start = t;
      end = start + seconds;
    }
    if (limit ? count >= limit : t >= end)
      break;
  }
  double el = now() - start;
  double rate = (double)count / el;
  printf("rt_per_s %.0f\nus_per_rt %.3f\n", rate, 1e6 * nconns / rate);
  return 0;
}
