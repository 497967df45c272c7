/* bench/tls_scio_server.c -- the scio side of the TLS benchmarks
 * (bench/tls.sh): scio_tcp_listen, scio_listener_serve and the TLS serve
 * handler, one task per connection, as a scio user would write it.
 *
 *   tls_scio_server PORT [CERT KEY]
 * Listens on 127.0.0.1:PORT (0: a free port; prints "listening PORT" when
 * ready) and serves tls_client's protocol like the plain OpenSSL server
 * (bench/tls_openssl_server.c): after the handshake, an 8-byte length
 * (host order), that many bytes (read and dropped), then a one-byte
 * receipt, again until the client closes.  CERT and KEY are PEM files
 * (bench/tls.sh gives both servers the same ones); without them an ECDSA
 * P-256 certificate is made at start-up (tests/support/pki.c).  The
 * context has scio's server defaults, which are OpenSSL's as the baseline
 * uses them (TLS >= 1.2, session tickets issued).  Runs until killed. */
#include <scio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/pki.h"

/* Read exactly len bytes: 0, SCIO_EOF before the first byte, or an error. */
static int receive_all(scio_stream *s, void *buf, size_t len) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = scio_receive(s, p + got, len - got);
    if (n == SCIO_EOF && got == 0)
      return SCIO_EOF;
    if (n < 0)
      return n == SCIO_EOF ? SCIO_EBROKEN : (int)n;
    got += (size_t)n;
  }
  return 0;
}

/* The bulk sink: 64 KiB receives, as the baseline's SSL_read_ex calls. */
static int sink(scio_stream *tls, void *arg) {
  (void)arg;
  static unsigned char buf[65536]; /* one task at a time reads into it */
  for (;;) {
    unsigned long long want;
    int rc = receive_all(tls, &want, sizeof want);
    if (rc == SCIO_EOF)
      return 0;
    if (rc < 0)
      return rc;
    while (want > 0) {
      ssize_t n = scio_receive(tls, buf, want < sizeof buf ? want : sizeof buf);
      if (n < 0)
        return n == SCIO_EOF ? SCIO_EBROKEN : (int)n;
      want -= (unsigned long long)n;
    }
    if ((rc = scio_send(tls, "!", 1)) < 0)
      return rc;
  }
}

/* The handshake clients close without close_notify: every such connection
 * is an error for serve's hook, and not worth a line each. */
static void quiet(void *ctx, const struct sockaddr_storage *peer, int code,
                  const char *detail) {
  (void)ctx;
  (void)peer;
  (void)code;
  (void)detail;
}

typedef struct app {
  int port;
  const char *cert, *key;
} app;

static int main_task(void *arg) {
  app *a = arg;
  test_pki pki = {0};
  scio_tls_ctx_opts co = {.role = SCIO_TLS_SERVER};
  if (a->cert) {
    co.cert_file = a->cert;
    co.key_file = a->key;
  } else {
    if (test_pki_make(&pki) < 0)
      return SCIO_ENOMEM;
    co.cert_pem = pki.server;
    co.key_pem = pki.server_key;
  }
  scio_tls_ctx *ctx;
  int rc = scio_tls_ctx_open(&co, &ctx);
  test_pki_free(&pki);
  if (rc < 0)
    return rc;
  scio_listener *l;
  if ((rc = scio_tcp_listen("127.0.0.1", (uint16_t)a->port, NULL, &l)) < 0) {
    scio_tls_ctx_close(ctx);
    return rc;
  }
  printf("listening %d\n", scio_listener_port(l));
  fflush(stdout);
  scio_tls_handler th;
  scio_tls_handler_init(&th, ctx, NULL, sink, NULL);
  scio_serve_opts so = {0};
  so.on_error = quiet;
  rc = scio_listener_serve(l, scio_tls_serve_handler, &th, NULL, &so);
  scio_listener_close(l);
  scio_tls_ctx_close(ctx);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: tls_scio_server PORT [CERT KEY]\n");
    return 2;
  }
  app a = {.port = atoi(argv[1])};
  if (argc == 4) {
    a.cert = argv[2];
    a.key = argv[3];
  }
  scio_run_opts o = {0};
  o.backend = "epoll"; /* the baseline's */
  int rc = scio_run(main_task, &a, &o);
  if (rc < 0)
    fprintf(stderr, "tls_scio_server: %s: %s\n", scio_strerror(rc),
            scio_errmsg());
  return rc < 0;
}
