/* The kit's own tests: it must catch broken streams (a layer over a memory
 * pipe with one deliberate fault each) and report bad arguments.  Linked
 * into check_stream. */
#include <stdlib.h>
#include <string.h>

#include "scio/pipe.h"
#include "scio/testing.h"
#include "stream_kit.h"

enum fault {
  F_EOF_AS_ZERO = 1,  /* a receive returns 0 where the pipe says EOF */
  F_DROP_LAST,        /* a send of n > 1 bytes sends n - 1 */
  F_EMPTY_NO_YIELD    /* a send of 0 bytes returns at once */
};

typedef struct faulty {
  scio_stream base;
  int fault;
} faulty;

static ssize_t f_receive(scio_stream *s, void *buf, size_t max) {
  ssize_t n = scio_receive(s->inner, buf, max);
  return n == SCIO_EOF && ((faulty *)s)->fault == F_EOF_AS_ZERO ? 0 : n;
}
static int f_send(scio_stream *s, const void *buf, size_t len) {
  int fault = ((faulty *)s)->fault;
  if (fault == F_EMPTY_NO_YIELD && len == 0)
    return 0;
  if (fault == F_DROP_LAST && len > 1)
    len--;
  return scio_send(s->inner, buf, len);
}
static int f_send_eof(scio_stream *s) { return scio_send_eof(s->inner); }
static int f_close(scio_stream *s) { return scio_close(s->inner); }
static void f_free(scio_stream *s) { free(s); }
static int f_wait(scio_stream *s) { return scio_wait_send_ready(s->inner); }

static const scio_stream_ops faulty_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "faulty",
    .do_receive = f_receive,
    .do_send = f_send,
    .do_send_eof = f_send_eof,
    .do_close = f_close,
    .do_free = f_free,
    .do_wait_send_ready = f_wait,
};

static scio_stream *faulty_over(scio_stream *inner, int fault) {
  faulty *f = malloc(sizeof *f);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(scio_stream_init(&f->base, &faulty_ops, inner), 0);
  f->fault = fault;
  return &f->base;
}

static int faulty_pair(scio_stream **a, scio_stream **b, void *arg) {
  int fault = *(int *)arg;
  int rc = scio_memory_pipe_open(a, b, NULL);
  if (rc == 0) {
    *a = faulty_over(*a, fault);
    *b = faulty_over(*b, fault);
  }
  return rc;
}

/* The kit fails with SCIO_STREAM_CHECK_FAILED and a message naming the
 * check and containing `why`. */
static void expect_caught(int fault, const char *check, const char *why) {
  scio_stream_kit kit = {.make = faulty_pair, .arg = &fault};
  int rc = scio_stream_check_half_closeable(&kit);
  ck_assert_int_eq(rc, SCIO_STREAM_CHECK_FAILED);
  ck_assert_msg(strstr(scio_errmsg(), check) && strstr(scio_errmsg(), why),
                "unexpected message: %s", scio_errmsg());
}

SCIO_TEST_AUTOJUMP(kit_catches_eof_as_zero) {
  expect_caught(F_EOF_AS_ZERO, "cancel_send", "got 0");
  return 0;
}

/* The receiver waits forever for the missing byte: the check's deadline
 * (free under the autojump clock) turns the hang into a failure. */
SCIO_TEST_AUTOJUMP(kit_catches_lost_bytes) {
  expect_caught(F_DROP_LAST, "receive_small", "timed out while");
  return 0;
}

SCIO_TEST_AUTOJUMP(kit_catches_a_missing_checkpoint) {
  expect_caught(F_EMPTY_NO_YIELD, "send_receive", "without yielding");
  return 0;
}

static int failing_make(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  *a = *b = NULL;
  return SCIO_ENOMEM;
}

SCIO_TEST(kit_reports_bad_arguments) {
  scio_stream_kit kit = {.make = NULL};
  ck_assert_int_eq(scio_stream_check_one_way(NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_stream_check_one_way(&kit), SCIO_EINVAL);
  kit.make = failing_make;
  kit.timeout = -1;
  ck_assert_int_eq(scio_stream_check_two_way(&kit), SCIO_EINVAL);
  kit.timeout = 0;
  /* The maker's error comes back as it is. */
  ck_assert_int_eq(scio_stream_check_two_way(&kit), SCIO_ENOMEM);
  return 0;
}

START_TEST(kit_outside_a_run_is_einval) {
  scio_stream_kit kit = {.make = failing_make};
  ck_assert_int_eq(scio_stream_check_one_way(&kit), SCIO_EINVAL);
}
END_TEST

void stream_kit_self_tests(Suite *s) {
  TCase *tc = scio_tcase_new("kit-self", 60);
  scio_tcase_add(tc, kit_catches_eof_as_zero);
  scio_tcase_add(tc, kit_catches_lost_bytes);
  scio_tcase_add(tc, kit_catches_a_missing_checkpoint);
  scio_tcase_add(tc, kit_reports_bad_arguments);
  tcase_add_test(tc, kit_outside_a_run_is_einval);
  suite_add_tcase(s, tc);
}
