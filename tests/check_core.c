/* Tests of include/scio/core.h: run, tasks, nurseries, cancel scopes, time.
 * Every async test runs once per backend (epoll, poll, select). */
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "scio/testing.h"
#include "support/crash.h"
#include "support/oom.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

/* Internal test hooks of the stack pool (src/core/stack.h). */
void scio__stack_fail_after(long n);
void scio__stack_force_mprotect_guards(int on);

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* tests/core_scopes.c */
void core_scopes_tests(Suite *s);
/* tests/core_nursery.c */
void core_nursery_tests(Suite *s);
/* tests/core_fd.c */
void core_fd_tests(Suite *s);
/* tests/core_wakeup.c */
void core_wakeup_tests(Suite *s);

/* ------------------------------------------------------------------------ */
/* Running                                                                   */

static int returns_eio(void *arg) {
  (void)arg;
  return -EIO;
}

SCIO_TEST(run_returns_result) {
  /* Nested runs are refused. */
  ck_assert_int_eq(scio_run(returns_eio, NULL, NULL), SCIO_ENESTED);
  return 0;
}

START_TEST(run_result_and_errmsg) {
  ck_assert_int_eq(scio_run(returns_eio, NULL, NULL), -EIO);
  scio_run_opts o = {0};
  o.backend = "no-such-backend";
  ck_assert_int_eq(scio_run(returns_eio, NULL, &o), -ENOSYS);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "no-such-backend"));
  o.backend = NULL;
  o.stack_size = 100;
  ck_assert_int_eq(scio_run(returns_eio, NULL, &o), SCIO_EINVAL);
  o.stack_size = 0;
  o.clock = 7;
  ck_assert_int_eq(scio_run(returns_eio, NULL, &o), SCIO_EINVAL);
  ck_assert_int_eq(scio_run(NULL, NULL, NULL), SCIO_EINVAL);
}
END_TEST

static int sets_detail(void *arg) {
  (void)arg;
  scio_scope cs;
  /* NaN is refused with a detail that outlives the run. */
  return scio_scope_open(&cs, NAN, 0);
}

START_TEST(errmsg_survives_run) {
  ck_assert_int_eq(scio_run(sets_detail, NULL, NULL), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "NaN"));
  scio_errmsg_clear();
  ck_assert_str_eq(scio_errmsg(), "");
}
END_TEST

SCIO_TEST(backend_is_reported) {
  ck_assert_ptr_nonnull(scio_backend());
  const char *b = scio_backend();
  ck_assert(strcmp(b, "epoll") == 0 || strcmp(b, "poll") == 0 ||
            strcmp(b, "select") == 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Spawning and ordering                                                     */

typedef struct order {
  int log[16];
  int n;
} order;

typedef struct child_arg {
  order *o;
  int id;
} child_arg;

static int log_child(void *p) {
  child_arg *a = p;
  a->o->log[a->o->n++] = a->id;
  return 0;
}

SCIO_TEST(children_run_fifo_after_body_yields) {
  order o = {{0}, 0};
  child_arg a[3] = {{&o, 1}, {&o, 2}, {&o, 3}};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 3; i++)
    CK_OK(scio_start_soon(&n, log_child, &a[i]));
  ck_assert_int_eq(o.n, 0); /* nothing runs before the body yields */
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(o.n, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(o.log[i], i + 1);
  return 0;
}

static int pingpong(void *p) {
  child_arg *a = p;
  for (int i = 0; i < 3; i++) {
    a->o->log[a->o->n++] = a->id;
    CK_OK(scio_checkpoint());
  }
  return 0;
}

SCIO_TEST(checkpoint_interleaves) {
  order o = {{0}, 0};
  child_arg a = {&o, 1}, b = {&o, 2};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, pingpong, &a));
  CK_OK(scio_start_soon(&n, pingpong, &b));
  CK_OK(scio_nursery_close(&n));
  int want[6] = {1, 2, 1, 2, 1, 2};
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq(o.log[i], want[i]);
  return 0;
}

static int spawn_tree(void *p) {
  int depth = (int)(intptr_t)p;
  if (depth == 0)
    return scio_checkpoint();
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 3; i++)
    CK_OK(scio_start_soon(&n, spawn_tree, (void *)(intptr_t)(depth - 1)));
  return scio_nursery_close(&n);
}

SCIO_TEST(nested_nurseries) { return spawn_tree((void *)(intptr_t)5); }

static int wait_then_exit(void *arg) {
  (void)arg;
  int rc = scio_sleep_forever();
  return rc == SCIO_ECANCELED ? rc : -1;
}

/* Each task keeps its own floating-point rounding mode across switches
 * (the switch saves and restores the FP control words, loading them only
 * when they differ): tasks in different modes yield to each other, on the
 * inline switch of the scheduler's hot path, and the root's mode is back
 * when they are done. */
#if defined(FE_UPWARD) && defined(FE_DOWNWARD) && defined(FE_TONEAREST)
typedef struct rm_task {
  int mode;
  int bad;
} rm_task;

static int keep_rounding_mode(void *p) {
  rm_task *r = p;
  fesetround(r->mode);
  for (int i = 0; i < 100; i++) {
    CK_OK(scio_checkpoint());
    if (fegetround() != r->mode)
      r->bad++;
  }
  return 0;
}

SCIO_TEST(tasks_keep_their_rounding_mode) {
  ck_assert_int_eq(fegetround(), FE_TONEAREST);
  rm_task up = {FE_UPWARD, 0}, down = {FE_DOWNWARD, 0}, same = {FE_TONEAREST, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, keep_rounding_mode, &up));
  CK_OK(scio_start_soon(&n, keep_rounding_mode, &same));
  CK_OK(scio_start_soon(&n, keep_rounding_mode, &down));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(up.bad, 0);
  ck_assert_int_eq(down.bad, 0);
  ck_assert_int_eq(same.bad, 0);
  ck_assert_int_eq(fegetround(), FE_TONEAREST);
  return 0;
}
#endif

