/* Tests of the cancel-scope rules of include/scio/core.h that follow Trio:
 * who catches is decided at close, scopes made before they are entered,
 * absolute-deadline sugar, scio_scope_close_with, and the reason a
 * cancellation carries in scio_errmsg().  Every test runs on each backend. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "scio/core.h"
#include "scio/sync.h"
#include "scio/testing.h"
#include "support/oom.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)
#define CK_MSG(needle) ck_assert_msg(strstr(scio_errmsg(), (needle)) != NULL, \
                                     "errmsg \"%s\" lacks \"%s\"",            \
                                     scio_errmsg(), (needle))

/* "core_scopes.c:123": where a scope was opened, as the errmsg names it. */
static const char *site(int line) {
  static char buf[64];
  const char *f = strrchr(__FILE__, '/');
  snprintf(buf, sizeof buf, "%s:%d", f ? f + 1 : __FILE__, line);
  return buf;
}

/* Put a known, unrelated detail in the errmsg. */
static void mark_errmsg(void) {
  ck_assert_int_eq(scio_sleep(NAN), SCIO_EINVAL);
  CK_MSG("NaN");
}

/* Wait in a shield (autojump): time passes without the scopes around
 * cutting the wait short. */
static void shielded_sleep(double seconds) {
  scio_scope sh;
  CK_OK(scio_scope_open(&sh, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  CK_OK(scio_sleep(seconds));
  CK_OK(scio_scope_close(&sh));
}

/* ------------------------------------------------------------------------ */
/* Who catches: decided when scopes close                                    */

/* Trio's test_cancel_scope_nesting, first part: two scopes cancelled at
 * once, the outer one catches; a scope further out is untouched. */
SCIO_TEST(nesting_two_cancelled_the_outer_catches) {
  scio_scope s1, s2, s3;
  CK_OK(scio_scope_open(&s1, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&s2, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&s3, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&s3);
  scio_scope_cancel(&s2);
  int rc = scio_sleep_forever();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  rc = scio_scope_close_with(&s3, rc);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  rc = scio_scope_close_with(&s2, rc);
  CK_OK(rc);
  rc = scio_scope_close_with(&s1, rc);
  CK_OK(rc);
  ck_assert(scio_scope_cancel_called(&s3));
  ck_assert(!scio_scope_cancelled_caught(&s3));
  ck_assert(scio_scope_cancel_called(&s2));
  ck_assert(scio_scope_cancelled_caught(&s2));
  ck_assert(!scio_scope_cancel_called(&s1));
  ck_assert(!scio_scope_cancelled_caught(&s1));
  return 0;
}

/* The inner scope's cancellation was delivered first; the outer scope was
 * cancelled afterwards, but before the inner one closed: the outer one
 * catches, and the inner one's "caught" stays false. */
SCIO_TEST(outer_cancelled_after_delivery_still_catches) {
  scio_scope outer, inner;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&inner);
  int rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  scio_scope_cancel(&outer); /* after the delivery, before the close */
  rc = scio_scope_close_with(&inner, rc);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert(!scio_scope_cancelled_caught(&inner));
  CK_OK(scio_scope_close_with(&outer, rc));
  ck_assert(scio_scope_cancelled_caught(&outer));
  /* The same with plain scio_scope_close: the delivery is remembered. */
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&inner);
  ck_assert_int_eq(scio_checkpoint_if_cancelled(), SCIO_ECANCELED);
  scio_scope_cancel(&outer);
  CK_OK(scio_scope_close(&inner));
  ck_assert(!scio_scope_cancelled_caught(&inner));
  CK_OK(scio_scope_close(&outer));
  ck_assert(scio_scope_cancelled_caught(&outer));
  CK_OK(scio_checkpoint());
  return 0;
}

/* An outer cancel that comes after the inner scope closed is not the
 * inner scope's business: the inner one caught its own. */
SCIO_TEST(outer_cancelled_after_inner_closed) {
  scio_scope outer, inner;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&inner);
  int rc = scio_checkpoint();
  CK_OK(scio_scope_close_with(&inner, rc));
  ck_assert(scio_scope_cancelled_caught(&inner));
  scio_scope_cancel(&outer);
  /* Nothing was delivered in the outer scope since: it catches nothing. */
  CK_OK(scio_scope_close_with(&outer, 0));
  ck_assert(!scio_scope_cancelled_caught(&outer));
  return 0;
}

