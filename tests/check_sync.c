/* Tests of include/scio/sync.h: event, lock, semaphore, condition, capacity
 * limiter.  Every async test runs once per backend (epoll, poll, select).
 *
 * Most tests follow one pattern: the body holds a resource, spawns waiter
 * tasks (struct waiter) that block on it, lets them all block with
 * scio_wait_all_tasks_blocked(), then releases, cancels, notifies... and
 * checks the statistics right after each step, before any waiter runs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scio/sync.h"
#include "scio/testing.h"
#include "support/oom.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* The order in which waiters got their resource. */
typedef struct order {
  int log[32];
  int n;
} order;

static void log_id(order *o, int id) {
  ck_assert_int_lt(o->n, 32);
  o->log[o->n++] = id;
}

static void check_order(const order *o, const int *want, int n) {
  ck_assert_int_eq(o->n, n);
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(o->log[i], want[i]);
}

/* A task blocking on a primitive, inside a scope of its own that the body
 * may cancel. */
typedef struct waiter {
  int id;
  order *log;
  void *obj;            /* the primitive */
  const void *borrower; /* limiter: on whose behalf (NULL: the task) */
  scio_event *hold;     /* if set: keep the resource until this is set */
  scio_task *task;
  scio_scope scope;
  int rc;          /* what the blocking call returned */
  int next_rc;     /* what the checkpoint after it returned */
  int held_after;  /* condition: the lock was held when wait returned */
  int finished;
} waiter;

static void waiter_setup(waiter *w, int n, void *obj, order *log) {
  memset(w, 0, sizeof *w * (size_t)n);
  for (int i = 0; i < n; i++) {
    w[i].id = i + 1;
    w[i].obj = obj;
    w[i].log = log;
    w[i].rc = w[i].next_rc = 1; /* "not reached" */
  }
}

static void waiter_enter(waiter *w) {
  w->task = scio_task_current();
  CK_OK(scio_scope_open(&w->scope, SCIO_DEADLINE_NONE, 0));
}

/* Got the resource: log it, keep it while asked to, and see at the next
 * checkpoint whether the task was cancelled meanwhile. */
static void waiter_got_it(waiter *w) {
  log_id(w->log, w->id);
  if (w->hold)
    scio_event_wait(w->hold);
  w->next_rc = scio_checkpoint();
}

static void waiter_leave(waiter *w) {
  CK_OK(scio_scope_close(&w->scope));
  w->finished = 1;
}

static void spawn_all(scio_nursery *n, scio_fn fn, waiter *w, int count) {
  for (int i = 0; i < count; i++)
    CK_OK(scio_start_soon(n, fn, &w[i]));
}

/* A task that sets a flag, to observe whether a call yielded. */
static int set_flag(void *p) {
  *(int *)p = 1;
  return 0;
}

static scio_lock_stats lock_stats(scio_lock *l) {
  scio_lock_stats st;
  CK_OK(scio_lock_statistics(l, &st));
  return st;
}

static scio_semaphore_stats sem_stats(scio_semaphore *s) {
  scio_semaphore_stats st;
  CK_OK(scio_semaphore_statistics(s, &st));
  return st;
}

static scio_limiter_stats lim_stats(scio_limiter *l) {
  scio_limiter_stats st;
  CK_OK(scio_limiter_statistics(l, &st));
  return st;
}

static size_t event_waiting(scio_event *e) {
  scio_event_stats st;
  CK_OK(scio_event_statistics(e, &st));
  return st.tasks_waiting;
}

static scio_condition_stats cond_stats(scio_condition *c) {
  scio_condition_stats st;
  CK_OK(scio_condition_statistics(c, &st));
  return st;
}

static void check_errmsg(const char *needle) {
  ck_assert_msg(strstr(scio_errmsg(), needle), "errmsg \"%s\" lacks \"%s\"",
                scio_errmsg(), needle);
}

/* ------------------------------------------------------------------------ */
/* Event                                                                     */

static int event_waiter(void *p) {
  waiter *w = p;
  waiter_enter(w);
  w->rc = scio_event_wait(w->obj);
  if (w->rc == 0)
    waiter_got_it(w);
  waiter_leave(w);
  return 0;
}

SCIO_TEST(event_set_wakes_all_waiters) {
  scio_event ev;
  order o = {{0}, 0};
  waiter w[3];
  CK_OK(scio_event_init(&ev));
  ck_assert_int_eq(scio_event_is_set(&ev), 0);
  waiter_setup(w, 3, &ev, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, event_waiter, w, 3);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(event_waiting(&ev), 3);
  CK_OK(scio_event_set(&ev));
  ck_assert_int_eq(scio_event_is_set(&ev), 1);
  ck_assert_int_eq(event_waiting(&ev), 0);
  CK_OK(scio_event_set(&ev)); /* idempotent */
  CK_OK(scio_nursery_close(&n));
  int want[3] = {1, 2, 3};
  check_order(&o, want, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(w[i].rc, 0);
  return 0;
}

SCIO_TEST(event_wait_on_set_event_is_a_checkpoint) {
  scio_event ev;
  CK_OK(scio_event_init(&ev));
  CK_OK(scio_event_set(&ev));
  int flag = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, set_flag, &flag));
  CK_OK(scio_event_wait(&ev)); /* returns at once, but yields */
  ck_assert_int_eq(flag, 1);
  CK_OK(scio_nursery_close(&n));
  /* Cancellation comes first, even when the event is set. */
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_event_wait(&ev), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  return 0;
}

SCIO_TEST(event_set_then_cancel_keeps_the_wakeup) {
  scio_event ev;
  order o = {{0}, 0};
  waiter w[1];
  CK_OK(scio_event_init(&ev));
  waiter_setup(w, 1, &ev, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, event_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_event_set(&ev));
  scio_scope_cancel(&w[0].scope); /* same round: the waiter has not run */
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert_int_eq(w[0].next_rc, SCIO_ECANCELED);
  return 0;
}

SCIO_TEST(event_cancel_then_set_is_ecanceled) {
  scio_event ev;
  order o = {{0}, 0};
  waiter w[2];
  CK_OK(scio_event_init(&ev));
  waiter_setup(w, 2, &ev, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, event_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(event_waiting(&ev), 1); /* unlinked at once */
  CK_OK(scio_event_set(&ev));
  ck_assert_int_eq(event_waiting(&ev), 0);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0);
  int want[1] = {2};
  check_order(&o, want, 1);
  return 0;
}

