/* Tests of the vtable version check (scio_stream_ops.size) and of the
 * version-2 slots (do_pending, do_wait_send_ready) through
 * scio_stream_pending and scio_wait_send_ready.  Linked into
 * check_stream. */
#include <string.h>

#include "scio/pipe.h"
#include "scio/testing.h"
#include "stream_kit.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

static int slot_calls, frees;

static ssize_t v_pending(scio_stream *s) {
  (void)s;
  slot_calls++;
  return 5;
}
static int v_wait(scio_stream *s) {
  (void)s;
  slot_calls++;
  return 0;
}
static void v_free(scio_stream *s) {
  (void)s;
  frees++;
}

/* Every slot set; only `size` differs between the tests. */
#define V_OPS(sz)                                                             \
  {.size = (sz),                                                              \
   .name = "versioned",                                                       \
   .do_free = v_free,                                                         \
   .do_pending = v_pending,                                                   \
   .do_wait_send_ready = v_wait}

SCIO_TEST(init_refuses_a_vtable_without_version) {
  static const scio_stream_ops zero = V_OPS(0);
  static const scio_stream_ops short_ = V_OPS(SCIO_STREAM_OPS_SIZE_V1 - 1);
  scio_stream s;
  char c;
  frees = slot_calls = 0;
  ck_assert_int_eq(scio_stream_init(&s, &zero, NULL), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "ops->size 0"));
  ck_assert_int_eq(scio_stream_init(&s, &short_, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_stream_init(&s, NULL, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_stream_init(NULL, &zero, NULL), SCIO_EINVAL);
  /* A refused stream answers every call with SCIO_EINVAL, and its close
   * does not call the untrusted do_free. */
  ck_assert_int_eq(scio_receive(&s, &c, 1), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "stream_init failed"));
  ck_assert_int_eq(scio_send(&s, "x", 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_send_eof(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_wait_send_ready(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_stream_pending(&s), SCIO_EINVAL);
  CK_OK(scio_close(&s));
  ck_assert_int_eq(frees, 0);
  ck_assert_int_eq(slot_calls, 0);
  return 0;
}

SCIO_TEST(slots_beyond_size_are_null) {
  static const scio_stream_ops v1 = V_OPS(SCIO_STREAM_OPS_SIZE_V1);
  static const scio_stream_ops cur = V_OPS(sizeof(scio_stream_ops));
  scio_stream s;
  frees = slot_calls = 0;
  CK_OK(scio_stream_init(&s, &v1, NULL));
  ck_assert_int_eq(scio_stream_pending(&s), 0);
  ck_assert_int_eq(scio_wait_send_ready(&s), SCIO_ENOSYS);
  ck_assert_int_eq(slot_calls, 0);
  CK_OK(scio_close(&s));
  ck_assert_int_eq(frees, 1);
  CK_OK(scio_stream_init(&s, &cur, NULL));
  ck_assert_int_eq(scio_stream_pending(&s), 5);
  CK_OK(scio_wait_send_ready(&s));
  ck_assert_int_eq(slot_calls, 2);
  CK_OK(scio_close(&s));
  ck_assert_int_eq(frees, 2);
  return 0;
}

/* A vtable from a newer scio (more slots after ours) is accepted. */
SCIO_TEST(larger_vtable_is_accepted) {
  static struct {
    scio_stream_ops ops;
    void (*future_slot)(void);
  } newer = {V_OPS(sizeof newer), NULL};
  scio_stream s;
  frees = slot_calls = 0;
  CK_OK(scio_stream_init(&s, &newer.ops, NULL));
  ck_assert_int_eq(scio_stream_pending(&s), 5);
  CK_OK(scio_close(&s));
  ck_assert_int_eq(frees, 1);
  return 0;
}

static const scio_ostream_ops ozero = {.size = 0, .name = "old-object"};

SCIO_TEST(ostream_init_checks_the_version) {
  scio_ostream s;
  long item = 1;
  ck_assert_int_eq(scio_ostream_init(&s, &ozero, NULL, sizeof item),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_ostream_send(&s, &item), SCIO_EINVAL);
  ck_assert_int_eq(scio_ostream_receive(&s, &item), SCIO_EINVAL);
  ck_assert_int_eq(scio_ostream_send_eof(&s), SCIO_EINVAL);
  CK_OK(scio_ostream_close(&s));
  ck_assert_int_eq(scio_ostream_init(&s, NULL, NULL, 4), SCIO_EINVAL);
  return 0;
}

static int send10(void *arg) {
  scio_stream *a = arg;
  return scio_send(a, "0123456789", 10);
}

/* A pipe counts its ring and the rest of a blocked sender's buffer. */
SCIO_TEST(pending_of_a_memory_pipe) {
  scio_stream *a, *b;
  scio_memory_pipe_opts o = {4};
  CK_OK(scio_memory_pipe_open(&a, &b, &o));
  ck_assert_int_eq(scio_stream_pending(b), 0);
  ck_assert_int_eq(scio_stream_pending(NULL), SCIO_EINVAL);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send10, a));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_stream_pending(b), 10); /* 4 buffered + 6 held */
  ck_assert_int_eq(scio_stream_pending(a), 0);
  char buf[16];
  ck_assert_int_eq(scio_receive(b, buf, 3), 3);
  ck_assert_int_eq(scio_stream_pending(b), 7);
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 7);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(scio_stream_pending(b), 0);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* Layers add their own buffers to the walk. */
SCIO_TEST(pending_through_layers) {
  scio_stream *a, *b, *a2, *b2, *buf_b, *text_b, *st;
  char buf[16];
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_buffered_open(b, NULL, &buf_b));
  CK_OK(scio_text_open(buf_b, NULL, &text_b));
  CK_OK(scio_send(a, "abcdef", 6));
  ck_assert_int_eq(scio_stream_pending(text_b), 6); /* all in the pipe */
  ck_assert_int_eq(scio_receive(text_b, buf, 2), 2);
  /* text took what buffered had (all 6), decoded 2: 4 left in text. */
  ck_assert_int_eq(scio_stream_pending(text_b), 4);
  CK_OK(scio_send(a, "gh", 2));
  ck_assert_int_eq(scio_stream_pending(text_b), 6);
  CK_OK(scio_close(text_b));
  CK_OK(scio_close(a));
  /* Stapled: the receive half's chain. */
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_memory_pipe_open(&a2, &b2, NULL));
  CK_OK(scio_stapled_open(a, b2, &st));
  CK_OK(scio_send(a2, "xyz", 3));
  CK_OK(scio_send(st, "q", 1)); /* to b: not st's to receive */
  ck_assert_int_eq(scio_stream_pending(st), 3);
  CK_OK(scio_close(st));
  CK_OK(scio_close(a2));
  CK_OK(scio_close(b));
  return 0;
}

