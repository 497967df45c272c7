/* echo_scio: the scio echo server of the echo benchmarks (bench/echo.sh):
 * scio_tcp_listen + scio_listener_serve, one task per connection, a
 * small stack (one page when idle), and message buffers lent from a pool
 * only while a message is in hand: wait_receive_ready (the one checkpoint
 * of a round trip) holds no buffer, receive_nowait and send_nowait do not
 * yield, so the buffer goes back before any other task runs.  The pool is
 * LIFO, so the buffer lent next is the one just used, hot in the cache:
 * 1000 connections share one buffer, as the libevent baseline's handlers
 * share its static one.  A send the socket cannot take at once keeps its
 * rest in a copy of its own, as the baseline does.
 *
 *   echo_scio PORT [BUFSIZE]   (0: a free port; prints "listening PORT";
 *                               BUFSIZE default 16384: one
 *                               message of the 1000 x 16 KiB case per
 *                               receive; a smaller buffer multiplies the
 *                               receives, and each one is a checkpoint
 *                               that yields to the other 999 tasks) */
#include <scio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t bufsize = 16384;

/* The pool: a free list threaded through the buffers themselves. */
typedef struct buf_node {
  struct buf_node *next;
} buf_node;
static buf_node *pool;

static void *buf_get(void) {
  buf_node *b = pool;
  if (b) {
    pool = b->next;
    return b;
  }
  return malloc(bufsize < sizeof(buf_node) ? sizeof(buf_node) : bufsize);
}

static void buf_put(void *p) {
  buf_node *b = p;
  b->next = pool;
  pool = b;
}

/* The wait is always called from this shallow frame, so an idle
 * connection's task touches one page of stack and holds no buffer. */
static int echo(scio_stream *conn, void *arg) {
  (void)arg;
  int rc;
  for (;;) {
    if ((rc = scio_wait_receive_ready(conn)) < 0)
      break;
    char *buf = buf_get();
    if (!buf) {
      rc = SCIO_ENOMEM;
      break;
    }
    ssize_t n = scio_receive_nowait(conn, buf, bufsize);
    if (n == SCIO_EWOULDBLOCK) {
      buf_put(buf);
      continue;
    }
    if (n < 0) {
      buf_put(buf);
      rc = n == SCIO_EOF ? 0 : (int)n;
      break;
    }
    ssize_t w = scio_send_nowait(conn, buf, (size_t)n);
    if (w == SCIO_EWOULDBLOCK)
      w = 0;
    if (w < 0) {
      buf_put(buf);
      rc = (int)w;
      break;
    }
    if (w == n) {
      buf_put(buf);
      continue;
    }
    /* The socket is full: keep the rest in a buffer of our own. */
    size_t rest = (size_t)(n - w);
    char *own = malloc(rest);
    if (!own) {
      buf_put(buf);
      rc = SCIO_ENOMEM;
      break;
    }
    memcpy(own, buf + w, rest);
    buf_put(buf);
    rc = scio_send(conn, own, rest);
    free(own);
    if (rc < 0)
      break;
  }
  return rc;
}

static void quiet(void *ctx, const struct sockaddr_storage *peer, int code,
                  const char *detail) {
  (void)ctx;
  (void)peer;
  (void)code;
  (void)detail;
}

static int main_task(void *arg) {
  int port = *(int *)arg;
  scio_listener *l;
  int rc = scio_tcp_listen("127.0.0.1", (uint16_t)port, NULL, &l);
  if (rc < 0)
    return rc;
  printf("listening %d\n", scio_listener_port(l));
  fflush(stdout);
  scio_serve_opts o = {0};
  o.on_error = quiet; /* the load generator's exit resets connections */
  rc = scio_listener_serve(l, echo, NULL, NULL, &o);
  scio_listener_close(l);
  return rc;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2)
    bufsize = (size_t)atol(argv[2]);
  scio_run_opts o = {0};
  o.backend = "epoll";
  int rc = scio_run(main_task, &port, &o);
  if (rc < 0)
    fprintf(stderr, "echo_scio: %s: %s\n", scio_strerror(rc), scio_errmsg());
  return rc < 0;
}
