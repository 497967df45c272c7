/* examples/tcp_client.c -- a small netcat on scio_connect_tcp.
 *
 *   tcp_client [--verbose] [--dns-server HOST:PORT]
 *              [--tls [--cacert FILE] [--linger S]] HOST PORT
 *
 * Connects with happy eyeballs (RFC 8305), then copies stdin to the server
 * and the server's bytes to stdout, in two tasks; EOF on stdin half-closes
 * the connection (the server sees EOF), and the program ends when the
 * server has closed its side too.  --verbose prints every connection
 * attempt and its outcome on stderr:
 *
 *   attempt [2001:db8::2]:8000 ...
 *   attempt [2001:db8::2]:8000 ... timed out at 0.252 s, trying the next
 *   attempt 192.0.2.2:8000 ...
 *   attempt 192.0.2.2:8000 ... connected
 *   attempt [2001:db8::2]:8000 ... abandoned
 *   connected to 192.0.2.2:8000 after 0.251 s
 *
 * --tls speaks TLS over the connection (scio_connect_tcp's TLS layer): the
 * server's certificate is verified against the system trust store, or
 * against the CA certificates in FILE (PEM) with --cacert, and must name
 * HOST.  With --verbose the TLS version and cipher are shown too:
 *
 *   tls TLSv1.3 TLS_AES_256_GCM_SHA384, certificate verified for localhost
 *
 * TLS has no half-close, so under --tls the end of stdin cannot be passed
 * on: the client then keeps copying the server's bytes until the server
 * has been quiet for --linger S seconds (default 1; a cancel scope whose
 * deadline moves with every receive), and closes (close_notify).
 *
 * Exit status: 0, or 1 with the error on stderr.
 */
#include <scio.h>
#include <scio/net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct client {
  const char *host;
  unsigned port;
  int verbose;
  const char *dns_server;
  int tls;
  const char *cacert;
  double linger;
  int stdin_done;
  scio_scope quiet; /* around download: its deadline is the linger */
  scio_stream *conn;
  char winner[80];
  double elapsed;
} client;

static void on_event(void *arg, const scio_connect_event *ev) {
  client *c = arg;
  switch (ev->kind) {
  case SCIO_CONNECT_RESOLVED:
    if (ev->error)
      fprintf(stderr, "resolve %s (%s): %s\n", c->host,
              ev->family == AF_INET6 ? "AAAA" : "A", ev->error_text);
    else
      fprintf(stderr, "resolve %s (%s): %d address%s after %.3f s\n", c->host,
              ev->family == AF_INET6 ? "AAAA" : "A", ev->count,
              ev->count == 1 ? "" : "es", ev->elapsed);
    break;
  case SCIO_CONNECT_ATTEMPT:
    fprintf(stderr, "attempt %s ...\n", ev->addr_text);
    break;
  case SCIO_CONNECT_SLOW:
    fprintf(stderr, "attempt %s ... timed out at %.3f s, trying the next\n",
            ev->addr_text, ev->elapsed);
    break;
  case SCIO_CONNECT_FAILED:
    fprintf(stderr, "attempt %s ... %s\n", ev->addr_text, ev->error_text);
    break;
  case SCIO_CONNECT_CONNECTED:
    fprintf(stderr, "attempt %s ... connected\n", ev->addr_text);
    snprintf(c->winner, sizeof c->winner, "%s", ev->addr_text);
    c->elapsed = ev->elapsed;
    break;
  case SCIO_CONNECT_ABANDONED:
    fprintf(stderr, "attempt %s ... abandoned\n", ev->addr_text);
    break;
  }
}

/* stdin -> server; EOF on stdin is a half-close. */
static int upload(void *arg) {
  client *c = arg;
  char buf[16384];
  for (;;) {
    int rc = scio_wait_readable(0);
    if (rc < 0)
      return rc;
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0)
      return -errno;
    if (n == 0 && !c->tls)
      return scio_send_eof(c->conn);
    if (n == 0) {
      if (c->verbose)
        fprintf(stderr, "end of input; TLS has no half-close: reading until "
                        "the server is quiet for %g s\n", c->linger);
      c->stdin_done = 1;
      return scio_scope_set_deadline(&c->quiet, scio_now() + c->linger);
    }
    if ((rc = scio_send(c->conn, buf, (size_t)n)) < 0)
      return rc;
  }
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    int rc = scio_wait_writable(fd);
    if (rc < 0)
      return rc;
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* server -> stdout, until the server's EOF. */
static int download(client *c) {
  char buf[16384];
  for (;;) {
    ssize_t n = scio_receive(c->conn, buf, sizeof buf);
    if (n == SCIO_EOF)
      return 0;
    if (n < 0)
      return (int)n;
    int rc = write_all(1, buf, (size_t)n);
    if (rc < 0)
      return rc;
    if (c->stdin_done)
      scio_scope_set_deadline(&c->quiet, scio_now() + c->linger);
  }
}

