/* Tests of include/scio/thread.h: worker threads (scio_to_thread).  Every
 * async test runs once per backend (epoll, poll, select).
 *
 * Functions run on workers block on a "gate" (a mutex and a condition
 * variable) that the test opens, and report that they started through a
 * pipe the test waits on with scio_wait_readable: no test sleeps to let a
 * thread get somewhere. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "scio.h"
#include "scio/testing.h"
#include "support/oom.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

static int count_dir(const char *path) {
  int n = 0;
  DIR *d = opendir(path);
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}
static int count_fds(void) { return count_dir("/proc/self/fd"); }
static void *no_op(void *arg) { return arg; }
/* Threads of the process.  The first thread created may start helpers of
 * the runtime (TSan's background thread), so one is made and joined
 * before counting. */
static int count_threads(void) {
  static int warm;
  if (!warm) {
    pthread_t t;
    if (pthread_create(&t, NULL, no_op, NULL) == 0)
      pthread_join(t, NULL);
    warm = 1;
  }
  return count_dir("/proc/self/task");
}

/* ------------------------------------------------------------------------ */
/* A gate for worker functions                                               */

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int open;
  int started;   /* functions that began */
  int finished;  /* functions that returned */
  int running;   /* now */
  int max_running;
  int fds[2];    /* a byte per start */
} gate;

static void gate_init(gate *g) {
  memset(g, 0, sizeof *g);
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  CK_OK(pipe(g->fds));
}

