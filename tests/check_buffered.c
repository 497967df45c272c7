/* Tests of include/scio/buffered.h: receive_exactly, receive_until, feed,
 * pass-through, attributes, close, cancellation, allocation failure.
 * Every async test runs once per backend (epoll, poll, select).
 *
 * The buffered stream sits on a scripted source (tests/support/script_stream.h)
 * that replays a list of chunks, each available from a given (autojump)
 * time, and records what is sent to it and how often it is closed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scio/buffered.h"
#include "scio/pipe.h"
#include "scio/stream.h"
#include "scio/testing.h"
#include "support/oom.h"
#include "support/script_stream.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static scio_stream *over(const script_chunk *c, size_t n, script_record *rec,
                         size_t read_size) {
  scio_buffered_opts o = {0};
  o.read_size = read_size;
  scio_stream *b = NULL;
  CK_OK(scio_buffered_open(script_source_new(c, n, rec), &o, &b));
  return b;
}

static size_t buffered_count(scio_stream *b) {
  size_t n = 0;
  CK_OK(scio_stream_attr(b, SCIO_ATTR_BUFFERED, &n, sizeof n));
  return n;
}

/* receive_until must give `want` (NUL-terminated) */
static void until_is(scio_stream *b, const char *delim, size_t max,
                     const char *want) {
  char line[4096];
  size_t len = (size_t)-1;
  int rc = scio_receive_until(b, delim, strlen(delim), line, max, &len);
  ck_assert_msg(rc == 0, "receive_until: %s (%s)", scio_err_name(rc),
                scio_errmsg());
  ck_assert_uint_eq(len, strlen(want));
  ck_assert(memcmp(line, want, len) == 0);
}

/* Read everything left with plain receives. */
static size_t drain(scio_stream *b, char *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = scio_receive(b, out + n, cap - n);
    if (r == SCIO_EOF)
      return n;
    ck_assert_msg(r > 0, "receive: %s", scio_err_name((int)r));
    n += (size_t)r;
  }
}

/* ------------------------------------------------------------------------ */
/* receive_until                                                             */

/* The same input cut into three chunks at every pair of points, with three
 * read sizes (1 byte forces a refill per byte, 5 forces growth and
 * compaction): the lines never change. */
SCIO_TEST(until_delimiter_straddles_every_split) {
  static const char in[] = "first--END--second line--END--x--END----END--";
  const size_t n = sizeof in - 1;
  static const size_t sizes[] = {0, 1, 5};
  for (size_t r = 0; r < NCH(sizes); r++)
    for (size_t i = 0; i <= n; i++)
      for (size_t j = i; j <= n; j++) {
        script_chunk c[3] = {
            {0, in, i, 0}, {0, in + i, j - i, 0}, {0, in + j, n - j, 0}};
        script_record rec = {0};
        scio_stream *b = over(c, 3, &rec, sizes[r]);
        until_is(b, "--END--", 100, "first");
        until_is(b, "--END--", 100, "second line");
        until_is(b, "--END--", 100, "x");
        until_is(b, "--END--", 100, "");
        size_t len;
        char buf[8];
        /* A clean end after the last delimiter. */
        ck_assert_int_eq(scio_receive_until(b, "--END--", 7, buf, 8, &len),
                         SCIO_EOF);
        ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
        CK_OK(scio_close(b));
        ck_assert_int_eq(rec.closes, 1);
      }
  return 0;
}

/* The first occurrence of `delim` in `in` from `from`, by brute force. */
static long naive_find(const char *in, size_t n, size_t from,
                       const char *delim, size_t dlen) {
  for (size_t p = from; p + dlen <= n; p++)
    if (memcmp(in + p, delim, dlen) == 0)
      return (long)p;
  return -1;
}

/* Self-overlapping delimiters fed one byte per chunk: a partial match that
 * fails must not hide a match starting inside it. */
