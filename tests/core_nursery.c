/* Tests of the nursery rules of include/scio/core.h that follow Trio's
 * Nursery and nursery.start: scio_start from a cancelled caller,
 * scio_started after the caller was cancelled, closing as a schedule point,
 * the nursery's own scope, the body's result in the error group, walking
 * the group, SCIO_ECANCELED returned outside any cancelled scope, and task
 * names taken from the call site.  Every test runs on every backend. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream */
#endif
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "scio/testing.h"
#include "support/oom.h"

void core_nursery_tests(Suite *s);

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* The nursery's private state: how many children it holds now. */
static size_t nchildren(scio_nursery *n) {
  return ((scio__nursery *)n)->nchildren;
}

static const char bogus_msg[] =
    "returned SCIO_ECANCELED but no enclosing scope was cancelled: map your "
    "own scope's result with scio_scope_close_with";

static int sleeps_forever(void *p) {
  int *rc = p;
  *rc = scio_sleep_forever();
  return *rc;
}

/* ------------------------------------------------------------------------ */
/* scio_start from a caller that is already cancelled                        */

typedef struct probe {
  int ran;
  int first;      /* the first checkpoint's result */
  int started_rc; /* scio_started's result */
  int again_rc;   /* a second scio_started's result */
  int after;      /* a check for cancellation after scio_started */
} probe;

static int checkpoints_first(void *p) {
  probe *pr = p;
  pr->ran = 1;
  pr->first = scio_checkpoint();
  return pr->first;
}

/* Open a scope and cancel it before anything runs in it. */
static void open_cancelled(scio_scope *cs) {
  CK_OK(scio_scope_open(cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(cs);
}

SCIO_TEST(start_from_cancelled_caller_spawns_the_child) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  open_cancelled(&cs);
  void *v = &pr;
  ck_assert_int_eq(scio_start(&n, checkpoints_first, &pr, &v),
                   SCIO_ECANCELED);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(pr.ran, 1);
  ck_assert_int_eq(pr.first, SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_uint_eq(nchildren(&n), 0);
  CK_OK(scio_checkpoint()); /* n itself was never cancelled */
  CK_OK(scio_nursery_close(&n));
  ck_assert(!scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  return 0;
}

static int fails_with_detail(void *p) {
  (void)p;
  return scio__seterr(-EIO, "disk on fire");
}

SCIO_TEST(start_from_cancelled_caller_reports_the_child_error) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  open_cancelled(&cs);
  ck_assert_int_eq(scio_start(&n, fails_with_detail, NULL, NULL), -EIO);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "disk on fire"));
  ck_assert_uint_eq(scio_failures_count(), 1);
  scio_failure_info fi;
  CK_OK(scio_failure_get(0, &fi));
  ck_assert_str_eq(fi.task, "fails_with_detail");
  ck_assert_int_eq(fi.code, -EIO);
  ck_assert_str_eq(fi.message, "disk on fire");
  CK_OK(scio_scope_close(&cs));
  /* The error went through the cancelled scope: it caught nothing. */
  ck_assert(!scio_scope_cancelled_caught(&cs));
  CK_OK(scio_checkpoint()); /* the failure never reached n */
  CK_OK(scio_nursery_close(&n));
  return 0;
}

static int starts_then_returns(void *p) {
  probe *pr = p;
  pr->ran = 1;
  pr->started_rc = scio_started((void *)(intptr_t)42);
  /* Still under the caller's cancelled scope: started() moved nothing. */
  pr->after = scio_checkpoint_if_cancelled();
  pr->again_rc = scio_started(NULL);
  return 0;
}

SCIO_TEST(start_from_cancelled_caller_gets_the_value_of_a_child_that_returns) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  open_cancelled(&cs);
  void *v = NULL;
  CK_OK(scio_start(&n, starts_then_returns, &pr, &v));
  ck_assert_int_eq((int)(intptr_t)v, 42);
  CK_OK(pr.started_rc);
  ck_assert_int_eq(pr.after, SCIO_ECANCELED);
  ck_assert_int_eq(pr.again_rc, SCIO_EINVAL); /* twice, even as a no-op */
  ck_assert_uint_eq(nchildren(&n), 0);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED); /* the caller still is */
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

static int starts_then_checkpoints(void *p) {
  probe *pr = p;
  pr->ran = 1;
  pr->started_rc = scio_started((void *)(intptr_t)5);
  pr->after = scio_checkpoint();
  return pr->after;
}