typedef struct waiter {
  int rc, done;
  scio_stream *s;
} waiter;

static int waiter_task(void *arg) {
  waiter *w = arg;
  w->rc = scio_wait_send_ready(w->s);
  w->done = 1;
  return 0;
}

/* A full pipe: the wait blocks until a receive makes room, and reports
 * closes. */
SCIO_TEST(wait_send_ready_of_a_memory_pipe) {
  scio_stream *a, *b;
  scio_memory_pipe_opts o = {4};
  char buf[8];
  CK_OK(scio_memory_pipe_open(&a, &b, &o));
  CK_OK(scio_wait_send_ready(a)); /* room: at once (after a yield) */
  CK_OK(scio_send(a, "full", 4));
  waiter w = {1, 0, a};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, waiter_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(w.done, 0);
  ck_assert_int_eq(scio_send(a, "x", 1), SCIO_EBUSY); /* a wait is a send */
  ck_assert_int_eq(scio_receive(b, buf, 1), 1);
  CK_OK(scio_nursery_close(&n));
  CK_OK(w.rc);
  CK_OK(scio_send(a, "y", 1)); /* full again */
  /* Closing the peer wakes a blocked wait with SCIO_EBROKEN. */
  w.done = 0;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, waiter_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, SCIO_EBROKEN);
  ck_assert_int_eq(scio_wait_send_ready(a), SCIO_EBROKEN);
  CK_OK(scio_close(a));
  /* After send_eof: SCIO_ECLOSED. */
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_send_eof(a));
  ck_assert_int_eq(scio_wait_send_ready(a), SCIO_ECLOSED);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

void stream_slot_tests(Suite *s) {
  TCase *tc = scio_tcase_new("versions", 10);
  scio_tcase_add(tc, init_refuses_a_vtable_without_version);
  scio_tcase_add(tc, slots_beyond_size_are_null);
  scio_tcase_add(tc, larger_vtable_is_accepted);
  scio_tcase_add(tc, ostream_init_checks_the_version);
  scio_tcase_add(tc, pending_of_a_memory_pipe);
  scio_tcase_add(tc, pending_through_layers);
  scio_tcase_add(tc, wait_send_ready_of_a_memory_pipe);
  suite_add_tcase(s, tc);
}
