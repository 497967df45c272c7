/* http_hello: a minimal HTTP/1.1 server answering "Hello, World!", for
 * load tests (wrk) and as a model of a request/response protocol on scio.
 *
 *   http_hello [--host H] [--port P] [--loops N] [--pin]
 *
 * Listens on H (default: every interface, IPv4 and IPv6) at port P
 * (default 8080; 0 picks a free port), prints one line
 *   http_hello: listening on 127.0.0.1:8080 (1 loop)
 * once it accepts connections, and exits 0 on SIGINT or SIGTERM.
 *
 * GET / and HEAD / answer 200 "Hello, World!"; other paths 404, other
 * methods 405.  Connections are kept alive (HTTP/1.1 by default, HTTP/1.0
 * with "Connection: keep-alive") until the client closes or sends
 * "Connection: close".  Pipelined requests are answered in order, all the
 * answers to one read going out in one send.  A request body with
 * Content-Length is read and ignored; chunked request bodies are refused
 * (501), malformed requests get 400 and heads over 8 KiB 431, each closing
 * the connection.
 *
 * --loops N runs N event loops, one thread each, each with its own
 * listening socket on the same port (SO_REUSEPORT: the kernel spreads the
 * connections).  A scio run belongs to one thread, and the loops share no
 * state, so this is how a scio server uses N cores.
 *
 * --pin (Linux) runs loop i on the i-th CPU the process may use (round
 * robin when there are more loops than CPUs) and has its listener take the
 * connections whose handshake the kernel handled on that CPU
 * (SO_INCOMING_CPU on each listening socket, through scio_listener_fds).
 * A connection then stays on one core from the packet to the answer: right
 * where connections arrive spread over the CPUs (a NIC with a receive
 * queue per CPU, or one local client per CPU, as in bench/http.sh); with
 * all of them arriving on one CPU, that CPU's loop would get them all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* CPU_SET, pthread_setaffinity_np */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <scio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOOPS 64
#define HEAD_MAX 8192   /* a request head must fit in the read buffer */
#define OUT_SIZE 16384  /* answers to pipelined requests are batched here */
#define ANSWER_MAX 512  /* an upper bound on one answer's size */

/* ---- answers ------------------------------------------------------------- */

static const char HELLO[] = "Hello, World!";
static const char NOT_FOUND[] = "Not Found\n";

/* The Date header changes once a second; each loop keeps its own copy
 * (thread-local), and the common answer is prebuilt around it. */
static __thread time_t date_sec = -1;
static __thread char date_hdr[64];
static __thread char hello_keepalive[256]; /* 200, HTTP/1.1, keep-alive */
static __thread size_t hello_keepalive_len;

static void update_date(void) {
  time_t now = time(NULL);
  if (now == date_sec)
    return;
  date_sec = now;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date_hdr, sizeof date_hdr, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
           &tm);
  int n = snprintf(hello_keepalive, sizeof hello_keepalive,
                   "HTTP/1.1 200 OK\r\nServer: scio\r\n%s"
                   "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                   date_hdr, sizeof HELLO - 1, HELLO);
  hello_keepalive_len = (size_t)n;
}

typedef struct request {
  int head;       /* HEAD: no body in the answer */
  int status;     /* 0 until decided */
  int http10;     /* HTTP/1.0 */
  int keep_alive; /* after this answer */
  size_t content_length;
  const char *target;
  size_t target_len;
} request;

