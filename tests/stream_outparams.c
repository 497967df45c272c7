/* Tests of the stream constructors' out parameters, part of
 * tests/check_stream: on every error *out is NULL (docs/internals.md, "Out
 * parameters on error"), so a cleanup path can close whatever is non-NULL,
 * and nothing passed in was taken.  They run outside a run: constructors
 * are not checkpoints. */
#include <stdlib.h>
#include <string.h>

#include "scio/buffered.h"
#include "scio/channel.h"
#include "scio/pipe.h"
#include "scio/stapled.h"
#include "scio/testing.h"
#include "scio/text.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

static int junk_target;
#define JUNK ((void *)&junk_target)

static void *no_malloc(void *ctx, size_t n) {
  (void)ctx;
  (void)n;
  return NULL;
}
static void *no_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  (void)p;
  (void)n;
  return NULL;
}
static void plain_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}
static const scio_allocator no_memory = {no_malloc, no_realloc, plain_free,
                                         NULL};

START_TEST(memory_pipe_open_clears_outs) {
  scio_stream *a = JUNK, *b = JUNK;
  ck_assert_int_eq(scio_memory_pipe_open(&a, NULL, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(a);
  b = JUNK;
  ck_assert_int_eq(scio_memory_pipe_open(NULL, &b, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(b);
  scio_memory_pipe_opts o = {(size_t)-1};
  a = b = JUNK;
  ck_assert_int_eq(scio_memory_pipe_open(&a, &b, &o), SCIO_EINVAL);
  ck_assert_ptr_null(a);
  ck_assert_ptr_null(b);
  a = b = JUNK;
  scio_set_allocator(&no_memory);
  int rc = scio_memory_pipe_open(&a, &b, NULL);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(a);
  ck_assert_ptr_null(b);
}
END_TEST

START_TEST(buffered_open_clears_out) {
  scio_stream *a, *b, *out = JUNK;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_buffered_open(NULL, NULL, &out), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  scio_buffered_opts o = {(size_t)1 << 40};
  out = JUNK;
  ck_assert_int_eq(scio_buffered_open(a, &o, &out), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  out = JUNK;
  scio_set_allocator(&no_memory);
  int rc = scio_buffered_open(a, NULL, &out);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(out);
  /* Nothing was taken: a is still the caller's. */
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
}
END_TEST

START_TEST(text_open_clears_out) {
  scio_stream *a, *b, *out = JUNK;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_text_open(NULL, NULL, &out), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  scio_text_opts o;
  memset(&o, 0, sizeof o);
  o.encoding = "no-such-encoding-at-all";
  out = JUNK;
  ck_assert_int_lt(scio_text_open(a, &o, &out), 0);
  ck_assert_ptr_null(out);
  out = JUNK;
  scio_set_allocator(&no_memory);
  int rc = scio_text_open(a, NULL, &out);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(out);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
}
END_TEST

START_TEST(stapled_open_clears_out) {
  scio_stream *a, *b, *out = JUNK;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_stapled_open(a, NULL, &out), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  out = JUNK;
  ck_assert_int_eq(scio_stapled_open(a, a, &out), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  out = JUNK;
  scio_set_allocator(&no_memory);
  int rc = scio_stapled_open(a, b, &out);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(out);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
}
END_TEST

START_TEST(stapled_object_open_clears_out) {
  scio_tx *tx;
  scio_rx *rx, *rx8;
  scio_tx *tx8;
  CK_OK(scio_channel_open(4, 1, &tx, &rx));
  CK_OK(scio_channel_open(8, 1, &tx8, &rx8));
  scio_ostream *out = JUNK;
  ck_assert_int_eq(scio_stapled_object_open(NULL, scio_rx_ostream(rx), &out),
                   SCIO_EINVAL);
  ck_assert_ptr_null(out);
  out = JUNK;
  ck_assert_int_eq(scio_stapled_object_open(scio_tx_ostream(tx),
                                            scio_rx_ostream(rx8), &out),
                   SCIO_EINVAL);
  ck_assert_ptr_null(out);
  out = JUNK;
  scio_set_allocator(&no_memory);
  int rc = scio_stapled_object_open(scio_tx_ostream(tx), scio_rx_ostream(rx),
                                    &out);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(out);
  CK_OK(scio_tx_close_nowait(tx));
  CK_OK(scio_rx_close_nowait(rx));
  CK_OK(scio_tx_close_nowait(tx8));
  CK_OK(scio_rx_close_nowait(rx8));
}
END_TEST

void stream_outparams_tests(Suite *s) {
  TCase *tc = scio_tcase_new("out-params", 10);
  tcase_add_test(tc, memory_pipe_open_clears_outs);
  tcase_add_test(tc, buffered_open_clears_out);
  tcase_add_test(tc, text_open_clears_out);
  tcase_add_test(tc, stapled_open_clears_out);
  tcase_add_test(tc, stapled_object_open_clears_out);
  suite_add_tcase(s, tc);
}
