/* Socket streams: TCP, UNIX and socket pairs, through the scio_stream
 * interface. */
#include <fcntl.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>

#include "net_support.h"
#include "support/oom.h"

/* ---- data ---- */

SCIO_TEST(echo_every_kind) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    char buf[64];
    CK_OK(scio_send(a, "hello", 5));
    ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    CK_OK(scio_send(b, "world!", 6));
    CK_OK(net_recv_all(a, buf, 6));
    ck_assert_msg(memcmp(buf, "world!", 6) == 0, "%s", net_kind_name[k]);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  return 0;
}

typedef struct bulk {
  scio_stream *s;
  size_t total, chunk;
  int rc;
  size_t bad;
} bulk;

static int bulk_send(void *p) {
  bulk *j = p;
  unsigned char *buf = malloc(j->total);
  for (size_t i = 0; i < j->total; i++)
    buf[i] = net_pat(i);
  /* One huge send: the kernel takes it in many partial writes. */
  j->rc = scio_send(j->s, buf, j->total);
  if (j->rc == 0)
    j->rc = scio_send_eof(j->s);
  free(buf);
  return 0;
}

static int bulk_recv(void *p) {
  bulk *j = p;
  unsigned char *buf = malloc(j->chunk);
  size_t off = 0;
  j->bad = SIZE_MAX;
  for (;;) {
    ssize_t n = scio_receive(j->s, buf, j->chunk);
    if (n == SCIO_EOF)
      break;
    if (n < 0) {
      j->rc = (int)n;
      break;
    }
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != net_pat(off + (size_t)i) && j->bad == SIZE_MAX)
        j->bad = off + (size_t)i;
    off += (size_t)n;
  }
  j->total = off;
  free(buf);
  return 0;
}

SCIO_TEST(large_send_partial_writes_every_kind) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    bulk tx = {a, 8u << 20, 0, 0, 0}, rx = {b, 0, 1000, 0, 0};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, bulk_send, &tx));
    CK_OK(scio_start_soon(&n, bulk_recv, &rx));
    CK_OK(scio_nursery_close(&n));
    CK_OK(tx.rc);
    CK_OK(rx.rc);
    ck_assert_msg(rx.total == tx.total, "%s: got %zu of %zu",
                  net_kind_name[k], rx.total, tx.total);
    ck_assert_msg(rx.bad == SIZE_MAX, "byte %zu differs", rx.bad);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  return 0;
}

SCIO_TEST(send_vec_in_order) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    /* More buffers than one window, some empty. */
    struct iovec iov[150];
    char text[150];
    for (int i = 0; i < 150; i++) {
      text[i] = (char)('a' + i % 26);
      iov[i].iov_base = &text[i];
      iov[i].iov_len = i % 7 == 3 ? 0 : 1;
    }
    CK_OK(scio_socket_send_vec(a, iov, 150));
    CK_OK(scio_send_eof(a));
    char got[200];
    size_t n = 0;
    for (ssize_t r; (r = scio_receive(b, got + n, sizeof got - n)) > 0;)
      n += (size_t)r;
    size_t want = 0;
    for (int i = 0; i < 150; i++)
      if (iov[i].iov_len)
        ck_assert_int_eq(got[want++], text[i]);
    ck_assert_uint_eq(n, want);
    ck_assert_int_eq(scio_socket_send_vec(a, NULL, 1), SCIO_EINVAL);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  /* Any stream: buffer by buffer. */
  scio_stream *p, *q;
  CK_OK(scio_memory_pipe_open(&p, &q, NULL));
  struct iovec v[2] = {{"ab", 2}, {"cd", 2}};
  CK_OK(scio_socket_send_vec(p, v, 2));
  char buf[4];
  CK_OK(net_recv_all(q, buf, 4));
  ck_assert(memcmp(buf, "abcd", 4) == 0);
  scio_close(p);
  scio_close(q);
  return 0;
}

/* ---- ending ---- */