SCIO_TEST(until_self_overlapping_delimiters_byte_by_byte) {
  static const struct {
    const char *in, *delim;
  } cases[] = {
      {"aaaab|aab|xaabaab", "aab"},
      {"ababababcab|abababc|ababc", "ababc"},
      {"\r\r\n\r\n\r\r\n\r\nz\r\n\r\n", "\r\n\r\n"},
      {"xxyxxyxxyxxz", "xxyxxz"},
  };
  for (size_t k = 0; k < NCH(cases); k++) {
    const char *in = cases[k].in, *d = cases[k].delim;
    size_t n = strlen(in), dlen = strlen(d);
    script_chunk c[64];
    ck_assert_uint_le(n, NCH(c));
    for (size_t i = 0; i < n; i++)
      c[i] = (script_chunk){0, in + i, 1, 0};
    script_record rec = {0};
    scio_stream *b = over(c, n, &rec, 1);
    size_t at = 0;
    long p;
    while ((p = naive_find(in, n, at, d, dlen)) >= 0) {
      char want[64];
      memcpy(want, in + at, (size_t)p - at);
      want[(size_t)p - at] = 0;
      until_is(b, d, 64, want);
      at = (size_t)p + dlen;
    }
    char rest[64];
    size_t len;
    ck_assert_int_eq(scio_receive_until(b, d, dlen, rest, 64, &len),
                     at == n ? SCIO_EOF : SCIO_EINCOMPLETE);
    ck_assert_uint_eq(drain(b, rest, sizeof rest), n - at);
    CK_OK(scio_close(b));
  }
  return 0;
}

/* A line of exactly max bytes is accepted however it is split; one byte
 * more is SCIO_EDELIM, and the data stays buffered. */
SCIO_TEST_AUTOJUMP(until_edelim_exactly_at_max) {
  script_record rec = {0};
  script_chunk ok1[] = {CH("12345\r\n")};
  scio_stream *b = over(ok1, NCH(ok1), &rec, 0);
  until_is(b, "\r\n", 5, "12345");
  CK_OK(scio_close(b));

  script_chunk ok2[] = {CH("12345"), CH("\r"), CH("\nabc")};
  b = over(ok2, NCH(ok2), &rec, 0);
  until_is(b, "\r\n", 5, "12345");
  CK_OK(scio_close(b));

  /* 6 bytes then a delimiter that has not arrived yet: the limit is known
   * to be exceeded once max + dlen bytes are in, without waiting. */
  script_chunk bad[] = {CH("123456\r"), CH_AT(50, "\n")};
  b = over(bad, NCH(bad), &rec, 0);
  char line[16];
  size_t len = 777;
  ck_assert_int_eq(scio_receive_until(b, "\r\n", 2, line, 5, &len),
                   SCIO_EDELIM);
  ck_assert_uint_eq(len, 777);
  ck_assert_double_eq(scio_now(), 0);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "5 bytes"));
  ck_assert_uint_eq(buffered_count(b), 7);
  /* Again, with a bigger limit, the same line is found. */
  until_is(b, "\r\n", 6, "123456");
  ck_assert_double_eq(scio_now(), 50);
  CK_OK(scio_close(b));

  /* max 0: only an empty line fits. */
  script_chunk zero[] = {CH("\nab\n")};
  b = over(zero, NCH(zero), &rec, 0);
  until_is(b, "\n", 0, "");
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, NULL, 0, &len),
                   SCIO_EDELIM);
  ck_assert_int_eq(scio_receive_exactly(b, line, 3), 3);
  ck_assert(memcmp(line, "ab\n", 3) == 0);
  CK_OK(scio_close(b));
  ck_assert_int_eq(rec.closes, 4);
  return 0;
}

SCIO_TEST(until_eof_without_delimiter_keeps_data) {
  script_record rec = {0};
  script_chunk c[] = {CH("line\n"), CH("ab"), CH("c")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  until_is(b, "\n", 100, "line");
  char buf[16];
  size_t len = 99;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, buf, sizeof buf, &len),
                   SCIO_EINCOMPLETE);
  ck_assert_uint_eq(len, 99);
  ck_assert_uint_eq(buffered_count(b), 3);
  /* Asking again does not ask the source again: its EOF is remembered. */
  int receives = rec.receives;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, buf, sizeof buf, &len),
                   SCIO_EINCOMPLETE);
  ck_assert_int_eq(rec.receives, receives);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  ck_assert(memcmp(buf, "abc", 3) == 0);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(rec.receives, receives);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(until_error_of_inner_keeps_data) {
  script_record rec = {0};
  script_chunk c[] = {CH("ab"), CH_ERR(SCIO_EBROKEN), CH("c\n")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  char buf[16];
  size_t len;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, buf, sizeof buf, &len),
                   SCIO_EBROKEN);
  ck_assert_uint_eq(buffered_count(b), 2);
  until_is(b, "\n", 100, "abc");
  CK_OK(scio_close(b));
  return 0;
}

/* A long line arriving in small pieces: the buffer grows; the line and the
 * ones after it are intact. */
