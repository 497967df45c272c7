/* Tests of include/scio/buffered.h, part of tests/check_buffered: feed
 * appends (AnyIO's feed_data) and wakes a blocked receiver, unreceive
 * prepends, and receive_until tells a clean end (SCIO_EOF) from a
 * truncated record (SCIO_EINCOMPLETE).  The buffered stream sits on one end
 * of a memory pipe; the test writes into the other. */
#include <string.h>

#include "scio/buffered.h"
#include "scio/pipe.h"
#include "scio/testing.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

typedef struct pair {
  scio_stream *peer; /* the test writes here */
  scio_stream *b;    /* buffered over the other end */
} pair;

static void pair_open(pair *p) {
  scio_stream *end = NULL;
  CK_OK(scio_memory_pipe_open(&p->peer, &end, NULL));
  CK_OK(scio_buffered_open(end, NULL, &p->b));
}

static void pair_close(pair *p) {
  CK_OK(scio_close(p->b));
  CK_OK(scio_close(p->peer));
}

static void line_is(scio_stream *b, const char *want) {
  char line[256];
  size_t len = (size_t)-1;
  int rc = scio_receive_until(b, "\n", 1, line, sizeof line, &len);
  ck_assert_msg(rc == 0, "receive_until: %s (%s)", scio_err_name(rc),
                scio_errmsg());
  ck_assert_uint_eq(len, strlen(want));
  ck_assert(memcmp(line, want, len) == 0);
}

static size_t buffered_count(scio_stream *b) {
  size_t n = 0;
  CK_OK(scio_stream_attr(b, SCIO_ATTR_BUFFERED, &n, sizeof n));
  return n;
}

/* ------------------------------------------------------------------------ */
/* receive_until at the end of the stream                                    */

/* The loop of a line protocol: every line, then SCIO_EOF at a clean end. */
SCIO_TEST(line_loop_ends_with_eof) {
  pair p;
  pair_open(&p);
  CK_OK(scio_send(p.peer, "one\ntwo\n\nthree\n", 15));
  CK_OK(scio_send_eof(p.peer));
  static const char *const want[] = {"one", "two", "", "three"};
  char line[16];
  size_t len, n = 0;
  int rc;
  while ((rc = scio_receive_until(p.b, "\n", 1, line, sizeof line, &len)) ==
         0) {
    ck_assert_uint_lt(n, 4);
    ck_assert_uint_eq(len, strlen(want[n]));
    ck_assert(memcmp(line, want[n], len) == 0);
    n++;
  }
  ck_assert_int_eq(rc, SCIO_EOF);
  ck_assert_uint_eq(n, 4);
  /* It stays at the end, and consumed nothing. */
  ck_assert_int_eq(scio_receive_until(p.b, "\n", 1, line, sizeof line, &len),
                   SCIO_EOF);
  ck_assert_int_eq(scio_receive(p.b, line, sizeof line), SCIO_EOF);
  pair_close(&p);
  return 0;
}

/* Bytes, then the end without a delimiter: a truncated record is
 * SCIO_EINCOMPLETE, the bytes stay buffered, and after them comes SCIO_EOF. */
SCIO_TEST(truncated_last_line_is_eincomplete_then_eof) {
  pair p;
  pair_open(&p);
  CK_OK(scio_send(p.peer, "whole\npart", 10));
  CK_OK(scio_close(p.peer));
  line_is(p.b, "whole");
  char line[16];
  size_t len = 99;
  ck_assert_int_eq(scio_receive_until(p.b, "\n", 1, line, sizeof line, &len),
                   SCIO_EINCOMPLETE);
  ck_assert_uint_eq(len, 99); /* untouched on error */
  ck_assert_uint_eq(buffered_count(p.b), 4);
  ck_assert_int_eq(scio_receive_exactly(p.b, line, 4), 4);
  ck_assert(memcmp(line, "part", 4) == 0);
  ck_assert_int_eq(scio_receive_until(p.b, "\n", 1, line, sizeof line, &len),
                   SCIO_EOF);
  CK_OK(scio_close(p.b));
  return 0;
}

/* A receive_until blocked when the end arrives gets SCIO_EOF too, and is a
 * checkpoint even when the end was already known. */
static int eof_reader(void *arg) {
  scio_stream *b = arg;
  char line[8];
  size_t len;
  return scio_receive_until(b, "\n", 1, line, sizeof line, &len) == SCIO_EOF
             ? 0
             : -1;
}

