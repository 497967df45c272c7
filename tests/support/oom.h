/* tests/support/oom.h -- the allocation-failure ("OOM") harness of the Check
 * suites (tests/libsciotest.la).
 *
 * A counting allocator fails allocation N: once, or from N on.  It serves
 * scio (scio_set_allocator) and, on request, libevent
 * (event_set_mem_functions), and counts the blocks it has handed out and
 * not yet seen freed.  scio_oom_loop() runs an operation once without
 * failures (which also lets one-time allocations, such as libevent's list
 * of backends, happen before anything is counted), then with N = 1, 2, ...
 * until a run completes without reaching N; the whole series twice, with
 * allocation N failing once and then with every allocation from N on
 * failing.  After every run it asserts that
 *   - the result is 0, or SCIO_ENOMEM (or a code the test accepts, see
 *     scio_oom_opts.also_ok) and the failing allocation was reached;
 *   - no block leaked;
 *   - no file descriptor leaked;
 * and that each of the two series failed at least one allocation (an
 * operation that allocates nothing would otherwise pass, vacuously).
 *
 * In a Check test (a loop test, _i picking the backend):
 *
 *   START_TEST(allocation_failure_loop) {
 *     scio_oom_install(SCIO_OOM_LIBEVENT);
 *     scio_oom_run r = {.fn = oom_body};
 *     r.opts.backend = scio_test_backend(_i);
 *     scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
 *     scio_oom_uninstall();
 *   }
 *   END_TEST
 */
#ifndef SCIO_TESTS_SUPPORT_OOM_H
#define SCIO_TESTS_SUPPORT_OOM_H

#include "scio.h"

/* Flags of scio_oom_install(). */
enum {
  /* libevent's allocations go through the counting allocator too (for the
   * rest of the process: see scio_oom_install()). */
  SCIO_OOM_LIBEVENT = 1 << 0
};

/* Install the counting allocator for scio (with SCIO_OOM_LIBEVENT: and for
 * libevent, whose log is then silenced, as it logs every failed
 * allocation), and reset the harness's state.  Nothing fails until
 * scio_oom_loop() says so.  Works in Check's fork and no-fork (CK_FORK=no)
 * modes alike: libevent's hook passes through to malloc, so installing it
 * after libevent's first use is safe (oom.c says why).  Returns 1 (kept an
 * int for the callers written when no-fork mode returned 0). */
int scio_oom_install(unsigned flags);

/* scio's default allocator again.  libevent's cannot be given back: it
 * stays the counting one, which passes everything through. */
void scio_oom_uninstall(void);

typedef struct scio_oom_opts {
  /* The operation arms the counting itself, with scio_oom_arm(), around the
   * calls under test, so that what it does around them (making the input,
   * checking the output) never fails.  Otherwise the whole operation is
   * armed. */
  int self_armed;
  /* Fail the test when a run still reaches allocation max_points (a loop
   * without end); 0: 10000. */
  long max_points;
  /* Results, besides SCIO_ENOMEM, accepted from a run that reached its
   * failing allocation; the list ends at the first 0.  NULL: none. */
  const int *also_ok;
} scio_oom_opts;

/* Run the series described above: op(ctx) must return a scio result.
 * `what' names the operation in failure messages.  opts may be NULL. */
void scio_oom_loop(int (*op)(void *ctx), void *ctx, const char *what,
                   const scio_oom_opts *opts);

/* With scio_oom_opts.self_armed: count (and fail) allocations only while
 * armed (on != 0). */
void scio_oom_arm(int on);

/* The usual operation, one scio_run(fn, arg, &opts): pass scio_oom_run_op
 * and a scio_oom_run to scio_oom_loop(). */
typedef struct scio_oom_run {
  scio_fn fn;
  void *arg;
  scio_run_opts opts;
} scio_oom_run;

int scio_oom_run_op(void *run);

/* Blocks from the counting allocator not freed yet. */
long scio_oom_live_blocks(void);
/* Whether the current (or last) run of scio_oom_loop reached its failing
 * allocation. */
int scio_oom_hit(void);
/* Open file descriptors (below 1024) of the process. */
int scio_oom_count_fds(void);

#endif /* SCIO_TESTS_SUPPORT_OOM_H */