/* Blocking calls return to their caller on both paths of the resume
 * trampoline (src/core/resume.h): through an indirect jump after a switch,
 * through `ret` when the call went on without one.  Each task blocks at
 * several depths and call sites, with values live across the calls in
 * callee-saved registers, and the results (0 or SCIO_ECANCELED) must come
 * back intact. */
typedef struct deep_state {
  long sum;
  int cancelled;
} deep_state;

static __attribute__((noinline)) int deep_checkpoint(int depth, long k) {
  long a = k * 3 + depth, b = k ^ 0x5a5a;
  int rc = depth ? deep_checkpoint(depth - 1, k + 1) : scio_checkpoint();
  __asm__ volatile("" : "+r"(a), "+r"(b));
  if (a != k * 3 + depth || b != (k ^ 0x5a5a))
    return -1000;
  return rc;
}

static __attribute__((noinline)) int other_site(long k) {
  long keep = k * 7;
  int rc = scio_checkpoint();
  __asm__ volatile("" : "+r"(keep));
  return keep == k * 7 ? rc : -1000;
}

static int deep_worker(void *p) {
  deep_state *st = p;
  for (long i = 0; i < 200; i++) {
    int rc = (i & 1) ? deep_checkpoint((int)(i % 4), i) : other_site(i);
    if (rc == SCIO_ECANCELED) {
      st->cancelled++;
      return rc;
    }
    if (rc != 0)
      return rc;
    st->sum += i;
  }
  return 0;
}

SCIO_TEST(blocking_calls_return_to_their_callers) {
  /* Alone: nothing else runs, so every call goes on without a switch. */
  deep_state alone = {0, 0};
  CK_OK(deep_worker(&alone));
  ck_assert_int_eq(alone.sum, 199 * 200 / 2);
  /* Two tasks at different sites: every call switches. */
  deep_state a = {0, 0}, b = {0, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, deep_worker, &a));
  CK_OK(scio_start_soon(&n, deep_worker, &b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(a.sum, 199 * 200 / 2);
  ck_assert_int_eq(b.sum, 199 * 200 / 2);
  /* SCIO_ECANCELED comes back through both paths too. */
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(deep_checkpoint(3, 1), SCIO_ECANCELED);
  scio_scope_close(&cs);
  deep_state c = {0, 0};
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, deep_worker, &c));
  CK_OK(scio_checkpoint());
  scio_nursery_cancel(&n);
  ck_assert_int_eq(scio_nursery_close(&n), 0);
  ck_assert_int_eq(c.cancelled, 1);
  return 0;
}

SCIO_TEST(many_tasks) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 2000; i++)
    CK_OK(scio_start_soon(&n, spawn_tree, (void *)0));
  return scio_nursery_close(&n);
}

/* Where guard pages are mprotect'ed (kernels before 6.13 have no guard
 * markers) each stack costs memory mappings; running out of them
 * (vm.max_map_count) must be a clean SCIO_ENOMEM that names the cause.
 * Forced here: guard markers cost no mappings and would not run out. */
SCIO_TEST(guard_pages_exhausting_map_count_is_enomem) {
#ifdef HAVE_VALGRIND_VALGRIND_H
  if (RUNNING_ON_VALGRIND)
    return 0; /* valgrind has its own, smaller, mapping limits */
#endif
#ifdef __SANITIZE_THREAD__
  return 0; /* TSan's own mappings make it slow and it reports the end */
#endif
  scio__stack_force_mprotect_guards(1);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  int rc = 0;
  long count = 0;
  while ((rc = scio_start_soon(&n, wait_then_exit, NULL)) == 0)
    ck_assert_int_lt(++count, 200000);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_msg(strstr(scio_errmsg(), "max_map_count") != NULL, "errmsg: %s",
                scio_errmsg());
  ck_assert_int_gt(count, 1000);
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  /* Everything was released: spawning works again. */
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 100; i++)
    CK_OK(scio_start_soon(&n, spawn_tree, (void *)0));
  int rc2 = scio_nursery_close(&n);
  scio__stack_force_mprotect_guards(0);
  return rc2;
}

SCIO_TEST(spawn_into_closed_nursery_is_reported) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(scio_start_soon(&n, log_child, NULL), SCIO_ECLOSED);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "closed"));
  ck_assert_int_eq(scio_start(&n, log_child, NULL, NULL), SCIO_ECLOSED);
  return 0;
}

static int named_child(void *p) {
  const char **out = p;
  *out = scio_task_name(scio_task_current());
  return 0;
}

SCIO_TEST(task_names) {
  const char *a = NULL, *b = NULL;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon_named(&n, named_child, &a, "worker-a"));
  CK_OK(scio_start_soon(&n, named_child, &b));
  CK_OK(scio_nursery_close(&n));
  ck_assert_str_eq(a, "worker-a");
  ck_assert_ptr_nonnull(b);
  ck_assert_int_gt((int)strlen(b), 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Cancel scopes                                                             */

SCIO_TEST(cancellation_is_level_triggered) {
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_checkpoint());
  scio_scope_cancel(&cs);
  ck_assert(scio_scope_cancel_called(&cs));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_checkpoint_if_cancelled(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_sleep(1), SCIO_ECANCELED);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert(isinf(scio_current_effective_deadline()) &&
            scio_current_effective_deadline() < 0);
  CK_OK(scio_cancel_shielded_checkpoint());
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  CK_OK(scio_checkpoint());
  return 0;
}

SCIO_TEST(outermost_cancelled_scope_catches) {
  scio_scope outer, inner;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&inner);
  scio_scope_cancel(&outer);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&inner));
  ck_assert(!scio_scope_cancelled_caught(&inner));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&outer));
  ck_assert(scio_scope_cancelled_caught(&outer));
  return 0;
}