SCIO_TEST_AUTOJUMP(event_wait_times_out) {
  scio_event ev;
  CK_OK(scio_event_init(&ev));
  double t0 = scio_now();
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 2.0));
  ck_assert_int_eq(scio_event_wait(&ev), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), SCIO_ETIMEDOUT);
  ck_assert(scio_now() - t0 >= 2.0);
  ck_assert_int_eq(event_waiting(&ev), 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Lock                                                                      */

static int lock_waiter(void *p) {
  waiter *w = p;
  waiter_enter(w);
  w->rc = scio_lock_acquire(w->obj);
  if (w->rc == 0) {
    waiter_got_it(w);
    CK_OK(scio_lock_release(w->obj));
  }
  waiter_leave(w);
  return 0;
}

SCIO_TEST(lock_basic_ownership) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  ck_assert_int_eq(scio_lock_locked(&l), 0);
  scio_lock_stats st = lock_stats(&l);
  ck_assert(!st.locked && !st.owner && st.tasks_waiting == 0);
  CK_OK(scio_lock_acquire(&l));
  st = lock_stats(&l);
  ck_assert(st.locked && st.owner == scio_task_current());
  ck_assert_int_eq(scio_lock_locked(&l), 1);
  CK_OK(scio_lock_release(&l));
  ck_assert_int_eq(scio_lock_locked(&l), 0);
  CK_OK(scio_lock_acquire_nowait(&l));
  ck_assert_int_eq(scio_lock_locked(&l), 1);
  CK_OK(scio_lock_release(&l));
  return 0;
}

SCIO_TEST(lock_misuse_is_reported_without_damage) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  ck_assert_int_eq(scio_lock_release(&l), SCIO_EPERM);
  check_errmsg("not held");
  CK_OK(scio_lock_acquire(&l));
  ck_assert_int_eq(scio_lock_acquire(&l), SCIO_EDEADLK);
  check_errmsg("already holds");
  ck_assert_int_eq(scio_lock_acquire_nowait(&l), SCIO_EDEADLK);
  check_errmsg("already holds");
  ck_assert(lock_stats(&l).owner == scio_task_current());
  /* Another task may neither release it nor take it. */
  order o = {{0}, 0};
  waiter w[1];
  waiter_setup(w, 1, &l, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(lock_stats(&l).tasks_waiting, 1);
  CK_OK(scio_lock_release(&l));
  CK_OK(scio_wait_all_tasks_blocked());
  /* w[0] finished with the lock released; we hold nothing now. */
  ck_assert_int_eq(scio_lock_release(&l), SCIO_EPERM);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert_int_eq(scio_lock_locked(&l), 0);
  return 0;
}

static int release_foreign_lock(void *p) {
  scio_lock *l = p;
  ck_assert_int_eq(scio_lock_release(l), SCIO_EPERM);
  check_errmsg("not by the calling task");
  ck_assert_int_eq(scio_lock_acquire_nowait(l), SCIO_EWOULDBLOCK);
  return 0;
}

SCIO_TEST(lock_release_by_another_task_is_eperm) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  CK_OK(scio_lock_acquire(&l));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, release_foreign_lock, &l));
  CK_OK(scio_nursery_close(&n));
  scio_lock_stats st = lock_stats(&l);
  ck_assert(st.locked && st.owner == scio_task_current());
  CK_OK(scio_lock_release(&l));
  return 0;
}

SCIO_TEST(lock_acquire_is_a_checkpoint_unless_fast) {
  for (int fast = 0; fast < 2; fast++) {
    scio_lock l;
    CK_OK(scio_lock_init(&l, fast ? SCIO_FAST_ACQUIRE : 0));
    int flag = 0;
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, set_flag, &flag));
    CK_OK(scio_lock_acquire(&l));
    ck_assert_int_eq(flag, !fast); /* only the plain lock yielded */
    CK_OK(scio_lock_release(&l));
    CK_OK(scio_nursery_close(&n));
    /* Cancellation comes first, even for a free lock, even when fast. */
    scio_scope cs;
    CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
    scio_scope_cancel(&cs);
    ck_assert_int_eq(scio_lock_acquire(&l), SCIO_ECANCELED);
    CK_OK(scio_scope_close(&cs));
    ck_assert_int_eq(scio_lock_locked(&l), 0);
  }
  return 0;
}

SCIO_TEST(lock_nowait_would_block) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  order o = {{0}, 0};
  waiter w[1];
  waiter_setup(w, 1, &l, &o);
  scio_event hold;
  CK_OK(scio_event_init(&hold));
  w[0].hold = &hold;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert(lock_stats(&l).owner == w[0].task);
  ck_assert_int_eq(scio_lock_acquire_nowait(&l), SCIO_EWOULDBLOCK);
  check_errmsg("held by task");
  CK_OK(scio_event_set(&hold));
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_lock_acquire_nowait(&l));
  CK_OK(scio_lock_release(&l));
  return 0;
}

/* A task that stands ready to barge in: it blocks on `go`, and once woken
 * tries to take the resource.  Set `go` just before a release, and it runs
 * after the release but before the waiter the release woke. */
typedef struct barger {
  scio_event go;
  void *obj;
  int nowait_rc;
  int id;
  order *log;
} barger;

static int lock_barger(void *p) {
  barger *b = p;
  CK_OK(scio_event_wait(&b->go));
  b->nowait_rc = scio_lock_acquire_nowait(b->obj);
  CK_OK(scio_lock_acquire(b->obj));
  log_id(b->log, b->id);
  return scio_lock_release(b->obj);
}

SCIO_TEST(lock_fifo_handoff_without_barging) {
  for (int fast = 0; fast < 2; fast++) {
    scio_lock l;
    CK_OK(scio_lock_init(&l, fast ? SCIO_FAST_ACQUIRE : 0));
    order o = {{0}, 0};
    waiter w[3];
    waiter_setup(w, 3, &l, &o);
    barger b = {.obj = &l, .nowait_rc = 1, .id = 4, .log = &o};
    CK_OK(scio_event_init(&b.go));
    CK_OK(scio_lock_acquire(&l));
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, lock_barger, &b));
    spawn_all(&n, lock_waiter, w, 3);
    CK_OK(scio_wait_all_tasks_blocked());
    ck_assert_int_eq(lock_stats(&l).tasks_waiting, 3);
    CK_OK(scio_event_set(&b.go));
    CK_OK(scio_lock_release(&l));
    /* Handed off: w[0] owns the lock before it runs. */
    scio_lock_stats st = lock_stats(&l);
    ck_assert(st.locked && st.owner == w[0].task);
    ck_assert_int_eq(st.tasks_waiting, 2);
    ck_assert_int_eq(scio_lock_acquire_nowait(&l), SCIO_EWOULDBLOCK);
    /* We queue behind the others (and behind the barger). */
    CK_OK(scio_lock_acquire(&l));
    log_id(&o, 5);
    ck_assert_int_eq(b.nowait_rc, SCIO_EWOULDBLOCK);
    CK_OK(scio_lock_release(&l));
    CK_OK(scio_nursery_close(&n));
    /* The body queued before the barger ran. */
    int want[5] = {1, 2, 3, 5, 4};
    check_order(&o, want, 5);
    st = lock_stats(&l);
    ck_assert(!st.locked && !st.owner && st.tasks_waiting == 0);
  }
  return 0;
}

