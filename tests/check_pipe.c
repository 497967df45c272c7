/* Tests of include/scio/pipe.h: memory pipes.  Every async test runs once
 * per backend (epoll, poll, select). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "scio/pipe.h"
#include "scio/testing.h"
#include "support/oom.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* The byte at stream offset i: position-dependent, so a lost, doubled or
 * reordered byte is caught where it happens. */
static unsigned char pat(size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u;
  return (unsigned char)((x >> 24) ^ (x >> 11));
}

static void fill(unsigned char *buf, size_t off, size_t n) {
  for (size_t i = 0; i < n; i++)
    buf[i] = pat(off + i);
}

#define FNV_INIT 14695981039346656037ull
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static scio_memory_pipe_stats stats(scio_stream *s) {
  scio_memory_pipe_stats st;
  CK_OK(scio_memory_pipe_statistics(s, &st));
  return st;
}

static size_t buffered(scio_stream *s) {
  size_t n = 12345;
  CK_OK(scio_stream_attr(s, SCIO_ATTR_BUFFERED, &n, sizeof n));
  return n;
}

static void pipe_with(scio_stream **a, scio_stream **b, size_t bufsize) {
  scio_memory_pipe_opts o = {0};
  o.buffer_size = bufsize;
  CK_OK(scio_memory_pipe_open(a, b, &o));
}

/* One send or receive run in a child task, inside a cancel scope the test
 * can cancel while the task is blocked. */
typedef struct op {
  scio_stream *s;
  unsigned char *buf;
  size_t len;
  ssize_t rc;
  int done;
  scio_scope *scope;
  char msg[200];
} op;

static void op_finish(op *o, ssize_t rc) {
  o->rc = rc;
  snprintf(o->msg, sizeof o->msg, "%s", scio_errmsg());
  o->done = 1;
}

static int recv_task(void *p) {
  op *o = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  o->scope = &cs;
  ssize_t rc = scio_receive(o->s, o->buf, o->len);
  o->scope = NULL;
  scio_scope_close(&cs);
  op_finish(o, rc);
  return 0;
}

static int send_task(void *p) {
  op *o = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  o->scope = &cs;
  int rc = scio_send(o->s, o->buf, o->len);
  o->scope = NULL;
  scio_scope_close(&cs);
  op_finish(o, rc);
  return 0;
}

static void expect_pattern(const unsigned char *buf, size_t off, size_t n) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(buf[i] == pat(off + i), "byte %zu differs", off + i);
}

/* ------------------------------------------------------------------------ */
/* Data integrity                                                            */

/* A pump sends (or receives) `total` bytes of the pattern in chunks whose
 * sizes cycle through `sizes`, and keeps an FNV-1a checksum. */
typedef struct pump {
  scio_stream *s;
  size_t total;
  const size_t *sizes;
  size_t nsizes;
  int rc;
  size_t count;
  uint64_t sum;
  size_t bad; /* offset of the first wrong byte, or SIZE_MAX */
} pump;