/* Deadlines: the inner one fires first and is delivered; the outer one
 * fires while the inner body is still running (in a shield). */
SCIO_TEST_AUTOJUMP(nested_deadlines_outer_fires_before_inner_closes) {
  double t0 = scio_now();
  scio_scope outer, inner;
  CK_OK(scio_move_on_at(&outer, t0 + 2));
  CK_OK(scio_move_on_at(&inner, t0 + 1));
  int rc = scio_sleep(10);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert(scio_now() == t0 + 1);
  shielded_sleep(2); /* the outer deadline passes meanwhile */
  ck_assert(scio_scope_cancel_called(&outer));
  rc = scio_scope_close_with(&inner, rc);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert(!scio_scope_cancelled_caught(&inner));
  CK_OK(scio_scope_close_with(&outer, rc));
  ck_assert(scio_scope_cancelled_caught(&outer));
  return 0;
}

/* fail scopes: the inner fail scope does not time out when an outer
 * cancellation is visible at its close; an outer fail scope times out
 * when it catches a cancellation its deadline caused. */
SCIO_TEST_AUTOJUMP(fail_scopes_follow_the_close_time_rule) {
  double t0 = scio_now();
  scio_scope outer, inner;
  CK_OK(scio_move_on_at(&outer, t0 + 2));
  CK_OK(scio_fail_at(&inner, t0 + 1));
  int rc = scio_sleep(10);
  shielded_sleep(2);
  rc = scio_scope_close_with(&inner, rc);
  ck_assert_int_eq(rc, SCIO_ECANCELED); /* not SCIO_ETIMEDOUT */
  CK_OK(scio_scope_close_with(&outer, rc));

  t0 = scio_now();
  CK_OK(scio_fail_at(&outer, t0 + 2));
  CK_OK(scio_move_on_at(&inner, t0 + 1));
  rc = scio_sleep(10);
  shielded_sleep(2);
  rc = scio_scope_close_with(&inner, rc);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close_with(&outer, rc), SCIO_ETIMEDOUT);
  CK_MSG("timed out");
  ck_assert(scio_scope_cancelled_caught(&outer));
  return 0;
}

/* Trio's test_cancel_scope_nesting, shielding part: a shielded scope's
 * own cancellation is caught by it even with the outer scope cancelled. */
SCIO_TEST(shielded_scope_catches_its_own_with_outer_cancelled) {
  scio_scope s1, s2;
  CK_OK(scio_scope_open(&s1, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&s2, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&s1);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  scio_scope_set_shield(&s2, 1);
  CK_OK(scio_checkpoint());
  scio_scope_cancel(&s2);
  int rc = scio_sleep_forever();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  CK_OK(scio_scope_close_with(&s2, rc));
  ck_assert(scio_scope_cancelled_caught(&s2));
  /* Nothing reached s1 since s2 caught it all. */
  CK_OK(scio_scope_close_with(&s1, 0));
  ck_assert(!scio_scope_cancelled_caught(&s1));
  return 0;
}

/* A shield between: the inner scope catches, the shield passes nothing
 * on, and the cancelled outer scope catches only what reaches it. */
SCIO_TEST(shield_between_stops_the_propagation) {
  scio_scope outer, shield, inner;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&outer);
  CK_OK(scio_scope_open(&shield, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&inner);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&inner));
  ck_assert(scio_scope_cancelled_caught(&inner));
  CK_OK(scio_checkpoint()); /* shielded */
  CK_OK(scio_scope_close(&shield));
  ck_assert(!scio_scope_cancelled_caught(&shield));
  CK_OK(scio_scope_close(&outer)); /* no checkpoint since: nothing caught */
  ck_assert(!scio_scope_cancelled_caught(&outer));

  /* Unshielding before the close lets the inner cancellation go out. */
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&outer);
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  scio_scope_cancel(&inner);
  int rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  scio_scope_set_shield(&inner, 0);
  ck_assert_int_eq(scio_scope_close_with(&inner, rc), SCIO_ECANCELED);
  ck_assert(!scio_scope_cancelled_caught(&inner));
  CK_OK(scio_scope_close_with(&outer, SCIO_ECANCELED));
  ck_assert(scio_scope_cancelled_caught(&outer));
  return 0;
}