SCIO_TEST(inner_cancel_caught_by_inner) {
  scio_scope outer, inner;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_scope_open(&inner, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&inner);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&inner));
  ck_assert(scio_scope_cancelled_caught(&inner));
  CK_OK(scio_checkpoint());
  CK_OK(scio_scope_close(&outer));
  ck_assert(!scio_scope_cancelled_caught(&outer));
  return 0;
}

SCIO_TEST(shield_hides_outer_cancellation) {
  scio_scope outer, shield;
  CK_OK(scio_scope_open(&outer, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&outer);
  CK_OK(scio_scope_open(&shield, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  ck_assert(scio_scope_shield(&shield));
  CK_OK(scio_checkpoint());
  CK_OK(scio_sleep(0.001));
  ck_assert(isinf(scio_current_effective_deadline()));
  /* The shield's own cancellation is not hidden. */
  scio_scope_cancel(&shield);
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&shield));
  ck_assert(scio_scope_cancelled_caught(&shield));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&outer));
  return 0;
}

typedef struct shield_state {
  scio_scope *shield;
  int rc;
  int woke;
} shield_state;

static int shielded_sleeper(void *p) {
  shield_state *st = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  st->shield = &cs;
  st->rc = scio_sleep_forever();
  st->woke = 1;
  st->shield = NULL;
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(removing_shield_redelivers_cancel) {
  shield_state st = {NULL, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, shielded_sleeper, &st));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_ptr_nonnull(st.shield);
  scio_nursery_cancel(&n); /* hidden from the sleeper by its shield */
  /* The body itself is inside the nursery and sees the cancel; shield it. */
  scio_scope body;
  CK_OK(scio_scope_open(&body, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(st.woke, 0);
  scio_scope_set_shield(st.shield, 0);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(st.woke, 1);
  ck_assert_int_eq(st.rc, SCIO_ECANCELED);
  CK_OK(scio_scope_close(&body));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

SCIO_TEST_AUTOJUMP(inner_earlier_deadline_wins) {
  double t0 = scio_now();
  scio_scope outer, inner;
  CK_OK(scio_scope_open(&outer, t0 + 10, 0));
  CK_OK(scio_scope_open(&inner, t0 + 5, 0));
  ck_assert(scio_current_effective_deadline() == t0 + 5);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert(scio_now() == t0 + 5);
  CK_OK(scio_scope_close(&inner));
  ck_assert(scio_scope_cancelled_caught(&inner));
  ck_assert(!scio_scope_cancel_called(&outer));
  ck_assert(scio_current_effective_deadline() == t0 + 10);
  CK_OK(scio_scope_close(&outer));
  return 0;
}

SCIO_TEST_AUTOJUMP(outer_earlier_deadline_wins) {
  double t0 = scio_now();
  scio_scope outer, inner;
  CK_OK(scio_scope_open(&outer, t0 + 3, 0));
  CK_OK(scio_scope_open(&inner, t0 + 5, 0));
  ck_assert(scio_current_effective_deadline() == t0 + 3);
  ck_assert_int_eq(scio_sleep(100), SCIO_ECANCELED);
  ck_assert(scio_now() == t0 + 3);
  CK_OK(scio_scope_close(&inner));
  CK_OK(scio_scope_close(&outer));
  ck_assert(scio_scope_cancelled_caught(&outer));
  return 0;
}

SCIO_TEST(deadline_moved_into_past_cancels_at_once) {
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, scio_now() + 1000, 0));
  ck_assert(!scio_scope_cancel_called(&cs));
  CK_OK(scio_scope_set_deadline(&cs, scio_now() - 1));
  ck_assert(scio_scope_cancel_called(&cs));
  ck_assert_int_eq(scio_checkpoint_if_cancelled(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_int_eq(scio_scope_set_deadline(&cs, NAN), SCIO_EINVAL);
  return 0;
}

/* A task that never blocks, only yields, still sees its deadline. */
SCIO_TEST(busy_task_sees_its_deadline) {
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 0.01));
  long n = 0;
  while (scio_checkpoint() == 0)
    n++;
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_int_gt(n, 10);
  return 0;
}

SCIO_TEST_AUTOJUMP(deadline_moved_later_and_earlier) {
  double t0 = scio_now();
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, t0 + 1, 0));
  CK_OK(scio_scope_set_deadline(&cs, t0 + 7));
  ck_assert(scio_scope_deadline(&cs) == t0 + 7);
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert(scio_now() == t0 + 7);
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(scope_cancelled_before_entry_cancels_first_checkpoint) {
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, -1.0)); /* negative: already expired */
  ck_assert(scio_scope_cancel_called(&cs));
  ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  CK_OK(scio_scope_open(&cs, -INFINITY, 0));
  ck_assert_int_eq(scio_sleep(0), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(nan_is_einval) {
  scio_scope cs;
  ck_assert_int_eq(scio_scope_open(&cs, NAN, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_move_on_after(&cs, NAN), SCIO_EINVAL);
  ck_assert_int_eq(scio_fail_after(&cs, NAN), SCIO_EINVAL);
  ck_assert_int_eq(scio_sleep(NAN), SCIO_EINVAL);
  ck_assert_int_eq(scio_sleep_until(NAN), SCIO_EINVAL);
  ck_assert_int_eq(scio_scope_open(&cs, 1.0, 0x100), SCIO_EINVAL);
  CK_OK(scio_checkpoint()); /* no scope was left open */
  return 0;
}

SCIO_TEST_AUTOJUMP(fail_after_times_out) {
  double t0 = scio_now();
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 1.5));
  ck_assert_int_eq(scio_sleep(10), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), SCIO_ETIMEDOUT);
  ck_assert(scio_now() == t0 + 1.5);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "deadline"));
  return 0;
}