SCIO_TEST(until_long_line_grows_buffer) {
  enum { LINE = 300000, PIECE = 1000 };
  char *in = malloc(LINE + 4);
  for (size_t i = 0; i < LINE; i++)
    in[i] = (char)('a' + i % 26);
  memcpy(in + LINE, "\nz\n", 3);
  script_chunk *c = calloc(LINE / PIECE + 1, sizeof *c);
  size_t n = 0;
  for (size_t off = 0; off < LINE + 3; off += PIECE, n++)
    c[n] = (script_chunk){0, in + off, min_sz(PIECE, LINE + 3 - off), 0};
  script_record rec = {0};
  scio_stream *b = over(c, n, &rec, 64);
  char *line = malloc(LINE);
  size_t len;
  CK_OK(scio_receive_until(b, "\n", 1, line, LINE, &len));
  ck_assert_uint_eq(len, LINE);
  ck_assert(memcmp(line, in, LINE) == 0);
  until_is(b, "\n", 1, "z");
  CK_OK(scio_close(b));
  free(line);
  free(c);
  free(in);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* receive_exactly, receive                                                  */

SCIO_TEST(exactly_across_chunks_and_eincomplete) {
  script_record rec = {0};
  script_chunk c[] = {CH("ab"), CH("cdef"), CH("g"), CH("hi")};
  scio_stream *b = over(c, NCH(c), &rec, 3);
  char buf[16];
  ck_assert_int_eq(scio_receive_exactly(b, buf, 5), 5);
  ck_assert(memcmp(buf, "abcde", 5) == 0);
  ck_assert_int_eq(scio_receive_exactly(b, buf, 0), 0);
  ck_assert_int_eq(scio_receive_exactly(b, NULL, 0), 0);
  ck_assert_int_eq(scio_receive_exactly(b, buf, 1), 1);
  ck_assert_int_eq(buf[0], 'f');
  ck_assert_int_eq(scio_receive_exactly(b, buf, 4), SCIO_EINCOMPLETE);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "3 of 4"));
  ck_assert_uint_eq(buffered_count(b), 3);
  ck_assert_int_eq(scio_receive_exactly(b, buf, 3), 3);
  ck_assert(memcmp(buf, "ghi", 3) == 0);
  ck_assert_int_eq(scio_receive_exactly(b, buf, 1), SCIO_EINCOMPLETE);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(exactly_large_grows) {
  enum { N = 200000 };
  char *in = malloc(N);
  for (size_t i = 0; i < N; i++)
    in[i] = (char)(i * 7);
  script_chunk c[] = {{0, in, 1, 0}, {0, in + 1, N - 1, 0}};
  script_record rec = {0};
  scio_stream *b = over(c, NCH(c), &rec, 16);
  char *out = malloc(N);
  ck_assert_int_eq(scio_receive_exactly(b, out, N), N);
  ck_assert(memcmp(out, in, N) == 0);
  CK_OK(scio_close(b));
  free(out);
  free(in);
  return 0;
}

/* Buffered bytes come first; a plain receive of at least read_size on an
 * empty buffer reads straight from the source. */
SCIO_TEST(receive_serves_buffer_first) {
  script_record rec = {0};
  script_chunk c[] = {CH("one\ntwo three"), CH("0123456789abcdefXYZ")};
  scio_stream *b = over(c, NCH(c), &rec, 16);
  until_is(b, "\n", 100, "one");
  int receives = rec.receives;
  char buf[64];
  ck_assert_int_eq(scio_receive(b, buf, 3), 3);
  ck_assert(memcmp(buf, "two", 3) == 0);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 6);
  ck_assert(memcmp(buf, " three", 6) == 0);
  ck_assert_int_eq(rec.receives, receives);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 19);
  ck_assert(memcmp(buf, "0123456789abcdefXYZ", 19) == 0);
  ck_assert_uint_eq(buffered_count(b), 0);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), SCIO_EOF);
  receives = rec.receives;
  ck_assert_int_eq(scio_receive(b, buf, 1), SCIO_EOF);
  ck_assert_int_eq(rec.receives, receives);
  CK_OK(scio_close(b));
  return 0;
}

/* scio_wait_receive_ready through a buffered stream: its own bytes make it
 * ready; without them it is the wrapped stream's readiness (a memory pipe:
 * sleeps until a send), and a wrapped stream that can tell nothing (the
 * scripted source: no slot, no pending count) gives SCIO_ENOSYS. */