static void gate_fini(gate *g) {
  close(g->fds[0]);
  close(g->fds[1]);
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static int gate_get(gate *g, int *field) {
  pthread_mutex_lock(&g->mu);
  int v = *field;
  pthread_mutex_unlock(&g->mu);
  return v;
}

/* Wait (on the loop) until n more functions have started. */
static void gate_wait_started(gate *g, int n) {
  char buf[64];
  while (n > 0) {
    CK_OK(scio_wait_readable(g->fds[0]));
    ssize_t r = read(g->fds[0], buf, (size_t)n < sizeof buf ? (size_t)n
                                                               : sizeof buf);
    ck_assert_int_gt(r, 0);
    n -= (int)r;
  }
}

/* The worker function: count, report the start, wait for the gate. */
static void *gated(void *arg) {
  gate *g = arg;
  pthread_mutex_lock(&g->mu);
  g->started++;
  g->running++;
  if (g->running > g->max_running)
    g->max_running = g->running;
  pthread_mutex_unlock(&g->mu);
  if (write(g->fds[1], "s", 1) != 1)
    abort();
  pthread_mutex_lock(&g->mu);
  while (!g->open)
    pthread_cond_wait(&g->cv, &g->mu);
  g->running--;
  g->finished++;
  pthread_mutex_unlock(&g->mu);
  return (void *)(intptr_t)42;
}

static void *plus_one(void *arg) { return (void *)((intptr_t)arg + 1); }

/* Run in the caller's task by scio_from_thread_run. */
static int just_checkpoint_fn(void *p) {
  (void)p;
  return scio_checkpoint();
}

static void *whoami(void *arg) {
  (void)arg;
  return (void *)pthread_self();
}

/* ------------------------------------------------------------------------ */
/* Basics                                                                    */

SCIO_TEST(to_thread_returns_the_result) {
  void *r = (void *)1;
  CK_OK(scio_to_thread(plus_one, (void *)(intptr_t)41, &r, NULL));
  ck_assert_int_eq((intptr_t)r, 42);
  CK_OK(scio_to_thread(whoami, NULL, &r, NULL));
  ck_assert(!pthread_equal((pthread_t)r, pthread_self()));
  /* The worker is reused by the next call. */
  void *r2;
  CK_OK(scio_to_thread(whoami, NULL, &r2, NULL));
  ck_assert(pthread_equal((pthread_t)r, (pthread_t)r2));
  CK_OK(scio_to_thread(plus_one, NULL, NULL, NULL)); /* result not wanted */
  ck_assert_int_eq(scio_limiter_borrowed_tokens(
                       scio_to_thread_default_limiter()), 0);
  return 0;
}

SCIO_TEST(to_thread_bad_input) {
  void *r = (void *)1;
  ck_assert_int_eq(scio_to_thread(NULL, NULL, &r, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(r);
  ck_assert_int_eq(scio_to_thread_set_idle_timeout(-1), SCIO_EINVAL);
  ck_assert_int_eq(scio_to_thread_set_idle_timeout(0.0 / 0.0), SCIO_EINVAL);
  scio_limiter bad;
  memset(&bad, 0, sizeof bad);
  scio_to_thread_opts o = {&bad, 0};
  ck_assert_int_eq(scio_to_thread(plus_one, NULL, &r, &o), SCIO_EINVAL);
  return 0;
}

START_TEST(to_thread_outside_a_run) {
  void *r = (void *)1;
  ck_assert_int_eq(scio_to_thread(plus_one, NULL, &r, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(r);
  ck_assert_ptr_null(scio_to_thread_default_limiter());
  ck_assert_int_eq(scio_to_thread_set_idle_timeout(1), SCIO_EINVAL);
}
END_TEST

SCIO_TEST(default_limiter_has_40_tokens) {
  scio_limiter *l = scio_to_thread_default_limiter();
  ck_assert_ptr_nonnull(l);
  ck_assert_ptr_eq(scio_to_thread_default_limiter(), l); /* one per run */
  scio_limiter_stats st;
  CK_OK(scio_limiter_statistics(l, &st));
  ck_assert_int_eq(st.total_tokens, 40);
  ck_assert_int_eq(st.borrowed_tokens, 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Cancellation                                                              */

static int ran_flag;
static void *set_ran(void *arg) {
  (void)arg;
  __atomic_store_n(&ran_flag, 1, __ATOMIC_RELAXED);
  return NULL;
}

SCIO_TEST(precancelled_call_never_runs) {
  ran_flag = 0;
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  void *r = (void *)1;
  ck_assert_int_eq(scio_to_thread(set_ran, NULL, &r, NULL), SCIO_ECANCELED);
  ck_assert_ptr_null(r);
  CK_OK(scio_scope_close(&cs));
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_int_eq(__atomic_load_n(&ran_flag, __ATOMIC_RELAXED), 0);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(
                       scio_to_thread_default_limiter()), 0);
  return 0;
}

/* A task that makes one call inside a scope of its own. */
typedef struct caller {
  scio_thread_fn fn;
  void *arg;
  scio_to_thread_opts opts;
  scio_scope scope;
  int entered;
  int rc;
  int next_rc; /* the checkpoint after the call */
  void *result;
  int done;
} caller;

static int caller_task(void *p) {
  caller *c = p;
  CK_OK(scio_scope_open(&c->scope, SCIO_DEADLINE_NONE, 0));
  c->entered = 1;
  c->rc = scio_to_thread(c->fn, c->arg, &c->result, &c->opts);
  c->next_rc = scio_checkpoint();
  CK_OK(scio_scope_close(&c->scope));
  c->done = 1;
  return 0;
}

SCIO_TEST(cancelled_while_waiting_for_a_token_never_runs) {
  ran_flag = 0;
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 1));
  CK_OK(scio_limiter_acquire_on_behalf_of_nowait(&lim, &lim));
  caller c;
  memset(&c, 0, sizeof c);
  c.fn = set_ran;
  c.opts.limiter = &lim;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, caller_task, &c));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(c.done, 0);
  scio_scope_cancel(&c.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(c.rc, SCIO_ECANCELED);
  ck_assert_int_eq(__atomic_load_n(&ran_flag, __ATOMIC_RELAXED), 0);
  CK_OK(scio_limiter_release_on_behalf_of(&lim, &lim));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  CK_OK(scio_limiter_destroy(&lim));
  return 0;
}

SCIO_TEST(cancelled_while_running_waits_shielded) {
  gate g;
  gate_init(&g);
  caller c;
  memset(&c, 0, sizeof c);
  c.fn = gated;
  c.arg = &g;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, caller_task, &c));
  gate_wait_started(&g, 1);
  scio_scope_cancel(&c.scope);
  for (int i = 0; i < 20; i++)
    CK_OK(scio_checkpoint());
  ck_assert_int_eq(c.done, 0); /* still waiting for its thread */
  ck_assert_int_eq(scio_limiter_borrowed_tokens(
                       scio_to_thread_default_limiter()), 1);
  gate_open(&g);
  CK_OK(scio_nursery_close(&n));
  /* The thread's result is not lost; the cancellation comes next. */
  ck_assert_int_eq(c.rc, 0);
  ck_assert_int_eq((intptr_t)c.result, 42);
  ck_assert_int_eq(c.next_rc, SCIO_ECANCELED);
  ck_assert(scio_scope_cancelled_caught(&c.scope));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(
                       scio_to_thread_default_limiter()), 0);
  gate_fini(&g);
  return 0;
}

/* A deadline that passes while a (not abandoned) call's thread runs: as
 * Trio's abort returning Abort.FAILED, the call waits for its thread and
 * returns the result, and the cancellation stays pending instead of being
 * delivered to it.  The scope catches only if a later checkpoint inside it
 * delivers the cancellation; with none, cancelled_caught stays false.  With
 * `from_thread`, the worker then runs a call in the caller's task that
 * sees the cancellation (its SCIO_ECANCELED goes to the worker, not out of
 * the caller): that does not make the scope catch either. */
typedef struct pending_caller {
  gate *g;
  int checkpoint_after;
  int from_thread;
  int run_rc; /* the worker's scio_from_thread_run */
  scio_scope scope;
  int rc;
  int next_rc;
  void *result;
  char errmsg[200];
  int caught;
  int done;
} pending_caller;

static void *gated_then_call_back(void *p) {
  pending_caller *c = p;
  gated(c->g);
  if (c->from_thread)
    c->run_rc = scio_from_thread_run(NULL, just_checkpoint_fn, NULL);
  return (void *)(intptr_t)42;
}