SCIO_TEST(blocked_until_gets_eof) {
  pair p;
  pair_open(&p);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, eof_reader, p.b));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_send_eof(p.peer));
  CK_OK(scio_nursery_close(&n));
  /* Already at the end: a cancelled scope still fails it first. */
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  char line[8];
  size_t len;
  ck_assert_int_eq(scio_receive_until(p.b, "\n", 1, line, sizeof line, &len),
                   SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  pair_close(&p);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* feed appends, unreceive prepends                                          */

SCIO_TEST(feed_appends_in_order) {
  pair p;
  pair_open(&p);
  /* Two feeds on an empty buffer are read in the order given. */
  CK_OK(scio_buffered_feed(p.b, "first\n", 6));
  CK_OK(scio_buffered_feed(p.b, "second\n", 7));
  CK_OK(scio_buffered_feed(p.b, "", 0));
  CK_OK(scio_buffered_feed(p.b, NULL, 0));
  line_is(p.b, "first");
  line_is(p.b, "second");
  /* Fed bytes go after what is buffered, before what arrives later. */
  CK_OK(scio_send(p.peer, "head\nhd", 7));
  line_is(p.b, "head"); /* "hd" stays buffered */
  CK_OK(scio_buffered_feed(p.b, "F", 1));
  CK_OK(scio_send(p.peer, "later\n", 6));
  line_is(p.b, "hdFlater");
  pair_close(&p);
  return 0;
}

/* feed and unreceive interleaved with receive_until: a parser that read
 * too far hands the rest back with unreceive, in front of everything. */
SCIO_TEST(feed_and_unreceive_interleave_with_until) {
  pair p;
  pair_open(&p);
  CK_OK(scio_send(p.peer, "GET /x\nrest", 11));
  char all[16];
  ck_assert_int_eq(scio_receive(p.b, all, sizeof all), 11);
  CK_OK(scio_buffered_unreceive(p.b, all + 7, 4)); /* "rest" back */
  CK_OK(scio_buffered_feed(p.b, "-fed\n", 5));     /* after it */
  CK_OK(scio_buffered_unreceive(p.b, "U:", 2));    /* before it */
  ck_assert_uint_eq(buffered_count(p.b), 11);
  line_is(p.b, "U:rest-fed");
  /* A half-searched line: the search memory survives a feed (appending
   * cannot hide an earlier delimiter), and an unreceive resets it. */
  CK_OK(scio_buffered_feed(p.b, "abc", 3));
  char line[8];
  size_t len;
  ck_assert_int_eq(scio_receive_until(p.b, "|", 1, line, 2, &len),
                   SCIO_EDELIM);
  CK_OK(scio_buffered_feed(p.b, "|x", 2));
  ck_assert_int_eq(scio_receive_until(p.b, "|", 1, line, sizeof line, &len),
                   0);
  ck_assert_uint_eq(len, 3);
  ck_assert(memcmp(line, "abc", 3) == 0);
  CK_OK(scio_buffered_unreceive(p.b, "y|", 2));
  ck_assert_int_eq(scio_receive_until(p.b, "|", 1, line, sizeof line, &len),
                   0);
  ck_assert_uint_eq(len, 1);
  ck_assert_int_eq(line[0], 'y');
  ck_assert_int_eq(scio_receive(p.b, line, sizeof line), 1);
  ck_assert_int_eq(line[0], 'x');
  /* After the end, both still deliver before SCIO_EOF. */
  CK_OK(scio_send_eof(p.peer));
  ck_assert_int_eq(scio_receive(p.b, line, sizeof line), SCIO_EOF);
  CK_OK(scio_buffered_feed(p.b, "z\n", 2));
  CK_OK(scio_buffered_unreceive(p.b, "w", 1));
  line_is(p.b, "wz");
  ck_assert_int_eq(scio_receive_until(p.b, "\n", 1, line, sizeof line, &len),
                   SCIO_EOF);
  pair_close(&p);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* A blocked receiver is woken by feed                                       */

typedef struct reader {
  scio_stream *b;
  int kind; /* 0 receive_until, 1 small receive, 2 large receive,
               3 receive_exactly(8) */
  int rc;
  char got[64];
  size_t len;
} reader;

static int read_one(void *arg) {
  reader *r = arg;
  char big[70000];
  switch (r->kind) {
  case 0:
    r->rc = scio_receive_until(r->b, "\n", 1, r->got, sizeof r->got, &r->len);
    break;
  case 1:
  case 2: {
    ssize_t n = scio_receive(r->b, r->kind == 1 ? r->got : big,
                             r->kind == 1 ? sizeof r->got : sizeof big);
    r->rc = n < 0 ? (int)n : 0;
    r->len = n < 0 ? 0 : (size_t)n;
    if (r->kind == 2 && n > 0)
      memcpy(r->got, big, (size_t)n < sizeof r->got ? (size_t)n : 0);
    break;
  }
  default: {
    ssize_t n = scio_receive_exactly(r->b, r->got, 8);
    r->rc = n < 0 ? (int)n : 0;
    r->len = n < 0 ? 0 : (size_t)n;
  }
  }
  return 0;
}

static void start_reader(scio_nursery *n, reader *r) {
  CK_OK(scio_start_soon(n, read_one, r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(r->rc, 1); /* still blocked */
}

SCIO_TEST(blocked_receiver_woken_by_feed) {
  pair p;
  pair_open(&p);
  for (int kind = 0; kind < 3; kind++) {
    reader r = {p.b, kind, 1, {0}, 0};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    start_reader(&n, &r);
    CK_OK(scio_buffered_feed(p.b, "hello\n", 6));
    CK_OK(scio_nursery_close(&n));
    ck_assert_int_eq(r.rc, 0);
    size_t want = kind == 0 ? 5 : 6;
    ck_assert_uint_eq(r.len, want);
    ck_assert(memcmp(r.got, "hello\n", want) == 0);
    if (kind == 0)
      ck_assert_uint_eq(buffered_count(p.b), 0);
  }
  /* Fed bytes that are not enough wake the receiver, which waits on for
   * the rest; what the peer sends comes after them. */
  reader r = {p.b, 3, 1, {0}, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  start_reader(&n, &r);
  CK_OK(scio_buffered_feed(p.b, "abc", 3));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(r.rc, 1);
  ck_assert_uint_eq(buffered_count(p.b), 3);
  CK_OK(scio_buffered_feed(p.b, "d", 1));
  CK_OK(scio_send(p.peer, "EFGH\n", 5));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 0);
  ck_assert(memcmp(r.got, "abcdEFGH", 8) == 0);
  line_is(p.b, "");
  pair_close(&p);
  return 0;
}

/* Bytes the blocked receive had already been handed when the feed came
 * arrived first, and are read first. */
SCIO_TEST(feed_after_delivery_comes_second) {
  pair p;
  pair_open(&p);
  reader r = {p.b, 0, 1, {0}, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  start_reader(&n, &r);
  CK_OK(scio_send(p.peer, "P", 1)); /* hands the byte to the reader */
  CK_OK(scio_buffered_feed(p.b, "F\n", 2));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 0);
  ck_assert_uint_eq(r.len, 2);
  ck_assert(memcmp(r.got, "PF", 2) == 0);
  pair_close(&p);
  return 0;
}

/* A feed does not turn a cancellation into success: the receiver's own
 * cancelled scope still ends the call, and the fed bytes stay. */
static int cancelled_reader(void *arg) {
  reader *r = arg;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  r->rc = scio_receive_until(r->b, "\n", 1, r->got, sizeof r->got, &r->len);
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(feed_and_cancel) {
  pair p;
  pair_open(&p);
  /* Cancelled while blocked, in the same step as a feed without a line. */
  reader r = {p.b, 0, 1, {0}, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  start_reader(&n, &r);
  CK_OK(scio_buffered_feed(p.b, "no line", 7));
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECANCELED);
  ck_assert_uint_eq(buffered_count(p.b), 7);
  /* Cancelled before it starts: fails first, takes nothing. */
  CK_OK(scio_buffered_feed(p.b, "\n", 1));
  reader c = {p.b, 0, 1, {0}, 0};
  CK_OK(cancelled_reader(&c));
  ck_assert_int_eq(c.rc, SCIO_ECANCELED);
  line_is(p.b, "no line");
  /* Closed while blocked: the fed bytes go with the stream (the close
   * releases it once the reader has left). */
  reader d = {p.b, 0, 1, {0}, 0};
  CK_OK(scio_nursery_open(&n));
  start_reader(&n, &d);
  CK_OK(scio_buffered_feed(p.b, "more", 4));
  CK_OK(scio_close(p.b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(d.rc, SCIO_ECLOSED);
  CK_OK(scio_close(p.peer));
  return 0;
}

/* unreceive refuses while a task receives; feed does not. */
SCIO_TEST(unreceive_is_busy_during_a_receive) {
  pair p;
  pair_open(&p);
  reader r = {p.b, 0, 1, {0}, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  start_reader(&n, &r);
  ck_assert_int_eq(scio_buffered_unreceive(p.b, "x", 1), SCIO_EBUSY);
  CK_OK(scio_buffered_feed(p.b, "y\n", 2));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 0);
  ck_assert_uint_eq(r.len, 1);
  ck_assert_int_eq(r.got[0], 'y');
  ck_assert_int_eq(scio_buffered_unreceive(p.peer, "x", 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_unreceive(NULL, "x", 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_unreceive(p.b, NULL, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_feed(p.b, NULL, 1), SCIO_EINVAL);
  pair_close(&p);
  return 0;
}

void buffered_feed_tests(Suite *s) {
  TCase *tc = scio_tcase_new("feed-eof", 10);
  scio_tcase_add(tc, line_loop_ends_with_eof);
  scio_tcase_add(tc, truncated_last_line_is_eincomplete_then_eof);
  scio_tcase_add(tc, blocked_until_gets_eof);
  scio_tcase_add(tc, feed_appends_in_order);
  scio_tcase_add(tc, feed_and_unreceive_interleave_with_until);
  scio_tcase_add(tc, blocked_receiver_woken_by_feed);
  scio_tcase_add(tc, feed_after_delivery_comes_second);
  scio_tcase_add(tc, feed_and_cancel);
  scio_tcase_add(tc, unreceive_is_busy_during_a_receive);
  suite_add_tcase(s, tc);
}