SCIO_TEST(eof_both_ways) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    char buf[16];
    CK_OK(scio_send(a, "x", 1));
    CK_OK(scio_send_eof(a));
    CK_OK(scio_send_eof(a)); /* idempotent */
    ck_assert_int_eq(scio_send(a, "y", 1), SCIO_ECLOSED);
    ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 1);
    ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
    ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
    /* The other direction still works. */
    CK_OK(scio_send(b, "back", 4));
    CK_OK(scio_send_eof(b));
    CK_OK(net_recv_all(a, buf, 4));
    ck_assert_int_eq(scio_receive(a, buf, sizeof buf), SCIO_EOF);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  return 0;
}

/* The last bytes and the FIN read in one short read: the next receive
 * must still see the end (an edge-triggered wait would never fire), and
 * at once: the FIN was reported with the bytes (TCP_INQ, or EPOLLRDHUP
 * through scio__fd_eof_seen), so no bounded wait may stand in for it.
 * Autojump: a bounded wait would show as time gone by.  Then the same with
 * a buffer the bytes fill exactly, and with the FIN after the short read
 * (its own edge). */
SCIO_TEST_AUTOJUMP(short_read_that_consumed_fin_then_eof) {
  for (int k = 0; k < NET_NKINDS; k++) {
    for (int round = 0; round < 3; round++) {
      scio_stream *a, *b;
      net_pair(k, &a, &b);
      char buf[100];
      size_t cap = round == 1 ? 3 : sizeof buf;
      CK_OK(scio_send(a, "x", 1));
      ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 1); /* registers */
      CK_OK(scio_send(a, "abc", 3));
      if (round < 2)
        CK_OK(scio_send_eof(a));
      int fd;
      CK_OK(scio_stream_fd(b, &fd));
      struct pollfd p = {fd, round < 2 ? POLLRDHUP : POLLIN, 0};
      while (poll(&p, 1, 0) == 0)
        scio_sleep(0.001);
      CK_OK(scio_wait_all_tasks_blocked());
      double t0 = scio_now();
      ck_assert_int_eq(scio_receive(b, buf, cap), 3);
      if (round == 2)
        CK_OK(scio_send_eof(a));
      ck_assert_int_eq(scio_receive(b, buf, cap), SCIO_EOF);
      ck_assert_msg(scio_now() - t0 < 0.025, /* a bounded wait: 0.05+ */
                    "%s round %d: the end of stream took %g s",
                    net_kind_name[k], round, scio_now() - t0);
      CK_OK(scio_close(a));
      CK_OK(scio_close(b));
    }
  }
  return 0;
}

/* Bytes and a reset that arrive before the loop polls are reported by one
 * edge: after the read that drains the bytes, the reset is still pending
 * and no edge will come for it.  The next receive must see it anyway. */
SCIO_TEST(data_and_reset_in_one_edge_then_ebroken) {
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  int fd = net_raw_connect(AF_INET, scio_listener_port(l));
  scio_stream *b;
  CK_OK(scio_listener_accept(l, &b));
  char buf[100];
  ck_assert_int_eq(write(fd, "x", 1), 1);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 1); /* registers */
  ck_assert_int_eq(write(fd, "abc", 3), 3);
  struct linger lg = {1, 0};
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
  int bfd;
  CK_OK(scio_stream_fd(b, &bfd));
  struct pollfd p = {bfd, POLLIN, 0};
  while (poll(&p, 1, 0) == 0 || !(p.revents & (POLLERR | POLLHUP)))
    scio_sleep(0.001);
  CK_OK(scio_wait_all_tasks_blocked()); /* one poll sees both */
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 5.0));
  ssize_t r = scio_receive(b, buf, sizeof buf);
  ck_assert_int_eq(scio_scope_close(&cs), 0);
  ck_assert_msg(r == SCIO_EBROKEN, "receive: %s", scio_err_name((int)r));
  CK_OK(scio_close(b));
  CK_OK(scio_listener_close(l));
  return 0;
}

/* wait_receive_ready on sockets: an idle connection sleeps in it, also
 * after a read that TCP_INQ reported as draining the queue (whose next
 * wait is bounded: the bound's expiry must not wake it), and through time
 * jumps; a send wakes it and the bytes stay for the receive. */
typedef struct rr_waiter {
  scio_stream *s;
  int rc, done;
} rr_waiter;

static int rr_wait(void *arg) {
  rr_waiter *w = arg;
  w->rc = scio_wait_receive_ready(w->s);
  w->done = 1;
  return 0;
}