typedef struct rr_wait {
  scio_stream *s;
  int rc, done;
} rr_wait;

static int rr_task(void *arg) {
  rr_wait *w = arg;
  w->rc = scio_wait_receive_ready(w->s);
  w->done = 1;
  return 0;
}

SCIO_TEST(wait_receive_ready_walks_the_chain) {
  script_record rec = {0};
  script_chunk c[] = {CH("one\ntwo")};
  scio_stream *b = over(c, NCH(c), &rec, 16);
  until_is(b, "\n", 100, "one");
  CK_OK(scio_wait_receive_ready(b)); /* "two" is buffered */
  char buf[16];
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  ck_assert_int_eq(scio_wait_receive_ready(b), SCIO_ENOSYS);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "wait_receive_ready"));
  CK_OK(scio_close(b));
  ck_assert_int_eq(scio_wait_receive_ready(NULL), SCIO_EINVAL);

  scio_stream *x, *y;
  CK_OK(scio_memory_pipe_open(&x, &y, NULL));
  CK_OK(scio_buffered_open(y, NULL, &b));
  rr_wait w = {b, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, rr_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(w.done, 0);
  ck_assert_int_eq(scio_receive(b, buf, 1), SCIO_EBUSY);
  CK_OK(scio_send(x, "hi\n", 3));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, 0);
  until_is(b, "\n", 100, "hi");
  /* Closed while waiting: SCIO_ECLOSED. */
  w.done = 0;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, rr_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, SCIO_ECLOSED);
  CK_OK(scio_close(x));
  return 0;
}

/* receive_nowait returns the buffer's bytes first, then one no-wait
 * receive of the wrapped stream (through the buffer when small, straight
 * into the caller's memory when large); send_nowait goes to the wrapped
 * stream; over a layer without the slots both are SCIO_ENOSYS. */
