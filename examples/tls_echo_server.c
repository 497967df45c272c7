/* tls_echo_server: the echo server behind TLS.
 *
 *   tls_echo_server --cert FILE --key FILE [--host H] [--port P]
 *
 * FILE are PEM files: the certificate chain (leaf first) and its key.  Each
 * connection's TLS handshake runs in that connection's task, with a 10 s
 * limit; a failed handshake is reported on stderr and the server goes on.
 *
 * Listens on every address of H (default: all interfaces, IPv4 and IPv6)
 * at port P (default 0: a free port), prints one line
 *   tls_echo_server: listening on 0.0.0.0:40123 [::]:40123
 * once it accepts connections, echoes every byte of every connection, and
 * exits 0 on SIGINT or SIGTERM after closing its listeners.
 *
 * Signals reach the loop through a self-pipe: the handler writes a byte,
 * a task waits for the pipe with scio_wait_readable and then stops the
 * server (closes the listener, cancels the connections). */
#include <errno.h>
#include <fcntl.h>
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
  const char *cert, *key;
  scio_tls_ctx *tls;
  scio_tls_handler th;
  const char *host;
  unsigned port;
  scio_listener *listener;
  scio_nursery nursery;
} app;

/* Each connection: modest buffer, so many idle connections stay cheap. */
static int echo(scio_stream *conn, void *arg) {
  (void)arg;
  char buf[2048];
  for (;;) {
    ssize_t n = scio_receive(conn, buf, sizeof buf);
    if (n == SCIO_EOF)
      return 0;
    if (n < 0)
      return (int)n;
    int rc = scio_send(conn, buf, (size_t)n);
    if (rc < 0)
      return rc;
  }
}

static int serve_task(void *p) {
  app *a = p;
  int rc = scio_listener_serve(a->listener, scio_tls_serve_handler, &a->th,
                               NULL, NULL);
  scio_nursery_cancel(&a->nursery); /* the signal task too */
  return rc == SCIO_ECANCELED ? 0 : rc;
}

static int signal_task(void *p) {
  app *a = p;
  int rc = scio_wait_readable(sig_pipe[0]);
  if (rc < 0)
    return rc;
  char c;
  if (read(sig_pipe[0], &c, 1) == 1)
    fprintf(stderr, "tls_echo_server: %s, stopping\n", strsignal(c));
  scio_listener_close(a->listener);
  a->listener = NULL;
  scio_nursery_cancel(&a->nursery);
  return 0;
}

static int print_addrs(scio_listener *l) {
  struct sockaddr_storage addrs[8];
  int n = scio_listener_addrs(l, addrs, 8);
  if (n < 0)
    return n;
  printf("tls_echo_server: listening on");
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
  scio_tls_ctx_opts co = {.role = SCIO_TLS_SERVER,
                          .cert_file = a->cert,
                          .key_file = a->key,
                          .alpn = "http/1.1"};
  int rc = scio_tls_ctx_open(&co, &a->tls);
  if (rc < 0)
    return rc;
  scio_tls_handler_init(&a->th, a->tls, NULL, echo, NULL);
  rc = scio_tcp_listen(a->host, (uint16_t)a->port, NULL, &a->listener);
  if (rc < 0) {
    scio_tls_ctx_close(a->tls);
    return rc;
  }
  if ((rc = print_addrs(a->listener)) < 0)
    return rc;
  if ((rc = scio_nursery_open(&a->nursery)) < 0)
    return rc;
  scio_start_soon(&a->nursery, signal_task, a);
  scio_start_soon(&a->nursery, serve_task, a);
  rc = scio_nursery_close(&a->nursery);
  scio_listener_close(a->listener);
  a->listener = NULL;
  scio_tls_ctx_close(a->tls);
  return rc;
}

static int usage(void) {
  fprintf(stderr, "usage: tls_echo_server --cert FILE --key FILE "
                  "[--host H] [--port P]\n");
  return 2;
}

int main(int argc, char **argv) {
  app a;
  memset(&a, 0, sizeof a);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
      a.cert = argv[++i];
    } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
      a.key = argv[++i];
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      a.host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      char *end;
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v > 65535)
        return usage();
      a.port = (unsigned)v;
    } else {
      return usage();
    }
  }
  if (!a.cert || !a.key)
    return usage();
  if (pipe(sig_pipe) < 0) {
    perror("tls_echo_server: pipe");
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
    fprintf(stderr, "tls_echo_server: %s: %s\n", scio_strerror(rc),
            scio_errmsg());
    return 1;
  }
  return 0;
}
