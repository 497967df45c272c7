/* scio-fetch: an HTTP/1.1 GET client for http:// and https:// URLs.
 *
 *   scio-fetch [--cacert FILE] [--timeout S] [--verbose] [-o FILE]
 *              [--dns-server HOST:PORT] URL
 *
 * Connects with happy eyeballs (scio_connect_tcp), speaks TLS for https://
 * (system trust store, or --cacert; the host name is verified), sends one
 * GET and writes the body to stdout (or FILE).  Bodies with
 * Content-Length, chunked bodies and bodies delimited by the end of the
 * connection are understood; redirects are not followed.  Exit status 0
 * for a 2xx answer; otherwise one line on stderr says why (the DNS
 * failure, every connect attempt, the certificate's problem, the HTTP
 * status) and the status is non-zero: 1 for an HTTP status that is not
 * 2xx, 2 for bad usage, 3 for everything else.
 *
 * --verbose shows each connect attempt, the TLS version, cipher and ALPN
 * protocol on stderr; a progress line is shown for bodies over 1 MiB when
 * stderr is a terminal. */
#include <errno.h>
#include <scio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct url {
  int https;
  char host[256];
  unsigned port;
  char path[2048];
} url;

typedef struct fetch {
  url u;
  const char *cacert, *out_path, *dns;
  double timeout;
  int verbose, progress;
  FILE *out;
  int status;
  long long received;
} fetch;

/* ---- command line and URL ---------------------------------------------- */

static int parse_url(const char *s, url *u) {
  memset(u, 0, sizeof *u);
  if (strncmp(s, "http://", 7) == 0) {
    s += 7;
    u->port = 80;
  } else if (strncmp(s, "https://", 8) == 0) {
    s += 8;
    u->https = 1;
    u->port = 443;
  } else {
    return -1;
  }
  const char *host_end;
  const char *h = s;
  if (*s == '[') { /* an IPv6 literal */
    host_end = strchr(s, ']');
    if (!host_end)
      return -1;
    h = s + 1;
    s = host_end + 1;
  } else {
    host_end = s + strcspn(s, ":/?#");
    s = host_end;
  }
  size_t hl = (size_t)(host_end - h);
  if (hl == 0 || hl >= sizeof u->host)
    return -1;
  memcpy(u->host, h, hl);
  if (*s == ':') {
    char *end;
    unsigned long p = strtoul(s + 1, &end, 10);
    if (end == s + 1 || p == 0 || p > 65535)
      return -1;
    u->port = (unsigned)p;
    s = end;
  }
  if (*s && *s != '/' && *s != '?')
    return -1;
  int n = snprintf(u->path, sizeof u->path, "%s%s", *s == '/' ? "" : "/", s);
  char *frag = strchr(u->path, '#');
  if (frag)
    *frag = '\0';
  return n > 0 && (size_t)n < sizeof u->path ? 0 : -1;
}

static int usage(void) {
  fprintf(stderr, "usage: scio-fetch [--cacert FILE] [--timeout S] "
                  "[--verbose] [-o FILE] [--dns-server HOST:PORT] URL\n");
  return 2;
}

/* ---- connecting ---------------------------------------------------------- */

static void on_connect_event(void *arg, const scio_connect_event *ev) {
  fetch *f = arg;
  if (!f->verbose)
    return;
  switch (ev->kind) {
  case SCIO_CONNECT_ATTEMPT:
    fprintf(stderr, "* attempt %s\n", ev->addr_text);
    break;
  case SCIO_CONNECT_FAILED:
    fprintf(stderr, "* attempt %s ... %s\n", ev->addr_text, ev->error_text);
    break;
  case SCIO_CONNECT_CONNECTED:
    fprintf(stderr, "* connected to %s after %.3f s\n", ev->addr_text,
            ev->elapsed);
    break;
  default:
    break;
  }
}

