/* bench/tls_openssl_server.c -- the baseline of the TLS benchmarks: a TLS
 * server written with plain OpenSSL over non-blocking sockets and epoll,
 * as a careful C programmer would without scio.
 *
 *   tls_openssl_server PORT [CERT KEY]
 * Listens on 127.0.0.1:PORT (0: a free port; prints "listening PORT" when
 * ready) and serves
 * tls_client's protocol: after the handshake, an 8-byte length, that many
 * bytes (read and dropped), then a one-byte receipt; a client that closes
 * after the handshake is just closed.  CERT and KEY are PEM files (bench/
 * tls.sh gives both servers the same ones); without them an ECDSA P-256
 * certificate is made at start-up (tests/support/pki.c), as the scio
 * server does.  Runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/pki.h"

typedef struct conn {
  int fd;
  SSL *ssl;
  int handshaken;
  unsigned long long want, got;
  size_t hdr_got;
  unsigned char hdr[8];
} conn;

static void die(const char *what) {
  fprintf(stderr, "tls_openssl_server: %s: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(1);
}

static SSL_CTX *server_ctx(const char *cert, const char *key) {
  SSL_CTX *c = SSL_CTX_new(TLS_server_method());
  if (!c)
    die("SSL_CTX_new");
  if (cert) {
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1)
      die("certificate or key file");
  } else {
    test_pki pki;
    if (test_pki_make(&pki) < 0)
      exit(1);
    BIO *cb = BIO_new_mem_buf(pki.server, -1);
    BIO *kb = BIO_new_mem_buf(pki.server_key, -1);
    X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    if (SSL_CTX_use_certificate(c, x) != 1 ||
        SSL_CTX_use_PrivateKey(c, k) != 1)
      die("server context");
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    test_pki_free(&pki);
  }
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  return c;
}

static void conn_free(conn *k) {
  SSL_free(k->ssl);
  close(k->fd);
  free(k);
}

/* Advance a connection as far as it goes; 0 to keep it, -1 to drop it. */
static int conn_run(conn *k) {
  if (!k->handshaken) {
    int r = SSL_do_handshake(k->ssl);
    if (r != 1) {
      int e = SSL_get_error(k->ssl, r);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    k->handshaken = 1;
  }
  static unsigned char buf[65536];
  for (;;) {
    size_t n;
    int r;
    if (k->hdr_got < sizeof k->hdr)
      r = SSL_read_ex(k->ssl, k->hdr + k->hdr_got, sizeof k->hdr - k->hdr_got,
                      &n);
    else
      r = SSL_read_ex(k->ssl, buf, sizeof buf, &n);
    if (r != 1) {
      int e = SSL_get_error(k->ssl, r);
      ERR_clear_error();
      return e == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    if (k->hdr_got < sizeof k->hdr) {
      k->hdr_got += n;
      if (k->hdr_got == sizeof k->hdr)
        memcpy(&k->want, k->hdr, sizeof k->want);
    } else {
      k->got += n;
    }
    if (k->hdr_got == sizeof k->hdr && k->got >= k->want) {
      size_t w;
      if (SSL_write_ex(k->ssl, "!", 1, &w) != 1)
        return -1;
      k->hdr_got = 0;
      k->got = k->want = 0;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: tls_openssl_server PORT [CERT KEY]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* a peer that is gone is an error code */
  SSL_CTX *c = argc == 4 ? server_ctx(argv[2], argv[3]) : server_ctx(NULL, NULL);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((unsigned short)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1024) < 0)
    die("listen");
  int ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
  socklen_t alen = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &alen);
  printf("listening %d\n", ntohs(a.sin_port));
  fflush(stdout);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      conn *k = evs[i].data.ptr;
      if (!k) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          k = calloc(1, sizeof *k);
          k->fd = fd;
          k->ssl = SSL_new(c);
          SSL_set_fd(k->ssl, fd);
          SSL_set_accept_state(k->ssl);
          struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                   .data.ptr = k};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
          if (conn_run(k) < 0)
            conn_free(k);
        }
        continue;
      }
      if (conn_run(k) < 0)
        conn_free(k);
    }
  }
}