/* Append the answer to r at out (ANSWER_MAX bytes free); returns its size. */
static size_t answer(const request *r, char *out) {
  if (r->status == 200 && !r->http10 && r->keep_alive && !r->head) {
    memcpy(out, hello_keepalive, hello_keepalive_len);
    return hello_keepalive_len;
  }
  const char *reason, *body, *extra = "";
  switch (r->status) {
  case 200: reason = "OK"; body = HELLO; break;
  case 404: reason = "Not Found"; body = NOT_FOUND; break;
  case 405:
    reason = "Method Not Allowed";
    body = "Method Not Allowed\n";
    extra = "Allow: GET, HEAD\r\n";
    break;
  case 431:
    reason = "Request Header Fields Too Large";
    body = "Request Header Fields Too Large\n";
    break;
  case 501: reason = "Not Implemented"; body = "Not Implemented\n"; break;
  case 505:
    reason = "HTTP Version Not Supported";
    body = "HTTP Version Not Supported\n";
    break;
  default: reason = "Bad Request"; body = "Bad Request\n"; break;
  }
  const char *conn = !r->keep_alive ? "Connection: close\r\n"
                     : r->http10    ? "Connection: keep-alive\r\n"
                                    : "";
  size_t blen = strlen(body);
  int n = snprintf(out, ANSWER_MAX,
                   "HTTP/1.1 %d %s\r\nServer: scio\r\n%s%s%s"
                   "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                   r->status, reason, date_hdr, conn, extra, blen);
  if (!r->head) {
    memcpy(out + n, body, blen);
    n += (int)blen;
  }
  return (size_t)n;
}

/* ---- parsing a request head ------------------------------------------------ */

/* The next line of p[0..end): its length without the CRLF (or bare LF) in
 * *len; returns the start of the following line, or NULL when the line is
 * not complete yet. */
static const char *next_line(const char *p, const char *end, size_t *len) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl)
    return NULL;
  *len = (size_t)(nl - p) - (nl > p && nl[-1] == '\r');
  return nl + 1;
}

/* Does the comma-separated header value v contain token t (any case)? */
static int has_token(const char *v, size_t vlen, const char *t) {
  size_t tlen = strlen(t);
  const char *end = v + vlen;
  while (v < end) {
    while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
      v++;
    const char *s = v;
    while (v < end && *v != ',')
      v++;
    const char *e = v;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    if ((size_t)(e - s) == tlen && strncasecmp(s, t, tlen) == 0)
      return 1;
  }
  return 0;
}

/* RFC 9110 tchar: what methods and header names are made of. */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
  case '+': case '-': case '.': case '^': case '_': case '`': case '|':
  case '~':
    return 1;
  default:
    return 0;
  }
}

/* The request line "METHOD SP TARGET SP HTTP/1.x": 0, or an error status. */
static int parse_request_line(const char *p, size_t len, request *r) {
  const char *end = p + len, *sp = memchr(p, ' ', len);
  if (!sp || sp == p)
    return 400;
  for (const char *q = p; q < sp; q++)
    if (!is_tchar((unsigned char)*q))
      return 400;
  size_t mlen = (size_t)(sp - p);
  int get = mlen == 3 && memcmp(p, "GET", 3) == 0;
  r->head = mlen == 4 && memcmp(p, "HEAD", 4) == 0;
  r->target = sp + 1;
  const char *sp2 = memchr(r->target, ' ', (size_t)(end - r->target));
  if (!sp2 || sp2 == r->target)
    return 400;
  r->target_len = (size_t)(sp2 - r->target);
  const char *v = sp2 + 1;
  if (end - v != 8 || memcmp(v, "HTTP/1.", 7) != 0)
    return end - v == 8 && memcmp(v, "HTTP/", 5) == 0 ? 505 : 400;
  if (v[7] == '0')
    r->http10 = 1;
  else if (v[7] != '1')
    return 505;
  r->keep_alive = !r->http10;
  if (!get && !r->head)
    return 405;
  return r->target_len == 1 && r->target[0] == '/' ? 200 : 404;
}

/* One header line: 0, or an error status. */
static int parse_header(const char *p, size_t len, request *r, int *seen_cl) {
  if (*p == ' ' || *p == '\t')
    return 400; /* obsolete line folding */
  const char *colon = memchr(p, ':', len);
  if (!colon || colon == p)
    return 400;
  size_t nlen = (size_t)(colon - p);
  for (size_t i = 0; i < nlen; i++)
    if (!is_tchar((unsigned char)p[i]))
      return 400;
  const char *v = colon + 1, *end = p + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  size_t vlen = (size_t)(end - v);
  if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
    if (has_token(v, vlen, "close"))
      r->keep_alive = 0;
    else if (has_token(v, vlen, "keep-alive"))
      r->keep_alive = 1;
  } else if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
    size_t n = 0;
    if (vlen == 0 || vlen > 15)
      return 400;
    for (size_t i = 0; i < vlen; i++) {
      if (v[i] < '0' || v[i] > '9')
        return 400;
      n = n * 10 + (size_t)(v[i] - '0');
    }
    if (*seen_cl && n != r->content_length)
      return 400;
    *seen_cl = 1;
    r->content_length = n;
  } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
    return 501;
  }
  return 0;
}

