/* dtls_tool: a small DTLS client and echo server on scio, for
 * tests/dtls_peers.sh (against openssl s_server -dtls / s_client -dtls).
 *
 *   dtls_tool server --cert F --key F [--port P] [--count N] [--timeout S]
 *       binds 127.0.0.1:P (0: a free port), prints "listening PORT", echoes
 *       every datagram of every client, and exits 0 once N clients (default
 *       1) have ended their channel with close_notify.
 *   dtls_tool client --port P [--cacert F] [--name H] [--mtu M]
 *                    [--send TEXT]... [--expect N] [--timeout S]
 *       connects to 127.0.0.1:P (verifying the certificate for H, default
 *       localhost, against F), prints "connected VERSION CIPHER", sends
 *       each TEXT as one datagram, prints "received: TEXT" for each of N
 *       datagrams it then receives, and closes (close_notify).
 * Both give up after S seconds (default 20).  Exit 0 on success, 1 on
 * failure with "error: NAME: detail" on stderr. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <scio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEND 8

typedef struct tool {
  int server;
  const char *cert, *key, *cacert, *name;
  unsigned port;
  int count, expect, nsend;
  const char *send[MAX_SEND];
  double timeout;
  size_t mtu;
  int done; /* clients served */
  scio_dtls_endpoint *ep;
  scio_scope *serving; /* cancelled once `count` clients are done */
} tool;

static int fail(int rc, const char *what) {
  fprintf(stderr, "error: %s: %s: %s\n", what, scio_err_name(rc),
          scio_errmsg());
  return rc;
}

static int echo(scio_ostream *ch, void *arg) {
  tool *t = arg;
  char buf[2048];
  for (;;) {
    scio_datagram d = {.data = buf, .cap = sizeof buf};
    int rc = scio_ostream_receive(ch, &d);
    if (rc == SCIO_EOF)
      break;
    if (rc < 0)
      return rc;
    printf("echo: %.*s\n", (int)d.len, buf);
    fflush(stdout);
    if ((rc = scio_ostream_send(ch, &d)) < 0)
      return rc;
  }
  if (++t->done >= t->count)
    scio_scope_cancel(t->serving); /* serve returns */
  return 0;
}

static int run_server(tool *t) {
  scio_tls_ctx_opts co = {.role = SCIO_TLS_SERVER,
                          .cert_file = t->cert,
                          .key_file = t->key};
  scio_tls_ctx *ctx;
  int rc = scio_dtls_ctx_open(&co, &ctx);
  if (rc < 0)
    return fail(rc, "context");
  if ((rc = scio_dtls_endpoint_open("127.0.0.1", (uint16_t)t->port, NULL,
                                    &t->ep)) < 0) {
    scio_tls_ctx_close(ctx);
    return fail(rc, "endpoint");
  }
  struct sockaddr_storage sa;
  scio_dtls_endpoint_local_addr(t->ep, &sa);
  printf("listening %u\n", ntohs(((struct sockaddr_in *)&sa)->sin_port));
  fflush(stdout);
  scio_dtls_opts o = {.mtu = t->mtu};
  scio_scope cs;
  if ((rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0)) == 0) {
    t->serving = &cs;
    rc = scio_dtls_serve(t->ep, ctx, echo, t, NULL, &o);
    t->serving = NULL;
    scio_scope_close(&cs);
    if (rc == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs))
      rc = 0; /* the clients asked for are done */
  }
  scio_dtls_endpoint_close(t->ep);
  scio_tls_ctx_close(ctx);
  return rc < 0 ? fail(rc, "serve") : 0;
}