SCIO_TEST_AUTOJUMP(wait_receive_ready_sleeps_while_idle_every_kind) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    char buf[8];
    for (int round = 0; round < 3; round++) {
      rr_waiter w = {b, 1, 0};
      scio_nursery n;
      CK_OK(scio_nursery_open(&n));
      CK_OK(scio_start_soon(&n, rr_wait, &w));
      CK_OK(scio_sleep(10.0)); /* far past the 50 ms bound */
      ck_assert_msg(!w.done, "%s round %d: wait_receive_ready returned %d "
                    "with nothing sent", net_kind_name[k], round, w.rc);
      ck_assert_int_eq(scio_receive(b, buf, 1), SCIO_EBUSY);
      CK_OK(scio_send(a, "xy", 2));
      CK_OK(scio_nursery_close(&n));
      ck_assert_int_eq(w.rc, 0);
      /* Ready at once now, and still a checkpoint; nothing was taken. */
      CK_OK(scio_wait_receive_ready(b));
      CK_OK(net_recv_all(b, buf, 2));
      ck_assert_int_eq(memcmp(buf, "xy", 2), 0);
    }
    /* EOF makes it ready. */
    CK_OK(scio_send_eof(a));
    CK_OK(scio_wait_receive_ready(b));
    ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  return 0;
}

/* Close wakes a task in wait_receive_ready with SCIO_ECLOSED. */
static int rr_closer(void *arg) {
  scio_wait_all_tasks_blocked();
  return scio_close(arg);
}

SCIO_TEST(wait_receive_ready_close_wakes_every_kind) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    rr_waiter w = {b, 1, 0};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, rr_wait, &w));
    CK_OK(scio_start_soon(&n, rr_closer, b));
    CK_OK(scio_nursery_close(&n));
    ck_assert_int_eq(w.rc, SCIO_ECLOSED);
    CK_OK(scio_close(a));
  }
  return 0;
}

/* Data and a reset in one edge (see data_and_reset_in_one_edge_then_ebroken):
 * after the data was read, wait_receive_ready still returns (the reset is
 * what the receive reports), within its bound. */
SCIO_TEST(wait_receive_ready_sees_reset_after_data) {
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  int fd = net_raw_connect(AF_INET, scio_listener_port(l));
  scio_stream *b;
  CK_OK(scio_listener_accept(l, &b));
  char buf[100];
  ck_assert_int_eq(write(fd, "x", 1), 1);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 1);
  ck_assert_int_eq(write(fd, "abc", 3), 3);
  struct linger lg = {1, 0};
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
  int bfd;
  CK_OK(scio_stream_fd(b, &bfd));
  struct pollfd p = {bfd, POLLIN, 0};
  while (poll(&p, 1, 0) == 0 || !(p.revents & (POLLERR | POLLHUP)))
    scio_sleep(0.001);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_wait_receive_ready(b));
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 5.0));
  int rc = scio_wait_receive_ready(b);
  ck_assert_int_eq(scio_scope_close(&cs), 0);
  CK_OK(rc);
  ssize_t r = scio_receive(b, buf, sizeof buf);
  ck_assert_msg(r == SCIO_EBROKEN, "receive: %s", scio_err_name((int)r));
  CK_OK(scio_close(b));
  CK_OK(scio_listener_close(l));
  return 0;
}

/* send_nowait fills the socket without waiting: whole or partial sends,
 * then SCIO_EWOULDBLOCK; the peer drains everything in order with
 * wait_receive_ready + receive_nowait, which then says SCIO_EWOULDBLOCK;
 * neither call is a checkpoint.  Every kind of socket pair. */
