/* echo_libevent: the baseline of the echo benchmarks (bench/echo.sh): a
 * plain libevent echo server, event callbacks with read()/write() (no
 * bufferevents, which copy).
 *
 *   echo_libevent PORT     (0: a free port; prints "listening PORT") */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF = 16384 };

typedef struct conn {
  struct event *rd, *wr;
  char *pending; /* bytes read but not yet written (partial write) */
  size_t off, len;
} conn;

static struct event_base *base;
static char buf[BUF];

static void conn_free(conn *c, int fd) {
  event_free(c->rd);
  event_free(c->wr);
  free(c->pending);
  free(c);
  close(fd);
}

/* Write what is pending; 1 when done. */
static int flush(conn *c, int fd) {
  while (c->off < c->len) {
    ssize_t n = write(fd, c->pending + c->off, c->len - c->off);
    if (n < 0)
      return errno == EAGAIN ? 0 : -1;
    c->off += (size_t)n;
  }
  c->off = c->len = 0;
  return 1;
}

static void on_write(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  conn *c = arg;
  int rc = flush(c, fd);
  if (rc < 0)
    conn_free(c, fd);
  else if (rc == 1)
    event_add(c->rd, NULL);
  else
    event_add(c->wr, NULL);
}

static void on_read(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  conn *c = arg;
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && errno == EAGAIN)
      return;
    conn_free(c, fd);
    return;
  }
  ssize_t w = write(fd, buf, (size_t)n);
  if (w == n)
    return;
  if (w < 0) {
    if (errno != EAGAIN) {
      conn_free(c, fd);
      return;
    }
    w = 0;
  }
  /* Partial: keep the rest, stop reading until it is out. */
  if (!c->pending)
    c->pending = malloc(BUF);
  memcpy(c->pending, buf + w, (size_t)(n - w));
  c->off = 0;
  c->len = (size_t)(n - w);
  event_del(c->rd);
  event_add(c->wr, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  (void)arg;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    c->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wr = event_new(base, fd, EV_WRITE, on_write, c);
    event_add(c->rd, NULL);
  }
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  socklen_t sl = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(lfd, SOMAXCONN) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &sl) < 0) {
    perror("echo_libevent");
    return 1;
  }
  base = event_base_new();
  struct event *lev =
      event_new(base, lfd, EV_READ | EV_PERSIST, on_accept, NULL);
  event_add(lev, NULL);
  printf("listening %d\n", ntohs(a.sin_port));
  fflush(stdout);
  event_base_dispatch(base);
  return 0;
}