SCIO_TEST(lock_handoff_then_cancel_is_kept) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &l, &o);
  CK_OK(scio_lock_acquire(&l));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_lock_release(&l));
  scio_scope_cancel(&w[0].scope); /* same round: w[0] has not run */
  scio_lock_stats st = lock_stats(&l);
  ck_assert(st.owner == w[0].task && st.tasks_waiting == 1);
  CK_OK(scio_wait_all_tasks_blocked());
  /* w[0] kept the lock, saw the cancel at its next checkpoint, released:
   * the lock went on to w[1]. */
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert_int_eq(w[0].next_rc, SCIO_ECANCELED);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[1].rc, 0);
  int want[2] = {1, 2};
  check_order(&o, want, 2);
  st = lock_stats(&l);
  ck_assert(!st.locked && st.tasks_waiting == 0);
  return 0;
}

SCIO_TEST(lock_cancel_then_release_goes_to_next_waiter) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  order o = {{0}, 0};
  waiter w[3];
  waiter_setup(w, 3, &l, &o);
  CK_OK(scio_lock_acquire(&l));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 3);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(lock_stats(&l).tasks_waiting, 2); /* unlinked at once */
  CK_OK(scio_lock_release(&l));
  scio_lock_stats st = lock_stats(&l);
  ck_assert(st.owner == w[1].task && st.tasks_waiting == 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0);
  ck_assert_int_eq(w[2].rc, 0);
  int want[2] = {2, 3};
  check_order(&o, want, 2);
  st = lock_stats(&l);
  ck_assert(!st.locked && st.tasks_waiting == 0);
  /* Cancelling the last waiter leaves the lock free on release. */
  CK_OK(scio_lock_acquire(&l));
  waiter_setup(w, 1, &l, &o);
  o.n = 0;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(lock_stats(&l).tasks_waiting, 0);
  CK_OK(scio_lock_release(&l));
  ck_assert_int_eq(scio_lock_locked(&l), 0);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  ck_assert_int_eq(o.n, 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(lock_acquire_times_out) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  order o = {{0}, 0};
  waiter w[1];
  waiter_setup(w, 1, &l, &o);
  scio_event hold;
  CK_OK(scio_event_init(&hold));
  w[0].hold = &hold;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 1.5));
  ck_assert_int_eq(scio_lock_acquire(&l), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), SCIO_ETIMEDOUT);
  scio_lock_stats st = lock_stats(&l);
  ck_assert(st.owner == w[0].task && st.tasks_waiting == 0);
  CK_OK(scio_event_set(&hold));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(scio_lock_locked(&l), 0);
  return 0;
}

static int dump_waiting_on_lock(void *p) {
  char buf[4096];
  FILE *f = fmemopen(buf, sizeof buf, "w");
  ck_assert_ptr_nonnull(f);
  scio_dump_tasks(f);
  fclose(f);
  buf[sizeof buf - 1] = 0;
  *(int *)p = strstr(buf, "lock_acquire") != NULL;
  return 0;
}

SCIO_TEST(lock_waiters_show_in_task_dumps) {
  scio_lock l;
  CK_OK(scio_lock_init(&l, 0));
  order o = {{0}, 0};
  waiter w[1];
  waiter_setup(w, 1, &l, &o);
  CK_OK(scio_lock_acquire(&l));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lock_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  int seen = 0;
  dump_waiting_on_lock(&seen);
  ck_assert(seen);
  CK_OK(scio_lock_release(&l));
  CK_OK(scio_nursery_close(&n));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Semaphore                                                                 */

static int sem_waiter(void *p) {
  waiter *w = p;
  waiter_enter(w);
  w->rc = scio_semaphore_acquire(w->obj);
  if (w->rc == 0) {
    waiter_got_it(w);
    CK_OK(scio_semaphore_release(w->obj));
  }
  waiter_leave(w);
  return 0;
}

SCIO_TEST(semaphore_counts_and_bounds) {
  scio_semaphore s;
  ck_assert_int_eq(scio_semaphore_init(&s, 3, 2, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_init(&s, 0, 0, 0x10), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_init(&s, 0, SIZE_MAX, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_init(&s, SIZE_MAX, 0, 0), SCIO_EINVAL);
  CK_OK(scio_semaphore_init(&s, 2, 3, 0));
  ck_assert_int_eq(scio_semaphore_value(&s), 2);
  CK_OK(scio_semaphore_acquire(&s));
  CK_OK(scio_semaphore_acquire_nowait(&s));
  ck_assert_int_eq(scio_semaphore_value(&s), 0);
  ck_assert_int_eq(scio_semaphore_acquire_nowait(&s), SCIO_EWOULDBLOCK);
  check_errmsg("no unit");
  for (int i = 0; i < 3; i++)
    CK_OK(scio_semaphore_release(&s));
  ck_assert_int_eq(scio_semaphore_release(&s), -EOVERFLOW);
  check_errmsg("released more often");
  scio_semaphore_stats st = sem_stats(&s);
  ck_assert(st.value == 3 && st.max_value == 3 && st.tasks_waiting == 0);
  /* Unbounded: max_value 0. */
  CK_OK(scio_semaphore_init(&s, 0, 0, 0));
  for (int i = 0; i < 1000; i++)
    CK_OK(scio_semaphore_release(&s));
  ck_assert_int_eq(scio_semaphore_value(&s), 1000);
  ck_assert_int_eq(sem_stats(&s).max_value, 0);
  return 0;
}

SCIO_TEST(semaphore_acquire_is_a_checkpoint_unless_fast) {
  for (int fast = 0; fast < 2; fast++) {
    scio_semaphore s;
    CK_OK(scio_semaphore_init(&s, 1, 1, fast ? SCIO_FAST_ACQUIRE : 0));
    int flag = 0;
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, set_flag, &flag));
    CK_OK(scio_semaphore_acquire(&s));
    ck_assert_int_eq(flag, !fast);
    CK_OK(scio_semaphore_release(&s));
    CK_OK(scio_nursery_close(&n));
    scio_scope cs;
    CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
    scio_scope_cancel(&cs);
    ck_assert_int_eq(scio_semaphore_acquire(&s), SCIO_ECANCELED);
    CK_OK(scio_scope_close(&cs));
    ck_assert_int_eq(scio_semaphore_value(&s), 1);
  }
  return 0;
}

static int sem_barger(void *p) {
  barger *b = p;
  CK_OK(scio_event_wait(&b->go));
  b->nowait_rc = scio_semaphore_acquire_nowait(b->obj);
  CK_OK(scio_semaphore_acquire(b->obj));
  log_id(b->log, b->id);
  return scio_semaphore_release(b->obj);
}

SCIO_TEST(semaphore_fifo_handoff_without_barging) {
  scio_semaphore s;
  CK_OK(scio_semaphore_init(&s, 1, 1, 0));
  order o = {{0}, 0};
  waiter w[3];
  waiter_setup(w, 3, &s, &o);
  barger b = {.obj = &s, .nowait_rc = 1, .id = 4, .log = &o};
  CK_OK(scio_event_init(&b.go));
  CK_OK(scio_semaphore_acquire(&s));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, sem_barger, &b));
  spawn_all(&n, sem_waiter, w, 3);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(sem_stats(&s).tasks_waiting, 3);
  CK_OK(scio_event_set(&b.go));
  CK_OK(scio_semaphore_release(&s));
  /* Handed to w[0]: the value stays 0. */
  scio_semaphore_stats st = sem_stats(&s);
  ck_assert(st.value == 0 && st.tasks_waiting == 2);
  ck_assert_int_eq(scio_semaphore_acquire_nowait(&s), SCIO_EWOULDBLOCK);
  CK_OK(scio_semaphore_acquire(&s));
  log_id(&o, 5);
  ck_assert_int_eq(b.nowait_rc, SCIO_EWOULDBLOCK);
  CK_OK(scio_semaphore_release(&s));
  CK_OK(scio_nursery_close(&n));
  int want[5] = {1, 2, 3, 5, 4};
  check_order(&o, want, 5);
  st = sem_stats(&s);
  ck_assert(st.value == 1 && st.tasks_waiting == 0);
  return 0;
}