SCIO_TEST(nowait_fills_and_drains_every_kind) {
  enum { CHUNK = 65536 };
  unsigned char *src = malloc(CHUNK), *dst = malloc(CHUNK);
  ck_assert_ptr_nonnull(src);
  ck_assert_ptr_nonnull(dst);
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    size_t total = 0;
    int partial = 0;
    scio_scope cs;
    CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
    scio_scope_cancel(&cs); /* not checkpoints: cancellation is not seen */
    for (;;) {
      for (size_t i = 0; i < CHUNK; i++)
        src[i] = (unsigned char)((total + i) * 7);
      ssize_t n = scio_send_nowait(a, src, CHUNK);
      if (n == SCIO_EWOULDBLOCK)
        break;
      ck_assert_msg(n > 0, "%s: send_nowait: %s", net_kind_name[k],
                    scio_err_name((int)n));
      partial |= n < CHUNK;
      total += (size_t)n;
      ck_assert_msg(total < ((size_t)64 << 20), "%s: never full",
                    net_kind_name[k]);
    }
    CK_OK(scio_scope_close(&cs));
    ck_assert_msg(total > 0, "%s: nothing sent", net_kind_name[k]);
    (void)partial; /* a kernel may fill exactly: not asserted */
    size_t got = 0;
    while (got < total) {
      CK_OK(scio_wait_receive_ready(b));
      ssize_t n = scio_receive_nowait(b, dst, CHUNK);
      if (n == SCIO_EWOULDBLOCK)
        continue;
      ck_assert_msg(n > 0, "%s: receive_nowait: %s", net_kind_name[k],
                    scio_err_name((int)n));
      for (ssize_t i = 0; i < n; i++)
        ck_assert_msg(dst[i] == (unsigned char)((got + (size_t)i) * 7),
                      "%s: byte %zu", net_kind_name[k], got + (size_t)i);
      got += (size_t)n;
    }
    ck_assert_int_eq(scio_receive_nowait(b, dst, CHUNK), SCIO_EWOULDBLOCK);
    /* Drained, the sender takes bytes again. */
    CK_OK(scio_wait_send_ready(a));
    ck_assert_int_gt(scio_send_nowait(a, "z", 1), 0);
    CK_OK(scio_wait_receive_ready(b));
    ck_assert_int_eq(scio_receive_nowait(b, dst, 1), 1);
    ck_assert_int_eq(dst[0], 'z');
    /* End of stream, then the half-closed side refuses to send. */
    CK_OK(scio_send_eof(a));
    ck_assert_int_eq(scio_send_nowait(a, "z", 1), SCIO_ECLOSED);
    CK_OK(scio_wait_receive_ready(b));
    ck_assert_int_eq(scio_receive_nowait(b, dst, 1), SCIO_EOF);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  free(src);
  free(dst);
  return 0;
}

/* A reset is SCIO_EBROKEN from receive_nowait and then from send_nowait;
 * a closed stream is SCIO_ECLOSED. */
SCIO_TEST(nowait_reports_reset) {
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  int fd = net_raw_connect(AF_INET, scio_listener_port(l));
  scio_stream *b;
  CK_OK(scio_listener_accept(l, &b));
  char buf[16];
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), SCIO_EWOULDBLOCK);
  struct linger lg = {1, 0};
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
  CK_OK(scio_wait_receive_ready(b));
  ssize_t r = scio_receive_nowait(b, buf, sizeof buf);
  ck_assert_msg(r == SCIO_EBROKEN, "receive_nowait: %s",
                scio_err_name((int)r));
  r = scio_send_nowait(b, "x", 1);
  ck_assert_msg(r == SCIO_EBROKEN || r > 0, "send_nowait: %s",
                scio_err_name((int)r));
  CK_OK(scio_listener_close(l));
  scio_stream *c, *d;
  net_pair(0, &c, &d);
  CK_OK(scio_close(c));
  CK_OK(scio_close(b));
  CK_OK(scio_wait_receive_ready(d));
  ck_assert_int_eq(scio_receive_nowait(d, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_receive_nowait(NULL, buf, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_nowait(d, NULL, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_send_nowait(d, NULL, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_send_nowait(d, buf, 0), 0);
  CK_OK(scio_close(d));
  return 0;
}

SCIO_TEST(close_is_eof_for_peer) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    char buf[8];
    CK_OK(scio_send(a, "bye", 3));
    CK_OK(scio_close(a));
    CK_OK(net_recv_all(b, buf, 3));
    ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
    CK_OK(scio_close(b));
  }
  return 0;
}

/* A peer that resets (SO_LINGER 0): receive and send say SCIO_EBROKEN, and
 * no SIGPIPE reaches the process (its default action would kill it). */
SCIO_TEST(peer_reset_is_ebroken_without_sigpipe) {
  signal(SIGPIPE, SIG_DFL);
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  int fd = net_raw_connect(AF_INET, scio_listener_port(l));
  scio_stream *b;
  CK_OK(scio_listener_accept(l, &b));
  struct linger lg = {1, 0};
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
  char buf[8];
  ssize_t r = scio_receive(b, buf, sizeof buf);
  ck_assert_msg(r == SCIO_EBROKEN, "receive: %s", scio_err_name((int)r));
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "reset"));
  static char big[1 << 16];
  int rc = 0;
  for (int i = 0; i < 100 && rc == 0; i++)
    rc = scio_send(b, big, sizeof big);
  ck_assert_int_eq(rc, SCIO_EBROKEN);
  CK_OK(scio_close(b));

  /* A socket pair whose peer is closed: EPIPE on send, mapped too. */
  scio_stream *p, *q;
  CK_OK(scio_socket_pair_open(&p, &q));
  CK_OK(scio_close(q));
  ck_assert_int_eq(scio_send(p, "x", 1), SCIO_EBROKEN);
  CK_OK(scio_close(p));
  CK_OK(scio_listener_close(l));
  return 0;
}