SCIO_TEST(start_from_cancelled_caller_child_cancelled_after_started) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  open_cancelled(&cs);
  void *v = &pr;
  ck_assert_int_eq(scio_start(&n, starts_then_checkpoints, &pr, &v),
                   SCIO_ECANCELED);
  ck_assert_ptr_null(v);
  CK_OK(pr.started_rc);
  ck_assert_int_eq(pr.after, SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_uint_eq(nchildren(&n), 0);
  CK_OK(scio_nursery_close(&n));
  return 0;
}

static int returns_zero(void *p) {
  probe *pr = p;
  pr->ran = 1;
  return 0;
}

SCIO_TEST(start_from_cancelled_caller_child_never_started) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  open_cancelled(&cs);
  ck_assert_int_eq(scio_start(&n, returns_zero, &pr, NULL), SCIO_ENOTSTARTED);
  ck_assert_int_eq(pr.ran, 1);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "returns_zero"));
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The caller is cancelled between scio_start and scio_started               */

typedef struct late {
  int mode;       /* after scio_started: 0 sleep, 1 fail, 2 return 0 */
  int started_rc;
  int after;
} late;

/* Does 2 s of shielded work (so it outlives the caller's 1 s scope), then
 * calls scio_started. */
static int starts_late(void *p) {
  late *l = p;
  scio_scope sh;
  CK_OK(scio_scope_open(&sh, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  CK_OK(scio_sleep(2.0));
  CK_OK(scio_scope_close(&sh));
  l->started_rc = scio_started((void *)(intptr_t)7);
  if (l->mode == 1)
    return scio__seterr(-EIO, "late failure");
  if (l->mode == 2)
    return 0;
  l->after = scio_sleep(1.0);
  return l->after;
}

SCIO_TEST_AUTOJUMP(started_after_caller_cancelled_moves_nothing) {
  late l = {0, 1, 1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  void *v = &l;
  ck_assert_int_eq(scio_start(&n, starts_late, &l, &v), SCIO_ECANCELED);
  ck_assert_ptr_null(v);
  CK_OK(l.started_rc);
  /* The child stayed under the caller's cancelled scope. */
  ck_assert_int_eq(l.after, SCIO_ECANCELED);
  ck_assert(scio_now() == 2.0);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_uint_eq(nchildren(&n), 0);
  CK_OK(scio_checkpoint());
  CK_OK(scio_nursery_close(&n));
  ck_assert(!scio_scope_cancel_called(scio_nursery_scope(&n)));
  return 0;
}

SCIO_TEST_AUTOJUMP(started_after_caller_cancelled_then_child_error) {
  late l = {1, 1, 1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  ck_assert_int_eq(scio_start(&n, starts_late, &l, NULL), -EIO);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "late failure"));
  CK_OK(scio_scope_close(&cs));
  ck_assert_uint_eq(nchildren(&n), 0);
  CK_OK(scio_checkpoint()); /* nothing reached n */
  CK_OK(scio_nursery_close(&n));
  return 0;
}

SCIO_TEST_AUTOJUMP(started_after_caller_cancelled_then_child_returns) {
  late l = {2, 1, 1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  void *v = NULL;
  CK_OK(scio_start(&n, starts_late, &l, &v));
  ck_assert_int_eq((int)(intptr_t)v, 7);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

/* Cancelled from another task while the child waits, unshielded. */
typedef struct waiter {
  int wait_rc;
  int started_rc;
} waiter;

static int waits_then_starts(void *p) {
  waiter *w = p;
  w->wait_rc = scio_sleep_forever();
  w->started_rc = scio_started(NULL);
  return 0; /* returns without another checkpoint */
}

static int cancels_scope(void *p) {
  scio_scope_cancel(p);
  return 0;
}

SCIO_TEST(start_caller_cancelled_by_another_task) {
  waiter w = {1, 1};
  scio_nursery outer, n;
  CK_OK(scio_nursery_open(&outer));
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_start_soon(&outer, cancels_scope, &cs));
  CK_OK(scio_start(&n, waits_then_starts, &w, NULL));
  ck_assert_int_eq(w.wait_rc, SCIO_ECANCELED);
  CK_OK(w.started_rc);
  ck_assert_uint_eq(nchildren(&n), 0);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_nursery_close(&outer));
  return 0;
}

static int starts_then_sleeps(void *p) {
  int *done = p;
  CK_OK(scio_started(NULL));
  CK_OK(scio_sleep(2.0));
  *done = 1;
  return 0;
}

SCIO_TEST_AUTOJUMP(caller_cancelled_after_started_leaves_the_child_alone) {
  int done = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  CK_OK(scio_start(&n, starts_then_sleeps, &done, NULL));
  ck_assert_uint_eq(nchildren(&n), 1);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert(scio_now() == 1.0);
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(done, 1);
  ck_assert(scio_now() == 2.0);
  return 0;
}

SCIO_TEST(started_into_a_cancelled_target_is_cancelled_there) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_nursery_cancel(&n);
  scio_scope sh; /* the caller itself is not cancelled */
  CK_OK(scio_scope_open(&sh, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  void *v = NULL;
  CK_OK(scio_start(&n, starts_then_checkpoints, &pr, &v));
  ck_assert_int_eq((int)(intptr_t)v, 5);
  CK_OK(scio_scope_close(&sh));
  CK_OK(scio_nursery_close(&n)); /* n's scope catches the child's cancel */
  ck_assert_int_eq(pr.after, SCIO_ECANCELED);
  ck_assert(scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  return 0;
}

static int starts_twice(void *p) {
  probe *pr = p;
  pr->started_rc = scio_started((void *)(intptr_t)1);
  pr->again_rc = scio_started((void *)(intptr_t)2);
  return 0;
}

SCIO_TEST(started_twice_is_einval_and_keeps_the_first_value) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  void *v = NULL;
  CK_OK(scio_start(&n, starts_twice, &pr, &v));
  ck_assert_int_eq((int)(intptr_t)v, 1);
  CK_OK(pr.started_rc);
  ck_assert_int_eq(pr.again_rc, SCIO_EINVAL);
  CK_OK(scio_nursery_close(&n));
  return 0;
}

SCIO_TEST(start_into_closed_nursery_spawns_nothing) {
  probe pr = {0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_nursery_close(&n));
  void *v = &pr;
  ck_assert_int_eq(scio_start(&n, returns_zero, &pr, &v), SCIO_ECLOSED);
  ck_assert_ptr_null(v);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "already closed"));
  CK_OK(scio_checkpoint());
  ck_assert_int_eq(pr.ran, 0);
  ck_assert_int_eq(scio_start_soon(&n, returns_zero, &pr), SCIO_ECLOSED);
  CK_OK(scio_checkpoint());
  ck_assert_int_eq(pr.ran, 0);
  scio_nursery m;
  CK_OK(scio_nursery_open(&m));
  ck_assert_int_eq(scio_start(&m, NULL, NULL, &v), SCIO_EINVAL);
  ck_assert_int_eq(scio_start_soon(&m, NULL, NULL), SCIO_EINVAL);
  CK_OK(scio_nursery_close(&m));
  return 0;
}

static int fails_before_started(void *p) {
  (void)p;
  CK_OK(scio_checkpoint());
  return scio__seterr(-EPERM, "not allowed");
}

SCIO_TEST(start_child_error_before_started_stays_with_the_caller) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  ck_assert_int_eq(scio_start(&n, fails_before_started, NULL, NULL), -EPERM);
  ck_assert_str_eq(scio_errmsg(),
                   "task fails_before_started: EPERM: not allowed");
  ck_assert_uint_eq(scio_failures_count(), 1);
  CK_OK(scio_checkpoint()); /* n was not cancelled */
  CK_OK(scio_nursery_close(&n));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Closing is a schedule point, not a cancellation point                     */

static int sets_flag(void *p) {
  *(int *)p = 1;
  return 0;
}

SCIO_TEST(empty_nursery_closed_in_cancelled_scope_returns_0) {
  int flag = 0;
  scio_nursery outer, n;
  CK_OK(scio_nursery_open(&outer));
  CK_OK(scio_start_soon(&outer, sets_flag, &flag));
  scio_scope cs;
  open_cancelled(&cs);
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(flag, 1); /* it yielded: the sibling ran */
  ck_assert(!scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  CK_OK(scio_scope_close(&cs));
  ck_assert(!scio_scope_cancelled_caught(&cs));
  CK_OK(scio_nursery_close(&outer));
  return 0;
}

static int swallows_cancel(void *p) {
  int *rc = p;
  *rc = scio_sleep_forever();
  return 0;
}

SCIO_TEST(children_that_swallow_the_cancel_give_0) {
  int rc = 1;
  scio_scope cs;
  open_cancelled(&cs);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, swallows_cancel, &rc));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(!scio_scope_cancelled_caught(&cs));
  return 0;
}