static int pending_task(void *p) {
  pending_caller *c = p;
  CK_OK(scio_scope_open(&c->scope, SCIO_DEADLINE_NONE, 0));
  c->rc = scio_to_thread(gated_then_call_back, c, &c->result, NULL);
  if (c->checkpoint_after) {
    c->next_rc = scio_checkpoint();
    snprintf(c->errmsg, sizeof c->errmsg, "%s", scio_errmsg());
  }
  CK_OK(scio_scope_close(&c->scope));
  c->caught = scio_scope_cancelled_caught(&c->scope);
  c->done = 1;
  return 0;
}

static void pending_cancel(int checkpoint_after, int from_thread) {
  gate g;
  gate_init(&g);
  pending_caller c;
  memset(&c, 0, sizeof c);
  c.g = &g;
  c.checkpoint_after = checkpoint_after;
  c.from_thread = from_thread;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, pending_task, &c));
  gate_wait_started(&g, 1); /* running: no longer in the pool's queue */
  /* The autojump clock reaches the deadline while the thread waits. */
  CK_OK(scio_scope_set_deadline(&c.scope, scio_now() + 1));
  CK_OK(scio_sleep(2));
  ck_assert(scio_scope_cancel_called(&c.scope));
  ck_assert_int_eq(c.done, 0); /* still waiting for its thread */
  gate_open(&g);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(c.rc, 0);
  ck_assert_int_eq((intptr_t)c.result, 42);
  if (from_thread)
    ck_assert_int_eq(c.run_rc, SCIO_ECANCELED);
  if (checkpoint_after) {
    ck_assert_int_eq(c.next_rc, SCIO_ECANCELED);
    ck_assert_msg(strstr(c.errmsg, "deadline") != NULL, "errmsg: %s",
                  c.errmsg);
    ck_assert(c.caught);
  } else {
    ck_assert(!c.caught);
  }
  ck_assert_int_eq(scio_limiter_borrowed_tokens(
                       scio_to_thread_default_limiter()), 0);
  gate_fini(&g);
}

SCIO_TEST_AUTOJUMP(deadline_during_the_thread_not_caught_without_checkpoint) {
  pending_cancel(0, 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(deadline_during_the_thread_caught_by_next_checkpoint) {
  pending_cancel(1, 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(cancellation_seen_by_a_from_thread_call_is_not_caught) {
  pending_cancel(0, 1);
  return 0;
}

SCIO_TEST_AUTOJUMP(cancellation_seen_by_a_from_thread_call_stays_pending) {
  pending_cancel(1, 1);
  return 0;
}

SCIO_TEST(abandoned_call_returns_at_once_and_keeps_its_token) {
  gate g;
  gate_init(&g);
  caller c;
  memset(&c, 0, sizeof c);
  c.fn = gated;
  c.arg = &g;
  c.opts.abandon_on_cancel = 1;
  scio_limiter *lim = scio_to_thread_default_limiter();
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, caller_task, &c));
  gate_wait_started(&g, 1);
  scio_scope_cancel(&c.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(c.rc, SCIO_ECANCELED);
  ck_assert_ptr_null(c.result);
  ck_assert_int_eq(gate_get(&g, &g.finished), 0); /* still running */
  ck_assert_int_eq(scio_limiter_borrowed_tokens(lim), 1);
  gate_open(&g);
  /* The token comes back when the thread really ends. */
  for (int i = 0; i < 100000 && scio_limiter_borrowed_tokens(lim); i++)
    CK_OK(scio_sleep(0.0005));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(lim), 0);
  ck_assert_int_eq(gate_get(&g, &g.finished), 1);
  gate_fini(&g);
  return 0;
}

/* The run ends while an abandoned thread still runs: scio_run joins it.
 * The gate opens only once the root task has returned. */
static gate end_gate;
static int root_returned;

static void *open_later(void *arg) {
  gate *g = arg;
  while (!__atomic_load_n(&root_returned, __ATOMIC_ACQUIRE))
    usleep(1000);
  usleep(10000); /* scio_run is (most likely) joining by now */
  gate_open(g);
  return NULL;
}

static int abandon_then_return(void *arg) {
  (void)arg;
  caller c;
  memset(&c, 0, sizeof c);
  c.fn = gated;
  c.arg = &end_gate;
  c.opts.abandon_on_cancel = 1;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, caller_task, &c));
  gate_wait_started(&end_gate, 1);
  scio_scope_cancel(&c.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(c.rc, SCIO_ECANCELED);
  ck_assert_int_eq(gate_get(&end_gate, &end_gate.finished), 0);
  __atomic_store_n(&root_returned, 1, __ATOMIC_RELEASE);
  return 0;
}

START_TEST(run_end_joins_abandoned_threads) {
  gate_init(&end_gate);
  root_returned = 0;
  int threads0 = count_threads();
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  pthread_t opener;
  CK_OK(pthread_create(&opener, NULL, open_later, &end_gate));
  CK_OK(scio_run(abandon_then_return, NULL, &o));
  ck_assert_int_eq(gate_get(&end_gate, &end_gate.finished), 1);
  pthread_join(opener, NULL);
  ck_assert_int_eq(count_threads(), threads0); /* the pool is gone */
  gate_fini(&end_gate);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limiters and many calls                                                   */

enum { MANY = 200 };

SCIO_TEST(a_limiter_bounds_concurrent_calls) {
  gate g;
  gate_init(&g);
  scio_limiter lim;
  CK_OK(scio_limiter_init(&lim, 3));
  static caller c[10];
  memset(c, 0, sizeof c);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 10; i++) {
    c[i].fn = gated;
    c[i].arg = &g;
    c[i].opts.limiter = &lim;
    CK_OK(scio_start_soon(&n, caller_task, &c[i]));
  }
  gate_wait_started(&g, 3);
  CK_OK(scio_wait_all_tasks_blocked());
  scio_limiter_stats st;
  CK_OK(scio_limiter_statistics(&lim, &st));
  ck_assert_int_eq(st.borrowed_tokens, 3);
  ck_assert_int_eq(st.tasks_waiting, 7);
  ck_assert_int_eq(gate_get(&g, &g.started), 3);
  gate_open(&g);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(g.max_running, 3);
  ck_assert_int_eq(g.finished, 10);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq((intptr_t)c[i].result, 42);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(&lim), 0);
  CK_OK(scio_limiter_destroy(&lim));
  gate_fini(&g);
  return 0;
}