/* ---- blocking, closing, busy ---- */

SCIO_TEST(close_wakes_blocked_receive_and_send) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    char rbuf[8];
    static char big[32 << 20]; /* more than the socket buffers hold */
    net_op r = {a, rbuf, sizeof rbuf, 0, 0, 0, ""};
    net_op s = {a, big, sizeof big, 0, 0, 0, ""};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, net_recv_task, &r));
    CK_OK(scio_start_soon(&n, net_send_task, &s));
    CK_OK(scio_wait_all_tasks_blocked());
    ck_assert(!r.done && !s.done);
    CK_OK(scio_close(a));
    CK_OK(scio_nursery_close(&n));
    ck_assert_int_eq(r.rc, SCIO_ECLOSED);
    ck_assert_int_eq(s.rc, SCIO_ECLOSED);
    CK_OK(scio_close(b));
  }
  return 0;
}

SCIO_TEST(second_receiver_is_busy) {
  scio_stream *a, *b;
  net_pair(NET_TCP, &a, &b);
  char buf[8];
  net_op r = {b, buf, sizeof buf, 0, 0, 0, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, net_recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EBUSY);
  CK_OK(scio_send(a, "z", 1));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 1);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ---- cancellation and the checkpoint rule ---- */

SCIO_TEST(cancelled_receive_loses_nothing) {
  for (int k = 0; k < NET_NKINDS; k++) {
    scio_stream *a, *b;
    net_pair(k, &a, &b);
    char buf[8];
    net_op r = {b, buf, sizeof buf, 0, 0, 0, ""};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, net_recv_task, &r));
    CK_OK(scio_wait_all_tasks_blocked());
    scio_scope_cancel(r.scope);
    CK_OK(scio_nursery_close(&n));
    ck_assert_int_eq(r.rc, SCIO_ECANCELED);
    CK_OK(scio_send(a, "kept", 4));
    CK_OK(net_recv_all(b, buf, 4));
    ck_assert(memcmp(buf, "kept", 4) == 0);
    CK_OK(scio_close(a));
    CK_OK(scio_close(b));
  }
  return 0;
}