/* Trio's test_cancel_scope_nesting, last part: a cancellation that was
 * never delivered is not caught. */
SCIO_TEST(undelivered_cancellation_is_not_caught) {
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  CK_OK(scio_cancel_shielded_checkpoint());
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_checkpoint());
  ck_assert(!scio_scope_cancelled_caught(&cs));
  return 0;
}

/* Nursery scopes: a nursery cancelled together with an enclosing scope
 * lets the enclosing one catch. */
SCIO_TEST(nursery_and_enclosing_scope_both_cancelled) {
  scio_scope outer;
  scio_nursery n;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_nursery_open(&n));
  scio_nursery_cancel(&n);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  scio_scope_cancel(&outer);
  int rc = scio_nursery_close(&n);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  CK_OK(scio_scope_close_with(&outer, rc));
  ck_assert(scio_scope_cancelled_caught(&outer));

  /* The nursery alone cancelled: its scope catches the body's delivery. */
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_nursery_open(&n));
  scio_nursery_cancel(&n);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_checkpoint());
  CK_OK(scio_scope_close(&outer));
  ck_assert(!scio_scope_cancelled_caught(&outer));
  return 0;
}

typedef struct child_scope {
  int first, closed, caught, result;
} child_scope;

/* Cancels its own scope, takes the cancellation, then waits (shielded)
 * while its nursery gets cancelled: at its close, the nursery's
 * cancellation is visible, so its scope does not catch. */
static int child_with_own_scope(void *p) {
  child_scope *c = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  c->first = scio_checkpoint();
  shielded_sleep(1);
  c->closed = scio_scope_close_with(&cs, c->first);
  c->caught = scio_scope_cancelled_caught(&cs);
  return c->closed;
}

