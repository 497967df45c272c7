/* What the net suite's files share: making connected pairs of every kind,
 * raw client sockets, fd counting.  Header-only (static helpers). */
#ifndef SCIO_TESTS_NET_SUPPORT_H
#define SCIO_TESTS_NET_SUPPORT_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "scio/net.h"
#include "scio/testing.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* Open fds of the process, from /proc/self/fd (the directory's own fd not
 * counted). */
static inline int net_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.')
      n++;
  if (d)
    closedir(d);
  return n - 1;
}

/* The byte at stream offset i. */
static inline unsigned char net_pat(size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u;
  return (unsigned char)((x >> 24) ^ (x >> 11));
}

/* A blocking client socket connected to a listener on loopback.  The
 * kernel completes the handshake without accept, so this never blocks. */
static inline int net_raw_connect(int family, int port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons((uint16_t)port);
    len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons((uint16_t)port);
    len = sizeof *a;
  }
  ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect: %s",
                strerror(errno));
  return fd;
}

/* A fresh socket path in /tmp (removed first). */
static inline void net_sock_path(char *buf, size_t len, const char *tag) {
  static int seq;
  snprintf(buf, len, "/tmp/scio-net-%d-%s-%d.sock", (int)getpid(), tag,
           seq++);
  unlink(buf);
}

enum { NET_TCP, NET_UNIX, NET_PAIR, NET_NKINDS };
static const char *const net_kind_name[NET_NKINDS] = {"tcp", "unix",
                                                      "socketpair"};

/* A connected pair of socket streams of the given kind: *a is the client
 * (or first) end, *b the accepted one. */
static inline void net_pair(int kind, scio_stream **a, scio_stream **b) {
  scio_listener *l;
  if (kind == NET_PAIR) {
    CK_OK(scio_socket_pair_open(a, b));
    return;
  }
  if (kind == NET_TCP) {
    CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
    int fd = net_raw_connect(AF_INET, scio_listener_port(l));
    CK_OK(scio_socket_stream_from_fd(fd, 0, a));
  } else {
    char path[108];
    net_sock_path(path, sizeof path, "pair");
    CK_OK(scio_unix_listen(path, NULL, &l));
    CK_OK(scio_connect_unix(path, a));
  }
  CK_OK(scio_listener_accept(l, b));
  CK_OK(scio_listener_close(l));
}

/* One receive or send in a child task, inside a scope the test can
 * cancel. */
typedef struct net_op {
  scio_stream *s;
  void *buf;
  size_t len;
  ssize_t rc;
  int done;
  scio_scope *scope;
  char msg[160]; /* scio_errmsg() of the task after the call */
} net_op;

static inline int net_recv_task(void *p) {
  net_op *o = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  o->scope = &cs;
  o->rc = scio_receive(o->s, o->buf, o->len);
  o->scope = NULL;
  scio_scope_close(&cs);
  o->done = 1;
  return 0;
}

static inline int net_send_task(void *p) {
  net_op *o = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  o->scope = &cs;
  o->rc = scio_send(o->s, o->buf, o->len);
  snprintf(o->msg, sizeof o->msg, "%s", scio_errmsg());
  o->scope = NULL;
  scio_scope_close(&cs);
  o->done = 1;
  return 0;
}

/* Receive exactly n bytes. */
static inline int net_recv_all(scio_stream *s, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = scio_receive(s, (char *)buf + got, n - got);
    if (r < 0)
      return (int)r;
    got += (size_t)r;
  }
  return 0;
}

void net_sockets_tests(Suite *s);
void net_listen_tests(Suite *s);
void net_serve_tests(Suite *s);
void net_dgram_tests(Suite *s);

#endif
