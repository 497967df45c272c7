/* bench/tls_client.c -- the one TLS load generator of the TLS benchmarks,
 * plain OpenSSL, used against the plain OpenSSL server (tls_openssl_server)
 * and the scio server (tls_scio_server) alike.
 *
 *   tls_client bulk HOST PORT MIB
 *       one connection, TLS 1.3 with TLS_AES_128_GCM_SHA256; sends an
 *       8-byte length (host order) and MIB MiB in 64 KiB writes, then
 *       waits for the server's one-byte receipt;
 *       prints "MB/s" of application data (best of 3).
 *   tls_client handshakes HOST PORT SECONDS INFLIGHT [MAX]
 *       full TLS 1.3 handshakes (no resumption), INFLIGHT at a time over
 *       non-blocking sockets, each closed once the handshake is done,
 *       for SECONDS or until MAX are done; prints handshakes per second
 *       and how many were done.
 * The client does not verify the server (the benchmark measures the
 * server), and is the same program for both servers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "tls_client: %s: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(1);
}

static struct sockaddr_in addr;

static int dial(int nonblock) {
  int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0)
    die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 &&
      errno != EINPROGRESS)
    die("connect");
  return fd;
}

static SSL_CTX *client_ctx(void) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  if (!c)
    die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  return c;
}

static double bulk_once(SSL_CTX *c, size_t total) {
  int fd = dial(0);
  SSL *ssl = SSL_new(c);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1)
    die("SSL_connect");
  static unsigned char buf[65536];
  memset(buf, 'x', sizeof buf);
  double t0 = now();
  /* The server learns how much is coming from an 8-byte header. */
  unsigned long long hdr = total;
  size_t w0;
  if (SSL_write_ex(ssl, &hdr, sizeof hdr, &w0) != 1)
    die("SSL_write (header)");
  for (size_t sent = 0; sent < total;) {
    size_t n = total - sent < sizeof buf ? total - sent : sizeof buf, w;
    if (SSL_write_ex(ssl, buf, n, &w) != 1)
      die("SSL_write");
    sent += w;
  }
  char ack;
  size_t r;
  if (SSL_read_ex(ssl, &ack, 1, &r) != 1)
    die("SSL_read (receipt)");
  double dt = now() - t0;
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  return (double)total / dt / 1e6;
}

typedef struct conn {
  int fd;
  SSL *ssl; /* NULL once the handshake is done: then draining */
} conn;

static void conn_start(conn *k, SSL_CTX *c, int ep) {
  k->fd = dial(1);
  k->ssl = SSL_new(c);
  SSL_set_fd(k->ssl, k->fd);
  SSL_set_connect_state(k->ssl);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                           .data.ptr = k};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev) < 0)
    die("epoll_ctl");
}

/* Drive one handshake: 1 when done, 0 when it must wait. */
static int conn_step(conn *k) {
  int r = SSL_do_handshake(k->ssl);
  if (r == 1)
    return 1;
  int e = SSL_get_error(k->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  die("handshake");
  return 0;
}

/* After its handshake a client closes its sending side (no close_notify)
 * and reads until the server closes: the server then does all it does
 * for a connection (its session tickets too: had the client closed at
 * once, a server whose first ticket write met a reset would skip the
 * rest, and a server that writes records later would not), and the
 * client spends nothing on TLS for it.  1 when the server has closed. */
static int conn_drain(conn *k) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(k->fd, buf, sizeof buf);
    if (n > 0)
      continue;
    return n == 0 || errno != EAGAIN;
  }
}

static void conn_end(conn *k) {
  SSL_free(k->ssl);
  k->ssl = NULL;
  close(k->fd);
}

static long done;

static double handshakes(SSL_CTX *c, double seconds, int inflight, long max) {
  int ep = epoll_create1(0);
  conn *ks = calloc((size_t)inflight, sizeof *ks);
  for (int i = 0; i < inflight; i++)
    conn_start(&ks[i], c, ep);
  double t0 = now(), end = t0 + seconds;
  struct epoll_event evs[64];
  while (now() < end && (max <= 0 || done < max)) {
    int n = epoll_wait(ep, evs, 64, 1000);
    for (int i = 0; i < n; i++) {
      conn *k = evs[i].data.ptr;
      if (k->ssl && conn_step(k)) {
        done++;
        SSL_free(k->ssl); /* the fd stays open */
        k->ssl = NULL;
        shutdown(k->fd, SHUT_WR);
      }
      if (!k->ssl && conn_drain(k)) {
        conn_end(k);
        conn_start(k, c, ep);
        conn_step(k);
      }
    }
  }
  double dt = now() - t0;
  for (int i = 0; i < inflight; i++)
    conn_end(&ks[i]);
  free(ks);
  close(ep);
  return (double)done / dt;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tls_client bulk HOST PORT MIB | "
                    "handshakes HOST PORT SECONDS INFLIGHT\n");
    return 2;
  }
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
    fprintf(stderr, "tls_client: bad address %s\n", argv[2]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* a peer that is gone is an error code */
  SSL_CTX *c = client_ctx();
  if (strcmp(argv[1], "bulk") == 0) {
    size_t total = (size_t)atol(argv[4]) << 20;
    double best = 0;
    for (int i = 0; i < 3; i++) {
      double v = bulk_once(c, total);
      if (v > best)
        best = v;
    }
    printf("%.1f\n", best);
  } else if (strcmp(argv[1], "handshakes") == 0 && argc >= 6) {
    long max = argc > 6 ? atol(argv[6]) : 0;
    double rate = handshakes(c, atof(argv[4]), atoi(argv[5]), max);
    printf("%.1f %ld\n", rate, done);
  } else {
    fprintf(stderr, "tls_client: unknown mode %s\n", argv[1]);
    return 2;
  }
  SSL_CTX_free(c);
  return 0;
}