SCIO_TEST_AUTOJUMP(child_scope_does_not_catch_its_nurserys_cancel) {
  child_scope c = {1, 1, 1, 1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, child_with_own_scope, &c));
  scio_scope body; /* keep the body out of the cancellation */
  CK_OK(scio_scope_open(&body, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(c.first, SCIO_ECANCELED);
  scio_nursery_cancel(&n);
  CK_OK(scio_scope_close(&body));
  /* The child returned SCIO_ECANCELED under a cancelled nursery: it was
   * cancelled, not failed. */
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(c.closed, SCIO_ECANCELED);
  ck_assert(!c.caught);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Scopes made before they are entered                                       */

START_TEST(scope_init_needs_no_task) {
  scio_scope cs;
  CK_OK(scio_scope_init(&cs, 5.0, SCIO_SCOPE_FAIL));
  ck_assert(scio_scope_deadline(&cs) == 5.0);
  CK_OK(scio_scope_set_deadline(&cs, 7.0));
  ck_assert(scio_scope_deadline(&cs) == 7.0);
  scio_scope_set_shield(&cs, 1);
  ck_assert(scio_scope_shield(&cs));
  scio_scope_cancel(&cs);
  ck_assert(scio_scope_cancel_called(&cs));
  /* Entering needs a task. */
  ck_assert_int_eq(scio_scope_enter(&cs), SCIO_EINVAL);
  ck_assert_int_eq(scio_scope_init(&cs, NAN, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_scope_init(&cs, 1.0, 0x40), SCIO_EINVAL);
}
END_TEST

SCIO_TEST(scope_cancelled_before_entry) {
  scio_scope cs;
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert(scio_scope_cancel_called(&cs));
  CK_OK(scio_checkpoint()); /* not entered: nothing happens */
  CK_OK(scio_scope_enter(&cs));
  int rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED); /* level-triggered */
  CK_OK(scio_scope_close_with(&cs, rc));
  ck_assert(scio_scope_cancelled_caught(&cs));
  CK_OK(scio_checkpoint());
  return 0;
}

SCIO_TEST_AUTOJUMP(scope_deadline_set_before_entry) {
  double t0 = scio_now();
  scio_scope cs;
  /* A deadline set before entry runs from the entry on. */
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_set_deadline(&cs, t0 + 3));
  ck_assert(!scio_scope_cancel_called(&cs));
  CK_OK(scio_sleep(1));
  CK_OK(scio_scope_enter(&cs));
  ck_assert(scio_current_effective_deadline() == t0 + 3);
  int rc = scio_sleep_forever();
  ck_assert(scio_now() == t0 + 3);
  CK_OK(scio_scope_close_with(&cs, rc));

  /* A deadline that passed before entry: a fail scope times out at the
   * first checkpoint inside. */
  t0 = scio_now();
  CK_OK(scio_scope_init(&cs, t0 + 1, SCIO_SCOPE_FAIL));
  CK_OK(scio_sleep(2));
  ck_assert(scio_scope_cancel_called(&cs)); /* reported before entry */
  CK_OK(scio_scope_enter(&cs));
  rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close_with(&cs, rc), SCIO_ETIMEDOUT);
  ck_assert(scio_now() == t0 + 2);

  /* A manual cancel before entry is not a timeout, whatever the deadline
   * does later. */
  CK_OK(scio_scope_init(&cs, scio_now() - 1, SCIO_SCOPE_FAIL));
  scio_scope_cancel(&cs);
  CK_OK(scio_scope_enter(&cs));
  rc = scio_checkpoint();
  CK_OK(scio_scope_close_with(&cs, rc));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

SCIO_TEST(scope_shielded_before_entry) {
  scio_scope outer, cs;
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_set_shield(&cs, 1);
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&outer);
  CK_OK(scio_scope_enter(&cs));
  CK_OK(scio_checkpoint());
  CK_OK(scio_scope_close(&cs));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&outer));
  /* A shield given by the flags at init works the same. */
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&outer);
  CK_OK(scio_scope_enter(&cs));
  CK_OK(scio_checkpoint());
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_scope_close(&outer));
  return 0;
}

typedef struct handoff {
  scio_scope *cs;
  int rc, closed;
} handoff;

static int enters_given_scope(void *p) {
  handoff *h = p;
  CK_OK(scio_scope_enter(h->cs));
  h->rc = scio_sleep_forever();
  h->closed = scio_scope_close_with(h->cs, h->rc);
  return h->closed;
}

/* Made in one task, entered in another, cancelled from the first (Trio's
 * reason for CancelScope outside `with`). */
SCIO_TEST(scope_made_in_one_task_entered_in_another) {
  scio_scope cs;
  handoff h = {&cs, 1, 1};
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, enters_given_scope, &h));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(h.rc, 1); /* blocked inside */
  scio_scope_cancel_reason(&cs, "stop now");
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(h.rc, SCIO_ECANCELED);
  CK_OK(h.closed);
  ck_assert(scio_scope_cancelled_caught(&cs));
  scio_scope_cancel(&cs); /* after close: nothing */
  return 0;
}

SCIO_TEST(scope_is_entered_once) {
  scio_scope cs;
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0));
  int line = __LINE__ + 1;
  CK_OK(scio_scope_enter(&cs));
  ck_assert_int_eq(scio_scope_enter(&cs), SCIO_EINVAL);
  CK_MSG("already entered");
  CK_MSG(site(line));
  /* Nor can an open scope be initialised again. */
  ck_assert_int_eq(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0), SCIO_EINVAL);
  CK_MSG("is open");
  CK_OK(scio_checkpoint());
  CK_OK(scio_scope_close(&cs));
  ck_assert_int_eq(scio_scope_enter(&cs), SCIO_EINVAL);
  CK_MSG("already used");
  /* Storage that was never initialised is refused too. */
  scio_scope zero;
  memset(&zero, 0, sizeof zero);
  ck_assert_int_eq(scio_scope_enter(&zero), SCIO_EINVAL);
  /* A failed init leaves the storage unusable. */
  ck_assert_int_eq(scio_scope_init(&cs, NAN, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_scope_enter(&cs), SCIO_EINVAL);
  /* scio_scope_open still works on such storage. */
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_checkpoint());
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Absolute deadlines: move_on_at / fail_at                                  */