SCIO_TEST(semaphore_handoff_then_cancel_is_kept) {
  scio_semaphore s;
  CK_OK(scio_semaphore_init(&s, 0, 0, 0));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &s, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, sem_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_semaphore_release(&s));
  scio_scope_cancel(&w[0].scope);
  scio_semaphore_stats st = sem_stats(&s);
  ck_assert(st.value == 0 && st.tasks_waiting == 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert_int_eq(w[0].next_rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0); /* got w[0]'s unit when w[0] released it */
  int want[2] = {1, 2};
  check_order(&o, want, 2);
  st = sem_stats(&s);
  ck_assert(st.value == 1 && st.tasks_waiting == 0);
  return 0;
}

SCIO_TEST(semaphore_cancel_then_release_loses_nothing) {
  scio_semaphore s;
  CK_OK(scio_semaphore_init(&s, 0, 1, 0));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &s, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, sem_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(sem_stats(&s).tasks_waiting, 1);
  CK_OK(scio_semaphore_release(&s));
  scio_semaphore_stats st = sem_stats(&s);
  ck_assert(st.value == 0 && st.tasks_waiting == 0);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0);
  ck_assert_int_eq(scio_semaphore_value(&s), 1);
  /* With no other waiter, the unit goes back to the counter. */
  CK_OK(scio_semaphore_acquire(&s));
  waiter_setup(w, 1, &s, &o);
  o.n = 0;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, sem_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(sem_stats(&s).tasks_waiting, 0);
  CK_OK(scio_semaphore_release(&s));
  ck_assert_int_eq(scio_semaphore_value(&s), 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Condition                                                                 */

static int holds_lock(scio_condition *c) {
  scio_lock_stats st;
  CK_OK(scio_lock_statistics(scio_condition_lock(c), &st));
  return st.owner == scio_task_current();
}

static int cond_waiter(void *p) {
  waiter *w = p;
  waiter_enter(w);
  CK_OK(scio_condition_acquire(w->obj));
  w->rc = scio_condition_wait(w->obj);
  w->held_after = holds_lock(w->obj);
  if (w->rc == 0)
    log_id(w->log, w->id);
  w->next_rc = scio_checkpoint();
  CK_OK(scio_condition_release(w->obj));
  waiter_leave(w);
  return 0;
}

SCIO_TEST(condition_wait_and_notify) {
  scio_condition c;
  CK_OK(scio_condition_init(&c, NULL));
  order o = {{0}, 0};
  waiter w[4];
  waiter_setup(w, 4, &c, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, cond_waiter, w, 4);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_condition_stats st = cond_stats(&c);
  ck_assert(st.tasks_waiting == 4 && !st.lock.locked); /* wait released it */
  CK_OK(scio_condition_acquire(&c));
  ck_assert_int_eq(scio_condition_notify(&c, 2), 2);
  st = cond_stats(&c);
  ck_assert(st.tasks_waiting == 2 && st.lock.owner == scio_task_current());
  CK_OK(scio_wait_all_tasks_blocked());
  /* The notified tasks now wait for the lock we hold. */
  st = cond_stats(&c);
  ck_assert(st.tasks_waiting == 2 && st.lock.tasks_waiting == 2);
  ck_assert(w[0].rc == 1 && w[1].rc == 1);
  CK_OK(scio_condition_release(&c));
  CK_OK(scio_wait_all_tasks_blocked());
  int want12[2] = {1, 2};
  check_order(&o, want12, 2);
  CK_OK(scio_condition_acquire(&c));
  ck_assert_int_eq(scio_condition_notify_all(&c), 2);
  ck_assert_int_eq(scio_condition_notify_all(&c), 0);
  CK_OK(scio_condition_release(&c));
  CK_OK(scio_nursery_close(&n));
  int want[4] = {1, 2, 3, 4};
  check_order(&o, want, 4);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(w[i].rc, 0);
    ck_assert(w[i].held_after);
  }
  st = cond_stats(&c);
  ck_assert(st.tasks_waiting == 0 && !st.lock.locked);
  return 0;
}

SCIO_TEST(condition_needs_the_lock) {
  scio_condition c;
  CK_OK(scio_condition_init(&c, NULL));
  ck_assert_int_eq(scio_condition_wait(&c), SCIO_EPERM);
  check_errmsg("condition_wait");
  ck_assert_int_eq(scio_condition_notify(&c, 1), SCIO_EPERM);
  ck_assert_int_eq(scio_condition_notify_all(&c), SCIO_EPERM);
  ck_assert_int_eq(scio_condition_release(&c), SCIO_EPERM);
  CK_OK(scio_condition_acquire(&c));
  ck_assert_int_eq(scio_condition_acquire(&c), SCIO_EDEADLK);
  ck_assert_int_eq(scio_condition_notify(&c, 1), 0);
  CK_OK(scio_condition_release(&c));
  return 0;
}