/* Parse one request head at the start of p[0..len).  Returns its size (the
 * request's status is in r->status: 200, 404, 405 or an error whose answer
 * closes the connection), or 0 when the head is not complete yet. */
static size_t parse_request(const char *p, size_t len, request *r) {
  memset(r, 0, sizeof *r);
  const char *end = p + len, *line = p, *next;
  size_t llen;
  int seen_cl = 0, status = 0;
  /* Empty lines before a request are ignored (RFC 9112, 2.2). */
  while ((next = next_line(line, end, &llen)) && llen == 0)
    line = next;
  if (!next)
    return 0;
  status = parse_request_line(line, llen, r);
  if (status != 200 && status != 404 && status != 405) {
    r->status = status; /* answered at once; the connection closes */
    r->keep_alive = 0;
    return (size_t)(next - p);
  }
  for (line = next; (next = next_line(line, end, &llen)); line = next) {
    if (llen == 0) {
      r->status = status;
      if (status != 200 && status != 404 && status != 405)
        r->keep_alive = 0;
      return (size_t)(next - p);
    }
    int hs = status != 200 && status != 404 && status != 405
                 ? 0 /* already failed: find the end of the head */
                 : parse_header(line, llen, r, &seen_cl);
    if (hs)
      status = hs;
  }
  return 0;
}

/* ---- one connection ---------------------------------------------------------- */

/* Closing after an answer: a close(2) with unread request bytes in the
 * socket makes the kernel send a reset, which can destroy the answer
 * before the client reads it.  So half-close, then read and drop what the
 * client still sends until it closes too, for at most 2 s (RFC 9112, 9.6;
 * nginx's lingering_close). */
static int linger(scio_stream *conn, char *buf, size_t size) {
  if (scio_send_eof(conn) < 0)
    return 0;
  scio_scope cs;
  scio_move_on_after(&cs, 2.0);
  while (scio_receive(conn, buf, size) > 0) {
  }
  scio_scope_close(&cs);
  return 0;
}

/* Read, answer every complete request in what was read, send the answers
 * in one go, repeat.  The buffers live on the task's stack: an idle
 * connection touches a few pages. */
static int http_conn(scio_stream *conn, void *arg) {
  (void)arg;
  char in[HEAD_MAX], out[OUT_SIZE];
  size_t have = 0, skip = 0; /* skip: body bytes still to drop */
  for (;;) {
    ssize_t n = scio_receive(conn, in + have, sizeof in - have);
    if (n == SCIO_EOF)
      return 0;
    if (n < 0)
      return (int)n;
    have += (size_t)n;
    size_t off = 0, used = 0;
    int keep = 1;
    update_date();
    while (keep) {
      size_t drop = skip < have - off ? skip : have - off;
      off += drop;
      skip -= drop;
      if (skip > 0 || off == have)
        break;
      request r;
      size_t k = parse_request(in + off, have - off, &r);
      if (k == 0) {
        if (off == 0 && have == sizeof in) {
          r.status = 431; /* the head does not fit */
          r.keep_alive = 0;
          r.head = 0;
          r.http10 = 0;
          used += answer(&r, out + used);
          keep = 0;
        }
        break;
      }
      off += k;
      skip = r.content_length;
      if (used + ANSWER_MAX > sizeof out) {
        int rc = scio_send(conn, out, used);
        if (rc < 0)
          return rc;
        used = 0;
      }
      used += answer(&r, out + used);
      keep = r.keep_alive;
    }
    if (used > 0) {
      int rc = scio_send(conn, out, used);
      if (rc < 0)
        return rc;
    }
    if (!keep)
      return linger(conn, in, sizeof in);
    memmove(in, in + off, have - off);
    have -= off;
  }
}

/* ---- loops, threads, signals ----------------------------------------------- */

/* One per thread.  Each starts on its own cache lines, so that the loops
 * share nothing they write. */
