/* Tests of include/scio/channel.h, part of tests/check_channel: the
 * closes that are not checkpoints (scio_tx_close_nowait,
 * scio_rx_close_nowait; Trio's close() beside aclose()), and the out
 * parameters of the constructors on error. */
#include <stdlib.h>
#include <string.h>

#include "scio/channel.h"
#include "scio/testing.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

typedef struct waiter {
  scio_tx *tx;
  scio_rx *rx;
  int rc;
  int item;
} waiter;

static int receive_one(void *arg) {
  waiter *w = arg;
  w->rc = scio_rx_receive(w->rx, &w->item);
  return 0;
}

static int send_one(void *arg) {
  waiter *w = arg;
  w->rc = scio_tx_send(w->tx, &w->item);
  return 0;
}

static int set_flag(void *arg) {
  *(int *)arg = 1;
  return 0;
}

/* In a cancelled scope the close succeeds, does not yield (a task queued
 * before it has not run when it returns) and wakes the receiver with
 * SCIO_EOF. */
SCIO_TEST(tx_close_nowait_in_a_cancelled_scope) {
  scio_tx *tx;
  scio_rx *rx;
  CK_OK(scio_channel_open(sizeof(int), 0, &tx, &rx));
  waiter w = {tx, rx, 1, 0};
  int ran = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, receive_one, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_start_soon(&n, set_flag, &ran));
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  CK_OK(scio_tx_close_nowait(tx));
  ck_assert_int_eq(ran, 0);   /* no yield */
  ck_assert_int_eq(w.rc, 1);  /* woken, not yet run */
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(ran, 1);
  ck_assert_int_eq(w.rc, SCIO_EOF);
  /* The channel is still readable by the receive half: EOF. */
  int v;
  ck_assert_int_eq(scio_rx_receive_nowait(rx, &v), SCIO_EOF);
  CK_OK(scio_rx_close_nowait(rx));
  return 0;
}

/* The last receive half closed without a checkpoint: a blocked sender gets
 * SCIO_EBROKEN, buffered items are dropped (no leak), and the close of the
 * sender's own half still works afterwards. */
SCIO_TEST(rx_close_nowait_breaks_the_channel) {
  scio_tx *tx;
  scio_rx *rx;
  CK_OK(scio_channel_open(sizeof(int), 1, &tx, &rx));
  int one = 1;
  CK_OK(scio_tx_send_nowait(tx, &one));
  waiter w = {tx, rx, 1, 2};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send_one, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  CK_OK(scio_rx_close_nowait(rx));
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, SCIO_EBROKEN);
  ck_assert_int_eq(scio_tx_send_nowait(tx, &one), SCIO_EBROKEN);
  CK_OK(scio_tx_close_nowait(tx));
  return 0;
}

/* Clones: only the last close ends the stream; a half's own blocked task
 * gets SCIO_ECLOSED. */
SCIO_TEST(close_nowait_with_clones) {
  scio_tx *tx, *tx2;
  scio_rx *rx, *rx2;
  CK_OK(scio_channel_open(sizeof(int), 4, &tx, &rx));
  CK_OK(scio_tx_clone(tx, &tx2));
  CK_OK(scio_rx_clone(rx, &rx2));
  waiter w = {tx, rx, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, receive_one, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_rx_close_nowait(rx)); /* the half the task waits in */
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, SCIO_ECLOSED);
  int v = 7;
  CK_OK(scio_tx_close_nowait(tx));
  CK_OK(scio_tx_send_nowait(tx2, &v)); /* tx2 keeps the channel open */
  CK_OK(scio_tx_close_nowait(tx2));
  CK_OK(scio_rx_receive_nowait(rx2, &v));
  ck_assert_int_eq(v, 7);
  ck_assert_int_eq(scio_rx_receive_nowait(rx2, &v), SCIO_EOF);
  CK_OK(scio_rx_close_nowait(rx2));
  CK_OK(scio_tx_close_nowait(NULL));
  CK_OK(scio_rx_close_nowait(NULL));
  return 0;
}

/* A half whose (checkpoint) close is still yielding is being closed: the
 * nowait close refuses it, and the first close releases it. */
static int aclose_tx(void *arg) {
  waiter *w = arg;
  w->rc = scio_tx_close(w->tx);
  return 0;
}