SCIO_TEST_AUTOJUMP(move_on_at_and_fail_at) {
  double t0 = scio_now();
  scio_scope cs;
  CK_OK(scio_move_on_at(&cs, t0 + 2));
  ck_assert(scio_scope_deadline(&cs) == t0 + 2);
  int rc = scio_sleep_forever();
  ck_assert(scio_now() == t0 + 2);
  CK_OK(scio_scope_close_with(&cs, rc));

  CK_OK(scio_fail_at(&cs, t0 + 3));
  rc = scio_sleep(10);
  ck_assert_int_eq(scio_scope_close_with(&cs, rc), SCIO_ETIMEDOUT);
  ck_assert(scio_now() == t0 + 3);

  /* In the past: the first checkpoint is cancelled. */
  CK_OK(scio_fail_at(&cs, t0));
  rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close_with(&cs, rc), SCIO_ETIMEDOUT);

  /* Not reached. */
  CK_OK(scio_fail_at(&cs, scio_now() + 5));
  CK_OK(scio_sleep(1));
  CK_OK(scio_scope_close_with(&cs, 0));

  ck_assert_int_eq(scio_move_on_at(&cs, NAN), SCIO_EINVAL);
  ck_assert_int_eq(scio_fail_at(&cs, NAN), SCIO_EINVAL);
  CK_OK(scio_checkpoint()); /* nothing left open */
  return 0;
}

START_TEST(move_on_at_outside_a_task_is_einval) {
  scio_scope cs;
  ck_assert_int_eq(scio_move_on_at(&cs, 1.0), SCIO_EINVAL);
  ck_assert_int_eq(scio_fail_at(&cs, 1.0), SCIO_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* scio_scope_close_with                                                     */

SCIO_TEST_AUTOJUMP(close_with_maps_the_result) {
  scio_scope cs;
  /* Success and positive values pass through. */
  CK_OK(scio_move_on_after(&cs, 1));
  CK_OK(scio_scope_close_with(&cs, 0));
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_scope_close_with(&cs, 42), 42);
  /* A caught cancellation is 0 (move_on) or SCIO_ETIMEDOUT (fail). */
  CK_OK(scio_move_on_after(&cs, 1));
  CK_OK(scio_scope_close_with(&cs, scio_sleep_forever()));
  ck_assert(scio_scope_cancelled_caught(&cs));
  CK_OK(scio_fail_after(&cs, 1));
  ck_assert_int_eq(scio_scope_close_with(&cs, scio_sleep_forever()),
                   SCIO_ETIMEDOUT);
  /* A fail scope cancelled by hand moves on. */
  CK_OK(scio_fail_after(&cs, 1));
  scio_scope_cancel(&cs);
  CK_OK(scio_scope_close_with(&cs, scio_sleep_forever()));
  /* Another error replaces the cancellation: nothing is caught. */
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close_with(&cs, -EIO), -EIO);
  ck_assert(!scio_scope_cancelled_caught(&cs));
  /* The body swallowed the timeout and succeeded: a fail scope still
   * reports it, as scio_scope_close does. */
  CK_OK(scio_fail_after(&cs, 1));
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close_with(&cs, 0), SCIO_ETIMEDOUT);
  /* SCIO_ECANCELED with no cancelled scope (a bug in the body) is not
   * caught: it goes on. */
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_scope_close_with(&cs, SCIO_ECANCELED), SCIO_ECANCELED);
  ck_assert(!scio_scope_cancelled_caught(&cs));
  CK_OK(scio_checkpoint());
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Reasons in scio_errmsg()                                                  */