SCIO_TEST(cancelled_send_reports_prefix) {
  scio_stream *a, *b;
  net_pair(NET_PAIR, &a, &b);
  static char big[1 << 22];
  net_op s = {a, big, sizeof big, 0, 0, 0, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, net_send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(s.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(s.rc, SCIO_ECANCELED);
  size_t sent = 0, total = 0;
  ck_assert_msg(sscanf(s.msg, "send: cancelled after %zu of %zu", &sent,
                       &total) == 2, "%s", s.msg);
  ck_assert_uint_eq(total, sizeof big);
  ck_assert_uint_gt(sent, 0);
  /* Exactly the prefix arrives, and the stream is still usable. */
  bulk rx = {b, 0, 1 << 16, 0, 0};
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, bulk_recv, &rx));
  CK_OK(scio_send(a, "!", 1));
  CK_OK(scio_send_eof(a));
  CK_OK(scio_nursery_close(&n));
  CK_OK(rx.rc);
  ck_assert_uint_eq(rx.total, sent + 1);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

static int flag_task(void *p) {
  *(int *)p = 1;
  return 0;
}

/* Operations that complete at once still let others run, and a cancelled
 * task's operations fail before any syscall. */
SCIO_TEST(operations_are_checkpoints) {
  scio_stream *a, *b;
  net_pair(NET_TCP, &a, &b);
  char buf[8];
  int ran = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, flag_task, &ran));
  CK_OK(scio_send(a, "1", 1));
  ck_assert_int_eq(ran, 1);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_wait_all_tasks_blocked()); /* let the byte arrive */
  ran = 0;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, flag_task, &ran));
  ck_assert_int_eq(scio_receive(b, buf, 1), 1);
  ck_assert_int_eq(ran, 1);
  CK_OK(scio_nursery_close(&n));

  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  CK_OK(scio_send(a, "2", 1) == SCIO_ECANCELED ? 0 : -1);
  ck_assert_int_eq(scio_receive(b, buf, 1), SCIO_ECANCELED);
  ck_assert_int_eq(scio_send_eof(a), SCIO_ECANCELED);
  scio_scope_close(&cs);
  /* Nothing was sent by the cancelled send. */
  CK_OK(scio_send_eof(a));
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ---- attributes and construction ---- */