/* A child that ended cancelled before the close still propagates its
 * cancellation (Trio keeps its Cancelled until __aexit__). */
SCIO_TEST(child_cancelled_before_close_propagates) {
  int rc = 1;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &rc));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&cs);
  while (nchildren(&n) > 0)
    CK_OK(scio_cancel_shielded_checkpoint());
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

SCIO_TEST(nursery_scope_catches_its_own_cancel) {
  int rc = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &rc));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert(scio_scope_cancel_called(scio_nursery_scope(&n)));
  ck_assert(scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  return 0;
}

SCIO_TEST(outer_and_nursery_cancelled_outer_catches) {
  int rc = 1;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &rc));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_nursery_cancel(&n);
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  ck_assert(!scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The nursery's own scope                                                   */

SCIO_TEST_AUTOJUMP(nursery_scope_can_be_shielded_and_given_a_deadline) {
  int rc = 1;
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope *ns = scio_nursery_scope(&n);
  ck_assert_ptr_nonnull(ns);
  scio_scope_set_shield(ns, 1);
  ck_assert(scio_scope_shield(ns));
  CK_OK(scio_scope_set_deadline(ns, 3.0));
  ck_assert(scio_scope_deadline(ns) == 3.0);
  CK_OK(scio_start_soon(&n, sleeps_forever, &rc));
  CK_OK(scio_sleep(2.0)); /* the shield hides cs's deadline at 1 s */
  ck_assert(scio_now() == 2.0);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert(scio_now() == 3.0);
  CK_OK(scio_nursery_close(&n)); /* shielded: n's scope catches */
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert(scio_scope_cancel_called(ns));
  ck_assert(scio_scope_cancelled_caught(ns));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED); /* cs, now visible */
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(nursery_scope_cancel_cancels_the_children) {
  int rc = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &rc));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(scio_nursery_scope(&n));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  scio_nursery never;
  memset(&never, 0, sizeof never);
  ck_assert_ptr_null(scio_nursery_scope(&never));
  ck_assert_ptr_null(scio_nursery_scope(NULL));
  return 0;
}