SCIO_TEST_AUTOJUMP(reason_of_a_deadline) {
  scio_scope cs;
  int line = __LINE__ + 1;
  CK_OK(scio_move_on_after(&cs, 1));
  mark_errmsg();
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  CK_MSG("cancelled: deadline of the scope opened at ");
  CK_MSG(site(line));
  CK_OK(scio_scope_close(&cs));

  /* A scope's deadline moved into the past. */
  line = __LINE__ + 1;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_set_deadline(&cs, scio_now() - 1));
  mark_errmsg();
  ck_assert_int_eq(scio_checkpoint_if_cancelled(), SCIO_ECANCELED);
  CK_MSG("deadline");
  CK_MSG(site(line));
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(reason_of_a_manual_cancel) {
  scio_scope cs;
  int line = __LINE__ + 1;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  mark_errmsg();
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("cancelled: the scope opened at ");
  CK_MSG(site(line));
  CK_MSG("was cancelled");
  CK_OK(scio_scope_close(&cs));

  line = __LINE__ + 1;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel_reason(&cs, "shutting down");
  scio_scope_cancel_reason(&cs, "second reason"); /* the first one wins */
  mark_errmsg();
  ck_assert_int_eq(scio_sleep(1), SCIO_ECANCELED);
  CK_MSG("cancelled: shutting down (scope opened at ");
  CK_MSG(site(line));
  ck_assert_ptr_null(strstr(scio_errmsg(), "second"));
  CK_OK(scio_scope_close(&cs));

  /* A long reason is cut, and says so. */
  char longr[200];
  memset(longr, 'x', sizeof longr - 1);
  longr[sizeof longr - 1] = 0;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel_reason(&cs, longr);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("xxx... (scope opened at");
  ck_assert_int_lt((int)strlen(scio_errmsg()), 150);
  CK_OK(scio_scope_close(&cs));

  /* NULL reason: a plain cancel. */
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel_reason(&cs, NULL);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("was cancelled");
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST_AUTOJUMP(first_cause_gives_the_reason) {
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_sleep(2), SCIO_ECANCELED);
  scio_scope_cancel_reason(&cs, "too late"); /* after the deadline */
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("deadline");
  ck_assert_ptr_null(strstr(scio_errmsg(), "too late"));
  CK_OK(scio_scope_close(&cs));

  CK_OK(scio_move_on_after(&cs, 1));
  scio_scope_cancel_reason(&cs, "by hand first");
  ck_assert_int_eq(scio_sleep(2), SCIO_ECANCELED);
  CK_MSG("by hand first");
  CK_OK(scio_scope_close(&cs));
  return 0;
}

/* The reason is the scope that will catch: the outermost cancelled one the
 * task can see, up to the nearest shield. */