SCIO_TEST(attributes) {
  scio_stream *a, *b;
  net_pair(NET_TCP, &a, &b);
  int fd = -1, fam = 0;
  CK_OK(scio_stream_fd(a, &fd));
  ck_assert_int_ge(fd, 0);
  ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
  ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  int nd = 0;
  socklen_t sl = sizeof nd;
  getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &sl);
  ck_assert_int_eq(nd, 1);
  CK_OK(scio_stream_family(a, &fam));
  ck_assert_int_eq(fam, AF_INET);
  struct sockaddr_storage la, ra, lb, rb;
  CK_OK(scio_stream_local_addr(a, &la));
  CK_OK(scio_stream_remote_addr(a, &ra));
  CK_OK(scio_stream_local_addr(b, &lb));
  CK_OK(scio_stream_remote_addr(b, &rb));
  ck_assert(memcmp(&la, &rb, sizeof(struct sockaddr_in)) == 0);
  ck_assert(memcmp(&ra, &lb, sizeof(struct sockaddr_in)) == 0);
  char text[64], name[16];
  ck_assert_int_gt(scio_sockaddr_format(&ra, text, sizeof text), 0);
  ck_assert_msg(strncmp(text, "127.0.0.1:", 10) == 0, "%s", text);
  CK_OK(scio_stream_layer(a, name, sizeof name));
  ck_assert_str_eq(name, "tcp");
  ck_assert_int_eq(scio_stream_attr(a, SCIO_ATTR_FD, &fd, 1), -ENOSPC);
  ck_assert_int_eq(scio_stream_attr(a, SCIO_ATTR_ALPN, text, sizeof text),
                   -ENOENT);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));

  CK_OK(scio_socket_pair_open(&a, &b));
  CK_OK(scio_stream_family(a, &fam));
  ck_assert_int_eq(fam, AF_UNIX);
  CK_OK(scio_stream_remote_addr(a, &ra));
  scio_sockaddr_format(&ra, text, sizeof text);
  ck_assert_str_eq(text, "unix:(unnamed)");
  CK_OK(scio_stream_layer(a, name, sizeof name));
  ck_assert_str_eq(name, "unix");
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(from_fd_bad_input_keeps_fd) {
  scio_stream *s = (scio_stream *)1;
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ck_assert_int_eq(scio_socket_stream_from_fd(p[0], 0, &s), SCIO_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "not a socket"));
  ck_assert_int_ne(fcntl(p[0], F_GETFD), -1); /* still the caller's */
  close(p[0]);
  close(p[1]);
  int d = socket(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_eq(scio_socket_stream_from_fd(d, 0, &s), SCIO_EINVAL);
  close(d);
  ck_assert_int_eq(scio_socket_stream_from_fd(-1, 0, &s), SCIO_EINVAL);
  ck_assert_int_eq(scio_socket_stream_from_fd(0, 99, &s), SCIO_EINVAL);
  ck_assert_int_eq(scio_socket_stream_from_fd(0, 0, NULL), SCIO_EINVAL);
  /* Nagle kept on request; blocking fds are made non-blocking. */
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CK_OK(scio_socket_stream_from_fd(sv[0], SCIO_SOCKET_KEEP_NAGLE, &s));
  ck_assert(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
  ck_assert(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
  CK_OK(scio_close(s));
  ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1); /* closed by the stream */
  close(sv[1]);
  ck_assert_int_eq(scio_socket_pair_open(NULL, &s), SCIO_EINVAL);
  return 0;
}

SCIO_TEST(connect_unix_errors) {
  scio_stream *s = (scio_stream *)1;
  char path[108];
  net_sock_path(path, sizeof path, "none");
  ck_assert_int_eq(scio_connect_unix(path, &s), SCIO_ENOENT);
  ck_assert_ptr_null(s);
  char longp[200];
  memset(longp, 'x', sizeof longp - 1);
  longp[sizeof longp - 1] = 0;
  ck_assert_int_eq(scio_connect_unix(longp, &s), SCIO_EINVAL);
  ck_assert_int_eq(scio_connect_unix("", &s), SCIO_EINVAL);
  ck_assert_int_eq(scio_connect_unix(NULL, &s), SCIO_EINVAL);
  /* A socket file nobody listens on: refused. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  strcpy(sun.sun_path, path);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
  close(fd);
  ck_assert_int_eq(scio_connect_unix(path, &s), -ECONNREFUSED);
  unlink(path);
  return 0;
}

/* ---- allocation failure ---- */

static int oom_from_fd_body(void *arg) {
  (void)arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return -errno;
  scio_stream *a = NULL;
  int rc = scio_socket_stream_from_fd(sv[0], 0, &a);
  if (rc < 0) {
    ck_assert_ptr_null(a);
    close(sv[0]);
  } else {
    /* The stream works. */
    rc = scio_send(a, "x", 1);
    char c;
    if (rc == 0 && read(sv[1], &c, 1) != 1)
      rc = -EIO;
    scio_close(a);
  }
  close(sv[1]);
  return rc;
}

START_TEST(allocation_failure_from_fd) {
  if (!scio_oom_install(SCIO_OOM_LIBEVENT))
    return;
  scio_oom_run r = {.fn = oom_from_fd_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, "socket_stream_from_fd", NULL);
  scio_oom_uninstall();
}
END_TEST

void net_sockets_tests(Suite *s) {
  TCase *tc = scio_tcase_new("sockets", 30);
  scio_tcase_add(tc, echo_every_kind);
  scio_tcase_add(tc, large_send_partial_writes_every_kind);
  scio_tcase_add(tc, send_vec_in_order);
  scio_tcase_add(tc, eof_both_ways);
  scio_tcase_add(tc, short_read_that_consumed_fin_then_eof);
  scio_tcase_add(tc, data_and_reset_in_one_edge_then_ebroken);
  scio_tcase_add(tc, close_is_eof_for_peer);
  scio_tcase_add(tc, nowait_fills_and_drains_every_kind);
  scio_tcase_add(tc, nowait_reports_reset);
  scio_tcase_add(tc, wait_receive_ready_sleeps_while_idle_every_kind);
  scio_tcase_add(tc, wait_receive_ready_close_wakes_every_kind);
  scio_tcase_add(tc, wait_receive_ready_sees_reset_after_data);
  scio_tcase_add(tc, peer_reset_is_ebroken_without_sigpipe);
  scio_tcase_add(tc, close_wakes_blocked_receive_and_send);
  scio_tcase_add(tc, second_receiver_is_busy);
  scio_tcase_add(tc, cancelled_receive_loses_nothing);
  scio_tcase_add(tc, cancelled_send_reports_prefix);
  scio_tcase_add(tc, operations_are_checkpoints);
  scio_tcase_add(tc, attributes);
  scio_tcase_add(tc, from_fd_bad_input_keeps_fd);
  scio_tcase_add(tc, connect_unix_errors);
  suite_add_tcase(s, tc);
  tc = scio_tcase_new("sockets-oom", 60);
  tcase_add_loop_test(tc, allocation_failure_from_fd, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
}
