/* The stream conformance kit (<scio/streamcheck.h>) over socket streams:
 * TCP on loopback (happy-eyeballs connect and a plain connect), UNIX stream
 * sockets and socketpair.  Every socket stream is half-closeable
 * (send_eof is shutdown(SHUT_WR)), so each runs the whole kit.
 *
 * No clogged maker: a socket is clogged by filling both kernel buffers,
 * and then one small receive on the peer does not make the sender
 * writable again (the kernel wakes a writer only once a good part of the
 * send buffer is free), which the clogged checks' "blocks until r starts
 * receiving" does not allow for.  Those checks are skipped.
 *
 * On the real clock (the kit's deadlines must not race the kernel): each
 * check gets kit.timeout seconds, the TCase more than the whole kit. */
#include <stdlib.h>

#include "net_support.h"

/* The makers return errors instead of failing the test: the kit then stops
 * with that error and reports it, and closes what it was given. */

static int kit_tcp_pair(scio_stream **a, scio_stream **b, void *arg) {
  int happy_eyeballs = arg != NULL;
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

/* Fds before and after: the kit closes every pair it made. */
static int run_kit(scio_stream_pair_fn make, void *arg) {
  int before = net_count_fds();
  scio_stream_kit kit = {.make = make, .arg = arg, .timeout = 20};
  scio_check_half_closeable_stream(&kit);
  ck_assert_int_eq(net_count_fds(), before);
  return 0;
}

SCIO_TEST(kit_tcp_loopback) { return run_kit(kit_tcp_pair, NULL); }

SCIO_TEST(kit_tcp_happy_eyeballs) {
  static int he = 1;
  return run_kit(kit_tcp_pair, &he);
}

SCIO_TEST(kit_unix) { return run_kit(kit_unix_pair, NULL); }

SCIO_TEST(kit_socketpair) { return run_kit(kit_pair_open, NULL); }

void net_kit_tests(Suite *s) {
  TCase *tc = scio_tcase_new("kit", 120);
  scio_tcase_add(tc, kit_tcp_loopback);
  scio_tcase_add(tc, kit_tcp_happy_eyeballs);
  scio_tcase_add(tc, kit_unix);
  scio_tcase_add(tc, kit_socketpair);
  suite_add_tcase(s, tc);
}