SCIO_TEST(nowait_serves_buffer_then_wrapped) {
  scio_stream *x, *y, *b;
  CK_OK(scio_memory_pipe_open(&x, &y, NULL));
  scio_buffered_opts o = {0};
  o.read_size = 8;
  CK_OK(scio_buffered_open(y, &o, &b));
  char buf[64];
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), SCIO_EWOULDBLOCK);
  CK_OK(scio_send(x, "line1\nrest", 10));
  until_is(b, "\n", 100, "line1");
  ck_assert_int_eq(scio_stream_pending(b), 4);
  ck_assert_int_eq(scio_receive_nowait(b, buf, 2), 2); /* "re" */
  ck_assert_int_eq(memcmp(buf, "re", 2), 0);
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), 2);
  ck_assert_int_eq(memcmp(buf, "st", 2), 0);
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), SCIO_EWOULDBLOCK);
  /* Small: through the buffer (8 bytes read, 3 returned, 5 kept). */
  CK_OK(scio_send(x, "0123456789", 10));
  ck_assert_int_eq(scio_receive_nowait(b, buf, 3), 3);
  ck_assert_int_eq(memcmp(buf, "012", 3), 0);
  ck_assert_int_eq(scio_stream_pending(b), 7);
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), 5);
  ck_assert_int_eq(memcmp(buf, "34567", 5), 0);
  /* Large (>= read_size): straight from the wrapped stream. */
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), 2);
  ck_assert_int_eq(memcmp(buf, "89", 2), 0);
  ck_assert_int_eq(scio_send_nowait(b, "back", 4), 4);
  ck_assert_int_eq(scio_receive(x, buf, sizeof buf), 4);
  ck_assert_int_eq(memcmp(buf, "back", 4), 0);
  CK_OK(scio_send_eof(x));
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_close(b));
  CK_OK(scio_close(x));

  script_record rec = {0};
  script_chunk c[] = {CH("abc")};
  b = over(c, NCH(c), &rec, 16);
  ck_assert_int_eq(scio_receive_nowait(b, buf, sizeof buf), SCIO_ENOSYS);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "receive_nowait"));
  ck_assert_int_eq(scio_send_nowait(b, "x", 1), SCIO_ENOSYS);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(receive_small_reads_through_buffer) {
  script_record rec = {0};
  script_chunk c[] = {CH("hello")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  char buf[2];
  ck_assert_int_eq(scio_receive(b, buf, 2), 2);
  ck_assert_uint_eq(buffered_count(b), 3);
  ck_assert_int_eq(scio_receive(b, buf, 2), 2);
  ck_assert_int_eq(scio_receive(b, buf, 2), 1);
  ck_assert_int_eq(buf[0], 'o');
  ck_assert_int_eq(scio_receive(b, buf, 2), SCIO_EOF);
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* feed                                                                      */

SCIO_TEST(unreceive_pushes_back_to_the_front) {
  script_record rec = {0};
  script_chunk c[] = {CH("abc\ndef")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  CK_OK(scio_buffered_unreceive(b, "X\n", 2)); /* before any data */
  until_is(b, "\n", 10, "X");
  until_is(b, "\n", 10, "abc");
  CK_OK(scio_buffered_unreceive(b, "ab", 2)); /* fits in the consumed front */
  char big[300];
  memset(big, 'q', sizeof big);
  CK_OK(scio_buffered_unreceive(b, big, sizeof big)); /* needs to move */
  CK_OK(scio_buffered_unreceive(b, "", 0));
  CK_OK(scio_buffered_unreceive(b, NULL, 0));
  ck_assert_uint_eq(buffered_count(b), 305);
  char out[400];
  ck_assert_int_eq(scio_receive_exactly(b, out, 305), 305);
  ck_assert(memcmp(out, big, 300) == 0);
  ck_assert(memcmp(out + 300, "abdef", 5) == 0);
  /* After EOF, fed bytes are still returned before SCIO_EOF. */
  size_t len;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, out, 10, &len),
                   SCIO_EOF);
  CK_OK(scio_buffered_unreceive(b, "tail\nx", 6));
  until_is(b, "\n", 10, "tail");
  ck_assert_int_eq(scio_receive(b, out, 10), 1);
  ck_assert_int_eq(scio_receive(b, out, 10), SCIO_EOF);
  CK_OK(scio_close(b));
  return 0;
}

/* Feeding the partial line back after a failed search must not let the
 * remembered search position skip a delimiter inside the fed bytes. */
SCIO_TEST_AUTOJUMP(unreceive_resets_search_memory) {
  script_record rec = {0};
  script_chunk c[] = {CH("aaaa"), CH_AT(10, "b|")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  scio_scope cs;
  scio_move_on_after(&cs, 5);
  size_t len;
  char out[16];
  ck_assert_int_eq(scio_receive_until(b, "|", 1, out, 16, &len),
                   SCIO_ECANCELED);
  scio_scope_close(&cs);
  CK_OK(scio_buffered_unreceive(b, "x|", 2));
  until_is(b, "|", 16, "x");
  until_is(b, "|", 16, "aaaab");
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Cancellation                                                              */

/* The search memory of a cancelled receive_until, resumed after another
 * call added data: a delimiter that straddles the old end is found. */
SCIO_TEST_AUTOJUMP(until_resumes_search_at_straddling_delimiter) {
  script_record rec = {0};
  script_chunk c[] = {CH("abc\r"), CH_AT(10, "\nde"), CH_AT(20, "f")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  char out[16];
  size_t len;
  scio_scope cs;
  scio_move_on_after(&cs, 5);
  ck_assert_int_eq(scio_receive_until(b, "\r\n", 2, out, 16, &len),
                   SCIO_ECANCELED);
  scio_scope_close(&cs);
  scio_move_on_after(&cs, 10);
  ck_assert_int_eq(scio_receive_exactly(b, out, 8), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_uint_eq(buffered_count(b), 7);
  until_is(b, "\r\n", 16, "abc");
  ck_assert_double_eq(scio_now(), 15);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST_AUTOJUMP(cancel_mid_until_loses_nothing) {
  script_record rec = {0};
  script_chunk c[] = {CH("hel"), CH_AT(3, "lo wo"), CH_AT(10, "rld\r"),
                      CH_AT(20, "\nnext\r\n")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  size_t len = 1234;
  char out[64];
  scio_scope cs;
  scio_move_on_after(&cs, 5);
  ck_assert_int_eq(scio_receive_until(b, "\r\n", 2, out, 64, &len),
                   SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_uint_eq(len, 1234);
  ck_assert_uint_eq(buffered_count(b), 8);
  scio_move_on_after(&cs, 10); /* until t=15: the \r is in, not the \n */
  ck_assert_int_eq(scio_receive_until(b, "\r\n", 2, out, 64, &len),
                   SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_uint_eq(buffered_count(b), 12);
  until_is(b, "\r\n", 64, "hello world");
  ck_assert_double_eq(scio_now(), 20);
  until_is(b, "\r\n", 64, "next");
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST_AUTOJUMP(cancel_mid_exactly_loses_nothing) {
  script_record rec = {0};
  script_chunk c[] = {CH("abc"), CH_AT(10, "defg")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  char out[16];
  scio_scope cs;
  scio_move_on_after(&cs, 5);
  ck_assert_int_eq(scio_receive_exactly(b, out, 6), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_uint_eq(buffered_count(b), 3);
  ck_assert_int_eq(scio_receive_exactly(b, out, 6), 6);
  ck_assert(memcmp(out, "abcdef", 6) == 0);
  ck_assert_int_eq(scio_receive(b, out, 16), 1);
  CK_OK(scio_close(b));
  return 0;
}

/* A cancelled scope fails every receive first, even one the buffer could
 * answer, and consumes nothing. */
SCIO_TEST(cancelled_scope_fails_buffered_calls_first) {
  script_record rec = {0};
  script_chunk c[] = {CH("a\nb\nc\n")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  until_is(b, "\n", 8, "a");
  scio_scope cs;
  scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  scio_scope_cancel(&cs);
  char out[8];
  size_t len;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, out, 8, &len),
                   SCIO_ECANCELED);
  ck_assert_int_eq(scio_receive_exactly(b, out, 1), SCIO_ECANCELED);
  ck_assert_int_eq(scio_receive(b, out, 8), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_uint_eq(buffered_count(b), 4);
  until_is(b, "\n", 8, "b");
  CK_OK(scio_close(b));
  return 0;
}

static long spins;

static int spinner(void *arg) {
  (void)arg;
  for (;;) {
    spins++;
    int rc = scio_checkpoint();
    if (rc < 0)
      return rc;
  }
}

/* Served from the buffer, each call still yields once. */
SCIO_TEST(buffered_calls_are_checkpoints) {
  script_record rec = {0};
  script_chunk c[] = {CH("a\nb\nc\nd\n")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  scio_nursery n;
  scio_nursery_open(&n);
  CK_OK(scio_start_soon(&n, spinner, NULL));
  until_is(b, "\n", 8, "a");
  long before = spins;
  until_is(b, "\n", 8, "b");
  ck_assert_int_gt(spins, before);
  before = spins;
  char out[4];
  ck_assert_int_eq(scio_receive_exactly(b, out, 2), 2);
  ck_assert_int_gt(spins, before);
  before = spins;
  ck_assert_int_eq(scio_receive(b, out, 2), 2);
  ck_assert_int_gt(spins, before);
  scio_nursery_cancel(&n);
  scio_nursery_close(&n);
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Pass-through, attributes, close                                           */

SCIO_TEST(send_and_send_eof_pass_through) {
  script_record rec = {0};
  scio_stream *b = over(NULL, 0, &rec, 0);
  CK_OK(scio_send(b, "hello ", 6));
  CK_OK(scio_send(b, "world", 5));
  CK_OK(scio_send_eof(b));
  ck_assert_uint_eq(rec.nsent, 11);
  ck_assert(memcmp(rec.sent, "hello world", 11) == 0);
  ck_assert_int_eq(rec.eofs, 1);
  CK_OK(scio_close(b));
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

SCIO_TEST(attributes_walk_the_layers) {
  script_record rec = {0};
  script_chunk c[] = {CH("ab\ncdef")};
  scio_stream *inner = over(c, NCH(c), &rec, 0), *outer = NULL;
  CK_OK(scio_buffered_open(inner, NULL, &outer));
  size_t n = 99;
  CK_OK(scio_stream_attr(outer, SCIO_ATTR_BUFFERED, &n, sizeof n));
  ck_assert_uint_eq(n, 0);
  until_is(outer, "\n", 8, "ab");
  /* The outer layer answers for itself (the inner one holds nothing). */
  ck_assert_uint_eq(buffered_count(outer), 4);
  ck_assert_uint_eq(buffered_count(inner), 0);
  int v = 0;
  CK_OK(scio_stream_attr(outer, SCIO_ATTR_USER, &v, sizeof v));
  ck_assert_int_eq(v, 42);
  ck_assert_int_eq(scio_stream_attr(outer, SCIO_ATTR_FD, &v, sizeof v),
                   -ENOENT);
  char small[2];
  ck_assert_int_eq(
      scio_stream_attr(outer, SCIO_ATTR_BUFFERED, small, sizeof small),
      -ENOSPC);
  char name[16];
  CK_OK(scio_stream_attr(outer, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "buffered");
  CK_OK(scio_close(outer));
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

typedef struct blocked_reader {
  scio_stream *b;
  int rc;
} blocked_reader;

static int read_line_blocking(void *arg) {
  blocked_reader *r = arg;
  char out[16];
  size_t len;
  r->rc = scio_receive_until(r->b, "\n", 1, out, sizeof out, &len);
  return 0;
}

/* A task blocked in receive_until is woken with SCIO_ECLOSED by a close;
 * the source is closed once and every block is freed (ASan/valgrind). */
SCIO_TEST(close_wakes_blocked_receive_until) {
  script_record rec = {0};
  script_chunk c[] = {CH("partial")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  script_of(b->inner)->hang_at_end = 1;
  blocked_reader r = {b, 1};
  scio_nursery n;
  scio_nursery_open(&n);
  CK_OK(scio_start_soon(&n, read_line_blocking, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_uint_eq(buffered_count(b), 7);
  CK_OK(scio_close(b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

/* Data handed over by the wrapped stream after the buffered stream was
 * closed: the call reports SCIO_ECLOSED and never touches the released
 * wrapped stream again (ASan would see the use after free). */
SCIO_TEST(close_while_data_arrives_is_eclosed) {
  script_record rec = {0};
  script_chunk c[] = {CH("part"), CH("ial"), CH("\n")};
  scio_stream *b = over(c, NCH(c), &rec, 0);
  script_of(b->inner)->close_on_deliver = b;
  char out[16];
  size_t len;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, out, 16, &len),
                   SCIO_ECLOSED);
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

/* While one task receives, every other receive call and feed is EBUSY. */
SCIO_TEST(concurrent_receivers_are_busy) {
  script_record rec = {0};
  scio_stream *b = over(NULL, 0, &rec, 0);
  script_of(b->inner)->hang_at_end = 1;
  blocked_reader r = {b, 1};
  scio_nursery n;
  scio_nursery_open(&n);
  CK_OK(scio_start_soon(&n, read_line_blocking, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  char out[4];
  size_t len;
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, out, 4, &len), SCIO_EBUSY);
  ck_assert_int_eq(scio_receive_exactly(b, out, 4), SCIO_EBUSY);
  ck_assert_int_eq(scio_receive(b, out, 4), SCIO_EBUSY);
  ck_assert_int_eq(scio_buffered_unreceive(b, "x", 1), SCIO_EBUSY);
  CK_OK(scio_send(b, "ok", 2)); /* sending is another direction */
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECANCELED);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(invalid_arguments) {
  script_record rec = {0};
  scio_stream *src = script_source_new(NULL, 0, &rec), *b = NULL;
  char out[4];
  size_t len;
  /* Not a buffered stream, or none at all. */
  ck_assert_int_eq(scio_receive_until(src, "\n", 1, out, 4, &len),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_exactly(src, out, 4), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_feed(src, "x", 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_until(NULL, "\n", 1, out, 4, &len),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_exactly(NULL, out, 4), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_feed(NULL, "x", 1), SCIO_EINVAL);
  /* The constructor: on error the inner stream is not taken. */
  ck_assert_int_eq(scio_buffered_open(NULL, NULL, &b), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_open(src, NULL, NULL), SCIO_EINVAL);
  scio_buffered_opts o = {(size_t)1 << 40};
  ck_assert_int_eq(scio_buffered_open(src, &o, &b), SCIO_EINVAL);
  ck_assert_ptr_null(b);
  CK_OK(scio_buffered_open(src, NULL, &b));
  ck_assert_int_eq(scio_receive_until(b, NULL, 1, out, 4, &len), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_until(b, "\n", 0, out, 4, &len), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, NULL, 4, &len),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_until(b, "\n", 1, out, 4, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_exactly(b, NULL, 4), SCIO_EINVAL);
  ck_assert_int_eq(scio_receive_exactly(b, out, (size_t)-1), SCIO_EINVAL);
  ck_assert_int_eq(scio_buffered_feed(b, NULL, 1), SCIO_EINVAL);
  /* The stream is still usable after all that. */
  ck_assert_int_eq(scio_receive(b, out, 4), SCIO_EOF);
  CK_OK(scio_close(b));
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Allocation failure (tests/support/oom.h): fail allocation N (once, then
 * from N on) for N = 1, 2, ... until a run does not reach N.  Every failure
 * must be SCIO_ENOMEM, leak no block and no fd, lose no byte, and leave the
 * stream usable. */

/* The operation under test: construct, feed, read a line that makes the
 * buffer grow.  Armed only around the calls, so the loop's own allocations
 * are not failed. */
static int oom_buffered_body(void *arg) {
  (void)arg;
  script_record rec = {0};
  script_chunk c[] = {CH("hello "),
                      CH("world, a line longer than read_size\nrest")};
  scio_stream *src = script_source_new(c, NCH(c), &rec), *b = NULL;
  scio_buffered_opts o = {8};
  scio_oom_arm(1);
  int rc = scio_buffered_open(src, &o, &b);
  scio_oom_arm(0);
  if (rc < 0) {
    ck_assert_int_eq(rc, SCIO_ENOMEM);
    scio_close(src);
    return rc;
  }
  scio_oom_arm(1);
  int frc = scio_buffered_feed(b, ">>", 2);
  char line[64];
  size_t len;
  int urc = scio_receive_until(b, "\n", 1, line, sizeof line, &len);
  scio_oom_arm(0);
  ck_assert(frc == 0 || frc == SCIO_ENOMEM);
  ck_assert(urc == 0 || urc == SCIO_ENOMEM);
  if (urc < 0) /* nothing was lost: the retry gets the whole line */
    CK_OK(scio_receive_until(b, "\n", 1, line, sizeof line, &len));
  const char *want = frc == 0 ? ">>hello world, a line longer than read_size"
                              : "hello world, a line longer than read_size";
  ck_assert_uint_eq(len, strlen(want));
  ck_assert(memcmp(line, want, len) == 0);
  ck_assert_int_eq(scio_receive_exactly(b, line, 4), 4);
  ck_assert(memcmp(line, "rest", 4) == 0);
  CK_OK(scio_close(b));
  ck_assert_int_eq(rec.closes, 1);
  return frc < 0 ? frc : urc;
}

START_TEST(allocation_failure_loop) {
  scio_oom_install(0);
  scio_oom_run r = {.fn = oom_buffered_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_opts opts = {.self_armed = 1, .max_points = 1000};
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, &opts);
  scio_oom_uninstall();
}
END_TEST

/* ------------------------------------------------------------------------ */

void buffered_feed_tests(Suite *s); /* tests/buffered_feed.c */

static Suite *buffered_suite(void) {
  Suite *s = suite_create("buffered");
  TCase *tc = scio_tcase_new("receive_until", 30);
  scio_tcase_add(tc, until_delimiter_straddles_every_split);
  scio_tcase_add(tc, until_self_overlapping_delimiters_byte_by_byte);
  scio_tcase_add(tc, until_edelim_exactly_at_max);
  scio_tcase_add(tc, until_eof_without_delimiter_keeps_data);
  scio_tcase_add(tc, until_error_of_inner_keeps_data);
  scio_tcase_add(tc, until_long_line_grows_buffer);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("receive", 10);
  scio_tcase_add(tc, exactly_across_chunks_and_eincomplete);
  scio_tcase_add(tc, exactly_large_grows);
  scio_tcase_add(tc, receive_serves_buffer_first);
  scio_tcase_add(tc, wait_receive_ready_walks_the_chain);
  scio_tcase_add(tc, nowait_serves_buffer_then_wrapped);
  scio_tcase_add(tc, receive_small_reads_through_buffer);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("feed", 10);
  scio_tcase_add(tc, unreceive_pushes_back_to_the_front);
  scio_tcase_add(tc, unreceive_resets_search_memory);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("cancel", 10);
  scio_tcase_add(tc, cancel_mid_until_loses_nothing);
  scio_tcase_add(tc, until_resumes_search_at_straddling_delimiter);
  scio_tcase_add(tc, cancel_mid_exactly_loses_nothing);
  scio_tcase_add(tc, cancelled_scope_fails_buffered_calls_first);
  scio_tcase_add(tc, buffered_calls_are_checkpoints);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("stream", 10);
  scio_tcase_add(tc, send_and_send_eof_pass_through);
  scio_tcase_add(tc, attributes_walk_the_layers);
  scio_tcase_add(tc, close_wakes_blocked_receive_until);
  scio_tcase_add(tc, close_while_data_arrives_is_eclosed);
  scio_tcase_add(tc, concurrent_receivers_are_busy);
  scio_tcase_add(tc, invalid_arguments);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("oom", 60);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
  buffered_feed_tests(s);
  return s;
}

int main(void) { return scio_test_main(buffered_suite()); }