static int closes_nursery_scope(void *p) {
  (void)p;
  scio_nursery n;
  scio_nursery_open(&n);
  scio_scope_close(scio_nursery_scope(&n));
  return 0;
}

START_TEST(scope_close_on_nursery_scope_aborts) {
  scio_run(closes_nursery_scope, NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The body's result: scio_nursery_close_with                               */

static int has_suffix(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

SCIO_TEST(close_with_records_the_body_failure) {
  int sib = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &sib));
  CK_OK(scio_wait_all_tasks_blocked());
  int rc = scio__seterr(-EIO, "body gave up");
  ck_assert_int_eq(scio_nursery_close_with(&n, rc), -EIO);
  ck_assert_int_eq(sib, SCIO_ECANCELED); /* the failure cancelled it */
  ck_assert_str_eq(scio_errmsg(), "body gave up"); /* the only failure */
  ck_assert_uint_eq(scio_failures_count(), 1);
  scio_failure_info fi;
  CK_OK(scio_failure_get(0, &fi));
  ck_assert_msg(has_suffix(fi.task, " (body)"), "task: %s", fi.task);
  ck_assert_int_eq(fi.code, -EIO);
  ck_assert_str_eq(fi.message, "body gave up");
  ck_assert(scio_scope_cancel_called(scio_nursery_scope(&n)));
  return 0;
}

SCIO_TEST(close_with_body_failure_without_detail_is_listed) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_errmsg_clear();
  ck_assert_int_eq(scio_nursery_close_with(&n, -EPERM), -EPERM);
  const char *m = scio_errmsg();
  ck_assert_msg(strncmp(m, "task ", 5) == 0 && strstr(m, " (body): EPERM"),
                "errmsg: %s", m);
  ck_assert_uint_eq(scio_failures_count(), 1);
  return 0;
}

static int fails_eperm_now(void *p) {
  (void)p;
  return -EPERM;
}

SCIO_TEST(close_with_after_a_child_failure_returns_the_child_code) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, fails_eperm_now, NULL));
  int rc = scio_sleep_forever(); /* cancelled by the failure */
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_nursery_close_with(&n, rc), -EPERM);
  ck_assert_uint_eq(scio_failures_count(), 1); /* the body was cancelled */
  ck_assert_str_eq(scio_errmsg(), "task fails_eperm_now: EPERM");
  return 0;
}

static int fails_eio_now(void *p) {
  (void)p;
  return scio__seterr(-EIO, "child detail");
}