static size_t max_of(const size_t *v, size_t n) {
  size_t m = 1;
  for (size_t i = 0; i < n; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

static int pump_send(void *p) {
  pump *j = p;
  unsigned char *buf = malloc(max_of(j->sizes, j->nsizes));
  int rc = 0;
  j->sum = FNV_INIT;
  for (size_t k = 0; j->count < j->total && rc == 0; k++) {
    size_t n = j->sizes[k % j->nsizes];
    if (n > j->total - j->count)
      n = j->total - j->count;
    fill(buf, j->count, n);
    j->sum = fnv(j->sum, buf, n);
    rc = scio_send(j->s, buf, n);
    if (rc == 0)
      j->count += n;
  }
  if (rc == 0)
    rc = scio_send_eof(j->s);
  free(buf);
  j->rc = rc;
  return 0;
}

static size_t first_bad(const unsigned char *buf, size_t off, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (buf[i] != pat(off + i))
      return off + i;
  return SIZE_MAX;
}

static int pump_recv(void *p) {
  pump *j = p;
  unsigned char *buf = malloc(max_of(j->sizes, j->nsizes));
  j->sum = FNV_INIT;
  j->bad = SIZE_MAX;
  j->rc = 0;
  for (size_t k = 0;; k++) {
    ssize_t n = scio_receive(j->s, buf, j->sizes[k % j->nsizes]);
    if (n == SCIO_EOF)
      break;
    if (n <= 0) {
      j->rc = n < 0 ? (int)n : -EIO;
      break;
    }
    if (j->bad == SIZE_MAX)
      j->bad = first_bad(buf, j->count, (size_t)n);
    j->sum = fnv(j->sum, buf, (size_t)n);
    j->count += (size_t)n;
  }
  free(buf);
  return 0;
}

static void check_pumps(const pump *tx, const pump *rx, size_t total) {
  ck_assert_int_eq(tx->rc, 0);
  ck_assert_msg(rx->rc == 0, "receive: %s", scio_strerror(rx->rc));
  ck_assert_uint_eq(tx->count, total);
  ck_assert_uint_eq(rx->count, total);
  ck_assert_msg(rx->bad == SIZE_MAX, "first wrong byte at %zu", rx->bad);
  ck_assert(tx->sum == rx->sum);
}

static const size_t send_sizes[] = {1,     2,     3,     7,      100,
                                    4095,  4096,  4097,  65535,  65536,
                                    65537, 200000, 1u << 20};
static const size_t recv_sizes[] = {1, 7, 4096, 65536, 100000, 1u << 21};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static size_t sum_of(const size_t *v, size_t n) {
  size_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += v[i];
  return s;
}

static void transfer(size_t bufsize, size_t total) {
  scio_stream *a, *b;
  pipe_with(&a, &b, bufsize);
  pump tx = {a, total, send_sizes, NELEM(send_sizes), 0, 0, 0, 0};
  pump rx = {b, total, recv_sizes, NELEM(recv_sizes), 0, 0, 0, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, pump_send, &tx));
  CK_OK(scio_start_soon(&n, pump_recv, &rx));
  CK_OK(scio_nursery_close(&n));
  check_pumps(&tx, &rx, total);
  scio_memory_pipe_stats st = stats(a);
  ck_assert_uint_eq(st.bytes_sent, total);
  ck_assert_uint_eq(stats(b).bytes_received, total);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
}

SCIO_TEST(integrity_many_sizes) {
  /* Every send size appears once: some far larger than the buffer. */
  size_t total = sum_of(send_sizes, NELEM(send_sizes));
  const size_t bufsizes[] = {1, 7, 4096, 0};
  for (size_t i = 0; i < NELEM(bufsizes); i++)
    transfer(bufsizes[i], total);
  return 0;
}

SCIO_TEST(receive_returns_what_is_there) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_send(a, "abc", 3));
  char buf[100];
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  ck_assert(memcmp(buf, "abc", 3) == 0);
  /* A zero-byte send is a plain checkpoint. */
  CK_OK(scio_send(a, NULL, 0));
  ck_assert_uint_eq(buffered(b), 0);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* Bytes through both directions at once, four tasks. */
SCIO_TEST(bidirectional) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 3000);
  size_t total = 700000;
  static const size_t s1[] = {5000, 123, 70000}, s2[] = {999, 4096, 1};
  pump ab_tx = {a, total, s1, 3, 0, 0, 0, 0};
  pump ab_rx = {b, total, s2, 3, 0, 0, 0, 0};
  pump ba_tx = {b, total, s2, 3, 0, 0, 0, 0};
  pump ba_rx = {a, total, s1, 3, 0, 0, 0, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, pump_send, &ab_tx));
  CK_OK(scio_start_soon(&n, pump_send, &ba_tx));
  CK_OK(scio_start_soon(&n, pump_recv, &ab_rx));
  CK_OK(scio_start_soon(&n, pump_recv, &ba_rx));
  CK_OK(scio_nursery_close(&n));
  check_pumps(&ab_tx, &ab_rx, total);
  check_pumps(&ba_tx, &ba_rx, total);
  CK_OK(scio_close(b));
  CK_OK(scio_close(a));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Back-pressure and hand-off                                                */