typedef struct loop {
  _Alignas(64) pthread_t thread;
  int index;
  const char *host;
  unsigned port;     /* 0 for the first loop when a free port is wanted */
  int reuse_port;
  int cpu;           /* --pin: the CPU this loop runs on; -1 otherwise */
  int sig_pipe[2];   /* the signal handler writes here */
  int ready_fd;      /* the loop writes its port here once listening */
  scio_listener *listener;
  scio_nursery nursery;
  int rc;
  char errmsg[256];
  char addrs[200]; /* "127.0.0.1:8080 [::1]:8080", written before ready */
} loop;

static loop loops[MAX_LOOPS];
static int nloops = 1;

static void on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;
  for (int i = 0; i < nloops; i++)
    if (write(loops[i].sig_pipe[1], &c, 1) < 0) {
    }
  errno = saved;
}

/* Clients that disconnect mid-request are not worth a line on stderr. */
static void on_error(void *ctx, const struct sockaddr_storage *peer, int code,
                     const char *detail) {
  (void)ctx;
  if (peer && (code == SCIO_EBROKEN || code == SCIO_ECONNRESET ||
               code == SCIO_EPIPE))
    return;
  fprintf(stderr, "http_hello: %s: %s\n", scio_strerror(code), detail);
}

static int serve_task(void *arg) {
  loop *l = arg;
  scio_serve_opts o = {0};
  o.on_error = on_error;
  int rc = scio_listener_serve(l->listener, http_conn, NULL, NULL, &o);
  scio_nursery_cancel(&l->nursery);
  return rc;
}

static int signal_task(void *arg) {
  loop *l = arg;
  int rc = scio_wait_readable(l->sig_pipe[0]);
  if (rc < 0)
    return rc;
  scio_nursery_cancel(&l->nursery);
  return 0;
}

static void format_addrs(loop *l) {
  struct sockaddr_storage addrs[8];
  int n = scio_listener_addrs(l->listener, addrs, 8);
  size_t used = 0;
  for (int i = 0; i < n && i < 8; i++) {
    char text[80];
    scio_sockaddr_format(&addrs[i], text, sizeof text);
    int k = snprintf(l->addrs + used, sizeof l->addrs - used, " %s", text);
    if (k < 0 || (size_t)k >= sizeof l->addrs - used)
      break;
    used += (size_t)k;
  }
}

/* --pin: this loop's listener takes the connections that arrive on its
 * CPU (the kernel's reuseport group prefers a socket whose incoming CPU
 * matches, and falls back to its hash when none does). */
static int steer_to_cpu(loop *l) {
#ifdef SO_INCOMING_CPU
  int fds[8];
  int n = scio_listener_fds(l->listener, fds, 8);
  for (int i = 0; i < n && i < 8; i++)
    if (setsockopt(fds[i], SOL_SOCKET, SO_INCOMING_CPU, &l->cpu,
                   sizeof l->cpu) < 0)
      return scio_seterr(-errno, "SO_INCOMING_CPU: %s", strerror(errno));
  return n < 0 ? n : 0;
#else
  (void)l;
  return scio_seterr(SCIO_EINVAL, "--pin: no SO_INCOMING_CPU on this system");
#endif
}

static int loop_main(void *arg) {
  loop *l = arg;
  scio_listen_opts lo = {0};
  lo.reuse_port = l->reuse_port;
  int rc = scio_tcp_listen(l->host, (uint16_t)l->port, &lo, &l->listener);
  if (rc == 0 && l->cpu >= 0 && (rc = steer_to_cpu(l)) < 0) {
    scio_listener_close(l->listener);
    l->listener = NULL;
  }
  int port = rc < 0 ? rc : scio_listener_port(l->listener);
  if (rc == 0)
    format_addrs(l);
  /* Tell main (even a failure), so that it never waits forever. */
  if (write(l->ready_fd, &port, sizeof port) != sizeof port && rc == 0)
    rc = scio_seterr(SCIO_EIO, "cannot report the port");
  if (rc < 0)
    return rc;
  scio_nursery_open(&l->nursery);
  scio_start_soon(&l->nursery, signal_task, l);
  scio_start_soon(&l->nursery, serve_task, l);
  rc = scio_nursery_close(&l->nursery);
  scio_listener_close(l->listener);
  return rc;
}