static void *slow_plus_one(void *arg) {
  usleep(100);
  return plus_one(arg);
}

SCIO_TEST(many_concurrent_calls) {
  static caller c[MANY];
  memset(c, 0, sizeof c);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < MANY; i++) {
    c[i].fn = slow_plus_one;
    c[i].arg = (void *)(intptr_t)i;
    CK_OK(scio_start_soon(&n, caller_task, &c[i]));
  }
  CK_OK(scio_nursery_close(&n));
  for (int i = 0; i < MANY; i++) {
    ck_assert_int_eq(c[i].rc, 0);
    ck_assert_int_eq((intptr_t)c[i].result, i + 1);
  }
  ck_assert_int_eq(scio_limiter_borrowed_tokens(
                       scio_to_thread_default_limiter()), 0);
  return 0;
}

/* A call cancelled while it waits in the pool's queue (every worker busy)
 * never runs, with or without abandon_on_cancel, and gives its token
 * back. */
extern int scio__pool_test_max_workers;

static void queued_cancel(int abandon) {
  ran_flag = 0;
  gate g;
  gate_init(&g);
  scio__pool_test_max_workers = 1;
  caller busy, queued;
  memset(&busy, 0, sizeof busy);
  memset(&queued, 0, sizeof queued);
  busy.fn = gated;
  busy.arg = &g;
  queued.fn = set_ran;
  queued.opts.abandon_on_cancel = abandon;
  scio_limiter *lim = scio_to_thread_default_limiter();
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, caller_task, &busy));
  gate_wait_started(&g, 1); /* the only worker is taken */
  CK_OK(scio_start_soon(&n, caller_task, &queued));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_limiter_borrowed_tokens(lim), 2);
  scio_scope_cancel(&queued.scope);
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(queued.done, 1);
  ck_assert_int_eq(queued.rc, SCIO_ECANCELED);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(lim), 1);
  gate_open(&g);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(busy.rc, 0);
  ck_assert_int_eq(__atomic_load_n(&ran_flag, __ATOMIC_RELAXED), 0);
  ck_assert_int_eq(scio_limiter_borrowed_tokens(lim), 0);
  scio__pool_test_max_workers = 0;
  gate_fini(&g);
}

SCIO_TEST(cancelled_in_the_queue_never_runs) {
  queued_cancel(0);
  return 0;
}

SCIO_TEST(abandoned_in_the_queue_never_runs) {
  queued_cancel(1);
  return 0;
}

/* With the workers capped, queued calls wait for a busy worker and all
 * complete. */
SCIO_TEST(queued_calls_wait_for_a_worker) {
  scio__pool_test_max_workers = 2;
  static caller c[20];
  memset(c, 0, sizeof c);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  for (int i = 0; i < 20; i++) {
    c[i].fn = slow_plus_one;
    c[i].arg = (void *)(intptr_t)i;
    CK_OK(scio_start_soon(&n, caller_task, &c[i]));
  }
  CK_OK(scio_nursery_close(&n));
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq((intptr_t)c[i].result, i + 1);
  scio__pool_test_max_workers = 0;
  return 0;
}

SCIO_TEST(idle_workers_exit) {
  int threads0 = count_threads();
  CK_OK(scio_to_thread_set_idle_timeout(0));
  CK_OK(scio_to_thread(plus_one, NULL, NULL, NULL));
  int i;
  for (i = 0; i < 20000 && count_threads() != threads0; i++)
    CK_OK(scio_sleep(0.0005));
  ck_assert_int_eq(count_threads(), threads0);
  /* A later call starts a worker again. */
  CK_OK(scio_to_thread_set_idle_timeout(10));
  void *r;
  CK_OK(scio_to_thread(plus_one, (void *)1, &r, NULL));
  ck_assert_int_eq((intptr_t)r, 2);
  ck_assert_int_eq(count_threads(), threads0 + 1);
  return 0;
}


/* ------------------------------------------------------------------------ */
/* From a thread back into the loop                                         */

