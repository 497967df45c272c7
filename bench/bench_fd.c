/* bench_fd -- the cost of the I/O idle path: a ping-pong of 1-byte messages
 * over a socketpair, per round trip, three ways in the same run:
 *
 *   fd_pingpong           two scio tasks, scio_wait_readable + read/write
 *                         (the public wait: a poll pre-check, level
 *                         semantics for foreign fds)
 *   fd_pingpong_layer     the same with the layer wait scio__fd_wait (what
 *                         the socket layer uses: no syscall of its own; a
 *                         short read means the queue is drained, so the next
 *                         receive waits before it reads)
 *   fd_pingpong_libevent  plain libevent: a persistent read event per end,
 *                         each callback reads and writes back
 *
 * and the ratios fd_pingpong_vs_libevent, fd_pingpong_layer_vs_libevent
 * (scio's time over libevent's; 1.00 x is parity).  The three run
 * alternately, BENCH_REPEAT times, and each keeps its best, so that a
 * noisy neighbour hurts them alike.
 *
 * Per round trip libevent makes 6 syscalls (2 epoll_wait, 2 read, 2 write);
 * check scio's with `strace -c -f bench/bench_fd fd_pingpong_layer`.
 *
 * Everything runs in one thread and never sleeps (each epoll_wait finds the
 * byte just written), so the figures are the thread's CPU time, user and
 * kernel, per round trip: on a loaded machine wall time would mostly
 * measure how often the scheduler preempted us.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "core/layer.h"

#define ROUNDS 20000

/* CPU seconds of this thread (user + system). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void make_pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
    perror("socketpair");
    exit(1);
  }
  for (int i = 0; i < 2; i++)
    fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK);
}

static void must_write(int fd) {
  if (write(fd, "p", 1) != 1) {
    perror("write");
    exit(1);
  }
}

/* ---- scio, public wait ---- */

typedef struct side {
  int fd;
  int first; /* sends first */
  int layer;
} side;

static int receive_public(int fd) {
  char buf[64];
  for (;;) {
    int rc = scio_wait_readable(fd);
    if (rc < 0)
      return rc;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0)
      return 0;
    if (n == 0)
      return SCIO_EOF;
    if (errno != EAGAIN)
      return -errno;
  }
}

/* As a socket layer receives: read; on EAGAIN, or when the last read came
 * back short (the queue was drained), wait first.  In a ping-pong every
 * read is short, so every receive waits, then reads once. */
static int receive_layer(int fd, int *drained) {
  char buf[64];
  for (;;) {
    if (*drained) {
      int rc = scio__fd_wait(fd, SCIO__FD_READ);
      if (rc < 0)
        return rc;
      *drained = 0;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      *drained = (size_t)n < sizeof buf;
      return 0;
    }
    if (n == 0)
      return SCIO_EOF;
    if (errno != EAGAIN)
      return -errno;
    *drained = 1;
  }
}

static int player(void *p) {
  side *s = p;
  int drained = 1;
  for (int i = 0; i < ROUNDS; i++) {
    if (s->first)
      must_write(s->fd);
    int rc = s->layer ? receive_layer(s->fd, &drained) : receive_public(s->fd);
    if (rc < 0)
      return rc;
    if (!s->first)
      must_write(s->fd);
  }
  return 0;
}

typedef struct game {
  int layer;
  double ns;
} game;

static int game_body(void *p) {
  game *g = p;
  int sv[2];
  make_pair(sv);
  side a = {sv[0], 1, g->layer}, b = {sv[1], 0, g->layer};
  scio_nursery n;
  bench_check(scio_nursery_open(&n), "nursery");
  double t0 = cpu_now();
  bench_check(scio_start_soon(&n, player, &b), "spawn");
  bench_check(scio_start_soon(&n, player, &a), "spawn");
  bench_check(scio_nursery_close(&n), "ping-pong");
  g->ns = (cpu_now() - t0) * 1e9 / ROUNDS;
  if (g->layer) {
    bench_check(scio__fd_close(sv[0]), "close");
    bench_check(scio__fd_close(sv[1]), "close");
  } else {
    scio_notify_closing(sv[0]);
    scio_notify_closing(sv[1]);
    close(sv[0]);
    close(sv[1]);
  }
  return 0;
}

static double scio_once(int layer) {
  game g = {layer, 0};
  bench_check(scio_run(game_body, &g, NULL), "run");
  return g.ns;
}

/* ---- libevent ---- */

typedef struct lside {
  int fd;
  int first;
  int count;
  struct event_base *base;
} lside;

static void lcb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  lside *s = arg;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0)
    return; /* EAGAIN: nothing yet */
  if (s->first && ++s->count == ROUNDS) {
    event_base_loopbreak(s->base);
    return;
  }
  must_write(fd);
}

static double libevent_once(void) {
  struct event_base *base = event_base_new();
  int sv[2];
  make_pair(sv);
  lside a = {sv[0], 1, 0, base}, b = {sv[1], 0, 0, base};
  struct event *ea = event_new(base, sv[0], EV_READ | EV_PERSIST, lcb, &a);
  struct event *eb = event_new(base, sv[1], EV_READ | EV_PERSIST, lcb, &b);
  if (!base || !ea || !eb || event_add(ea, NULL) < 0 ||
      event_add(eb, NULL) < 0) {
    fprintf(stderr, "bench_fd: libevent setup failed\n");
    exit(1);
  }
  double t0 = cpu_now();
  must_write(sv[0]);
  event_base_dispatch(base);
  double ns = (cpu_now() - t0) * 1e9 / ROUNDS;
  event_free(ea);
  event_free(eb);
  event_base_free(base);
  close(sv[0]);
  close(sv[1]);
  return ns;
}

int main(int argc, char **argv) {
  int want_pub = bench_wanted(argc, argv, "fd_pingpong");
  int want_layer = bench_wanted(argc, argv, "fd_pingpong_layer");
  int want_ev = bench_wanted(argc, argv, "fd_pingpong_libevent") ||
                want_pub || want_layer; /* the ratios need it */
  double pub = 0, layer = 0, ev = 0;
  for (int r = 0; r < BENCH_REPEAT; r++) {
    if (want_ev) {
      double v = libevent_once();
      ev = r == 0 || v < ev ? v : ev;
    }
    if (want_pub) {
      double v = scio_once(0);
      pub = r == 0 || v < pub ? v : pub;
    }
    if (want_layer) {
      double v = scio_once(1);
      layer = r == 0 || v < layer ? v : layer;
    }
  }
  if (want_pub)
    bench_report("fd_pingpong", pub, "ns");
  if (want_layer)
    bench_report("fd_pingpong_layer", layer, "ns");
  if (want_ev)
    bench_report("fd_pingpong_libevent", ev, "ns");
  if (want_pub)
    bench_report("fd_pingpong_vs_libevent", pub / ev, "x");
  if (want_layer)
    bench_report("fd_pingpong_layer_vs_libevent", layer / ev, "x");
  return 0;
}