SCIO_TEST(condition_over_a_given_lock) {
  scio_lock l;
  scio_condition c;
  memset(&l, 0, sizeof l); /* never initialised */
  ck_assert_int_eq(scio_condition_init(&c, &l), SCIO_EINVAL);
  check_errmsg("not initialised");
  CK_OK(scio_lock_init(&l, SCIO_FAST_ACQUIRE));
  CK_OK(scio_condition_init(&c, &l));
  ck_assert_ptr_eq(scio_condition_lock(&c), &l);
  CK_OK(scio_condition_acquire(&c));
  ck_assert_int_eq(scio_lock_locked(&l), 1);
  CK_OK(scio_lock_release(&l));
  CK_OK(scio_lock_acquire(&l));
  order o = {{0}, 0};
  waiter w[1];
  waiter_setup(w, 1, &c, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, cond_waiter, w, 1);
  CK_OK(scio_lock_release(&l));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_lock_acquire(&l));
  ck_assert_int_eq(scio_condition_notify(&c, 1), 1);
  CK_OK(scio_lock_release(&l));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert(w[0].held_after);
  return 0;
}

SCIO_TEST(condition_cancelled_wait_reacquires_the_lock) {
  scio_condition c;
  CK_OK(scio_condition_init(&c, NULL));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &c, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, cond_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_condition_acquire(&c));
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(cond_stats(&c).tasks_waiting, 1); /* unlinked at once */
  CK_OK(scio_wait_all_tasks_blocked());
  /* Cancelled, but it does not return without the lock, which we hold:
   * it waits for it, shielded. */
  ck_assert_int_eq(w[0].rc, 1);
  scio_condition_stats st = cond_stats(&c);
  ck_assert(st.lock.tasks_waiting == 1 && st.tasks_waiting == 1);
  ck_assert_int_eq(scio_condition_notify(&c, 1), 1); /* reaches w[1] only */
  CK_OK(scio_condition_release(&c));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  ck_assert(w[0].held_after);
  ck_assert_int_eq(w[0].next_rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0);
  ck_assert(w[1].held_after);
  st = cond_stats(&c);
  ck_assert(st.tasks_waiting == 0 && !st.lock.locked);
  return 0;
}

SCIO_TEST(condition_notify_then_cancel_is_kept) {
  scio_condition c;
  CK_OK(scio_condition_init(&c, NULL));
  order o = {{0}, 0};
  waiter w[1];
  waiter_setup(w, 1, &c, &o);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, cond_waiter, w, 1);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_condition_acquire(&c));
  ck_assert_int_eq(scio_condition_notify(&c, 1), 1);
  scio_scope_cancel(&w[0].scope); /* same round */
  ck_assert_int_eq(cond_stats(&c).tasks_waiting, 0);
  CK_OK(scio_condition_release(&c));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert(w[0].held_after);
  ck_assert_int_eq(w[0].next_rc, SCIO_ECANCELED);
  return 0;
}

SCIO_TEST(condition_wait_cancelled_on_entry_keeps_the_lock) {
  scio_condition c;
  CK_OK(scio_condition_init(&c, NULL));
  CK_OK(scio_condition_acquire(&c));
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_condition_wait(&c), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert(holds_lock(&c));
  ck_assert_int_eq(cond_stats(&c).tasks_waiting, 0);
  CK_OK(scio_condition_release(&c));
  return 0;
}

SCIO_TEST_AUTOJUMP(condition_wait_times_out_holding_the_lock) {
  scio_condition c;
  CK_OK(scio_condition_init(&c, NULL));
  CK_OK(scio_condition_acquire(&c));
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 3.0));
  ck_assert_int_eq(scio_condition_wait(&c), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), SCIO_ETIMEDOUT);
  ck_assert(holds_lock(&c));
  CK_OK(scio_condition_release(&c));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Capacity limiter                                                          */

static int lim_waiter(void *p) {
  waiter *w = p;
  waiter_enter(w);
  if (w->borrower)
    w->rc = scio_limiter_acquire_on_behalf_of(w->obj, w->borrower);
  else
    w->rc = scio_limiter_acquire(w->obj);
  if (w->rc == 0) {
    waiter_got_it(w);
    if (w->borrower)
      CK_OK(scio_limiter_release_on_behalf_of(w->obj, w->borrower));
    else
      CK_OK(scio_limiter_release(w->obj));
  }
  waiter_leave(w);
  return 0;
}

SCIO_TEST(limiter_tokens_and_borrowers) {
  scio_limiter lim;
  int x, y;
  ck_assert_int_eq(scio_limiter_init(&lim, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_init(&lim, SIZE_MAX), SCIO_EINVAL);
  CK_OK(scio_limiter_init(&lim, 2));
  CK_OK(scio_limiter_acquire(&lim));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 1);
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), 1);
  ck_assert_int_eq(scio_limiter_acquire(&lim), SCIO_EDEADLK);
  check_errmsg("already holds");
  ck_assert_int_eq(scio_limiter_acquire_nowait(&lim), SCIO_EDEADLK);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of(&lim, NULL),
                   SCIO_EINVAL);
  CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &x));
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), 0);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of_nowait(&lim, &x),
                   SCIO_EDEADLK);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of_nowait(&lim, &y),
                   SCIO_EWOULDBLOCK);
  check_errmsg("tokens are borrowed");
  ck_assert_int_eq(scio_limiter_release_on_behalf_of(&lim, &y), SCIO_EPERM);
  check_errmsg("holds none");
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 2 && st.total_tokens == 2 &&
            st.tasks_waiting == 0);
  ck_assert_int_eq(scio_limiter_destroy(&lim), SCIO_EBUSY);
  CK_OK(scio_limiter_release(&lim));
  ck_assert_int_eq(scio_limiter_release(&lim), SCIO_EPERM);
  CK_OK(scio_limiter_release_on_behalf_of(&lim, &x));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), 2);
  CK_OK(scio_limiter_destroy(&lim));
  ck_assert_int_eq(scio_limiter_acquire(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), SCIO_EINVAL);
  return 0;
}

SCIO_TEST(limiter_acquire_is_a_checkpoint) {
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 1));
  int flag = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, set_flag, &flag));
  CK_OK(scio_limiter_acquire(&lim));
  ck_assert_int_eq(flag, 1);
  CK_OK(scio_limiter_release(&lim));
  CK_OK(scio_nursery_close(&n));
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_limiter_acquire(&lim), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

static int lim_barger(void *p) {
  barger *b = p;
  CK_OK(scio_event_wait(&b->go));
  b->nowait_rc = scio_limiter_acquire_nowait(b->obj);
  CK_OK(scio_limiter_acquire(b->obj));
  log_id(b->log, b->id);
  return scio_limiter_release(b->obj);
}