static void show_tls(scio_stream *s) {
  char v[64], c[128], a[64];
  if (scio_stream_attr(s, SCIO_ATTR_TLS_VERSION, v, sizeof v) < 0)
    return;
  if (scio_stream_attr(s, SCIO_ATTR_CIPHER, c, sizeof c) < 0)
    snprintf(c, sizeof c, "?");
  if (scio_stream_attr(s, SCIO_ATTR_ALPN, a, sizeof a) < 0)
    snprintf(a, sizeof a, "none");
  fprintf(stderr, "* TLS %s, cipher %s, ALPN %s\n", v, c, a);
}

static int connect_to(fetch *f, scio_tls_ctx *tls, scio_stream **s) {
  scio_connect_opts co = {0};
  co.on_event = on_connect_event;
  co.on_event_arg = f;
  co.dns.servers = f->dns;
  scio_tls_layer layer;
  if (tls) {
    scio_tls_opts to = {0};
    scio_tls_layer_init(&layer, tls, &to); /* host name: the URL's */
    co.layer = &layer.base;
  }
  int rc = scio_connect_tcp(f->u.host, (uint16_t)f->u.port, &co, s);
  if (rc == 0 && f->verbose && tls)
    show_tls(*s);
  return rc;
}

/* ---- the response ------------------------------------------------------- */

static int write_body(fetch *f, const char *p, size_t n) {
  if (fwrite(p, 1, n, f->out) != n)
    return scio_seterr(-EIO, "writing the body: %s", strerror(errno));
  f->received += (long long)n;
  if (f->progress && f->received > (1 << 20))
    fprintf(stderr, "\r%lld KiB", f->received >> 10);
  return 0;
}

/* Copy exactly n bytes (n < 0: until the end of the stream). */
static int copy_body(fetch *f, scio_stream *b, long long n) {
  char buf[16384];
  while (n != 0) {
    size_t want = n < 0 || n > (long long)sizeof buf ? sizeof buf : (size_t)n;
    ssize_t r = scio_receive(b, buf, want);
    if (r == SCIO_EOF && n < 0)
      return 0;
    if (r == SCIO_EOF)
      return scio_seterr(SCIO_EINCOMPLETE, "the body ended %lld bytes early",
                         n);
    if (r < 0)
      return (int)r;
    int rc = write_body(f, buf, (size_t)r);
    if (rc < 0)
      return rc;
    if (n > 0)
      n -= r;
  }
  return 0;
}

static int read_line(scio_stream *b, char *line, size_t cap) {
  size_t n;
  int rc = scio_receive_until(b, "\r\n", 2, line, cap - 1, &n);
  if (rc == SCIO_EDELIM)
    return scio_seterr(rc, "a header line longer than %zu bytes", cap - 1);
  if (rc < 0)
    return rc;
  line[n] = '\0';
  return 0;
}

static int copy_chunked(fetch *f, scio_stream *b) {
  char line[256];
  for (;;) {
    int rc = read_line(b, line, sizeof line);
    if (rc < 0)
      return rc;
    char *end;
    long long size = strtoll(line, &end, 16);
    if (end == line || size < 0)
      return scio_seterr(SCIO_EINVAL, "bad chunk size line \"%s\"", line);
    if (size == 0)
      break;
    if ((rc = copy_body(f, b, size)) < 0 ||
        (rc = read_line(b, line, sizeof line)) < 0)
      return rc;
  }
  /* Trailers, up to the empty line. */
  for (;;) {
    int rc = read_line(b, line, sizeof line);
    if (rc < 0 || line[0] == '\0')
      return rc;
  }
}

static int read_response(fetch *f, scio_stream *b) {
  char line[8192];
  int rc = read_line(b, line, sizeof line);
  if (rc < 0)
    return rc;
  if (sscanf(line, "HTTP/1.%*d %d", &f->status) != 1)
    return scio_seterr(SCIO_EINVAL, "not an HTTP response: \"%.60s\"", line);
  if (f->verbose)
    fprintf(stderr, "< %s\n", line);
  long long length = -1;
  int chunked = 0;
  while ((rc = read_line(b, line, sizeof line)) == 0 && line[0]) {
    if (f->verbose)
      fprintf(stderr, "< %s\n", line);
    if (strncasecmp(line, "content-length:", 15) == 0)
      length = strtoll(line + 15, NULL, 10);
    else if (strncasecmp(line, "transfer-encoding:", 18) == 0 &&
             strstr(line + 18, "chunked"))
      chunked = 1;
  }
  if (rc < 0)
    return rc;
  if (f->status < 200 || f->status >= 300)
    return 0; /* the status says it all; the body is not wanted */
  if (chunked)
    rc = copy_chunked(f, b);
  else
    rc = copy_body(f, b, length);
  if (f->progress && f->received > (1 << 20))
    fputc('\n', stderr);
  return rc;
}