SCIO_TEST(close_with_body_and_child_failures_are_both_listed) {
  int sib = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &sib));
  CK_OK(scio_start_soon(&n, fails_eio_now, NULL));
  CK_OK(scio_cancel_shielded_checkpoint()); /* the children run */
  int rc = scio__seterr(-EPERM, "body detail");
  ck_assert_int_eq(scio_nursery_close_with(&n, rc), -EIO);
  ck_assert_uint_eq(scio_failures_count(), 2);
  scio_failure_info a, b;
  CK_OK(scio_failure_get(0, &a));
  CK_OK(scio_failure_get(1, &b));
  ck_assert_str_eq(a.task, "fails_eio_now");
  ck_assert_int_eq(a.code, -EIO);
  ck_assert_str_eq(a.message, "child detail");
  ck_assert(has_suffix(b.task, " (body)"));
  ck_assert_int_eq(b.code, -EPERM);
  ck_assert_str_eq(b.message, "body detail");
  const char *m = scio_errmsg();
  char head[128];
  snprintf(head, sizeof head, "2 tasks failed: fails_eio_now: %s: child detail; ",
           scio_err_name(-EIO));
  ck_assert_msg(strncmp(m, head, strlen(head)) == 0 &&
                    has_suffix(m, " (body): EPERM: body detail"),
                "errmsg: %s", m);
  ck_assert_int_eq(sib, SCIO_ECANCELED);
  return 0;
}

SCIO_TEST(close_with_body_cancelled_from_outside_propagates) {
  scio_scope cs;
  open_cancelled(&cs);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  int rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_nursery_close_with(&n, rc), SCIO_ECANCELED);
  ck_assert_uint_eq(scio_failures_count(), 0);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

SCIO_TEST(close_with_body_cancelled_by_its_nursery_is_caught) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_nursery_cancel(&n);
  int rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  CK_OK(scio_nursery_close_with(&n, rc));
  ck_assert(scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  return 0;
}

SCIO_TEST(close_with_bogus_body_ecanceled_is_a_failure) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  ck_assert_int_eq(scio_nursery_close_with(&n, SCIO_ECANCELED),
                   SCIO_ECANCELED);
  ck_assert_uint_eq(scio_failures_count(), 1);
  scio_failure_info fi;
  CK_OK(scio_failure_get(0, &fi));
  ck_assert(has_suffix(fi.task, " (body)"));
  ck_assert_str_eq(fi.message, bogus_msg);
  CK_OK(scio_checkpoint()); /* nothing is cancelled out here */
  return 0;
}

SCIO_TEST(close_with_success_adds_nothing) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_nursery_close_with(&n, 0));
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_nursery_close_with(&n, 3)); /* a positive result: success */
  ck_assert(!scio_scope_cancel_called(scio_nursery_scope(&n)));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Walking the error group                                                   */

typedef struct fail_spec {
  const char *name;
  int code;
  const char *detail;
} fail_spec;

static int fails_as_told(void *p) {
  const fail_spec *f = p;
  if (f->detail)
    return scio__seterr(f->code, "%s", f->detail);
  return f->code;
}

static const fail_spec three[] = {{"alpha", -EIO, "alpha detail"},
                                  {"beta", -EPERM, NULL},
                                  {"gamma", -ENOENT, "gamma detail"}};

static int fail_three(void) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 3; i++)
    CK_OK(scio_start_soon_named(&n, fails_as_told, (void *)&three[i],
                                three[i].name));
  return scio_nursery_close(&n);
}

SCIO_TEST(failures_can_be_walked) {
  ck_assert_uint_eq(scio_failures_count(), 0);
  ck_assert_int_eq(fail_three(), -EIO);
  char want[160];
  snprintf(want, sizeof want,
           "3 tasks failed: alpha: %s: alpha detail; beta: EPERM; gamma: "
           "ENOENT: gamma detail",
           scio_err_name(-EIO));
  ck_assert_str_eq(scio_errmsg(), want);
  ck_assert_uint_eq(scio_failures_count(), 3);
  scio_failure_info fi[3];
  for (int i = 0; i < 3; i++) {
    CK_OK(scio_failure_get((size_t)i, &fi[i]));
    ck_assert_str_eq(fi[i].task, three[i].name);
    ck_assert_int_eq(fi[i].code, three[i].code);
    ck_assert_str_eq(fi[i].message, three[i].detail ? three[i].detail : "");
  }
  scio_failure_info bad = {"x", 1, "y"};
  ck_assert_int_eq(scio_failure_get(3, &bad), SCIO_EINVAL);
  ck_assert_ptr_null(bad.task);
  ck_assert_ptr_null(bad.message);
  ck_assert_int_eq(bad.code, 0);
  ck_assert_int_eq(scio_failure_get(0, NULL), SCIO_EINVAL);
  /* Neither misuse replaced the detail, so the group is still there. */
  ck_assert_uint_eq(scio_failures_count(), 3);
  /* A nursery that closes cleanly changes nothing. */
  scio_nursery quiet;
  CK_OK(scio_nursery_open(&quiet));
  CK_OK(scio_nursery_close(&quiet));
  ck_assert_uint_eq(scio_failures_count(), 3);
  /* Another error replaces the detail, and the group with it; the strings
   * already handed out stay valid. */
  ck_assert_int_eq(scio_sleep(NAN), SCIO_EINVAL);
  ck_assert_uint_eq(scio_failures_count(), 0);
  ck_assert_int_eq(scio_failure_get(0, &bad), SCIO_EINVAL);
  ck_assert_str_eq(fi[0].task, "alpha");
  ck_assert_str_eq(fi[2].message, "gamma detail");
  return 0;
}