static void show_tls(client *c) {
  char version[32] = "?", cipher[64] = "?";
  scio_stream_attr(c->conn, SCIO_ATTR_TLS_VERSION, version, sizeof version);
  scio_stream_attr(c->conn, SCIO_ATTR_CIPHER, cipher, sizeof cipher);
  fprintf(stderr, "tls %s %s, certificate verified for %s\n", version, cipher,
          c->host);
}

/* Connect, with TLS over the socket when asked: the layer runs the
 * handshake (verifying the certificate for c->host) before
 * scio_connect_tcp returns. */
static int open_connection(client *c) {
  scio_connect_opts o = {0};
  o.dns.servers = c->dns_server;
  if (c->verbose) {
    o.on_event = on_event;
    o.on_event_arg = c;
  }
  scio_tls_ctx *ctx = NULL;
  scio_tls_layer tl;
  if (c->tls) {
    scio_tls_ctx_opts to = {0};
    to.role = SCIO_TLS_CLIENT;
    to.ca_file = c->cacert; /* NULL: the system store */
    int rc = scio_tls_ctx_open(&to, &ctx);
    if (rc < 0)
      return rc;
    scio_tls_layer_init(&tl, ctx, NULL);
    o.layer = &tl.base;
  }
  int rc = scio_connect_tcp(c->host, (uint16_t)c->port, &o, &c->conn);
  scio_tls_ctx_close(ctx); /* the TLS stream keeps its own reference */
  if (rc < 0)
    return rc;
  if (c->verbose) {
    fprintf(stderr, "connected to %s after %.3f s\n", c->winner, c->elapsed);
    if (c->tls)
      show_tls(c);
  }
  return 0;
}

static int run(void *arg) {
  client *c = arg;
  int rc = open_connection(c);
  if (rc < 0)
    return rc;
  scio_scope_open(&c->quiet, SCIO_DEADLINE_NONE, 0);
  scio_nursery n;
  scio_nursery_open(&n);
  rc = scio_start_soon(&n, upload, c);
  if (rc == 0)
    rc = download(c);
  /* The server has closed (or went quiet): stop reading stdin. */
  scio_nursery_cancel(&n);
  int nrc = scio_nursery_close(&n);
  rc = scio_scope_close_with(&c->quiet, rc < 0 ? rc : nrc);
  if (rc == 0 && c->verbose && scio_scope_cancelled_caught(&c->quiet))
    fprintf(stderr, "the server was quiet for %g s: closing\n", c->linger);
  scio_close(c->conn);
  return rc;
}

static void usage(void) {
  fprintf(stderr,
          "usage: tcp_client [--verbose] [--dns-server HOST:PORT] "
          "[--tls [--cacert FILE] [--linger S]] HOST PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  client c = {0};
  c.linger = 1.0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    if (strcmp(argv[i], "--verbose") == 0)
      c.verbose = 1;
    else if (strcmp(argv[i], "--dns-server") == 0 && i + 1 < argc)
      c.dns_server = argv[++i];
    else if (strcmp(argv[i], "--tls") == 0)
      c.tls = 1;
    else if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc)
      c.cacert = argv[++i];
    else if (strcmp(argv[i], "--linger") == 0 && i + 1 < argc) {
      char *end;
      c.linger = strtod(argv[++i], &end);
      if (*end || !(c.linger > 0) || c.linger > 3600)
        usage();
    }
    else
      usage();
  }
  if (argc - i != 2 || (c.cacert && !c.tls))
    usage();
  c.host = argv[i];
  char *end;
  unsigned long port = strtoul(argv[i + 1], &end, 10);
  if (*end || port == 0 || port > 65535)
    usage();
  c.port = (unsigned)port;
  int rc = scio_run(run, &c, NULL);
  if (rc < 0) {
    fprintf(stderr, "tcp_client: %s\n", scio_errmsg()[0] ? scio_errmsg()
                                                          : scio_strerror(rc));
    return 1;
  }
  return 0;
}
