/* echo_scio: the scio echo server of the echo benchmarks (bench/echo.sh):
 * scio_tcp_listen + scio_listener_serve, one task per connection, a
 * small stack (one page when idle) and one heap buffer per active
 * connection.
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

static size_t bufsize = 16384;

/* The receive that waits is always called from this shallow frame, so an
 * idle connection's task touches one page of stack; the message buffer is
 * on the heap, allocated once the connection has sent something (an idle
 * connection never gets one). */
static int echo(scio_stream *conn, void *arg) {
  (void)arg;
  char first[256];
  char *buf = first;
  size_t cap = sizeof first;
  int rc;
  for (;;) {
    ssize_t n = scio_receive(conn, buf, cap);
    if (n < 0) {
      rc = n == SCIO_EOF ? 0 : (int)n;
      break;
    }
    if ((rc = scio_send(conn, buf, (size_t)n)) < 0)
      break;
    if (buf == first) {
      char *big = malloc(bufsize);
      if (big) {
        buf = big;
        cap = bufsize;
      }
    }
  }
  if (buf != first)
    free(buf);
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