SCIO_TEST(limiter_fifo_handoff_without_barging) {
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 1));
  order o = {{0}, 0};
  waiter w[3];
  int b1;
  waiter_setup(w, 3, &lim, &o);
  w[1].borrower = &b1; /* one waits on behalf of an object */
  barger b = {.obj = &lim, .nowait_rc = 1, .id = 4, .log = &o};
  CK_OK(scio_event_init(&b.go));
  CK_OK(scio_limiter_acquire(&lim));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, lim_barger, &b));
  spawn_all(&n, lim_waiter, w, 3);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(lim_stats(&lim).tasks_waiting, 3);
  CK_OK(scio_event_set(&b.go));
  CK_OK(scio_limiter_release(&lim));
  /* Handed off: w[0]'s task holds the token before it runs. */
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 1 && st.tasks_waiting == 2);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of_nowait(&lim, w[0].task),
                   SCIO_EDEADLK);
  ck_assert_int_eq(scio_limiter_acquire_nowait(&lim), SCIO_EWOULDBLOCK);
  CK_OK(scio_limiter_acquire(&lim));
  log_id(&o, 5);
  ck_assert_int_eq(b.nowait_rc, SCIO_EWOULDBLOCK);
  CK_OK(scio_limiter_release(&lim));
  CK_OK(scio_nursery_close(&n));
  int want[5] = {1, 2, 3, 5, 4};
  check_order(&o, want, 5);
  st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 0 && st.tasks_waiting == 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST(limiter_handoff_then_cancel_is_kept) {
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 1));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &lim, &o);
  CK_OK(scio_limiter_acquire(&lim));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lim_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_limiter_release(&lim));
  scio_scope_cancel(&w[0].scope);
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 1 && st.tasks_waiting == 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert_int_eq(w[0].next_rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0);
  int want[2] = {1, 2};
  check_order(&o, want, 2);
  st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 0 && st.tasks_waiting == 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST(limiter_cancel_then_release_goes_to_next_waiter) {
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 1));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &lim, &o);
  CK_OK(scio_limiter_acquire(&lim));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lim_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(&w[0].scope);
  ck_assert_int_eq(lim_stats(&lim).tasks_waiting, 1);
  CK_OK(scio_limiter_release(&lim));
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 1 && st.tasks_waiting == 0);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of_nowait(&lim, w[1].task),
                   SCIO_EDEADLK);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[1].rc, 0);
  int want[1] = {2};
  check_order(&o, want, 1);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST(limiter_total_tokens_changes) {
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 1));
  order o = {{0}, 0};
  waiter w[3];
  scio_event hold;
  CK_OK(scio_event_init(&hold));
  waiter_setup(w, 3, &lim, &o);
  for (int i = 0; i < 3; i++)
    w[i].hold = &hold;
  CK_OK(scio_limiter_acquire(&lim));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lim_waiter, w, 3);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_limiter_set_total_tokens(&lim, 0), SCIO_EINVAL);
  /* Raising the total hands the new tokens out at once. */
  CK_OK(scio_limiter_set_total_tokens(&lim, 3));
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 3 && st.total_tokens == 3 &&
            st.tasks_waiting == 1);
  /* Lowering it below what is borrowed waits for releases. */
  CK_OK(scio_limiter_set_total_tokens(&lim, 1));
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), 0);
  CK_OK(scio_limiter_release(&lim));
  st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 2 && st.tasks_waiting == 1);
  CK_OK(scio_event_set(&hold));
  CK_OK(scio_nursery_close(&n));
  int want[3] = {1, 2, 3};
  check_order(&o, want, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(w[i].rc, 0);
  st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 0 && st.tasks_waiting == 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST(limiter_one_token_per_borrower_while_waiting) {
  scio_limiter lim;
  int p, q, shared;
  CK_OK(scio_limiter_init(&lim, 2));
  CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &p));
  CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &q));
  order o = {{0}, 0};
  waiter w[2];
  waiter_setup(w, 2, &lim, &o);
  w[0].borrower = w[1].borrower = &shared;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  spawn_all(&n, lim_waiter, w, 2);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(lim_stats(&lim).tasks_waiting, 2);
  /* Two tokens free up: the first waiter gets one for `shared`; the second
   * one waits on behalf of the same borrower and is refused. */
  CK_OK(scio_limiter_release_on_behalf_of(&lim, &p));
  CK_OK(scio_limiter_release_on_behalf_of(&lim, &q));
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 1 && st.tasks_waiting == 0);
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[0].rc, 0);
  ck_assert_int_eq(w[1].rc, SCIO_EDEADLK);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST(limiter_many_borrowers) {
  /* Enough borrowers to grow the set several times, released in an order
   * unrelated to their hashes, to exercise removal from probe runs. */
  enum { N = 1000 };
  static char b[N], released[N];
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, N));
  for (int i = 0; i < N; i++)
    CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &b[i]));
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), 0);
  memset(released, 0, sizeof released);
  for (int i = 0; i < N; i += 3) {
    int k = (i * 7) % N; /* 7 is prime to N: a permutation */
    CK_OK(scio_limiter_release_on_behalf_of(&lim, &b[k]));
    released[k] = 1;
  }
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(scio_limiter_acquire_on_behalf_of_nowait(&lim, &b[i]),
                     released[i] ? 0 : SCIO_EDEADLK);
  for (int i = N - 1; i >= 0; i--)
    CK_OK(scio_limiter_release_on_behalf_of(&lim, &b[i]));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(scio_limiter_release_on_behalf_of(&lim, &b[i]),
                     SCIO_EPERM);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST_AUTOJUMP(limiter_acquire_times_out) {
  scio_limiter lim;
  int other;
  CK_OK(scio_limiter_init(&lim, 1));
  CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &other));
  scio_scope cs;
  CK_OK(scio_fail_after(&cs, 1.0));
  ck_assert_int_eq(scio_limiter_acquire(&lim), SCIO_ECANCELED);
  ck_assert_int_eq(scio_scope_close(&cs), SCIO_ETIMEDOUT);
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 1 && st.tasks_waiting == 0);
  CK_OK(scio_limiter_release_on_behalf_of(&lim, &other));
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Everything at once, with random timeouts                                  */

/* Tasks pick a primitive at random and use it inside a scope with a random
 * short deadline, so waits are cancelled at every possible stage.  Under
 * the autojump clock this is deterministic.  Checked throughout: mutual
 * exclusion and the bounds hold; checked at the end: nothing leaked. */
typedef struct stress {
  scio_lock lock;
  scio_semaphore sem;
  scio_limiter lim;
  scio_condition cond;
  unsigned seed;
  int in_lock, in_sem, in_lim;
  long granted, cancelled;
} stress;

enum { STRESS_TASKS = 16, STRESS_ROUNDS = 150, SEM_UNITS = 3, LIM_TOKENS = 4 };

static double stress_rand(stress *s) {
  return (double)rand_r(&s->seed) / (double)RAND_MAX;
}

/* Count the outcome of an acquire: granted or cancelled, nothing else. */
static int stress_outcome(stress *s, int rc) {
  if (rc == 0) {
    s->granted++;
    return 1;
  }
  ck_assert_int_eq(rc, SCIO_ECANCELED);
  s->cancelled++;
  return 0;
}

