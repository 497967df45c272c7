/* The stream conformance kit (<scio/streamcheck.h>) run over every stream
 * of src/streams: memory pipes, stapled streams over two pipes, buffered and
 * text streams over pipes (each of these is half-closeable, so each runs
 * the whole kit), with a clogged variant for each.  Linked into
 * check_stream.  Under the autojump clock, so the kit's deadlines cost no
 * time. */
#include <stdlib.h>
#include <string.h>

#include "scio/pipe.h"
#include "scio/testing.h"
#include "stream_kit.h"

/* A clogged pair: one byte of buffer each way, already full, so a send on
 * either end blocks until the other end receives. */
static int prefill(scio_stream **a, scio_stream **b) {
  int rc = scio_send(*a, "c", 1);
  return rc < 0 ? rc : scio_send(*b, "c", 1);
}

static int pipe_pair(scio_stream **a, scio_stream **b, void *arg) {
  const scio_memory_pipe_opts *o = arg;
  return scio_memory_pipe_open(a, b, o);
}

static int pipe_clogged(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  scio_memory_pipe_opts o = {1};
  int rc = scio_memory_pipe_open(a, b, &o);
  return rc < 0 ? rc : prefill(a, b);
}

SCIO_TEST_AUTOJUMP(kit_memory_pipe) {
  scio_stream_kit kit = {.make = pipe_pair, .make_clogged = pipe_clogged};
  scio_check_half_closeable_stream(&kit);
  return 0;
}

/* A one-byte buffer: every transfer goes through hand-offs. */
SCIO_TEST_AUTOJUMP(kit_memory_pipe_tiny_buffer) {
  scio_memory_pipe_opts o = {1};
  scio_stream_kit kit = {.make = pipe_pair, .arg = &o, .large = 1 << 16};
  scio_check_half_closeable_stream(&kit);
  return 0;
}

/* Stapled: a = (send on pipe 1, receive from pipe 2), b the converse; both
 * pipes with the options o1. */
static int stapled_pair_opts(scio_stream **a, scio_stream **b,
                             const scio_memory_pipe_opts *o1) {
  scio_stream *a1, *b1, *a2, *b2;
  int rc = scio_memory_pipe_open(&a1, &b1, o1);
  if (rc < 0)
    return rc;
  if ((rc = scio_memory_pipe_open(&a2, &b2, o1)) < 0) {
    scio_close(a1);
    scio_close(b1);
    return rc;
  }
  rc = scio_stapled_open(a1, b2, a);
  if (rc == 0 && (rc = scio_stapled_open(a2, b1, b)) < 0) {
    scio_close(*a);
    *a = NULL;
    scio_close(a2);
    scio_close(b1);
  } else if (rc < 0) {
    scio_close(a1);
    scio_close(b2);
    scio_close(a2);
    scio_close(b1);
  }
  return rc;
}

static int stapled_pair(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  return stapled_pair_opts(a, b, NULL);
}

static int stapled_clogged(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  scio_memory_pipe_opts o = {1};
  int rc = stapled_pair_opts(a, b, &o);
  return rc < 0 ? rc : prefill(a, b);
}

SCIO_TEST_AUTOJUMP(kit_stapled) {
  scio_stream_kit kit = {.make = stapled_pair,
                         .make_clogged = stapled_clogged};
  scio_check_half_closeable_stream(&kit);
  return 0;
}

/* A layer over each end of a pipe (or of a clogged pipe).  A wrap_fn owns
 * `inner` from the call on: on error it has closed it. */
typedef int (*wrap_fn)(scio_stream *inner, scio_stream **out);

static int wrap_both(scio_stream **a, scio_stream **b, wrap_fn wrap,
                     int clogged) {
  scio_stream *pa, *pb;
  scio_memory_pipe_opts o = {clogged ? 1 : 0};
  int rc = scio_memory_pipe_open(&pa, &pb, &o);
  if (rc < 0)
    return rc;
  if ((rc = wrap(pa, a)) < 0) {
    scio_close(pb);
    return rc;
  }
  if ((rc = wrap(pb, b)) < 0) {
    scio_close(*a);
    *a = NULL;
    return rc;
  }
  return clogged ? prefill(a, b) : 0;
}

/* Apply a layer's open, closing inner if it refuses it. */
static int owned(int rc, scio_stream *inner) {
  if (rc < 0)
    scio_close(inner);
  return rc;
}

static int wrap_buffered(scio_stream *inner, scio_stream **out) {
  return owned(scio_buffered_open(inner, NULL, out), inner);
}