SCIO_TEST_AUTOJUMP(fail_after_manual_cancel_is_not_timeout) {
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 1.0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_sleep(10), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

SCIO_TEST_AUTOJUMP(fail_after_outer_cancel_is_not_timeout) {
  scio_scope outer, cs;
  CK_OK(scio_scope_open(&outer, scio_now() + 1, 0));
  CK_OK(scio_fail_after(&cs, 1.0)); /* same deadline: the outer catches */
  ck_assert_int_eq(scio_sleep(10), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_scope_close(&outer));
  ck_assert(scio_scope_cancelled_caught(&outer));
  return 0;
}

SCIO_TEST_AUTOJUMP(fail_after_not_reached) {
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 5.0));
  CK_OK(scio_sleep(1));
  CK_OK(scio_scope_close(&cs));
  ck_assert(!scio_scope_cancelled_caught(&cs));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Nursery failure semantics                                                 */

static int fails_eio(void *arg) {
  (void)arg;
  CK_OK(scio_checkpoint());
  scio_scope cs; /* put a detail in this task's errmsg */
  scio_scope_open(&cs, NAN, 0);
  return -EIO;
}

static int sleeps_forever(void *p) {
  int *rc = p;
  *rc = scio_sleep_forever();
  return *rc;
}

SCIO_TEST(failing_child_cancels_siblings_and_body) {
  int sib = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &sib));
  CK_OK(scio_start_soon_named(&n, fails_eio, NULL, "failer"));
  ck_assert_int_eq(scio_sleep_forever(), SCIO_ECANCELED);
  ck_assert_int_eq(scio_nursery_close(&n), -EIO);
  ck_assert_int_eq(sib, SCIO_ECANCELED);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "failer"));
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "NaN"));
  CK_OK(scio_checkpoint()); /* the body is no longer cancelled */
  return 0;
}

static int fails_eperm(void *arg) {
  (void)arg;
  return -EPERM;
}

static int fails_eio_now(void *arg) {
  (void)arg;
  return -EIO;
}

SCIO_TEST(error_group_keeps_every_failure) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon_named(&n, fails_eio_now, NULL, "first"));
  CK_OK(scio_start_soon_named(&n, fails_eperm, NULL, "second"));
  ck_assert_int_eq(scio_nursery_close(&n), -EIO);
  const char *m = scio_errmsg();
  ck_assert_ptr_nonnull(strstr(m, "2 tasks failed"));
  ck_assert_ptr_nonnull(strstr(m, "first: EIO") ? m : strstr(m, "first"));
  ck_assert_ptr_nonnull(strstr(m, "second: EPERM"));
  return 0;
}

SCIO_TEST(cancelled_child_is_not_a_failure) {
  int a = 1, b = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &a));
  CK_OK(scio_start_soon(&n, sleeps_forever, &b));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(a, SCIO_ECANCELED);
  ck_assert_int_eq(b, SCIO_ECANCELED);
  return 0;
}

static int returns_ecanceled_uncancelled(void *arg) {
  (void)arg;
  return SCIO_ECANCELED;
}

SCIO_TEST(bogus_ecanceled_is_a_failure) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, returns_ecanceled_uncancelled, NULL));
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "ECANCELED"));
  return 0;
}

SCIO_TEST_AUTOJUMP(outer_cancel_reaches_nursery_children) {
  int a = 1;
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 2.0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleeps_forever, &a));
  ck_assert_int_eq(scio_nursery_close(&n), SCIO_ECANCELED);
  ck_assert_int_eq(a, SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* scio_start                                                                */

static int starts_with_value(void *p) {
  int *state = p;
  CK_OK(scio_checkpoint());
  CK_OK(scio_started((void *)(intptr_t)42));
  /* Twice is an error, except in a start_soon task where it is a no-op. */
  ck_assert_int_eq(scio_started(NULL), *state == -1 ? 0 : SCIO_EINVAL);
  *state = 1;
  CK_OK(scio_sleep(0.01));
  *state = 2;
  return 0;
}

SCIO_TEST(start_returns_started_value) {
  int state = 0;
  void *v = NULL;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start(&n, starts_with_value, &state, &v));
  ck_assert_int_eq((int)(intptr_t)v, 42);
  /* started() is not a checkpoint: the child ran on to its next one. */
  ck_assert_int_eq(state, 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(state, 2);
  return 0;
}

static int fails_before_started(void *arg) {
  (void)arg;
  CK_OK(scio_checkpoint());
  return -EIO;
}

static int log_child_noop(void *arg) {
  (void)arg;
  return scio_checkpoint();
}

SCIO_TEST(start_returns_error_before_started) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  ck_assert_int_eq(scio_start(&n, fails_before_started, NULL, NULL), -EIO);
  CK_OK(scio_checkpoint()); /* the target nursery was not cancelled */
  CK_OK(scio_nursery_close(&n));
  return 0;
}

SCIO_TEST(start_child_without_started_is_error) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  ck_assert_int_eq(scio_start(&n, log_child_noop, NULL, NULL),
                   SCIO_ENOTSTARTED);
  CK_OK(scio_nursery_close(&n));
  return 0;
}

typedef struct slow_start {
  scio_nursery *target;
  int started_rc;
  int child_done;
} slow_start;

static int slow_starter_child(void *p) {
  slow_start *s = p;
  CK_OK(scio_sleep(1.0));
  CK_OK(scio_started(NULL));
  CK_OK(scio_sleep(1.0));
  s->child_done = 1;
  return 0;
}

static int slow_starter(void *p) {
  slow_start *s = p;
  s->started_rc = scio_start(s->target, slow_starter_child, s, NULL);
  return 0;
}