static void stress_lock(stress *s) {
  if (!stress_outcome(s, scio_lock_acquire(&s->lock)))
    return;
  ck_assert_int_eq(s->in_lock++, 0);
  scio_sleep(stress_rand(s) * 0.004);
  s->in_lock--;
  CK_OK(scio_lock_release(&s->lock));
}

static void stress_sem(stress *s) {
  int rc = stress_rand(s) < 0.2 ? scio_semaphore_acquire_nowait(&s->sem)
                                : scio_semaphore_acquire(&s->sem);
  if (rc == SCIO_EWOULDBLOCK || !stress_outcome(s, rc))
    return;
  ck_assert_int_lt(s->in_sem++, SEM_UNITS);
  scio_sleep(stress_rand(s) * 0.004);
  s->in_sem--;
  CK_OK(scio_semaphore_release(&s->sem));
}

static void stress_lim(stress *s) {
  if (!stress_outcome(s, scio_limiter_acquire(&s->lim)))
    return;
  ck_assert_int_lt(s->in_lim++, LIM_TOKENS);
  scio_sleep(stress_rand(s) * 0.004);
  s->in_lim--;
  CK_OK(scio_limiter_release(&s->lim));
}

static void stress_cond(stress *s) {
  if (!stress_outcome(s, scio_condition_acquire(&s->cond)))
    return;
  if (stress_rand(s) < 0.6) {
    int rc = scio_condition_wait(&s->cond);
    ck_assert(rc == 0 || rc == SCIO_ECANCELED);
  } else {
    ck_assert_int_ge(scio_condition_notify(&s->cond, 1), 0);
  }
  ck_assert(holds_lock(&s->cond));
  CK_OK(scio_condition_release(&s->cond));
}

static int stress_task(void *p) {
  stress *s = p;
  for (int i = 0; i < STRESS_ROUNDS; i++) {
    scio_scope cs;
    CK_OK(scio_move_on_after(&cs, stress_rand(s) * 0.01));
    switch (rand_r(&s->seed) % 4) {
    case 0:
      stress_lock(s);
      break;
    case 1:
      stress_sem(s);
      break;
    case 2:
      stress_lim(s);
      break;
    default:
      stress_cond(s);
      break;
    }
    CK_OK(scio_scope_close(&cs));
  }
  return 0;
}

SCIO_TEST_AUTOJUMP(stress_with_random_timeouts) {
  stress s;
  memset(&s, 0, sizeof s);
  s.seed = 12345;
  CK_OK(scio_lock_init(&s.lock, 0));
  CK_OK(scio_semaphore_init(&s.sem, SEM_UNITS, SEM_UNITS, 0));
  CK_OK(scio_limiter_init(&s.lim, LIM_TOKENS));
  CK_OK(scio_condition_init(&s.cond, NULL));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < STRESS_TASKS; i++)
    CK_OK(scio_start_soon(&n, stress_task, &s));
  CK_OK(scio_nursery_close(&n));
  /* Both outcomes happened a fair number of times. */
  ck_assert_int_gt(s.granted, 100);
  ck_assert_int_gt(s.cancelled, 100);
  scio_lock_stats ls = lock_stats(&s.lock);
  ck_assert(!ls.locked && ls.tasks_waiting == 0);
  scio_semaphore_stats ss = sem_stats(&s.sem);
  ck_assert(ss.value == SEM_UNITS && ss.tasks_waiting == 0);
  scio_limiter_stats lm = lim_stats(&s.lim);
  ck_assert(lm.borrowed_tokens == 0 && lm.tasks_waiting == 0);
  scio_condition_stats cs = cond_stats(&s.cond);
  ck_assert(cs.tasks_waiting == 0 && !cs.lock.locked);
  CK_OK(scio_limiter_destroy(&s.lim));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Bad input                                                                 */

