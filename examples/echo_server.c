/* echo_server: a TCP echo server on scio, with graceful shutdown.
 *
 *   echo_server [--host H] [--port P] [--grace S]
 *
 * Listens on every address of H (default: all interfaces, IPv4 and IPv6)
 * at port P (default 0: a free port), prints one line
 *   echo_server: listening on 0.0.0.0:40123 [::]:40123
 * once it accepts connections, and echoes every byte of every connection.
 *
 * Shutdown.  The first SIGINT or SIGTERM closes the listeners (new
 * connections are refused) and gives the open connections S seconds
 * (default 10) to finish on their own; the ones still open then are
 * cancelled, which closes them.  A second signal cuts them at once.  The
 * exit status is 0 either way.
 *
 * How, in structured-concurrency terms: serve runs in its own nursery
 * (the connection tasks are its children) inside a cancel scope with no
 * deadline.  Closing the listener makes serve stop accepting and wait for
 * its children; giving that scope a deadline bounds the wait, and the
 * deadline cancels whatever is still running.
 *
 * Signals reach the loop through a self-pipe: the handler writes a byte,
 * and a task waits for the pipe with scio_wait_readable. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <scio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;
  /* Nothing to do if the pipe is full: one byte is enough to wake. */
  if (write(sig_pipe[1], &c, 1) < 0) {
  }
  errno = saved;
}

typedef struct app {
  const char *host;
  unsigned port;
  double grace;
  scio_listener *listener;
  scio_nursery nursery; /* the signal task and the serve task */
  scio_scope serve_scope; /* around serve: the grace deadline goes here */
  int serving;            /* serve_scope is open */
  int connections;        /* open now */
  int cut;                /* cancelled by the end of the grace period */
} app;

/* Each connection: modest buffer, so many idle connections stay cheap. */
static int echo(scio_stream *conn, void *arg) {
  app *a = arg;
  char buf[2048];
  int rc = 0;
  a->connections++;
  for (;;) {
    ssize_t n = scio_receive(conn, buf, sizeof buf);
    if (n == SCIO_EOF)
      break;
    if (n < 0) {
      rc = (int)n;
      break;
    }
    if ((rc = scio_send(conn, buf, (size_t)n)) < 0)
      break;
  }
  a->connections--;
  if (rc == SCIO_ECANCELED)
    a->cut++;
  return rc;
}

static int serve_task(void *p) {
  app *a = p;
  int rc = scio_scope_open(&a->serve_scope, SCIO_DEADLINE_NONE, 0);
  if (rc < 0)
    return rc;
  a->serving = 1;
  /* NULL nursery: serve owns the connection tasks and returns only after
   * the last one, so the scope's deadline bounds them all. */
  rc = scio_listener_serve(a->listener, echo, a, NULL, NULL);
  a->serving = 0;
  /* A cancellation by the grace deadline is caught here: rc becomes 0. */
  rc = scio_scope_close_with(&a->serve_scope, rc);
  scio_nursery_cancel(&a->nursery); /* the signal task too */
  return rc;
}

/* Wait for the next signal; 0 and its name, or an error (cancelled). */
static int next_signal(const char **name) {
  for (;;) {
    int rc = scio_wait_readable(sig_pipe[0]);
    if (rc < 0)
      return rc;
    char c;
    ssize_t n = read(sig_pipe[0], &c, 1);
    if (n == 1) {
      *name = strsignal(c);
      return 0;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return scio_seterr(-errno, "read the signal pipe");
  }
}

static int signal_task(void *p) {
  app *a = p;
  const char *name;
  int rc = next_signal(&name);
  if (rc < 0)
    return rc;
  fprintf(stderr,
          "echo_server: %s: not accepting; %d connection%s open, "
          "%g s to finish\n",
          name, a->connections, a->connections == 1 ? "" : "s", a->grace);
  scio_listener_close(a->listener);
  a->listener = NULL;
  /* serve is blocked (it has not seen the close yet), so its scope is
   * still open: no checkpoint since the signal. */
  if (a->serving)
    scio_scope_set_deadline(&a->serve_scope, scio_now() + a->grace);
  if ((rc = next_signal(&name)) < 0)
    return rc;
  fprintf(stderr, "echo_server: %s again: closing %d connection%s now\n",
          name, a->connections, a->connections == 1 ? "" : "s");
  if (a->serving)
    scio_scope_cancel_reason(&a->serve_scope, "second signal");
  return 0;
}

static int print_addrs(scio_listener *l) {
  struct sockaddr_storage addrs[8];
  int n = scio_listener_addrs(l, addrs, 8);
  if (n < 0)
    return n;
  printf("echo_server: listening on");
  for (int i = 0; i < n && i < 8; i++) {
    char text[80];
    scio_sockaddr_format(&addrs[i], text, sizeof text);
    printf(" %s", text);
  }
  printf("\n");
  fflush(stdout);
  return 0;
}

static int main_task(void *p) {
  app *a = p;
  int rc = scio_tcp_listen(a->host, (uint16_t)a->port, NULL, &a->listener);
  if (rc < 0)
    return rc;
  if ((rc = print_addrs(a->listener)) < 0) {
    scio_listener_close(a->listener);
    return rc;
  }
  scio_nursery_open(&a->nursery);
  scio_start_soon(&a->nursery, signal_task, a);
  scio_start_soon(&a->nursery, serve_task, a);
  rc = scio_nursery_close(&a->nursery);
  scio_listener_close(a->listener); /* NULL once the signal task closed it */
  a->listener = NULL;
  if (rc == 0)
    fprintf(stderr, "echo_server: stopped; %d connection%s cut\n", a->cut,
            a->cut == 1 ? "" : "s");
  return rc;
}

static int usage(void) {
  fprintf(stderr, "usage: echo_server [--host H] [--port P] [--grace S]\n");
  return 2;
}

int main(int argc, char **argv) {
  app a;
  memset(&a, 0, sizeof a);
  a.grace = 10.0;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      a.host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v > 65535)
        return usage();
      a.port = (unsigned)v;
    } else if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
      a.grace = strtod(argv[++i], &end);
      if (*end || !(a.grace >= 0) || isinf(a.grace))
        return usage();
    } else {
      return usage();
    }
  }
  if (pipe(sig_pipe) < 0) {
    perror("echo_server: pipe");
    return 1;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
    fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int rc = scio_run(main_task, &a, NULL);
  close(sig_pipe[0]);
  close(sig_pipe[1]);
  if (rc < 0) {
    fprintf(stderr, "echo_server: %s: %s\n", scio_strerror(rc),
            scio_errmsg());
    return 1;
  }
  return 0;
}