SCIO_TEST_AUTOJUMP(pending_start_keeps_nursery_open) {
  slow_start s = {NULL, 1, 0};
  scio_nursery outer, target;
  CK_OK(scio_nursery_open(&outer));
  CK_OK(scio_nursery_open(&target));
  s.target = &target;
  CK_OK(scio_start_soon(&outer, slow_starter, &s));
  /* target has no children yet, but a start is pending into it. */
  CK_OK(scio_checkpoint());
  CK_OK(scio_nursery_close(&target));
  ck_assert_int_eq(s.started_rc, 0);
  ck_assert_int_eq(s.child_done, 1);
  CK_OK(scio_nursery_close(&outer));
  return 0;
}

static int start_then_block(void *p) {
  (void)p;
  CK_OK(scio_sleep_forever() == SCIO_ECANCELED ? 0 : 1);
  return SCIO_ECANCELED;
}

SCIO_TEST_AUTOJUMP(start_cancelled_by_caller_scope) {
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  ck_assert_int_eq(scio_start(&n, start_then_block, NULL, NULL),
                   SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

static int started_inside_own_scope(void *p) {
  int *rc = p;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  CK_OK(scio_started(NULL));
  *rc = scio_sleep_forever(); /* now cancelled through the target nursery */
  CK_OK(scio_scope_close(&cs));
  return *rc;
}

SCIO_TEST(started_moves_open_scopes_to_target) {
  int rc = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start(&n, started_inside_own_scope, &rc, NULL));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  return 0;
}

SCIO_TEST(started_in_start_soon_task_is_noop) {
  int state = -1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, starts_with_value, &state));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(state, 2);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Time                                                                      */

SCIO_TEST_AUTOJUMP(autojump_sleep_is_instant) {
  ck_assert(scio_now() == 0.0);
  CK_OK(scio_sleep(1000));
  ck_assert(scio_now() == 1000.0);
  CK_OK(scio_sleep_until(1500));
  ck_assert(scio_now() == 1500.0);
  CK_OK(scio_sleep_until(10)); /* in the past: a checkpoint */
  ck_assert(scio_now() == 1500.0);
  CK_OK(scio_sleep(-5));
  return 0;
}

SCIO_TEST(real_sleep_takes_time) {
  double t0 = scio_now();
  CK_OK(scio_sleep(0.02));
  double dt = scio_now() - t0;
  ck_assert_msg(dt >= 0.02 && dt < 2.0, "slept %f", dt);
  return 0;
}

static int sleep_then_flag(void *p) {
  int *flag = p;
  CK_OK(scio_sleep(3.0));
  *flag = 1;
  return 0;
}

SCIO_TEST_AUTOJUMP(wait_all_tasks_blocked_before_time_jumps) {
  int flag = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sleep_then_flag, &flag));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert(scio_now() == 0.0);
  ck_assert_int_eq(flag, 0);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(flag, 1);
  ck_assert(scio_now() == 3.0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* fd waits                                                                  */

typedef struct pipe_reader {
  int fd;
  int rc;
  char got;
} pipe_reader;

static int read_pipe(void *p) {
  pipe_reader *r = p;
  r->rc = scio_wait_readable(r->fd);
  if (r->rc == 0)
    ck_assert_int_eq(read(r->fd, &r->got, 1), 1);
  return 0;
}

SCIO_TEST(wait_readable_wakes_on_data) {
  int fds[2];
  CK_OK(pipe(fds));
  pipe_reader r = {fds[0], 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, read_pipe, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(r.rc, 1);
  /* A second waiter on the same direction is refused. */
  ck_assert_int_eq(scio_wait_readable(fds[0]), SCIO_EBUSY);
  ck_assert_int_eq(write(fds[1], "x", 1), 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 0);
  ck_assert_int_eq(r.got, 'x');
  /* Data already there: returns at once (level semantics). */
  ck_assert_int_eq(write(fds[1], "yz", 2), 2);
  CK_OK(scio_wait_readable(fds[0]));
  ck_assert_int_eq(read(fds[0], &r.got, 1), 1);
  CK_OK(scio_wait_readable(fds[0])); /* one byte left */
  CK_OK(scio_wait_writable(fds[1]));
  scio_notify_closing(fds[0]);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

SCIO_TEST(wait_readable_cancel_and_close) {
  int fds[2];
  CK_OK(pipe(fds));
  pipe_reader r = {fds[0], 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, read_pipe, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_notify_closing(fds[0]);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  /* Cancellation of a wait. */
  r.rc = 1;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, read_pipe, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECANCELED);
  /* The fd is usable again after the cancelled wait. */
  ck_assert_int_eq(write(fds[1], "q", 1), 1);
  CK_OK(scio_wait_readable(fds[0]));
  scio_notify_closing(fds[0]);
  close(fds[0]);
  close(fds[1]);
  ck_assert_int_eq(scio_wait_readable(fds[0]), -EBADF);
  return 0;
}

static void *write_later(void *p) {
  int fd = *(int *)p;
  usleep(20000);
  ssize_t n = write(fd, "w", 1);
  (void)n;
  return NULL;
}

typedef struct spin {
  int *done;
} spin;

static int busy_yielder(void *p) {
  int *done = p;
  long rounds = 0;
  while (!*done) {
    CK_OK(scio_checkpoint());
    rounds++;
  }
  ck_assert_int_gt(rounds, 0);
  return 0;
}

static int reader_sets_done(void *p) {
  int *fdp = p;
  CK_OK(scio_wait_readable(fdp[0]));
  fdp[2] = 1;
  return 0;
}

SCIO_TEST(yielding_task_does_not_starve_io) {
  int fds[3];
  CK_OK(pipe(fds));
  fds[2] = 0;
  pthread_t th;
  CK_OK(pthread_create(&th, NULL, write_later, &fds[1]));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, reader_sets_done, fds));
  CK_OK(scio_start_soon(&n, busy_yielder, &fds[2]));
  CK_OK(scio_nursery_close(&n));
  pthread_join(th, NULL);
  scio_notify_closing(fds[0]);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */

SCIO_TEST(dump_tasks_shows_tree) {
  int rc = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon_named(&n, sleeps_forever, &rc, "sleepy"));
  CK_OK(scio_wait_all_tasks_blocked());
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  scio_dump_tasks(f);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(buf, "sleepy"));
  ck_assert_ptr_nonnull(strstr(buf, "nursery"));
  ck_assert_ptr_nonnull(strstr(buf, "sleep"));
  ck_assert_ptr_nonnull(strstr(buf, "check_core.c"));
  free(buf);
  scio_nursery_cancel(&n);
  CK_OK(scio_nursery_close(&n));
  return 0;
}