/* A small read size: receives are served from the buffer piecemeal. */
static int wrap_buffered_small(scio_stream *inner, scio_stream **out) {
  scio_buffered_opts o = {16};
  return owned(scio_buffered_open(inner, &o, out), inner);
}

static int wrap_text(scio_stream *inner, scio_stream **out) {
  return owned(scio_text_open(inner, NULL, out), inner);
}

/* Through iconv both ways (ASCII is the same bytes in Latin-1). */
static int wrap_latin1(scio_stream *inner, scio_stream **out) {
  scio_text_opts o = {.encoding = "ISO-8859-1"};
  return owned(scio_text_open(inner, &o, out), inner);
}

/* Two layers: text over buffered over the pipe end. */
static int wrap_text_over_buffered(scio_stream *inner, scio_stream **out) {
  scio_stream *b;
  int rc = wrap_buffered_small(inner, &b);
  return rc < 0 ? rc : wrap_text(b, out);
}

static int layered_pair(scio_stream **a, scio_stream **b, void *arg) {
  return wrap_both(a, b, *(const wrap_fn *)arg, 0);
}

static int layered_clogged(scio_stream **a, scio_stream **b, void *arg) {
  return wrap_both(a, b, *(const wrap_fn *)arg, 1);
}

static void check_layer(wrap_fn wrap, unsigned flags) {
  scio_stream_kit kit = {.make = layered_pair,
                         .make_clogged = layered_clogged,
                         .arg = &wrap,
                         .flags = flags};
  scio_check_half_closeable_stream(&kit);
}