static int client_talk(tool *t, scio_ostream *ch) {
  char v[64] = "?", c[128] = "?";
  scio_ostream_attr(ch, SCIO_ATTR_TLS_VERSION, v, sizeof v);
  scio_ostream_attr(ch, SCIO_ATTR_CIPHER, c, sizeof c);
  printf("connected %s %s\n", v, c);
  fflush(stdout);
  for (int i = 0; i < t->nsend; i++) {
    scio_datagram d = {.data = (void *)t->send[i], .len = strlen(t->send[i])};
    int rc = scio_ostream_send(ch, &d);
    if (rc < 0)
      return fail(rc, "send");
  }
  for (int i = 0; i < t->expect; i++) {
    char buf[2048];
    scio_datagram d = {.data = buf, .cap = sizeof buf};
    int rc = scio_ostream_receive(ch, &d);
    if (rc < 0)
      return fail(rc, "receive");
    size_t n = d.len;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
      n--;
    printf("received: %.*s\n", (int)n, buf);
    fflush(stdout);
  }
  return 0;
}

static int run_client(tool *t) {
  scio_tls_ctx_opts co = {.ca_file = t->cacert};
  scio_tls_ctx *ctx;
  int rc = scio_dtls_ctx_open(&co, &ctx);
  if (rc < 0)
    return fail(rc, "context");
  if ((rc = scio_dtls_endpoint_open("127.0.0.1", 0, NULL, &t->ep)) < 0) {
    scio_tls_ctx_close(ctx);
    return fail(rc, "endpoint");
  }
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)t->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_storage sa;
  memset(&sa, 0, sizeof sa);
  memcpy(&sa, &sin, sizeof sin);
  scio_dtls_opts o = {.server_hostname = t->name, .mtu = t->mtu};
  scio_ostream *ch;
  rc = scio_dtls_connect(t->ep, &sa, ctx, &o, &ch);
  if (rc < 0)
    fail(rc, "connect");
  else {
    rc = client_talk(t, ch);
    scio_ostream_close(ch);
  }
  scio_dtls_endpoint_close(t->ep);
  scio_tls_ctx_close(ctx);
  return rc;
}

static int main_task(void *p) {
  tool *t = p;
  scio_scope cs;
  int rc = scio_fail_after(&cs, t->timeout);
  if (rc < 0)
    return rc;
  rc = t->server ? run_server(t) : run_client(t);
  int crc = scio_scope_close(&cs);
  if (crc == SCIO_ETIMEDOUT)
    fprintf(stderr, "error: timed out after %g s\n", t->timeout);
  return rc < 0 ? rc : crc;
}

static int parse(tool *t, int argc, char **argv) {
  if (argc < 2)
    return -1;
  t->server = strcmp(argv[1], "server") == 0;
  if (!t->server && strcmp(argv[1], "client") != 0)
    return -1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--cert"))
      t->cert = v;
    else if (!strcmp(k, "--key"))
      t->key = v;
    else if (!strcmp(k, "--cacert"))
      t->cacert = v;
    else if (!strcmp(k, "--name"))
      t->name = v;
    else if (!strcmp(k, "--port"))
      t->port = (unsigned)atoi(v);
    else if (!strcmp(k, "--count"))
      t->count = atoi(v);
    else if (!strcmp(k, "--expect"))
      t->expect = atoi(v);
    else if (!strcmp(k, "--timeout"))
      t->timeout = atof(v);
    else if (!strcmp(k, "--mtu"))
      t->mtu = (size_t)atol(v);
    else if (!strcmp(k, "--send") && t->nsend < MAX_SEND)
      t->send[t->nsend++] = v;
    else
      return -1;
  }
  return (argc % 2 == 0) ? 0 : -1;
}

int main(int argc, char **argv) {
  tool t = {.name = "localhost", .count = 1, .timeout = 20};
  if (parse(&t, argc, argv) < 0 || (t.server && (!t.cert || !t.key))) {
    fprintf(stderr, "usage: dtls_tool server --cert F --key F [--port P] "
                    "[--count N] [--timeout S] [--mtu M]\n"
                    "       dtls_tool client --port P [--cacert F] [--name H] "
                    "[--send TEXT]... [--expect N] [--timeout S] [--mtu M]\n");
    return 2;
  }
  return scio_run(main_task, &t, NULL) == 0 ? 0 : 1;
}