typedef struct rt {
  scio_task *caller; /* the task that called scio_to_thread */
  int async_calls;   /* loop side */
  int sync_calls;
  int wrong_task;
} rt;

static int async_add(void *p) {
  rt *r = p;
  if (scio_task_current() != r->caller)
    r->wrong_task++;
  int rc = scio_checkpoint(); /* async: it may checkpoint */
  if (rc < 0)
    return rc;
  r->async_calls++;
  return r->async_calls;
}

static int sync_add(void *p) {
  rt *r = p;
  r->sync_calls++;
  return 1000 + r->sync_calls;
}

static void *round_trips(void *p) {
  rt *r = p;
  for (int i = 1; i <= 100; i++) {
    if (scio_from_thread_run(NULL, async_add, r) != i)
      return (void *)1;
    if (scio_from_thread_run_sync(NULL, sync_add, r) != 1000 + i)
      return (void *)2;
    if (scio_from_thread_check_cancelled() != 0)
      return (void *)3;
  }
  if (scio_from_thread_run(NULL, NULL, r) != SCIO_EINVAL)
    return (void *)4;
  return NULL;
}

SCIO_TEST(from_thread_round_trips) {
  rt r;
  memset(&r, 0, sizeof r);
  r.caller = scio_task_current();
  void *res = (void *)9;
  CK_OK(scio_to_thread(round_trips, &r, &res, NULL));
  ck_assert_ptr_null(res);
  ck_assert_int_eq(r.async_calls, 100);
  ck_assert_int_eq(r.sync_calls, 100);
  ck_assert_int_eq(r.wrong_task, 0);
  /* Not from the loop's thread, not outside a worker. */
  ck_assert_int_eq(scio_from_thread_check_cancelled(), SCIO_EINVAL);
  ck_assert_int_eq(scio_from_thread_run(NULL, async_add, &r), SCIO_EINVAL);
  ck_assert_int_eq(scio_from_thread_run_sync(NULL, sync_add, &r),
                   SCIO_EINVAL);
  scio_token *tok;
  CK_OK(scio_token_open(&tok));
  ck_assert_int_eq(scio_from_thread_run_sync(tok, sync_add, &r),
                   SCIO_EDEADLK);
  ck_assert_int_eq(scio_from_thread_run(tok, async_add, &r), SCIO_EDEADLK);
  scio_token_close(tok);
  ck_assert_int_eq(scio_token_open(NULL), SCIO_EINVAL);
  return 0;
}

/* After its caller was cancelled, a worker sees it, and its async calls
 * run inside the cancelled scope. */
typedef struct cancel_probe {
  gate *g;
  rt r;
  int check_rc;
  int run_rc;
  int sync_rc;
} cancel_probe;

static int just_checkpoint(void *p) {
  (void)p;
  return scio_checkpoint();
}

static void *probe_after_gate(void *p) {
  cancel_probe *cp = p;
  gated(cp->g);
  cp->check_rc = scio_from_thread_check_cancelled();
  cp->run_rc = scio_from_thread_run(NULL, just_checkpoint, NULL);
  cp->sync_rc = scio_from_thread_run_sync(NULL, sync_add, &cp->r);
  return (void *)7;
}

static void probe_cancel(int abandon) {
  gate g;
  gate_init(&g);
  cancel_probe cp;
  memset(&cp, 0, sizeof cp);
  cp.g = &g;
  caller c;
  memset(&c, 0, sizeof c);
  c.fn = probe_after_gate;
  c.arg = &cp;
  c.opts.abandon_on_cancel = abandon;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, caller_task, &c));
  gate_wait_started(&g, 1);
  scio_scope_cancel(&c.scope);
  CK_OK(scio_wait_all_tasks_blocked());
  gate_open(&g);
  CK_OK(scio_nursery_close(&n));
  scio_limiter *lim = scio_to_thread_default_limiter();
  for (int i = 0; i < 100000 && scio_limiter_borrowed_tokens(lim); i++)
    CK_OK(scio_sleep(0.0005));
  ck_assert_int_eq(scio_limiter_borrowed_tokens(lim), 0);
  ck_assert_int_eq(cp.check_rc, SCIO_ECANCELED);
  ck_assert_int_eq(cp.run_rc, SCIO_ECANCELED);
  if (abandon) {
    ck_assert_int_eq(c.rc, SCIO_ECANCELED);
    ck_assert_int_eq(cp.sync_rc, SCIO_ECANCELED);
  } else {
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq((intptr_t)c.result, 7);
    ck_assert_int_eq(cp.sync_rc, 1001); /* sync code still runs */
  }
  gate_fini(&g);
}

SCIO_TEST(from_thread_sees_the_callers_cancellation) {
  probe_cancel(0);
  return 0;
}

SCIO_TEST(from_thread_after_abandon_is_cancelled) {
  probe_cancel(1);
  return 0;
}

/* A plain thread with a token runs synchronous code on the loop, and gets
 * SCIO_ECLOSED once the run has ended. */
typedef struct plain {
  scio_token *tok;
  rt r;
  int n_ok;
  int async_rc;
  int after_end_rc;
  int finished;  /* atomic: the thread is done with the run */
} plain;