SCIO_TEST_AUTOJUMP(kit_buffered) {
  check_layer(wrap_buffered, 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(kit_buffered_small_reads) {
  check_layer(wrap_buffered_small, 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(kit_text_utf8) {
  check_layer(wrap_text, SCIO_STREAM_KIT_TEXT);
  return 0;
}

SCIO_TEST_AUTOJUMP(kit_text_iconv) {
  check_layer(wrap_latin1, SCIO_STREAM_KIT_TEXT);
  return 0;
}

SCIO_TEST_AUTOJUMP(kit_text_over_buffered) {
  check_layer(wrap_text_over_buffered, SCIO_STREAM_KIT_TEXT);
  return 0;
}

/* The kit on the real clock: its deadlines are real then, and nothing in
 * it may depend on time jumping. */
SCIO_TEST(kit_memory_pipe_real_clock) {
  scio_stream_kit kit = {.make = pipe_pair,
                         .make_clogged = pipe_clogged,
                         .timeout = 30};
  scio_check_half_closeable_stream(&kit);
  return 0;
}

/* One-way use of a pipe: only a -> b. */
SCIO_TEST_AUTOJUMP(kit_one_way_pipe) {
  scio_stream_kit kit = {.make = pipe_pair, .make_clogged = pipe_clogged};
  scio_check_one_way_stream(&kit);
  return 0;
}

/* One-way halves: a layer that can only send (no receive, no send_eof, no
 * wait_send_ready) and one that can only receive, each over a pipe end.
 * The kit must accept the SCIO_ENOSYS of what a half lacks. */
typedef struct half {
  scio_stream base;
} half;

static ssize_t h_receive(scio_stream *s, void *buf, size_t max) {
  return scio_receive(s->inner, buf, max);
}
static int h_send(scio_stream *s, const void *buf, size_t len) {
  return scio_send(s->inner, buf, len);
}
static int h_close(scio_stream *s) { return scio_close(s->inner); }
static void h_free(scio_stream *s) { free(s); }

static const scio_stream_ops send_half_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "send-half",
    .do_send = h_send,
    .do_close = h_close,
    .do_free = h_free,
};

static const scio_stream_ops receive_half_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "receive-half",
    .do_receive = h_receive,
    .do_close = h_close,
    .do_free = h_free,
};

static scio_stream *half_over(scio_stream *inner, const scio_stream_ops *ops) {
  half *h = malloc(sizeof *h);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(scio_stream_init(&h->base, ops, inner), 0);
  return &h->base;
}

static int halves_pair_opts(scio_stream **a, scio_stream **b,
                            const scio_memory_pipe_opts *o) {
  int rc = scio_memory_pipe_open(a, b, o);
  if (rc == 0) {
    *a = half_over(*a, &send_half_ops);
    *b = half_over(*b, &receive_half_ops);
  }
  return rc;
}

static int halves_pair(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  return halves_pair_opts(a, b, NULL);
}

static int halves_clogged(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  scio_memory_pipe_opts o = {1};
  int rc = halves_pair_opts(a, b, &o);
  return rc < 0 ? rc : scio_send(*a, "c", 1);
}

SCIO_TEST_AUTOJUMP(kit_one_way_halves) {
  scio_stream_kit kit = {.make = halves_pair, .make_clogged = halves_clogged};
  scio_check_one_way_stream(&kit);
  return 0;
}

/* Stapled over one-way halves: its send_eof closes the send half (the
 * halves have no half-close of their own). */
static int stapled_halves(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  scio_stream *s1, *r1, *s2, *r2;
  int rc = halves_pair(&s1, &r1, NULL);
  if (rc < 0)
    return rc;
  if ((rc = halves_pair(&s2, &r2, NULL)) < 0) {
    scio_close(s1);
    scio_close(r1);
    return rc;
  }
  ck_assert_int_eq(scio_stapled_open(s1, r2, a), 0);
  ck_assert_int_eq(scio_stapled_open(s2, r1, b), 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(kit_stapled_over_halves) {
  scio_stream_kit kit = {.make = stapled_halves};
  scio_check_half_closeable_stream(&kit);
  return 0;
}

/* Found by the kit (send_eof over halves without half-close): a cancelled
 * send_eof of a stapled stream closed the send half anyway.  It must fail
 * first and leave the half open; the object stapled stream likewise. */
SCIO_TEST(stapled_cancelled_send_eof_keeps_the_half) {
  scio_stream *a, *b;
  char c;
  ck_assert_int_eq(stapled_halves(&a, &b, NULL), 0);
  scio_scope cs;
  ck_assert_int_eq(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0), 0);
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_send_eof(a), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), 0);
  ck_assert_int_eq(scio_send(a, "k", 1), 0);
  ck_assert_int_eq(scio_receive(b, &c, 1), 1);
  ck_assert_int_eq(c, 'k');
  ck_assert_int_eq(scio_send_eof(a), 0); /* closes the half: EOF */
  ck_assert_int_eq(scio_receive(b, &c, 1), SCIO_EOF);
  ck_assert_int_eq(scio_close(a), 0);
  ck_assert_int_eq(scio_close(b), 0);

  scio_tx *tx;
  scio_rx *rx, *rx2;
  scio_tx *tx2;
  ck_assert_int_eq(scio_channel_open(sizeof(int), 4, &tx, &rx), 0);
  ck_assert_int_eq(scio_channel_open(sizeof(int), 4, &tx2, &rx2), 0);
  scio_ostream *st;
  ck_assert_int_eq(scio_stapled_object_open(scio_tx_ostream(tx),
                                            scio_rx_ostream(rx2), &st),
                   0);
  int item = 7, got = 0;
  ck_assert_int_eq(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0), 0);
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_ostream_send_eof(st), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), 0);
  ck_assert_int_eq(scio_ostream_send(st, &item), 0); /* still open */
  ck_assert_int_eq(scio_ostream_receive(scio_rx_ostream(rx), &got), 0);
  ck_assert_int_eq(got, 7);
  ck_assert_int_eq(scio_ostream_send_eof(st), 0);
  ck_assert_int_eq(scio_ostream_receive(scio_rx_ostream(rx), &got),
                   SCIO_EOF);
  ck_assert_int_eq(scio_ostream_close(st), 0);
  ck_assert_int_eq(scio_rx_close(rx), 0);
  ck_assert_int_eq(scio_tx_close(tx2), 0);
  return 0;
}

void stream_kit_tests(Suite *s) {
  TCase *tc = scio_tcase_new("kit", 120);
  scio_tcase_add(tc, kit_memory_pipe);
  scio_tcase_add(tc, kit_memory_pipe_tiny_buffer);
  scio_tcase_add(tc, kit_one_way_pipe);
  scio_tcase_add(tc, kit_one_way_halves);
  scio_tcase_add(tc, kit_stapled_over_halves);
  scio_tcase_add(tc, stapled_cancelled_send_eof_keeps_the_half);
  scio_tcase_add(tc, kit_stapled);
  scio_tcase_add(tc, kit_buffered);
  scio_tcase_add(tc, kit_buffered_small_reads);
  scio_tcase_add(tc, kit_text_utf8);
  scio_tcase_add(tc, kit_text_iconv);
  scio_tcase_add(tc, kit_text_over_buffered);
  scio_tcase_add(tc, kit_memory_pipe_real_clock);
  suite_add_tcase(s, tc);
}
