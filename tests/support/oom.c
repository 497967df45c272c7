/* The allocation-failure harness of the Check suites: see oom.h. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "oom.h"

/* The failing allocation of this run (0: none), how many allocations were
 * counted so far, whether the failure persists after it and whether it was
 * reached; counting happens only while armed. */
static long oom_at, oom_count, oom_live;
static int oom_persist, oom_hit, oom_armed;

static int oom_should_fail(void) {
  if (!oom_armed || !oom_at)
    return 0;
  oom_count++;
  if (oom_count == oom_at || (oom_persist && oom_count > oom_at)) {
    oom_hit = 1;
    return 1;
  }
  return 0;
}

/* libevent's signatures; scio's below add a context. */
static void *oom_malloc(size_t n) {
  if (oom_should_fail())
    return NULL;
  void *p = malloc(n);
  if (p)
    oom_live++;
  return p;
}

static void *oom_realloc(void *p, size_t n) {
  if (oom_should_fail())
    return NULL;
  void *q = realloc(p, n);
  if (q && !p)
    oom_live++;
  return q;
}

static void oom_free(void *p) {
  if (p)
    oom_live--;
  free(p);
}

static void *oom_malloc_c(void *c, size_t n) {
  (void)c;
  return oom_malloc(n);
}

static void *oom_realloc_c(void *c, void *p, size_t n) {
  (void)c;
  return oom_realloc(p, n);
}

static void oom_free_c(void *c, void *p) {
  (void)c;
  oom_free(p);
}

static void quiet_log(int severity, const char *msg) {
  (void)severity;
  (void)msg;
}

/* Why libevent's hook may be installed late (Check's no-fork mode, where
 * earlier tests of the process have used libevent): libevent forbids it
 * because memory from one allocator must not be freed by another, but the
 * counting functions pass everything through to malloc, realloc and free.
 * What is left is the counting: a block libevent allocated before and frees
 * during a checked run would look like a negative leak.  The blocks that
 * outlive a run are libevent's process-wide ones, freed at exit, and the
 * first run of scio_oom_loop (unchecked) frees any other. */
int scio_oom_install(unsigned flags) {
  /* A test that failed inside the loop (no-fork mode: by a longjmp) may
   * have left the state armed. */
  oom_at = oom_count = 0;
  oom_persist = oom_hit = oom_armed = 0;
  if (flags & SCIO_OOM_LIBEVENT) {
    static int libevent_done;
    if (!libevent_done) {
      event_set_mem_functions(oom_malloc, oom_realloc, oom_free);
      event_set_log_callback(quiet_log); /* it logs every failed calloc */
      libevent_done = 1;
    }
  }
  static const scio_allocator counting = {oom_malloc_c, oom_realloc_c,
                                          oom_free_c, NULL};
  scio_set_allocator(&counting);
  return 1;
}

void scio_oom_uninstall(void) { scio_set_allocator(NULL); }

void scio_oom_arm(int on) { oom_armed = on; }

long scio_oom_live_blocks(void) { return oom_live; }

int scio_oom_hit(void) { return oom_hit; }

int scio_oom_count_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 1024; fd++)
    if (fcntl(fd, F_GETFD) != -1)
      n++;
  return n;
}

int scio_oom_run_op(void *run) {
  scio_oom_run *r = run;
  return scio_run(r->fn, r->arg, &r->opts);
}

static int accepted(int rc, const scio_oom_opts *opts) {
  if (rc == 0)
    return 1;
  if (!oom_hit)
    return 0;
  if (rc == SCIO_ENOMEM)
    return 1;
  for (const int *ok = opts->also_ok; ok && *ok; ok++)
    if (rc == *ok)
      return 1;
  return 0;
}

void scio_oom_loop(int (*op)(void *ctx), void *ctx, const char *what,
                   const scio_oom_opts *opts) {
  static const scio_oom_opts defaults = {0, 0, NULL};
  if (!opts)
    opts = &defaults;
  long max_points = opts->max_points > 0 ? opts->max_points : 10000;
  /* Settle: a run without failures, before anything is counted. */
  int rc = op(ctx);
  ck_assert_msg(rc == 0, "%s: the run without failures: rc=%s (%s)", what,
                scio_err_name(rc), scio_errmsg());
  /* The root task's last detail outlives a run (the thread adopts it); it
   * must not be counted against the next run. */
  scio_errmsg_clear();
  for (oom_persist = 0; oom_persist < 2; oom_persist++) {
    for (long n = 1;; n++) {
      long live0 = oom_live;
      int fds0 = scio_oom_count_fds();
      oom_count = 0;
      oom_hit = 0;
      oom_at = n;
      oom_armed = !opts->self_armed;
      rc = op(ctx);
      oom_armed = 0;
      oom_at = 0;
      ck_assert_msg(accepted(rc, opts), "%s: fail@%ld persist=%d: rc=%s (%s)",
                    what, n, oom_persist, scio_err_name(rc), scio_errmsg());
      scio_errmsg_clear();
      ck_assert_msg(oom_live == live0,
                    "%s: fail@%ld persist=%d: %ld blocks leaked", what, n,
                    oom_persist, oom_live - live0);
      int fds = scio_oom_count_fds();
      ck_assert_msg(fds == fds0, "%s: fail@%ld persist=%d: %d fds leaked",
                    what, n, oom_persist, fds - fds0);
      if (!oom_hit) {
        /* Why: an operation that allocates nothing (or a hook that is not
         * installed) would pass having tested nothing. */
        ck_assert_msg(n > 1, "%s: persist=%d: not one allocation was "
                             "failed: the loop tested nothing",
                      what, oom_persist);
        break;
      }
      ck_assert_msg(n < max_points, "%s: no end to the allocation points",
                    what);
    }
  }
}