SCIO_TEST(errmsg_clear_hides_the_group_and_a_new_group_replaces_it) {
  ck_assert_int_eq(fail_three(), -EIO);
  ck_assert_uint_eq(scio_failures_count(), 3);
  scio_errmsg_clear();
  ck_assert_uint_eq(scio_failures_count(), 0);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, fails_eperm_now, NULL));
  ck_assert_int_eq(scio_nursery_close(&n), -EPERM);
  ck_assert_uint_eq(scio_failures_count(), 1);
  scio_failure_info fi;
  CK_OK(scio_failure_get(0, &fi));
  ck_assert_str_eq(fi.task, "fails_eperm_now");
  ck_assert_str_eq(fi.message, "");
  return 0;
}

/* A child walks its own nursery's group, then exits with the group never
 * freed by hand: the task's exit frees it (valgrind and ASan check). */
static int walks_and_ignores(void *p) {
  (void)p;
  ck_assert_int_eq(fail_three(), -EIO);
  ck_assert_uint_eq(scio_failures_count(), 3);
  ck_assert_int_eq(fail_three(), -EIO); /* replaces the first group */
  ck_assert_uint_eq(scio_failures_count(), 3);
  return 0;
}

SCIO_TEST(groups_are_per_task_and_freed_at_exit) {
  ck_assert_int_eq(fail_three(), -EIO);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, walks_and_ignores, NULL));
  CK_OK(scio_nursery_close(&n));
  ck_assert_uint_eq(scio_failures_count(), 3); /* ours, untouched */
  return 0;
}

START_TEST(failures_outside_a_task) {
  scio_failure_info fi;
  ck_assert_uint_eq(scio_failures_count(), 0);
  ck_assert_int_eq(scio_failure_get(0, &fi), SCIO_EINVAL);
  ck_assert_ptr_null(fi.task);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SCIO_ECANCELED with no enclosing scope cancelled                          */

/* The usual mistake: the task's own move_on scope caught, and the task
 * returned the cancellation instead of mapping it. */
static int forgets_to_map(void *p) {
  (void)p;
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, -1.0));
  int rc = scio_checkpoint();
  CK_OK(scio_scope_close(&cs));
  return rc;
}

SCIO_TEST(unmapped_scope_result_is_reported_as_a_failure) {
  int sib = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &sib));
  CK_OK(scio_start_soon(&n, forgets_to_map, NULL));
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  ck_assert_int_eq(sib, SCIO_ECANCELED); /* a failure cancels siblings */
  const char *m = scio_errmsg();
  ck_assert_msg(strcmp(m, "task forgets_to_map: ECANCELED: returned "
                          "SCIO_ECANCELED but no enclosing scope was "
                          "cancelled: map your own scope's result with "
                          "scio_scope_close_with") == 0,
                "errmsg: %s", m);
  ck_assert_uint_eq(scio_failures_count(), 1);
  scio_failure_info fi;
  CK_OK(scio_failure_get(0, &fi));
  ck_assert_str_eq(fi.task, "forgets_to_map");
  ck_assert_int_eq(fi.code, SCIO_ECANCELED);
  ck_assert_str_eq(fi.message, bogus_msg);
  /* The sibling's cancellation stopped at the nursery's scope (Trio: the
   * Cancelled in the group is caught there; the failure goes on). */
  ck_assert(scio_scope_cancelled_caught(scio_nursery_scope(&n)));
  CK_OK(scio_checkpoint()); /* the body is not cancelled afterwards */
  return 0;
}

static int returns_ecanceled(void *p) {
  (void)p;
  return SCIO_ECANCELED;
}