SCIO_TEST(send_blocks_while_buffer_full) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 1000);
  /* What fits completes without a reader. */
  unsigned char small[500];
  fill(small, 0, sizeof small);
  CK_OK(scio_send(a, small, sizeof small));
  ck_assert_uint_eq(stats(a).buffered_out, 500);
  unsigned char big[2500];
  fill(big, 500, sizeof big);
  op s = {a, big, sizeof big, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_memory_pipe_stats st = stats(a);
  ck_assert_int_eq(s.done, 0);
  ck_assert_uint_eq(st.senders_waiting, 1);
  ck_assert_uint_eq(st.buffered_out, 1000);
  ck_assert_uint_eq(st.bytes_sent, 1000);
  ck_assert_uint_eq(buffered(b), 1000);
  /* Draining 300 lets 300 more of the blocked send in; it stays blocked. */
  unsigned char got[3000];
  ck_assert_int_eq(scio_receive(b, got, 300), 300);
  CK_OK(scio_wait_all_tasks_blocked());
  st = stats(a);
  ck_assert_int_eq(s.done, 0);
  ck_assert_uint_eq(st.buffered_out, 1000);
  ck_assert_uint_eq(st.bytes_sent, 1300);
  /* A large receive takes the ring and the rest straight from the sender,
   * which completes. */
  ck_assert_int_eq(scio_receive(b, got + 300, 2000), 2000);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(s.done, 1);
  ck_assert_int_eq(s.rc, 0);
  ck_assert_uint_eq(stats(a).last_send_accepted, 2500);
  ck_assert_int_eq(scio_receive(b, got + 2300, 1000), 700);
  expect_pattern(got, 0, 3000);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(waiting_receiver_gets_bytes_directly) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 1); /* the buffer alone could pass one byte a time */
  unsigned char got[100], data[50];
  fill(data, 0, sizeof data);
  op r = {b, got, sizeof got, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_uint_eq(stats(b).receivers_waiting, 1);
  CK_OK(scio_send(a, data, sizeof data));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(r.rc, 50); /* all of it in one receive */
  expect_pattern(got, 0, 50);
  scio_memory_pipe_stats st = stats(a);
  ck_assert_uint_eq(st.buffered_out, 0);
  ck_assert_uint_eq(st.bytes_sent, 50);
  ck_assert_uint_eq(stats(b).bytes_received, 50);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(large_send_splits_between_receiver_buffer_and_sender) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 8);
  unsigned char got[10], data[30], rest[100];
  fill(data, 0, sizeof data);
  op r = {b, got, sizeof got, 1, 0, NULL, ""};
  op s = {a, data, sizeof data, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_start_soon(&n, send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  /* 10 went straight to the receiver, 8 into the ring, 12 wait. */
  ck_assert_int_eq(r.rc, 10);
  expect_pattern(got, 0, 10);
  scio_memory_pipe_stats st = stats(a);
  ck_assert_uint_eq(st.buffered_out, 8);
  ck_assert_uint_eq(st.bytes_sent, 18);
  ck_assert_uint_eq(st.senders_waiting, 1);
  ck_assert_int_eq(s.done, 0);
  /* A receiver that finds the sender blocked copies from it directly. */
  ck_assert_int_eq(scio_receive(b, rest, sizeof rest), 20);
  expect_pattern(rest, 10, 20);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(s.rc, 0);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* Every call is a checkpoint: it yields even when it completes at once. */
static int count_rounds(void *p) {
  int *rounds = p;
  for (int i = 0; i < 100; i++) {
    (*rounds)++;
    if (scio_checkpoint() < 0)
      break;
  }
  return 0;
}

SCIO_TEST(operations_yield) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  int rounds = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, count_rounds, &rounds));
  int before = rounds;
  CK_OK(scio_send(a, "x", 1));
  ck_assert_int_gt(rounds, before);
  before = rounds;
  char c;
  ck_assert_int_eq(scio_receive(b, &c, 1), 1);
  ck_assert_int_gt(rounds, before);
  before = rounds;
  CK_OK(scio_send_eof(a));
  ck_assert_int_gt(rounds, before);
  before = rounds;
  ck_assert_int_eq(scio_receive(b, &c, 1), SCIO_EOF);
  ck_assert_int_gt(rounds, before);
  ck_assert_int_lt(rounds, 100);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* EOF, EBROKEN, ECLOSED                                                     */