typedef struct counts {
  int spawned, exited, scheduled, before, after, io_before, io_after;
} counts;

static void c_spawned(void *c, scio_task *t) {
  (void)t;
  ((counts *)c)->spawned++;
}
static void c_exited(void *c, scio_task *t) {
  (void)t;
  ((counts *)c)->exited++;
}
static void c_sched(void *c, scio_task *t) {
  (void)t;
  ((counts *)c)->scheduled++;
}
static void c_before(void *c, scio_task *t) {
  (void)t;
  ((counts *)c)->before++;
}
static void c_after(void *c, scio_task *t) {
  (void)t;
  ((counts *)c)->after++;
}
static void c_iob(void *c, double t) {
  (void)t;
  ((counts *)c)->io_before++;
}
static void c_ioa(void *c, double t) {
  (void)t;
  ((counts *)c)->io_after++;
}

static int noop_child(void *p) {
  (void)p;
  return scio_sleep(0.001);
}

SCIO_TEST(instruments_see_the_scheduler) {
  counts c = {0, 0, 0, 0, 0, 0, 0};
  scio_instrument ins = {c_spawned, c_sched, c_before, c_after,
                         c_exited,  c_iob,   c_ioa,    &c};
  CK_OK(scio_instrument_add(&ins));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 3; i++)
    CK_OK(scio_start_soon(&n, noop_child, NULL));
  CK_OK(scio_nursery_close(&n));
  /* A task waiting on an fd makes the idle loop poll for I/O. */
  int fds[2];
  CK_OK(pipe(fds));
  pipe_reader r = {fds[0], 1, 0};
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, read_pipe, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_notify_closing(fds[0]);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  close(fds[0]);
  close(fds[1]);
  CK_OK(scio_instrument_remove(&ins));
  ck_assert_int_eq(scio_instrument_remove(&ins), SCIO_EINVAL);
  ck_assert_int_eq(c.spawned, 4);
  ck_assert_int_eq(c.exited, 4);
  ck_assert_int_ge(c.scheduled, 6);
  ck_assert_int_ge(c.before, 6);
  ck_assert_int_ge(c.io_before, 1);
  ck_assert_int_eq(c.io_before, c.io_after);
  return 0;
}


/* ------------------------------------------------------------------------ */
/* Cross-thread posts (internal, for the thread layer): many posts from
 * another thread all run on the loop, in order, and can wake a task. */

typedef struct post_state {
  scio__loop *loop;
  scio__task *waiter;
  int count;
  int in_order;
} post_state;

static void posted(void *arg) {
  post_state *ps = arg;
  ck_assert_ptr_eq(scio__loop_current(), ps->loop); /* on the loop's thread */
  ps->count++;
  if (ps->count == 1000 && ps->waiter)
    scio__task_wake(ps->waiter, 7);
}

static void *poster(void *arg) {
  post_state *ps = arg;
  for (int i = 0; i < 1000; i++) {
    if (scio__loop_post(ps->loop, posted, ps) != 0)
      abort();
    if (i % 100 == 0)
      usleep(100);
  }
  return NULL;
}

SCIO_TEST(posts_from_another_thread_run_on_the_loop) {
  post_state ps = {scio__loop_current(), scio__task_cur(), 0, 1};
  CK_OK(scio__loop_enable_wakeup(ps.loop));
  CK_OK(scio__loop_enable_wakeup(ps.loop)); /* idempotent */
  pthread_t th;
  CK_OK(pthread_create(&th, NULL, poster, &ps));
  ck_assert_int_eq(scio__park(NULL, NULL, "test"), 7);
  ck_assert_int_eq(ps.count, 1000);
  pthread_join(th, NULL);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Run options */

static int deep(int n) {
  volatile char pad[1024];
  pad[0] = (char)n;
  if (n == 0)
    return pad[0];
  return deep(n - 1) + pad[0];
}

static int uses_stack(void *arg) {
  int kib = (int)(intptr_t)arg;
  CK_OK(scio_checkpoint());
  volatile int r = deep(kib); /* about kib KiB of stack */
  (void)r;
  return scio_checkpoint();
}

static int stack_user_body(void *arg) {
  int kib = (int)(intptr_t)arg;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 50; i++)
    CK_OK(scio_start_soon(&n, uses_stack, (void *)(intptr_t)kib));
  return scio_nursery_close(&n);
}

START_TEST(run_options_are_honoured) {
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  o.stack_size = 64 * 1024;
  o.stack_cache = 4;
  ck_assert_int_eq(scio_run(stack_user_body, (void *)(intptr_t)40, &o), 0);
  o.flags = SCIO_RUN_NO_GUARD_PAGES;
  o.stack_size = 1024 * 1024;
  ck_assert_int_eq(scio_run(stack_user_body, (void *)(intptr_t)600, &o), 0);
  counts c = {0, 0, 0, 0, 0, 0, 0};
  scio_instrument ins = {c_spawned, c_sched, c_before, c_after,
                         c_exited,  c_iob,   c_ioa,    &c};
  o.instrument = &ins;
  ck_assert_int_eq(scio_run(stack_user_body, (void *)(intptr_t)1, &o), 0);
  ck_assert_int_eq(c.spawned, 51); /* the root task and 50 children */
  ck_assert_int_eq(c.exited, 51);
}
END_TEST

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static int overflows(void *arg) {
  (void)arg;
  return deep(1000000);
}