/* An outer cancellation hidden by the nursery's shield does not make a
 * SCIO_ECANCELED legitimate. */
SCIO_TEST(ecanceled_under_a_shielded_nursery_is_a_failure) {
  scio_scope cs;
  open_cancelled(&cs);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope_set_shield(scio_nursery_scope(&n), 1);
  CK_OK(scio_start_soon(&n, returns_ecanceled, NULL));
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  ck_assert_uint_eq(scio_failures_count(), 1);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "returns_ecanceled"));
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(ecanceled_under_a_cancelled_scope_is_not_a_failure) {
  scio_scope cs;
  open_cancelled(&cs);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, returns_ecanceled, NULL));
  scio_errmsg_clear();
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  ck_assert_uint_eq(scio_failures_count(), 0);
  /* No failure to report: the detail is the cancellation's reason. */
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "cancelled: "));
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Task names from the call site                                             */

static int records_name(void *p) {
  const char **out = p;
  *out = scio_task_name(scio_task_current());
  return 0;
}

static int starts_and_records_name(void *p) {
  const char **out = p;
  *out = scio_task_name(scio_task_current());
  return scio_started(NULL);
}

SCIO_TEST(start_macros_name_tasks_after_their_function) {
  const char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL,
             *f = NULL, *g = NULL;
  /* Names are read by the children while they exist; copy them out. */
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, records_name, &a));
  CK_OK((scio_start_soon)(&n, records_name, &b));
  int (*spawn)(scio_nursery *, scio_fn, void *) = scio_start_soon;
  CK_OK(spawn(&n, records_name, &c));
  CK_OK(scio_start_soon_named(&n, records_name, &d, "custom"));
  CK_OK(scio_start(&n, starts_and_records_name, &e, NULL));
  CK_OK((scio_start)(&n, starts_and_records_name, &f, NULL));
  CK_OK(scio_start_named(&n, starts_and_records_name, &g, NULL, "svc"));
  CK_OK(scio_nursery_close(&n));
  ck_assert_str_eq(a, "records_name");
  ck_assert_str_eq(d, "custom");
  ck_assert_str_eq(e, "starts_and_records_name");
  ck_assert_str_eq(g, "svc");
  /* Through the functions the name is the symbol's, or task@0x... for a
   * static function the dynamic linker does not know. */
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_nonnull(f);
  return 0;
}

static int job(void *p) {
  (void)p;
  return scio__seterr(-ECONNREFUSED, "connect 192.0.2.1:80: refused");
}

SCIO_TEST(failure_lists_read_with_call_site_names) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, job, NULL));
  ck_assert_int_eq(scio_nursery_close(&n), -ECONNREFUSED);
  const char *m = scio_errmsg();
  ck_assert_msg(strncmp(m, "task job: ", 10) == 0 &&
                    has_suffix(m, ": connect 192.0.2.1:80: refused"),
                "errmsg: %s", m);
  return 0;
}

SCIO_TEST(dump_shows_call_site_names) {
  int rc = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &rc));
  CK_OK(scio_wait_all_tasks_blocked());
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  scio_dump_tasks(f);
  fclose(f);
  ck_assert_msg(strstr(buf, "task sleeps_forever #") != NULL, "dump: %s", buf);
  free(buf);
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Allocation failure: groups, start and close_with leak nothing             */

static int oom_failer(void *p) {
  (void)p;
  return scio__seterr(-EIO, "oom failer detail");
}

static int oom_starter(void *p) {
  (void)p;
  CK_OK(scio_started(NULL));
  return scio_sleep(0.001);
}

static int oom_walk(void) {
  size_t count = scio_failures_count();
  for (size_t i = 0; i < count; i++) {
    scio_failure_info fi;
    CK_OK(scio_failure_get(i, &fi));
    ck_assert_int_eq(fi.code, -EIO);
  }
  return (int)count;
}

static int oom_group_body(void *arg) {
  (void)arg;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = scio_start_soon(&n, oom_failer, NULL);
  int crc = scio_nursery_close(&n);
  if (rc < 0)
    return rc;
  if (crc != -EIO)
    return crc;
  ck_assert_int_le(oom_walk(), 3);
  /* A child failing before scio_started, then one that starts. */
  CK_OK(scio_nursery_open(&n));
  rc = scio_start(&n, oom_failer, NULL, NULL);
  if (rc == -EIO)
    rc = scio_start(&n, oom_starter, NULL, NULL);
  crc = scio_nursery_close_with(&n, rc == SCIO_ENOMEM ? 0 : rc);
  if (rc < 0)
    return rc;
  if (crc < 0)
    return crc;
  /* The body's failure in the group. */
  CK_OK(scio_nursery_open(&n));
  crc = scio_nursery_close_with(&n, scio__seterr(-EIO, "oom body"));
  ck_assert_int_eq(crc, -EIO);
  ck_assert_int_le(oom_walk(), 1);
  return 0;
}