static void *plain_thread(void *p) {
  plain *pl = p;
  for (int i = 0; i < 50; i++)
    if (scio_from_thread_run_sync(pl->tok, sync_add, &pl->r) == 1001 + i)
      pl->n_ok++;
  pl->async_rc = scio_from_thread_run(pl->tok, async_add, &pl->r);
  __atomic_store_n(&pl->finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

static plain the_plain;
static pthread_t plain_th;

static int plain_body(void *arg) {
  (void)arg;
  CK_OK(scio_token_open(&the_plain.tok));
  CK_OK(pthread_create(&plain_th, NULL, plain_thread, &the_plain));
  /* Keep the loop alive (and busy at times) until the thread is done. */
  while (!__atomic_load_n(&the_plain.finished, __ATOMIC_ACQUIRE))
    CK_OK(scio_sleep(0.0005));
  return 0;
}

START_TEST(plain_thread_with_a_token) {
  memset(&the_plain, 0, sizeof the_plain);
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  CK_OK(scio_run(plain_body, NULL, &o));
  pthread_join(plain_th, NULL);
  ck_assert_int_eq(the_plain.n_ok, 50);
  ck_assert_int_eq(the_plain.r.sync_calls, 50);
  ck_assert_int_eq(the_plain.async_rc, SCIO_EINVAL);
  /* The run is over: the token says so, and is still safe to use. */
  ck_assert_int_eq(scio_from_thread_run_sync(the_plain.tok, sync_add,
                                             &the_plain.r),
                   SCIO_ECLOSED);
  ck_assert_int_eq(the_plain.r.sync_calls, 50);
  scio_token_close(the_plain.tok);
  scio_token_close(NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Blocking portals                                                          */

static scio_portal *start_portal(int i) {
  scio_run_opts ro = {0};
  ro.backend = scio_test_backend(i);
  scio_portal_opts po = {&ro};
  scio_portal *p = (scio_portal *)1;
  CK_OK(scio_portal_start(&p, &po));
  ck_assert_ptr_nonnull(p);
  return p;
}

static int sleep_then_five(void *arg) {
  (void)arg;
  int rc = scio_sleep(0.001);
  return rc < 0 ? rc : 5;
}

static int fails_with_detail(void *arg) {
  (void)arg;
  return scio_seterr(-EIO, "disk %d is on fire", 3);
}

static int call_in_own_portal(void *arg) {
  return scio_portal_call((scio_portal *)arg, sleep_then_five, NULL);
}

START_TEST(portal_start_call_stop) {
  int fds0 = count_fds(), threads0 = count_threads();
  scio_portal *p = start_portal(_i);
  ck_assert_int_eq(scio_portal_call(p, sleep_then_five, NULL), 5);
  ck_assert_int_eq(scio_portal_call(p, fails_with_detail, NULL), -EIO);
  ck_assert_str_eq(scio_errmsg(), "disk 3 is on fire");
  ck_assert_int_eq(scio_portal_call(p, call_in_own_portal, p), SCIO_EDEADLK);
  ck_assert_int_eq(scio_portal_call(p, NULL, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_portal_call(NULL, sleep_then_five, NULL),
                   SCIO_EINVAL);
  CK_OK(scio_portal_stop(p, 0));
  CK_OK(scio_portal_stop(p, 0)); /* again: already stopped */
  ck_assert_int_eq(scio_portal_call(p, sleep_then_five, NULL), SCIO_ECLOSED);
  ck_assert_int_eq(scio_portal_start_task_soon(p, sleep_then_five, NULL),
                   SCIO_ECLOSED);
  scio_portal_free(p);
  scio_portal_free(NULL);
  ck_assert_int_eq(count_fds(), fds0);
  ck_assert_int_eq(count_threads(), threads0);
}
END_TEST

START_TEST(portal_bad_input) {
  ck_assert_int_eq(scio_portal_start(NULL, NULL), SCIO_EINVAL);
  scio_run_opts ro = {0};
  ro.backend = "no-such-backend";
  scio_portal_opts po = {&ro};
  scio_portal *p = (scio_portal *)1;
  ck_assert_int_eq(scio_portal_start(&p, &po), -ENOSYS);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(scio_portal_stop(NULL, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_portal_start_task_soon(NULL, sleep_then_five, NULL),
                   SCIO_EINVAL);
  /* Freed without a stop: stopped (and cancelled) on the way. */
  CK_OK(scio_portal_start(&p, NULL));
  scio_portal_free(p);
}
END_TEST

/* Several threads call at once; their calls run concurrently (one waits
 * for an event another sets). */
typedef struct pstate {
  scio_portal *p;
  scio_event ev;
  int count; /* portal loop only */
  int errors;
} pstate;

static int count_call(void *arg) {
  pstate *ps = arg;
  int rc = scio_checkpoint();
  if (rc < 0)
    return rc;
  return ++ps->count;
}

static int init_event(void *arg) {
  return scio_event_init(&((pstate *)arg)->ev);
}
static int wait_event(void *arg) { return scio_event_wait(&((pstate *)arg)->ev); }
static int set_event(void *arg) { return scio_event_set(&((pstate *)arg)->ev); }

static void *portal_caller(void *arg) {
  pstate *ps = arg;
  for (int i = 0; i < 100; i++) {
    int rc = scio_portal_call(ps->p, count_call, ps);
    if (rc <= 0)
      __atomic_add_fetch(&ps->errors, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void *portal_waiter(void *arg) {
  pstate *ps = arg;
  if (scio_portal_call(ps->p, wait_event, ps) != 0)
    __atomic_add_fetch(&ps->errors, 1, __ATOMIC_RELAXED);
  return NULL;
}

START_TEST(portal_calls_from_several_threads) {
  static pstate ps;
  memset(&ps, 0, sizeof ps);
  ps.p = start_portal(_i);
  CK_OK(scio_portal_call(ps.p, init_event, &ps));
  pthread_t waiter, th[4];
  CK_OK(pthread_create(&waiter, NULL, portal_waiter, &ps));
  for (int i = 0; i < 4; i++)
    CK_OK(pthread_create(&th[i], NULL, portal_caller, &ps));
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  CK_OK(scio_portal_call(ps.p, set_event, &ps));
  pthread_join(waiter, NULL);
  ck_assert_int_eq(ps.errors, 0);
  ck_assert_int_eq(scio_portal_call(ps.p, count_call, &ps), 401);
  CK_OK(scio_portal_stop(ps.p, 0));
  scio_portal_free(ps.p);
}
END_TEST

/* Stop with cancel_remaining cancels what runs; without, waits for it. */
static int sleeps_forever(void *arg) {
  int rc = scio_sleep_forever();
  __atomic_store_n((int *)arg, rc, __ATOMIC_RELAXED);
  return rc;
}

static int sleeps_a_little(void *arg) {
  int rc = scio_sleep(0.02);
  __atomic_store_n((int *)arg, rc == 0 ? 1 : rc, __ATOMIC_RELAXED);
  return rc;
}

typedef struct blocked_call {
  scio_portal *p;
  int rc;
  int seen;
  int started; /* atomic */
} blocked_call;

static int flag_then_sleep_forever(void *arg) {
  blocked_call *b = arg;
  __atomic_store_n(&b->started, 1, __ATOMIC_RELEASE);
  return sleeps_forever(&b->seen);
}

static void *call_forever(void *arg) {
  blocked_call *b = arg;
  b->rc = scio_portal_call(b->p, flag_then_sleep_forever, b);
  return NULL;
}

static void *stop_it(void *arg) {
  scio_portal_stop((scio_portal *)arg, 1);
  return NULL;
}

static int nothing(void *arg) {
  (void)arg;
  return 0;
}

START_TEST(portal_stop_cancels_or_waits) {
  scio_portal *p = start_portal(_i);
  int soon_rc = 1;
  CK_OK(scio_portal_start_task_soon(p, sleeps_forever, &soon_rc));
  blocked_call b = {p, 1, 1, 0};
  pthread_t th, stopper;
  CK_OK(pthread_create(&th, NULL, call_forever, &b));
  while (!__atomic_load_n(&b.started, __ATOMIC_ACQUIRE))
    usleep(1000);
  /* A call made after the task went in is done when it is running. */
  CK_OK(scio_portal_call(p, nothing, NULL));
  CK_OK(pthread_create(&stopper, NULL, stop_it, p)); /* two stoppers */
  CK_OK(scio_portal_stop(p, 1));
  pthread_join(th, NULL);
  pthread_join(stopper, NULL);
  ck_assert_int_eq(b.rc, SCIO_ECANCELED);
  ck_assert_int_eq(b.seen, SCIO_ECANCELED);
  ck_assert_int_eq(soon_rc, SCIO_ECANCELED);
  scio_portal_free(p);

  p = start_portal(_i);
  int done = 0;
  CK_OK(scio_portal_start_task_soon(p, sleeps_a_little, &done));
  CK_OK(scio_portal_stop(p, 0));
  ck_assert_int_eq(done, 1);
  scio_portal_free(p);
}
END_TEST

/* Several threads each start, use and stop a portal of their own, at the
 * same time. */
static int portal_backend_i;

static void *own_portal(void *arg) {
  (void)arg;
  scio_run_opts ro = {0};
  ro.backend = scio_test_backend(portal_backend_i);
  scio_portal_opts po = {&ro};
  scio_portal *p;
  if (scio_portal_start(&p, &po) != 0)
    return (void *)1;
  for (int i = 0; i < 20; i++)
    if (scio_portal_call(p, sleep_then_five, NULL) != 5)
      return (void *)2;
  if (scio_portal_stop(p, 0) != 0)
    return (void *)3;
  scio_portal_free(p);
  return NULL;
}

START_TEST(portals_started_from_several_threads) {
  portal_backend_i = _i;
  int threads0 = count_threads(), fds0 = count_fds();
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    CK_OK(pthread_create(&th[i], NULL, own_portal, NULL));
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(th[i], &r);
    ck_assert_ptr_null(r);
  }
  ck_assert_int_eq(count_threads(), threads0);
  ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* A worker of one run calls into a portal (another loop). */
static void *worker_uses_portal(void *arg) {
  return (void *)(intptr_t)scio_portal_call((scio_portal *)arg,
                                            sleep_then_five, NULL);
}

static scio_portal *the_portal;

static int run_uses_portal(void *arg) {
  (void)arg;
  void *r;
  CK_OK(scio_to_thread(worker_uses_portal, the_portal, &r, NULL));
  ck_assert_int_eq((intptr_t)r, 5);
  /* From a loop thread, directly: it blocks this loop, but works. */
  ck_assert_int_eq(scio_portal_call(the_portal, sleep_then_five, NULL), 5);
  return 0;
}

START_TEST(portal_from_another_loop) {
  the_portal = start_portal(_i);
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  CK_OK(scio_run(run_uses_portal, NULL, &o));
  CK_OK(scio_portal_stop(the_portal, 0));
  scio_portal_free(the_portal);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failure: every allocation of a run that uses the pool, a
 * from-thread call and a token fails in turn; nothing leaks.  */

static void *calls_back(void *arg) {
  rt *r = arg;
  return (void *)(intptr_t)scio_from_thread_run_sync(NULL, sync_add, r);
}

static int oom_body(void *arg) {
  (void)arg;
  rt r;
  memset(&r, 0, sizeof r);
  void *res;
  int rc = scio_to_thread(plus_one, (void *)1, &res, NULL);
  if (rc < 0)
    return rc;
  ck_assert_int_eq((intptr_t)res, 2);
  if ((rc = scio_to_thread(calls_back, &r, &res, NULL)) < 0)
    return rc;
  ck_assert_int_eq((intptr_t)res, 1001);
  scio_token *tok;
  if ((rc = scio_token_open(&tok)) < 0)
    return rc;
  scio_token_close(tok);
  return 0;
}

START_TEST(allocation_failure_loop) {
  scio_oom_install(SCIO_OOM_LIBEVENT);
  scio_oom_run r = {.fn = oom_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* No leaks across runs                                                      */

static int some_calls(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++)
    CK_OK(scio_to_thread(plus_one, NULL, NULL, NULL));
  return 0;
}

START_TEST(runs_leave_no_fds_or_threads) {
  int fds0 = count_fds(), threads0 = count_threads();
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  for (int i = 0; i < 3; i++)
    CK_OK(scio_run(some_calls, NULL, &o));
  ck_assert_int_eq(count_fds(), fds0);
  ck_assert_int_eq(count_threads(), threads0);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *thread_suite(void) {
  Suite *s = suite_create("thread");
  TCase *tc = scio_tcase_new("to_thread", 30);
  scio_tcase_add(tc, to_thread_returns_the_result);
  scio_tcase_add(tc, to_thread_bad_input);
  tcase_add_test(tc, to_thread_outside_a_run);
  scio_tcase_add(tc, default_limiter_has_40_tokens);
  tcase_add_loop_test(tc, runs_leave_no_fds_or_threads, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("oom", 60);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("to_thread_cancel", 30);
  scio_tcase_add(tc, precancelled_call_never_runs);
  scio_tcase_add(tc, cancelled_while_waiting_for_a_token_never_runs);
  scio_tcase_add(tc, cancelled_while_running_waits_shielded);
  scio_tcase_add(tc, deadline_during_the_thread_not_caught_without_checkpoint);
  scio_tcase_add(tc, deadline_during_the_thread_caught_by_next_checkpoint);
  scio_tcase_add(tc, cancellation_seen_by_a_from_thread_call_is_not_caught);
  scio_tcase_add(tc, cancellation_seen_by_a_from_thread_call_stays_pending);
  scio_tcase_add(tc, abandoned_call_returns_at_once_and_keeps_its_token);
  tcase_add_loop_test(tc, run_end_joins_abandoned_threads, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("from_thread", 30);
  scio_tcase_add(tc, from_thread_round_trips);
  scio_tcase_add(tc, from_thread_sees_the_callers_cancellation);
  scio_tcase_add(tc, from_thread_after_abandon_is_cancelled);
  tcase_add_loop_test(tc, plain_thread_with_a_token, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("portal", 30);
  tcase_add_loop_test(tc, portal_start_call_stop, 0, SCIO_TEST_NBACKENDS);
  tcase_add_test(tc, portal_bad_input);
  tcase_add_loop_test(tc, portal_calls_from_several_threads, 0,
                      SCIO_TEST_NBACKENDS);
  tcase_add_loop_test(tc, portal_stop_cancels_or_waits, 0,
                      SCIO_TEST_NBACKENDS);
  tcase_add_loop_test(tc, portal_from_another_loop, 0, SCIO_TEST_NBACKENDS);
  tcase_add_loop_test(tc, portals_started_from_several_threads, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("to_thread_limits", 60);
  scio_tcase_add(tc, a_limiter_bounds_concurrent_calls);
  scio_tcase_add(tc, many_concurrent_calls);
  scio_tcase_add(tc, idle_workers_exit);
  scio_tcase_add(tc, cancelled_in_the_queue_never_runs);
  scio_tcase_add(tc, abandoned_in_the_queue_never_runs);
  scio_tcase_add(tc, queued_calls_wait_for_a_worker);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return scio_test_main(thread_suite()); }