/* A stack overflow hits the guard page: a clean crash, not corruption. */
START_TEST(stack_overflow_hits_guard_page) {
  scio_run_opts o = {0};
  o.stack_size = 64 * 1024;
  scio_run(overflows, NULL, &o);
}
END_TEST
#endif

/* ------------------------------------------------------------------------ */
/* Misuse aborts with a message that names the misuse and where the scope or
 * nursery was opened.  Each runs in a child (tests/support/crash.h) whose
 * stderr is checked, then its signal. */

/* The lines of the opens, for the messages.  The misusing functions set
 * them first; called with DRY, they stop there, so that the parent learns
 * the lines the child will print without misusing anything itself. */
static int site_a, site_b;
static char dry_marker;
#define DRY ((void *)&dry_marker)

static int closes_out_of_order(void *arg) {
  scio_scope a, b;
  site_a = __LINE__ + 4;
  site_b = __LINE__ + 4;
  if (arg == DRY)
    return 0;
  scio_scope_open(&a, SCIO_DEADLINE_NONE, 0);
  scio_scope_open(&b, SCIO_DEADLINE_NONE, 0);
  scio_scope_close(&a);
  return 0;
}

static int returns_with_scope_open(void *arg) {
  scio_scope a;
  site_a = __LINE__ + 3;
  if (arg == DRY)
    return 0;
  scio_scope_open(&a, SCIO_DEADLINE_NONE, 0);
  return 0;
}

static int child_leaves_nursery_open(void *arg) {
  scio_nursery n;
  site_a = __LINE__ + 3;
  if (arg == DRY)
    return 0;
  scio_nursery_open(&n);
  return 0;
}

static int parent_of_bad_child(void *arg) {
  (void)arg;
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon_named(&n, child_leaves_nursery_open, NULL, "bad-child");
  return scio_nursery_close(&n);
}

static void run_misuse(void *fn) {
  scio_fn f;
  memcpy(&f, &fn, sizeof f);
  scio_run(f, NULL, NULL);
}

/* Run body in a child: it must die by SIGABRT after printing a fatal misuse
 * message that contains every string of `want` (NULL-terminated). */
static void assert_misuse(scio_fn body, const char *const *want) {
  void *fn;
  memcpy(&fn, &body, sizeof fn);
  scio_crash c;
  scio_crash_run(run_misuse, fn, &c);
  ck_assert_msg(strstr(c.err, "scio: fatal misuse: ") != NULL,
                "no misuse message; stderr: \"%s\"", c.err);
  for (; *want; want++)
    ck_assert_msg(strstr(c.err, *want) != NULL, "\"%s\" not in \"%s\"",
                  *want, c.err);
  ck_assert_msg(c.signal == SIGABRT, "died by signal %d, status %#x",
                c.signal, c.status);
}

/* "check_core.c:LINE", as the scope records __FILE__ (a VPATH build
 * prefixes a directory). */
static const char *site(char *buf, size_t len, int line) {
  snprintf(buf, len, "check_core.c:%d", line);
  return buf;
}

START_TEST(scope_closed_out_of_order_aborts) {
  closes_out_of_order(DRY);
  char a[64], b[64];
  const char *want[] = {"scope_close: the scope opened at ",
                        site(a, sizeof a, site_a),
                        "is closed while the scope opened at ",
                        site(b, sizeof b, site_b), "still open", NULL};
  assert_misuse(closes_out_of_order, want);
}
END_TEST

START_TEST(task_returning_with_scope_open_aborts) {
  returns_with_scope_open(DRY);
  char a[64];
  const char *want[] = {"returned with a cancel scope opened at ",
                        site(a, sizeof a, site_a), "still open", NULL};
  assert_misuse(returns_with_scope_open, want);
}
END_TEST

