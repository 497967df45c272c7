/* examples/tcp_client.c -- a small netcat on scio_connect_tcp.
 *
 *   tcp_client [--verbose] [--dns-server HOST:PORT] HOST PORT
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
    if (n == 0)
      return scio_send_eof(c->conn);
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
  }
}

static int run(void *arg) {
  client *c = arg;
  scio_connect_opts o = {0};
  o.dns.servers = c->dns_server;
  if (c->verbose) {
    o.on_event = on_event;
    o.on_event_arg = c;
  }
  int rc = scio_connect_tcp(c->host, (uint16_t)c->port, &o, &c->conn);
  if (rc < 0)
    return rc;
  if (c->verbose)
    fprintf(stderr, "connected to %s after %.3f s\n", c->winner, c->elapsed);
  scio_nursery n;
  scio_nursery_open(&n);
  rc = scio_start_soon(&n, upload, c);
  if (rc == 0)
    rc = download(c);
  /* The server has closed: stop reading stdin. */
  scio_nursery_cancel(&n);
  int nrc = scio_nursery_close(&n);
  scio_close(c->conn);
  return rc < 0 ? rc : nrc;
}

static void usage(void) {
  fprintf(stderr,
          "usage: tcp_client [--verbose] [--dns-server HOST:PORT] HOST PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  client c = {0};
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    if (strcmp(argv[i], "--verbose") == 0)
      c.verbose = 1;
    else if (strcmp(argv[i], "--dns-server") == 0 && i + 1 < argc)
      c.dns_server = argv[++i];
    else
      usage();
  }
  if (argc - i != 2)
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