static void *loop_thread(void *arg) {
  loop *l = arg;
  if (l->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(l->cpu, &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (err != 0) {
      snprintf(l->errmsg, sizeof l->errmsg, "cannot run on CPU %d: %s", l->cpu,
               strerror(err));
      l->rc = SCIO_EINVAL;
      int fail = SCIO_EINVAL;
      if (write(l->ready_fd, &fail, sizeof fail) != sizeof fail) {
      }
      return NULL;
    }
  }
  l->rc = scio_run(loop_main, l, NULL);
  if (l->rc < 0)
    snprintf(l->errmsg, sizeof l->errmsg, "%s", scio_errmsg());
  /* The detail scio_run left for this thread is freed here: the thread is
   * about to end, and nothing else would release it. */
  scio_errmsg_clear();
  return NULL;
}

static int usage(void) {
  fprintf(stderr,
          "usage: http_hello [--host H] [--port P] [--loops N (1..%d)] "
          "[--pin]\n",
          MAX_LOOPS);
  return 2;
}

/* Start loop i (on CPU `cpu`, or anywhere for -1) and wait until it
 * listens: its port, or an error code. */
static int start_loop(int i, const char *host, unsigned port, int cpu,
                      int ready[2]) {
  loop *l = &loops[i];
  l->index = i;
  l->cpu = cpu;
  l->host = host;
  l->port = port;
  l->reuse_port = nloops > 1;
  l->ready_fd = ready[1];
  if (pthread_create(&l->thread, NULL, loop_thread, l) != 0)
    return -EAGAIN;
  int got;
  if (read(ready[0], &got, sizeof got) != sizeof got)
    return -EIO;
  return got;
}

int main(int argc, char **argv) {
  const char *host = NULL;
  unsigned port = 8080;
  int pin = 0;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v > 65535)
        return usage();
      port = (unsigned)v;
    } else if (strcmp(argv[i], "--loops") == 0 && i + 1 < argc) {
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > MAX_LOOPS)
        return usage();
      nloops = (int)v;
    } else if (strcmp(argv[i], "--pin") == 0) {
      pin = 1;
    } else {
      return usage();
    }
  }
  /* --pin: the CPUs this process may use, in order. */
  int cpus[CPU_SETSIZE], ncpus = 0;
  if (pin) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0) {
      perror("http_hello: sched_getaffinity");
      return 1;
    }
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set))
        cpus[ncpus++] = c;
  }
  int ready[2];
  if (pipe(ready) < 0) {
    perror("http_hello: pipe");
    return 1;
  }
  for (int i = 0; i < nloops; i++) {
    if (pipe(loops[i].sig_pipe) < 0) {
      perror("http_hello: pipe");
      return 1;
    }
    for (int j = 0; j < 2; j++) {
      int fd = loops[i].sig_pipe[j];
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The first loop picks the port when 0 was asked for; the others then
   * bind the same one. */
  int started = 0, status = 0;
  for (int i = 0; i < nloops; i++) {
    int got = start_loop(i, host, port, pin ? cpus[i % ncpus] : -1, ready);
    if (got < 0) {
      if (got == -EAGAIN || got == -EIO)
        fprintf(stderr, "http_hello: cannot start loop %d\n", i);
      status = 1;
      if (got != -EAGAIN)
        started++;
      break;
    }
    started++;
    port = (unsigned)got;
  }
  if (status == 0) {
    printf("http_hello: listening on%s (%d loop%s)\n", loops[0].addrs, nloops,
           nloops == 1 ? "" : "s");
    fflush(stdout);
  } else
    on_signal(SIGTERM); /* stop the loops that did start */
  for (int i = 0; i < started; i++) {
    pthread_join(loops[i].thread, NULL);
    if (loops[i].rc < 0 && loops[i].rc != SCIO_ECANCELED) {
      fprintf(stderr, "http_hello: loop %d: %s: %s\n", i,
              scio_strerror(loops[i].rc), loops[i].errmsg);
      status = 1;
    }
  }
  return status;
}