START_TEST(allocation_failure_in_groups) {
  if (!scio_oom_install(SCIO_OOM_LIBEVENT))
    return;
  scio_oom_run r = {.fn = oom_group_body};
  r.opts.backend = scio_test_backend(_i);
  r.opts.clock = SCIO_CLOCK_AUTOJUMP;
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
}
END_TEST

/* ------------------------------------------------------------------------ */

void core_nursery_tests(Suite *s) {
  TCase *tc = scio_tcase_new("nursery_start", 10);
  scio_tcase_add(tc, start_from_cancelled_caller_spawns_the_child);
  scio_tcase_add(tc, start_from_cancelled_caller_reports_the_child_error);
  scio_tcase_add(
      tc, start_from_cancelled_caller_gets_the_value_of_a_child_that_returns);
  scio_tcase_add(tc, start_from_cancelled_caller_child_cancelled_after_started);
  scio_tcase_add(tc, start_from_cancelled_caller_child_never_started);
  scio_tcase_add(tc, started_after_caller_cancelled_moves_nothing);
  scio_tcase_add(tc, started_after_caller_cancelled_then_child_error);
  scio_tcase_add(tc, started_after_caller_cancelled_then_child_returns);
  scio_tcase_add(tc, start_caller_cancelled_by_another_task);
  scio_tcase_add(tc, caller_cancelled_after_started_leaves_the_child_alone);
  scio_tcase_add(tc, started_into_a_cancelled_target_is_cancelled_there);
  scio_tcase_add(tc, started_twice_is_einval_and_keeps_the_first_value);
  scio_tcase_add(tc, start_into_closed_nursery_spawns_nothing);
  scio_tcase_add(tc, start_child_error_before_started_stays_with_the_caller);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("nursery_close", 10);
  scio_tcase_add(tc, empty_nursery_closed_in_cancelled_scope_returns_0);
  scio_tcase_add(tc, children_that_swallow_the_cancel_give_0);
  scio_tcase_add(tc, child_cancelled_before_close_propagates);
  scio_tcase_add(tc, nursery_scope_catches_its_own_cancel);
  scio_tcase_add(tc, outer_and_nursery_cancelled_outer_catches);
  scio_tcase_add(tc, nursery_scope_can_be_shielded_and_given_a_deadline);
  scio_tcase_add(tc, nursery_scope_cancel_cancels_the_children);
  tcase_add_test_raise_signal(tc, scope_close_on_nursery_scope_aborts,
                              SIGABRT);
  scio_tcase_add(tc, close_with_records_the_body_failure);
  scio_tcase_add(tc, close_with_body_failure_without_detail_is_listed);
  scio_tcase_add(tc, close_with_after_a_child_failure_returns_the_child_code);
  scio_tcase_add(tc, close_with_body_and_child_failures_are_both_listed);
  scio_tcase_add(tc, close_with_body_cancelled_from_outside_propagates);
  scio_tcase_add(tc, close_with_body_cancelled_by_its_nursery_is_caught);
  scio_tcase_add(tc, close_with_bogus_body_ecanceled_is_a_failure);
  scio_tcase_add(tc, close_with_success_adds_nothing);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("nursery_failures", 10);
  scio_tcase_add(tc, failures_can_be_walked);
  scio_tcase_add(tc, errmsg_clear_hides_the_group_and_a_new_group_replaces_it);
  scio_tcase_add(tc, groups_are_per_task_and_freed_at_exit);
  tcase_add_test(tc, failures_outside_a_task);
  scio_tcase_add(tc, unmapped_scope_result_is_reported_as_a_failure);
  scio_tcase_add(tc, ecanceled_under_a_shielded_nursery_is_a_failure);
  scio_tcase_add(tc, ecanceled_under_a_cancelled_scope_is_not_a_failure);
  scio_tcase_add(tc, start_macros_name_tasks_after_their_function);
  scio_tcase_add(tc, failure_lists_read_with_call_site_names);
  scio_tcase_add(tc, dump_shows_call_site_names);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("nursery_oom", 60);
  tcase_add_loop_test(tc, allocation_failure_in_groups, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
}