SCIO_TEST(reason_of_the_catching_scope) {
  scio_scope outer, shield, inner;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel_reason(&inner, "inner reason");
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("inner reason");
  scio_scope_cancel_reason(&outer, "outer reason");
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("outer reason");
  CK_OK(scio_scope_close(&inner));
  CK_OK(scio_scope_open(&shield, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  scio_scope_cancel_reason(&shield, "shield reason");
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("shield reason");
  CK_OK(scio_scope_close(&shield));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("outer reason");
  CK_OK(scio_scope_close(&outer));
  return 0;
}

/* Every kind of checkpoint that returns SCIO_ECANCELED sets the reason. */
SCIO_TEST(every_checkpoint_reports_the_reason) {
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel_reason(&cs, "everywhere");
  mark_errmsg();
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_MSG("everywhere");
  mark_errmsg();
  ck_assert_int_eq(scio_checkpoint_if_cancelled(), SCIO_ECANCELED);
  CK_MSG("everywhere");
  mark_errmsg();
  ck_assert_int_eq(scio_sleep(1), SCIO_ECANCELED);
  CK_MSG("everywhere");
  mark_errmsg();
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  CK_MSG("everywhere");
  mark_errmsg();
  ck_assert_int_eq(scio_wait_all_tasks_blocked(), SCIO_ECANCELED);
  CK_MSG("everywhere");
  int fds[2];
  CK_OK(pipe(fds));
  mark_errmsg();
  ck_assert_int_eq(scio_wait_readable(fds[0]), SCIO_ECANCELED);
  CK_MSG("everywhere");
  scio_notify_closing(fds[0]);
  close(fds[0]);
  close(fds[1]);
  scio_event ev;
  CK_OK(scio_event_init(&ev));
  mark_errmsg();
  ck_assert_int_eq(scio_event_wait(&ev), SCIO_ECANCELED);
  CK_MSG("everywhere");
  scio_lock lock;
  CK_OK(scio_lock_init(&lock, 0));
  mark_errmsg();
  ck_assert_int_eq(scio_lock_acquire(&lock), SCIO_ECANCELED);
  CK_MSG("everywhere");
  CK_OK(scio_scope_close(&cs));
  return 0;
}

typedef struct blocked_waiter {
  int rc;
  char msg[256];
} blocked_waiter;

static int waits_then_records(void *p) {
  blocked_waiter *w = p;
  w->rc = scio_sleep_forever();
  snprintf(w->msg, sizeof w->msg, "%s", scio_errmsg());
  return w->rc;
}

/* A task blocked when the cancel comes is woken with the reason too. */
SCIO_TEST(blocked_task_woken_with_the_reason) {
  blocked_waiter w = {1, ""};
  scio_nursery n;
  int line = __LINE__ + 1;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, waits_then_records, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, SCIO_ECANCELED);
  ck_assert_ptr_nonnull(strstr(w.msg, "cancelled: the nursery opened at "));
  ck_assert_ptr_nonnull(strstr(w.msg, site(line)));
  return 0;
}

static int fails_as_job3(void *p) {
  (void)p;
  CK_OK(scio_checkpoint());
  ck_assert_int_eq(scio_sleep(NAN), SCIO_EINVAL); /* a detail to report */
  return -ECONNREFUSED;
}

/* The child whose failure cancelled the nursery is named in the reason
 * its siblings (and the body) see. */
SCIO_TEST(reason_names_the_failed_child) {
  blocked_waiter w = {1, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, waits_then_records, &w));
  CK_OK(scio_start_soon_named(&n, fails_as_job3, NULL, "job-3"));
  int rc = scio_sleep_forever();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  /* (The errno's name is scio_err_name's business.) */
  ck_assert_ptr_eq(strstr(scio_errmsg(), "cancelled: task job-3 failed: "),
                   scio_errmsg());
  CK_MSG(": sleep: duration is NaN");
  ck_assert_int_eq(scio_nursery_close(&n), -ECONNREFUSED);
  ck_assert_int_eq(w.rc, SCIO_ECANCELED);
  ck_assert_ptr_nonnull(strstr(w.msg, "cancelled: task job-3 failed: "));
  return 0;
}

/* A sleep that ends on its own deadline leaves the errmsg alone; one cut
 * short by an enclosing scope reports that scope. */
SCIO_TEST_AUTOJUMP(sleep_timeout_leaves_errmsg_alone) {
  mark_errmsg();
  CK_OK(scio_sleep(1));
  CK_MSG("NaN");
  scio_scope cs;
  int line = __LINE__ + 1;
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_sleep(5), SCIO_ECANCELED);
  CK_MSG(site(line));
  CK_OK(scio_scope_close(&cs));
  /* Both at once: the enclosing scope catches, the sleep passes it on. */
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_sleep(1), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

/* The nursery closing under a cancelled scope reports that scope. */
SCIO_TEST(nursery_close_reports_enclosing_reason) {
  scio_scope cs;
  scio_nursery n;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_nursery_open(&n));
  scio_scope_cancel_reason(&cs, "outer going away");
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  mark_errmsg();
  int rc = scio_nursery_close(&n);
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  CK_MSG("outer going away");
  CK_OK(scio_scope_close_with(&cs, rc));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Allocation failure                                                        */