SCIO_TEST(close_nowait_during_a_close_is_eclosed) {
  scio_tx *tx;
  scio_rx *rx;
  CK_OK(scio_channel_open(sizeof(int), 0, &tx, &rx));
  waiter w = {tx, rx, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, aclose_tx, &w));
  CK_OK(scio_checkpoint()); /* aclose_tx runs into its close's yield */
  ck_assert_int_eq(w.rc, 1);
  ck_assert_int_eq(scio_tx_close_nowait(tx), SCIO_ECLOSED);
  CK_OK(scio_nursery_close(&n));
  CK_OK(w.rc);
  CK_OK(scio_rx_close_nowait(rx));
  return 0;
}

/* Outside a run: no task to yield, nothing to wake. */
START_TEST(close_nowait_outside_a_run) {
  scio_tx *tx;
  scio_rx *rx;
  CK_OK(scio_channel_open(sizeof(int), 2, &tx, &rx));
  int v = 5;
  CK_OK(scio_tx_send_nowait(tx, &v));
  CK_OK(scio_rx_close_nowait(rx));
  CK_OK(scio_tx_close_nowait(tx));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Out parameters are NULL on error                                          */

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

#define JUNK ((void *)&junk_target)
static int junk_target;

START_TEST(channel_open_clears_outs_on_error) {
  scio_tx *tx = JUNK;
  scio_rx *rx = JUNK;
  ck_assert_int_eq(scio_channel_open(0, 0, &tx, &rx), SCIO_EINVAL);
  ck_assert_ptr_null(tx);
  ck_assert_ptr_null(rx);
  tx = JUNK;
  ck_assert_int_eq(scio_channel_open(4, 0, &tx, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(tx);
  rx = JUNK;
  ck_assert_int_eq(scio_channel_open(4, 0, NULL, &rx), SCIO_EINVAL);
  ck_assert_ptr_null(rx);
  scio_allocator none = {no_malloc, no_realloc, plain_free, NULL};
  scio_set_allocator(&none);
  tx = JUNK;
  rx = JUNK;
  int rc = scio_channel_open(4, 0, &tx, &rx);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(tx);
  ck_assert_ptr_null(rx);
}
END_TEST

START_TEST(clones_clear_out_on_error) {
  scio_tx *tx;
  scio_rx *rx;
  CK_OK(scio_channel_open(sizeof(int), 0, &tx, &rx));
  scio_tx *t2 = JUNK;
  scio_rx *r2 = JUNK;
  ck_assert_int_eq(scio_tx_clone(NULL, &t2), SCIO_EINVAL);
  ck_assert_ptr_null(t2);
  ck_assert_int_eq(scio_rx_clone(NULL, &r2), SCIO_EINVAL);
  ck_assert_ptr_null(r2);
  ck_assert_int_eq(scio_tx_clone(tx, NULL), SCIO_EINVAL);
  scio_allocator none = {no_malloc, no_realloc, plain_free, NULL};
  scio_set_allocator(&none);
  t2 = JUNK;
  r2 = JUNK;
  int trc = scio_tx_clone(tx, &t2);
  int rrc = scio_rx_clone(rx, &r2);
  scio_set_allocator(NULL);
  ck_assert_int_eq(trc, SCIO_ENOMEM);
  ck_assert_int_eq(rrc, SCIO_ENOMEM);
  ck_assert_ptr_null(t2);
  ck_assert_ptr_null(r2);
  CK_OK(scio_tx_close_nowait(tx));
  CK_OK(scio_rx_close_nowait(rx));
}
END_TEST

void channel_close_tests(Suite *s) {
  TCase *tc = scio_tcase_new("close-nowait", 10);
  scio_tcase_add(tc, tx_close_nowait_in_a_cancelled_scope);
  scio_tcase_add(tc, rx_close_nowait_breaks_the_channel);
  scio_tcase_add(tc, close_nowait_with_clones);
  scio_tcase_add(tc, close_nowait_during_a_close_is_eclosed);
  tcase_add_test(tc, close_nowait_outside_a_run);
  tcase_add_test(tc, channel_open_clears_outs_on_error);
  tcase_add_test(tc, clones_clear_out_on_error);
  suite_add_tcase(s, tc);
}