/* ---- the whole fetch ----------------------------------------------------- */

static int do_fetch(fetch *f) {
  scio_tls_ctx *tls = NULL;
  int rc = 0;
  if (f->u.https) {
    scio_tls_ctx_opts o = {.ca_file = f->cacert, .alpn = "http/1.1"};
    if ((rc = scio_tls_ctx_open(&o, &tls)) < 0)
      return rc;
  }
  scio_stream *s = NULL, *b = NULL;
  if ((rc = connect_to(f, tls, &s)) == 0 &&
      (rc = scio_buffered_open(s, NULL, &b)) == 0) {
    char req[3072];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
                     "User-Agent: scio-fetch/%s\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     f->u.path, strchr(f->u.host, ':') ? "[" : "", f->u.host,
                     strchr(f->u.host, ':') ? "]" : "", f->u.port,
                     scio_version_string());
    rc = scio_send(b, req, (size_t)n);
    if (rc == 0)
      rc = read_response(f, b);
  }
  /* Closing (a TLS goodbye) may set details of its own: keep ours. */
  char msg[512];
  snprintf(msg, sizeof msg, "%s", rc < 0 ? scio_errmsg() : "");
  scio_close(b ? b : s);
  scio_tls_ctx_close(tls);
  return rc < 0 ? scio_seterr(rc, "%s", msg) : 0;
}

static int main_task(void *arg) {
  fetch *f = arg;
  scio_scope cs;
  if (f->timeout > 0)
    scio_fail_after(&cs, f->timeout);
  int rc = do_fetch(f);
  if (f->timeout > 0) {
    rc = scio_scope_close_with(&cs, rc);
    if (rc == SCIO_ETIMEDOUT)
      scio_seterr(rc, "no answer within %g s", f->timeout);
  }
  return rc;
}

int main(int argc, char **argv) {
  fetch f;
  memset(&f, 0, sizeof f);
  const char *target = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--cacert") == 0 && i + 1 < argc)
      f.cacert = argv[++i];
    else if (strcmp(a, "--timeout") == 0 && i + 1 < argc)
      f.timeout = atof(argv[++i]);
    else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0)
      f.verbose = 1;
    else if (strcmp(a, "-o") == 0 && i + 1 < argc)
      f.out_path = argv[++i];
    else if (strcmp(a, "--dns-server") == 0 && i + 1 < argc)
      f.dns = argv[++i];
    else if (a[0] != '-' && !target)
      target = a;
    else
      return usage();
  }
  if (!target)
    return usage();
  if (parse_url(target, &f.u) < 0) {
    fprintf(stderr, "scio-fetch: not an http:// or https:// URL: %s\n",
            target);
    return 2;
  }
  f.out = f.out_path ? fopen(f.out_path, "wb") : stdout;
  if (!f.out) {
    fprintf(stderr, "scio-fetch: %s: %s\n", f.out_path, strerror(errno));
    return 3;
  }
  f.progress = isatty(STDERR_FILENO);
  int rc = scio_run(main_task, &f, NULL);
  if (f.out_path && fclose(f.out) != 0 && rc == 0)
    rc = scio_seterr(-EIO, "closing %s", f.out_path);
  else if (!f.out_path)
    fflush(stdout);
  if (rc < 0) {
    fprintf(stderr, "scio-fetch: %s: %s\n", target, scio_errmsg());
    return 3;
  }
  if (f.status < 200 || f.status >= 300) {
    fprintf(stderr, "scio-fetch: %s: HTTP status %d\n", target, f.status);
    return 1;
  }
  return 0;
}
