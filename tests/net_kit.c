/* The stream conformance kit (<scio/streamcheck.h>) over socket streams:
 * TCP on loopback (happy-eyeballs connect and a plain connect), UNIX stream
 * sockets and socketpair.  Every socket stream is half-closeable
 * (send_eof is shutdown(SHUT_WR)), so each runs the whole kit.
 *
 * The clogged pairs are raw TCP or UNIX socket pairs with small buffers,
 * filled both ways until the kernel takes not one byte more (clog_fds).
 *
 * On the real clock (the kit's deadlines must not race the kernel): each
 * check gets kit.timeout seconds, the TCase more than the whole kit. */
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>

#include "net_support.h"

/* The makers return errors instead of failing the test: the kit then stops
 * with that error and reports it, and closes what it was given. */

/* What a maker makes: TCP (else UNIX), with happy eyeballs. */
typedef struct kind {
  int tcp, happy_eyeballs;
} kind;

static int kit_tcp_pair(scio_stream **a, scio_stream **b, void *arg) {
  int happy_eyeballs = ((kind *)arg)->happy_eyeballs;
  scio_listener *l;
  *a = *b = NULL;
  int rc = scio_tcp_listen("127.0.0.1", 0, NULL, &l);
  if (rc < 0)
    return rc;
  int port = scio_listener_port(l);
  if (happy_eyeballs) {
    rc = scio_connect_tcp("127.0.0.1", (uint16_t)port, NULL, a);
  } else {
    /* A plain connect: loopback completes it without accept. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
      rc = -errno;
    else if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
      rc = -errno;
      close(fd);
    } else if ((rc = scio_socket_stream_from_fd(fd, 0, a)) < 0)
      close(fd);
  }
  if (rc == 0)
    rc = scio_listener_accept(l, b);
  int crc = scio_listener_close(l);
  return rc < 0 ? rc : crc;
}

static int kit_unix_pair(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  char path[108];
  scio_listener *l;
  *a = *b = NULL;
  net_sock_path(path, sizeof path, "kit");
  int rc = scio_unix_listen(path, NULL, &l);
  if (rc < 0)
    return rc;
  rc = scio_connect_unix(path, a);
  if (rc == 0)
    rc = scio_listener_accept(l, b);
  int crc = scio_listener_close(l);
  return rc < 0 ? rc : crc;
}

static int kit_pair_open(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  return scio_socket_pair_open(a, b);
}

/* ---- clogged pairs ---- */

/* Fill fd's send side (and the peer's receive side) until the kernel takes
 * not one more byte.  Returns how many bytes it took, or -errno. */
static ssize_t fill_fd(int fd) {
  static const char junk[4096];
  ssize_t n, total = 0;
  while ((n = send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
    total += n;
  /* TCP takes small writes after refusing a large one: to the last byte. */
  while (n < 0 && errno == EAGAIN &&
         (n = send(fd, junk, 1, MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
    total += n;
  return errno == EAGAIN || errno == EWOULDBLOCK ? total : -errno;
}

/* Clog both ways, until neither end takes a byte more after a pause: on
 * loopback TCP the bytes (and the ACKs that free send buffer) can still be
 * in flight when send says EAGAIN, and each direction's data carries ACKs
 * for the other. */
static int clog_fds(int fds[2]) {
  int quiet = 0, one = 1;
  for (int rounds = 0; rounds < 200; rounds++) {
    /* No delayed ACKs (40 ms and more) to free send buffer after we look;
     * the kernel resets this, hence every round.  UNIX: ENOPROTOOPT. */
    setsockopt(fds[0], IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    setsockopt(fds[1], IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    ssize_t n0 = fill_fd(fds[0]), n1 = fill_fd(fds[1]);
    if (n0 < 0 || n1 < 0)
      return (int)(n0 < 0 ? n0 : n1);
    quiet = rounds > 0 && n0 == 0 && n1 == 0 ? quiet + 1 : 0;
    if (quiet == 2)
      return 0;
    poll(NULL, 0, 50); /* let the kernel deliver what is in flight */
  }
  return -EAGAIN;
}

/* Small buffers keep the fill short. */
static void small_buffers(int fd) {
  int v = 4096;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

/* A connected pair of raw fds: TCP on loopback or a UNIX socketpair. */
static int raw_pair(int tcp, int fds[2]) {
  if (!tcp)
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0
               ? -errno
               : 0;
  int rc = 0, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  fds[1] = -1;
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  if (l < 0 || fds[0] < 0)
    rc = -errno;
  else {
    /* Before listen/connect, so the window is small from the start. */
    small_buffers(l);
    small_buffers(fds[0]);
    if (bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sin, &len) < 0 ||
        connect(fds[0], (struct sockaddr *)&sin, sizeof sin) < 0 ||
        (fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
      rc = -errno;
  }
  if (l >= 0)
    close(l);
  if (rc < 0 && fds[0] >= 0)
    close(fds[0]);
  return rc;
}

static int kit_clogged(scio_stream **a, scio_stream **b, void *arg) {
  int fds[2];
  *a = *b = NULL;
  int rc = raw_pair(((kind *)arg)->tcp, fds);
  if (rc < 0)
    return rc;
  small_buffers(fds[0]);
  small_buffers(fds[1]);
  if ((rc = clog_fds(fds)) < 0 ||
      (rc = scio_socket_stream_from_fd(fds[0], 0, a)) < 0) {
    close(fds[0]);
    close(fds[1]);
    return rc;
  }
  if ((rc = scio_socket_stream_from_fd(fds[1], 0, b)) < 0)
    close(fds[1]);
  return rc;
}

/* Fds before and after: the kit closes every pair it made. */
static int run_kit(scio_stream_pair_fn make, kind k) {
  int before = net_count_fds();
  scio_stream_kit kit = {.make = make, .make_clogged = kit_clogged,
                         .arg = &k, .timeout = 20};
  scio_check_half_closeable_stream(&kit);
  ck_assert_int_eq(net_count_fds(), before);
  return 0;
}

SCIO_TEST(kit_tcp_loopback) { return run_kit(kit_tcp_pair, (kind){1, 0}); }

SCIO_TEST(kit_tcp_happy_eyeballs) {
  return run_kit(kit_tcp_pair, (kind){1, 1});
}

/* UNIX: the clogged pairs are socketpairs (the same kind of socket). */
SCIO_TEST(kit_unix) { return run_kit(kit_unix_pair, (kind){0, 0}); }

SCIO_TEST(kit_socketpair) { return run_kit(kit_pair_open, (kind){0, 0}); }

void net_kit_tests(Suite *s) {
  TCase *tc = scio_tcase_new("kit", 120);
  scio_tcase_add(tc, kit_tcp_loopback);
  scio_tcase_add(tc, kit_tcp_happy_eyeballs);
  scio_tcase_add(tc, kit_unix);
  scio_tcase_add(tc, kit_socketpair);
  suite_add_tcase(s, tc);
}