START_TEST(task_returning_with_nursery_open_aborts) {
  child_leaves_nursery_open(DRY);
  char a[64];
  const char *want[] = {"task bad-child returned with a nursery opened at ",
                        site(a, sizeof a, site_a), "still open", NULL};
  assert_misuse(parent_of_bad_child, want);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failure (tests/support/oom.h): fail allocation N (once, then
 * from N on) for N = 1, 2, ... until the run succeeds without reaching N.
 * Every failure must give SCIO_ENOMEM, leak no block and no fd, and leave
 * scio usable.  libevent's allocations go through the same counter, and
 * stack mappings fail through the stack pool's test hook. */

static int oom_child_fails(void *arg) {
  (void)arg;
  return -EIO;
}

static int oom_child(void *arg) {
  (void)arg;
  scio_scope cs;
  int rc = scio_move_on_after(&cs, 0.0005);
  if (rc < 0)
    return rc;
  rc = scio_sleep_forever();
  scio_scope_close(&cs);
  if (rc != SCIO_ECANCELED)
    return rc;
  scio_nursery n;
  scio_nursery_open(&n);
  rc = scio_start_soon_named(&n, oom_child_fails, NULL, "oom-failer");
  int crc = scio_nursery_close(&n);
  if (rc < 0)
    return rc;
  return crc == -EIO ? 0 : crc;
}

static int oom_body(void *arg) {
  (void)arg;
  scio_nursery n;
  scio_nursery_open(&n);
  int rc = 0;
  for (int i = 0; i < 4 && rc == 0; i++)
    rc = scio_start_soon(&n, oom_child, NULL);
  if (rc < 0)
    scio_nursery_cancel(&n);
  int crc = scio_nursery_close(&n);
  return rc < 0 ? rc : crc;
}

START_TEST(allocation_failure_loop) {
  if (!scio_oom_install(SCIO_OOM_LIBEVENT))
    return;
  scio_oom_run r = {.fn = oom_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  /* Stack mappings: fail the Nth new stack. */
  for (long n = 1; n <= 6; n++) {
    scio__stack_fail_after(n);
    int rc = scio_oom_run_op(&r);
    scio__stack_fail_after(0);
    scio_errmsg_clear();
    ck_assert_msg(rc == 0 || rc == SCIO_ENOMEM, "stack fail@%ld: %s", n,
                  scio_err_name(rc));
  }
  ck_assert_int_eq(scio_oom_run_op(&r), 0);
  scio_oom_uninstall();
}
END_TEST

/* ------------------------------------------------------------------------ */

void core_oom_tests(Suite *s); /* tests/core_oom.c */
void core_overflow_tests(Suite *s); /* tests/core_overflow.c */

static Suite *core_suite(void) {
  Suite *s = suite_create("core");
  TCase *tc = scio_tcase_new("run", 10);
  tcase_add_test(tc, run_result_and_errmsg);
  tcase_add_test(tc, errmsg_survives_run);
  scio_tcase_add(tc, run_returns_result);
  scio_tcase_add(tc, backend_is_reported);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("tasks", 20);
  scio_tcase_add(tc, children_run_fifo_after_body_yields);
  scio_tcase_add(tc, checkpoint_interleaves);
  scio_tcase_add(tc, nested_nurseries);
  scio_tcase_add(tc, many_tasks);
  scio_tcase_add(tc, blocking_calls_return_to_their_callers);
#if defined(FE_UPWARD) && defined(FE_DOWNWARD) && defined(FE_TONEAREST)
  scio_tcase_add(tc, tasks_keep_their_rounding_mode);
#endif
  scio_tcase_add(tc, spawn_into_closed_nursery_is_reported);
  scio_tcase_add(tc, guard_pages_exhausting_map_count_is_enomem);
  scio_tcase_add(tc, task_names);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("scopes", 10);
  scio_tcase_add(tc, cancellation_is_level_triggered);
  scio_tcase_add(tc, outermost_cancelled_scope_catches);
  scio_tcase_add(tc, inner_cancel_caught_by_inner);
  scio_tcase_add(tc, shield_hides_outer_cancellation);
  scio_tcase_add(tc, removing_shield_redelivers_cancel);
  scio_tcase_add(tc, inner_earlier_deadline_wins);
  scio_tcase_add(tc, outer_earlier_deadline_wins);
  scio_tcase_add(tc, deadline_moved_into_past_cancels_at_once);
  scio_tcase_add(tc, deadline_moved_later_and_earlier);
  scio_tcase_add(tc, busy_task_sees_its_deadline);
  scio_tcase_add(tc, scope_cancelled_before_entry_cancels_first_checkpoint);
  scio_tcase_add(tc, nan_is_einval);
  scio_tcase_add(tc, fail_after_times_out);
  scio_tcase_add(tc, fail_after_manual_cancel_is_not_timeout);
  scio_tcase_add(tc, fail_after_outer_cancel_is_not_timeout);
  scio_tcase_add(tc, fail_after_not_reached);
  suite_add_tcase(s, tc);
  core_scopes_tests(s);

  tc = scio_tcase_new("nursery", 10);
  scio_tcase_add(tc, failing_child_cancels_siblings_and_body);
  scio_tcase_add(tc, error_group_keeps_every_failure);
  scio_tcase_add(tc, cancelled_child_is_not_a_failure);
  scio_tcase_add(tc, bogus_ecanceled_is_a_failure);
  scio_tcase_add(tc, outer_cancel_reaches_nursery_children);
  scio_tcase_add(tc, start_returns_started_value);
  scio_tcase_add(tc, start_returns_error_before_started);
  scio_tcase_add(tc, start_child_without_started_is_error);
  scio_tcase_add(tc, pending_start_keeps_nursery_open);
  scio_tcase_add(tc, start_cancelled_by_caller_scope);
  scio_tcase_add(tc, started_moves_open_scopes_to_target);
  scio_tcase_add(tc, started_in_start_soon_task_is_noop);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("time", 10);
  scio_tcase_add(tc, autojump_sleep_is_instant);
  scio_tcase_add(tc, real_sleep_takes_time);
  scio_tcase_add(tc, wait_all_tasks_blocked_before_time_jumps);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("fd", 10);
  scio_tcase_add(tc, wait_readable_wakes_on_data);
  scio_tcase_add(tc, wait_readable_cancel_and_close);
  scio_tcase_add(tc, yielding_task_does_not_starve_io);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("introspection", 10);
  scio_tcase_add(tc, dump_tasks_shows_tree);
  scio_tcase_add(tc, instruments_see_the_scheduler);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("options", 20);
  scio_tcase_add(tc, posts_from_another_thread_run_on_the_loop);
  tcase_add_loop_test(tc, run_options_are_honoured, 0, SCIO_TEST_NBACKENDS);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  /* ASan turns the fault into its own report, and valgrind reports the
   * overflow as an error: only a plain run can see the bare signal. */
#ifdef HAVE_VALGRIND_VALGRIND_H
  if (!RUNNING_ON_VALGRIND)
#endif
    tcase_add_test_raise_signal(tc, stack_overflow_hits_guard_page, SIGSEGV);
#endif
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("misuse", 10);
  tcase_add_test(tc, scope_closed_out_of_order_aborts);
  tcase_add_test(tc, task_returning_with_scope_open_aborts);
  tcase_add_test(tc, task_returning_with_nursery_open_aborts);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("oom", 60);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  core_nursery_tests(s);
  core_fd_tests(s);
  core_wakeup_tests(s);
  core_oom_tests(s);
  core_overflow_tests(s);
  return s;
}

int main(void) { return scio_test_main(core_suite()); }