SCIO_TEST(send_eof_then_drain_then_eof) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_send(a, "hello", 5));
  CK_OK(scio_send_eof(a));
  CK_OK(scio_send_eof(a)); /* idempotent */
  char buf[16];
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 5);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_send(a, "x", 1), SCIO_ECLOSED);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "send_eof"));
  /* Half-close: the other direction still works. */
  CK_OK(scio_send(b, "back", 4));
  ck_assert_int_eq(scio_receive(a, buf, sizeof buf), 4);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(send_eof_wakes_waiting_receiver) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  unsigned char buf[8];
  op r = {b, buf, sizeof buf, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_send_eof(a));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_EOF);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(close_is_fin_for_peer) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_send(a, "bye", 3));
  CK_OK(scio_send(b, "unread", 6));
  CK_OK(scio_close(a));
  char buf[16];
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_send(b, "x", 1), SCIO_EBROKEN);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "peer"));
  ck_assert_uint_eq(stats(b).buffered_out, 0); /* dropped with a */
  CK_OK(scio_send_eof(b));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(close_gives_waiting_peer_receiver_eof) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  unsigned char buf[8];
  op r = {b, buf, sizeof buf, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(a));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_EOF);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(peer_close_breaks_blocked_sender) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 4);
  unsigned char data[10];
  fill(data, 0, sizeof data);
  op s = {a, data, sizeof data, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(s.rc, SCIO_EBROKEN);
  ck_assert_ptr_nonnull(strstr(s.msg, "4 of 10"));
  ck_assert_uint_eq(stats(a).last_send_accepted, 4);
  CK_OK(scio_close(a));
  return 0;
}

SCIO_TEST(close_wakes_own_blocked_tasks_with_eclosed) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 4);
  unsigned char in[8], data[10];
  fill(data, 0, sizeof data);
  op r = {a, in, sizeof in, 1, 0, NULL, ""};
  op s = {a, data, sizeof data, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_start_soon(&n, send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(a));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(s.rc, SCIO_ECLOSED);
  ck_assert_ptr_nonnull(strstr(s.msg, "4 of 10"));
  /* What the blocked send had handed over still arrives, then EOF. */
  unsigned char got[16];
  ck_assert_int_eq(scio_receive(b, got, sizeof got), 4);
  expect_pattern(got, 0, 4);
  ck_assert_int_eq(scio_receive(b, got, sizeof got), SCIO_EOF);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(close_with_data_pending_either_order) {
  for (int order = 0; order < 2; order++) {
    scio_stream *a, *b;
    pipe_with(&a, &b, 16);
    CK_OK(scio_send(a, "0123456789", 10));
    CK_OK(scio_send(b, "abc", 3));
    CK_OK(scio_close(order ? b : a));
    CK_OK(scio_close(order ? a : b));
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Cancellation                                                              */

SCIO_TEST(cancelled_receive_loses_nothing) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  unsigned char buf[16];
  op r = {b, buf, sizeof buf, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(r.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECANCELED);
  ck_assert_uint_eq(stats(b).receivers_waiting, 0);
  CK_OK(scio_send(a, "hello", 5));
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 5);
  ck_assert(memcmp(buf, "hello", 5) == 0);
  /* Already cancelled with bytes waiting: ECANCELED, and they stay. */
  CK_OK(scio_send(a, "more", 4));
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert_uint_eq(buffered(b), 4);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 4);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* A receiver woken with bytes keeps them even if its scope is cancelled
 * before it runs again. */
typedef struct race {
  scio_stream *a;
  op *r;
} race;

static int race_send(void *p) {
  race *x = p;
  return scio_send(x->a, "data", 4);
}

static int race_cancel(void *p) {
  race *x = p;
  scio_scope_cancel(x->r->scope);
  return 0;
}

SCIO_TEST(receive_woken_with_bytes_survives_cancel) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  unsigned char buf[16];
  op r = {b, buf, sizeof buf, 1, 0, NULL, ""};
  race x = {a, &r};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  /* race_send hands the bytes over and wakes r; race_cancel runs before r
   * (FIFO) and cancels r's scope while r is runnable, not parked. */
  CK_OK(scio_start_soon(&n, race_send, &x));
  CK_OK(scio_start_soon(&n, race_cancel, &x));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 4);
  ck_assert(memcmp(buf, "data", 4) == 0);
  ck_assert_uint_eq(buffered(b), 0);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* The documented outcome of a cancelled send: the peer receives exactly
 * the accepted prefix, nothing more; the pipe stays usable. */
static void cancel_send_after(size_t drain) {
  scio_stream *a, *b;
  pipe_with(&a, &b, 10);
  unsigned char data[25], got[64];
  fill(data, 0, sizeof data);
  op s = {a, data, sizeof data, 1, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  if (drain)
    ck_assert_int_eq(scio_receive(b, got, drain), (ssize_t)drain);
  scio_scope_cancel(s.scope);
  CK_OK(scio_nursery_close(&n));
  size_t accepted = 10 + drain;
  ck_assert_int_eq(s.rc, SCIO_ECANCELED);
  char want[64];
  snprintf(want, sizeof want, "cancelled after %zu of 25", accepted);
  ck_assert_msg(strstr(s.msg, want), "errmsg: %s", s.msg);
  ck_assert_uint_eq(stats(a).last_send_accepted, accepted);
  ck_assert_uint_eq(stats(a).senders_waiting, 0);
  size_t have = drain;
  ck_assert_int_eq(scio_receive(b, got + have, sizeof got - have), 10);
  have += 10;
  expect_pattern(got, 0, have);
  ck_assert_uint_eq(buffered(b), 0);
  /* Send the remainder: the stream continues seamlessly. */
  op rest = {a, data + accepted, 25 - accepted, 1, 0, NULL, ""};
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send_task, &rest));
  while (have < 25) {
    ssize_t k = scio_receive(b, got + have, sizeof got - have);
    ck_assert_int_gt(k, 0);
    have += (size_t)k;
  }
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(rest.rc, 0);
  ck_assert_uint_eq(have, 25);
  expect_pattern(got, 0, 25);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
}