static int fails_eio_after_detail(void *p) {
  (void)p;
  int rc = scio_checkpoint();
  if (rc < 0)
    return rc;
  ck_assert_int_eq(scio_sleep(NAN), SCIO_EINVAL); /* a detail to carry */
  return -EIO;
}

/* Reasons are formatted into the scope, so only the task's errmsg buffer
 * can fail to be had: the cancellation is delivered and caught anyway. */
static int oom_scopes_body(void *arg) {
  (void)arg;
  scio_scope cs;
  CK_OK(scio_scope_init(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel_reason(&cs, "under memory pressure");
  CK_OK(scio_scope_enter(&cs));
  int rc = scio_checkpoint();
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  CK_OK(scio_scope_close_with(&cs, rc));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  rc = scio_start_soon(&n, fails_eio_after_detail, NULL);
  int body = rc < 0 ? rc : scio_sleep_forever();
  int nrc = scio_nursery_close(&n);
  if (rc < 0)
    return rc; /* SCIO_ENOMEM: nothing was spawned */
  ck_assert_int_eq(body, SCIO_ECANCELED);
  ck_assert_int_eq(nrc, -EIO);
  return 0;
}

/* Only scio's allocator is counted (not libevent's), so this runs, and
 * fails allocations, with or without CK_FORK. */
START_TEST(cancellation_under_allocation_failure) {
  ck_assert(scio_oom_install(0));
  scio_oom_run r = {.fn = oom_scopes_body};
  r.opts.backend = scio_test_backend(_i);
  r.opts.clock = SCIO_CLOCK_AUTOJUMP;
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
}
END_TEST

void core_scopes_tests(Suite *s) {
  TCase *tc = scio_tcase_new("scopes-trio", 10);
  scio_tcase_add(tc, nesting_two_cancelled_the_outer_catches);
  scio_tcase_add(tc, outer_cancelled_after_delivery_still_catches);
  scio_tcase_add(tc, outer_cancelled_after_inner_closed);
  scio_tcase_add(tc, nested_deadlines_outer_fires_before_inner_closes);
  scio_tcase_add(tc, fail_scopes_follow_the_close_time_rule);
  scio_tcase_add(tc, shielded_scope_catches_its_own_with_outer_cancelled);
  scio_tcase_add(tc, shield_between_stops_the_propagation);
  scio_tcase_add(tc, undelivered_cancellation_is_not_caught);
  scio_tcase_add(tc, nursery_and_enclosing_scope_both_cancelled);
  scio_tcase_add(tc, child_scope_does_not_catch_its_nurserys_cancel);
  tcase_add_test(tc, scope_init_needs_no_task);
  scio_tcase_add(tc, scope_cancelled_before_entry);
  scio_tcase_add(tc, scope_deadline_set_before_entry);
  scio_tcase_add(tc, scope_shielded_before_entry);
  scio_tcase_add(tc, scope_made_in_one_task_entered_in_another);
  scio_tcase_add(tc, scope_is_entered_once);
  scio_tcase_add(tc, move_on_at_and_fail_at);
  tcase_add_test(tc, move_on_at_outside_a_task_is_einval);
  scio_tcase_add(tc, close_with_maps_the_result);
  scio_tcase_add(tc, reason_of_a_deadline);
  scio_tcase_add(tc, reason_of_a_manual_cancel);
  scio_tcase_add(tc, first_cause_gives_the_reason);
  scio_tcase_add(tc, reason_of_the_catching_scope);
  scio_tcase_add(tc, every_checkpoint_reports_the_reason);
  scio_tcase_add(tc, blocked_task_woken_with_the_reason);
  scio_tcase_add(tc, reason_names_the_failed_child);
  scio_tcase_add(tc, sleep_timeout_leaves_errmsg_alone);
  scio_tcase_add(tc, nursery_close_reports_enclosing_reason);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("scopes-oom", 60);
  tcase_add_loop_test(tc, cancellation_under_allocation_failure, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
}