SCIO_TEST(bad_objects_are_einval) {
  scio_event ev;
  scio_lock l;
  scio_semaphore s;
  scio_condition c;
  scio_limiter lim;
  memset(&ev, 0, sizeof ev);
  memset(&l, 0, sizeof l);
  memset(&s, 0, sizeof s);
  memset(&c, 0, sizeof c);
  memset(&lim, 0, sizeof lim);
  scio_event_stats es;
  scio_lock_stats ls;
  scio_semaphore_stats ss;
  scio_condition_stats cs;
  scio_limiter_stats lms;
  /* NULL objects. */
  ck_assert_int_eq(scio_event_init(NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_init(NULL, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_init(NULL, 0, 0, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_init(NULL, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_init(NULL, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_acquire(NULL), SCIO_EINVAL);
  check_errmsg("NULL");
  /* Never initialised. */
  ck_assert_int_eq(scio_event_set(&ev), SCIO_EINVAL);
  check_errmsg("not initialised");
  ck_assert_int_eq(scio_event_is_set(&ev), SCIO_EINVAL);
  ck_assert_int_eq(scio_event_wait(&ev), SCIO_EINVAL);
  ck_assert_int_eq(scio_event_statistics(&ev, &es), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_acquire(&l), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_acquire_nowait(&l), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_release(&l), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_locked(&l), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_statistics(&l, &ls), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_acquire(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_acquire_nowait(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_release(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_value(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_statistics(&s, &ss), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_acquire(&c), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_release(&c), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_wait(&c), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_notify(&c, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_notify_all(&c), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_statistics(&c, &cs), SCIO_EINVAL);
  ck_assert_ptr_null(scio_condition_lock(&c));
  ck_assert_int_eq(scio_limiter_acquire(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_acquire_nowait(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of(&lim, &lim),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_acquire_on_behalf_of_nowait(&lim, &lim),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_release(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_release_on_behalf_of(&lim, &lim),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_set_total_tokens(&lim, 2), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_available_tokens(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_statistics(&lim, &lms), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_destroy(&lim), SCIO_EINVAL);
  /* Unknown flags; NULL statistics. */
  ck_assert_int_eq(scio_lock_init(&l, 0x80), SCIO_EINVAL);
  CK_OK(scio_lock_init(&l, 0));
  ck_assert_int_eq(scio_lock_statistics(&l, NULL), SCIO_EINVAL);
  return 0;
}

START_TEST(blocking_calls_outside_a_task_are_einval) {
  scio_event ev;
  scio_lock l;
  scio_semaphore s;
  scio_condition c;
  scio_limiter lim;
  int b;
  CK_OK(scio_event_init(&ev));
  CK_OK(scio_lock_init(&l, 0));
  CK_OK(scio_semaphore_init(&s, 1, 0, 0));
  CK_OK(scio_condition_init(&c, NULL));
  CK_OK(scio_limiter_init(&lim, 1));
  ck_assert_int_eq(scio_event_wait(&ev), SCIO_EINVAL);
  check_errmsg("not inside a task");
  ck_assert_int_eq(scio_lock_acquire(&l), SCIO_EINVAL);
  ck_assert_int_eq(scio_lock_release(&l), SCIO_EINVAL);
  ck_assert_int_eq(scio_semaphore_acquire(&s), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_wait(&c), SCIO_EINVAL);
  ck_assert_int_eq(scio_condition_notify(&c, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_acquire(&lim), SCIO_EINVAL);
  ck_assert_int_eq(scio_limiter_release(&lim), SCIO_EINVAL);
  /* What needs no task works without one. */
  CK_OK(scio_event_set(&ev));
  CK_OK(scio_semaphore_acquire_nowait(&s));
  CK_OK(scio_semaphore_release(&s));
  CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &b));
  CK_OK(scio_limiter_release_on_behalf_of(&lim, &b));
  CK_OK(scio_limiter_destroy(&lim));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failures (tests/support/oom.h; only the limiter allocates)    */

typedef struct oom_job {
  scio_limiter *lim;
  int tag;
} oom_job;

/* Borrow a token on behalf of the job, hold it across a checkpoint, give
 * it back.  Cancelled (a sibling ran out of memory): still give it back. */
static int oom_worker(void *p) {
  oom_job *j = p;
  int rc = scio_limiter_acquire_on_behalf_of(j->lim, j);
  if (rc < 0)
    return rc;
  scio_checkpoint();
  return scio_limiter_release_on_behalf_of(j->lim, j);
}

enum { OOM_JOBS = 40 };

/* Phase "grow": every worker finds a token free, so the borrower set grows
 * inside the workers' own acquire calls.  Phase "raise": every worker
 * waits behind a sentinel borrower on a one-token limiter, and raising the
 * total grows the set and hands the tokens out. */
static int oom_phase(int raise) {
  scio_limiter lim;
  oom_job jobs[OOM_JOBS];
  int sentinel;
  int rc = scio_limiter_init(&lim, raise ? 1 : OOM_JOBS);
  if (rc < 0)
    return rc;
  if (raise && (rc = scio_limiter_acquire_on_behalf_of_nowait(&lim,
                                                              &sentinel)) < 0) {
    CK_OK(scio_limiter_destroy(&lim));
    return rc;
  }
  scio_nursery n;
  scio_nursery_open(&n);
  for (int i = 0; i < OOM_JOBS && rc == 0; i++) {
    jobs[i].lim = &lim;
    jobs[i].tag = i;
    rc = scio_start_soon(&n, oom_worker, &jobs[i]);
  }
  if (rc == 0 && raise) {
    scio_wait_all_tasks_blocked();
    ck_assert_int_eq(lim_stats(&lim).tasks_waiting, OOM_JOBS);
    rc = scio_limiter_set_total_tokens(&lim, OOM_JOBS);
    if (rc == 0)
      ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), OOM_JOBS);
  }
  if (rc < 0)
    scio_nursery_cancel(&n);
  if (raise)
    CK_OK(scio_limiter_release_on_behalf_of(&lim, &sentinel));
  int crc = scio_nursery_close(&n);
  /* Every worker gave its token back, whatever failed. */
  scio_limiter_stats st = lim_stats(&lim);
  ck_assert(st.borrowed_tokens == 0 && st.tasks_waiting == 0);
  CK_OK(scio_limiter_destroy(&lim));
  return rc < 0 ? rc : crc;
}

static int oom_body(void *arg) {
  (void)arg;
  int rc = oom_phase(0);
  return rc < 0 ? rc : oom_phase(1);
}

START_TEST(allocation_failure_loop) {
  scio_oom_install(0);
  scio_oom_run r = {.fn = oom_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  CK_OK(scio_oom_run_op(&r));
  scio_oom_uninstall();
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *sync_suite(void) {
  Suite *s = suite_create("sync");
  TCase *tc = scio_tcase_new("event", 10);
  scio_tcase_add(tc, event_set_wakes_all_waiters);
  scio_tcase_add(tc, event_wait_on_set_event_is_a_checkpoint);
  scio_tcase_add(tc, event_set_then_cancel_keeps_the_wakeup);
  scio_tcase_add(tc, event_cancel_then_set_is_ecanceled);
  scio_tcase_add(tc, event_wait_times_out);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("lock", 10);
  scio_tcase_add(tc, lock_basic_ownership);
  scio_tcase_add(tc, lock_misuse_is_reported_without_damage);
  scio_tcase_add(tc, lock_release_by_another_task_is_eperm);
  scio_tcase_add(tc, lock_acquire_is_a_checkpoint_unless_fast);
  scio_tcase_add(tc, lock_nowait_would_block);
  scio_tcase_add(tc, lock_fifo_handoff_without_barging);
  scio_tcase_add(tc, lock_handoff_then_cancel_is_kept);
  scio_tcase_add(tc, lock_cancel_then_release_goes_to_next_waiter);
  scio_tcase_add(tc, lock_acquire_times_out);
  scio_tcase_add(tc, lock_waiters_show_in_task_dumps);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("semaphore", 10);
  scio_tcase_add(tc, semaphore_counts_and_bounds);
  scio_tcase_add(tc, semaphore_acquire_is_a_checkpoint_unless_fast);
  scio_tcase_add(tc, semaphore_fifo_handoff_without_barging);
  scio_tcase_add(tc, semaphore_handoff_then_cancel_is_kept);
  scio_tcase_add(tc, semaphore_cancel_then_release_loses_nothing);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("condition", 10);
  scio_tcase_add(tc, condition_wait_and_notify);
  scio_tcase_add(tc, condition_needs_the_lock);
  scio_tcase_add(tc, condition_over_a_given_lock);
  scio_tcase_add(tc, condition_cancelled_wait_reacquires_the_lock);
  scio_tcase_add(tc, condition_notify_then_cancel_is_kept);
  scio_tcase_add(tc, condition_wait_cancelled_on_entry_keeps_the_lock);
  scio_tcase_add(tc, condition_wait_times_out_holding_the_lock);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("limiter", 10);
  scio_tcase_add(tc, limiter_tokens_and_borrowers);
  scio_tcase_add(tc, limiter_acquire_is_a_checkpoint);
  scio_tcase_add(tc, limiter_fifo_handoff_without_barging);
  scio_tcase_add(tc, limiter_handoff_then_cancel_is_kept);
  scio_tcase_add(tc, limiter_cancel_then_release_goes_to_next_waiter);
  scio_tcase_add(tc, limiter_total_tokens_changes);
  scio_tcase_add(tc, limiter_one_token_per_borrower_while_waiting);
  scio_tcase_add(tc, limiter_many_borrowers);
  scio_tcase_add(tc, limiter_acquire_times_out);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("stress", 30);
  scio_tcase_add(tc, stress_with_random_timeouts);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("bad_input", 10);
  scio_tcase_add(tc, bad_objects_are_einval);
  tcase_add_test(tc, blocking_calls_outside_a_task_are_einval);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("oom", 60);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return scio_test_main(sync_suite()); }