SCIO_TEST(cancelled_send_keeps_accepted_prefix) {
  cancel_send_after(0);
  cancel_send_after(4);
  return 0;
}

SCIO_TEST(cancelled_send_before_start_sends_nothing) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_send(a, "abc", 3), SCIO_ECANCELED);
  ck_assert_int_eq(scio_send_eof(a), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert_uint_eq(buffered(b), 0);
  ck_assert_uint_eq(stats(a).last_send_accepted, 0);
  /* No EOF was sent either. */
  CK_OK(scio_send(a, "z", 1));
  char c;
  ck_assert_int_eq(scio_receive(b, &c, 1), 1);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Attributes, arguments, statistics                                         */

SCIO_TEST(attributes) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  char data[123] = {0};
  CK_OK(scio_send(a, data, sizeof data));
  ck_assert_uint_eq(buffered(b), 123);
  ck_assert_uint_eq(buffered(a), 0);
  char name[32];
  CK_OK(scio_stream_attr(a, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "memory-pipe");
  ck_assert_int_eq(scio_stream_attr(a, SCIO_ATTR_LAYER, name, 5), -ENOSPC);
  uint32_t small;
  ck_assert_int_eq(scio_stream_attr(b, SCIO_ATTR_BUFFERED, &small, 4),
                   sizeof(size_t) > 4 ? -ENOSPC : 0);
  int fd;
  ck_assert_int_eq(scio_stream_fd(a, &fd), -ENOENT);
  ck_assert_int_eq(scio_stream_attr(a, SCIO_ATTR_USER, &fd, sizeof fd),
                   -ENOENT);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

static const scio_stream_ops other_ops = {.size = sizeof(scio_stream_ops),
                                          .name = "other"};

SCIO_TEST(arguments_and_defaults) {
  scio_stream *a = (scio_stream *)1, *b = (scio_stream *)1;
  ck_assert_int_eq(scio_memory_pipe_open(NULL, &b, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(b);
  ck_assert_int_eq(scio_memory_pipe_open(&a, NULL, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(a);
  scio_memory_pipe_opts o = {0};
  o.buffer_size = SIZE_MAX;
  ck_assert_int_eq(scio_memory_pipe_open(&a, &b, &o), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "too large"));
  o.buffer_size = 0;
  CK_OK(scio_memory_pipe_open(&a, &b, &o));
  ck_assert_uint_eq(stats(a).buffer_size, SCIO_MEMORY_PIPE_DEFAULT_BUFFER);
  ck_assert_uint_eq(stats(b).buffer_size, 64 * 1024);
  ck_assert_int_eq(scio_send(a, NULL, 3), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive(b, NULL, 3), SCIO_EINVAL);
  scio_memory_pipe_stats st;
  ck_assert_int_eq(scio_memory_pipe_statistics(NULL, &st), SCIO_EINVAL);
  ck_assert_int_eq(scio_memory_pipe_statistics(a, NULL), SCIO_EINVAL);
  scio_stream other;
  scio_stream_init(&other, &other_ops, NULL);
  ck_assert_int_eq(scio_memory_pipe_statistics(&other, &st), SCIO_EINVAL);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Allocation failure (tests/support/oom.h; libevent's allocations too)     */

static int oom_sender(void *p) {
  scio_stream *a = p;
  unsigned char data[100];
  fill(data, 0, sizeof data);
  int rc = scio_send(a, data, sizeof data);
  return rc < 0 ? rc : scio_send_eof(a);
}

/* Make a pipe, push 100 bytes through a 16-byte buffer, close both ends.
 * Every scio allocation may fail; the pipe's own is the one that matters. */
static int oom_body(void *arg) {
  (void)arg;
  scio_stream *a, *b;
  scio_memory_pipe_opts o = {16};
  int rc = scio_memory_pipe_open(&a, &b, &o);
  if (rc < 0)
    return rc;
  scio_nursery n;
  scio_nursery_open(&n);
  rc = scio_start_soon(&n, oom_sender, a);
  unsigned char buf[128];
  size_t got = 0;
  while (rc == 0) {
    ssize_t k = scio_receive(b, buf + got, sizeof buf - got);
    if (k == SCIO_EOF)
      break;
    if (k < 0)
      rc = (int)k;
    else
      got += (size_t)k;
  }
  if (rc < 0)
    scio_nursery_cancel(&n);
  int crc = scio_nursery_close(&n);
  scio_close(a);
  scio_close(b);
  if (rc == 0 && crc == 0 && got != 100)
    return -EIO;
  return rc < 0 ? rc : crc;
}

START_TEST(allocation_failure_loop) {
  if (!scio_oom_install(SCIO_OOM_LIBEVENT))
    return;
  scio_oom_run r = {.fn = oom_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *pipe_suite(void) {
  Suite *s = suite_create("pipe");
  TCase *tc = scio_tcase_new("data", 30);
  scio_tcase_add(tc, integrity_many_sizes);
  scio_tcase_add(tc, receive_returns_what_is_there);
  scio_tcase_add(tc, bidirectional);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("flow", 10);
  scio_tcase_add(tc, send_blocks_while_buffer_full);
  scio_tcase_add(tc, waiting_receiver_gets_bytes_directly);
  scio_tcase_add(tc, large_send_splits_between_receiver_buffer_and_sender);
  scio_tcase_add(tc, operations_yield);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("ending", 10);
  scio_tcase_add(tc, send_eof_then_drain_then_eof);
  scio_tcase_add(tc, send_eof_wakes_waiting_receiver);
  scio_tcase_add(tc, close_is_fin_for_peer);
  scio_tcase_add(tc, close_gives_waiting_peer_receiver_eof);
  scio_tcase_add(tc, peer_close_breaks_blocked_sender);
  scio_tcase_add(tc, close_wakes_own_blocked_tasks_with_eclosed);
  scio_tcase_add(tc, close_with_data_pending_either_order);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("cancel", 10);
  scio_tcase_add(tc, cancelled_receive_loses_nothing);
  scio_tcase_add(tc, receive_woken_with_bytes_survives_cancel);
  scio_tcase_add(tc, cancelled_send_keeps_accepted_prefix);
  scio_tcase_add(tc, cancelled_send_before_start_sends_nothing);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("api", 10);
  scio_tcase_add(tc, attributes);
  scio_tcase_add(tc, arguments_and_defaults);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("oom", 60);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return scio_test_main(pipe_suite()); }
