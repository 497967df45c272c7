/* scio — the core: run loop, tasks, nurseries, cancel scopes, time.
 *
 * Concepts (see docs/concepts.md and DESIGN.md §2):
 *
 * - A *task* is a stackful coroutine running a scio_fn.  It runs until it
 *   reaches a *checkpoint*; there is no preemption.  Every blocking scio call
 *   is a checkpoint: it first checks for cancellation and it yields to the
 *   scheduler at least once, even when it could complete at once.
 * - A *cancel scope* (scio_scope) delimits a region of a task that can be
 *   cancelled, by hand or by a deadline.  Cancellation is level-triggered:
 *   once a scope is cancelled, every checkpoint inside it returns
 *   SCIO_ECANCELED until the scope is closed.
 * - A *nursery* (scio_nursery) owns the tasks spawned into it.  Closing it
 *   waits for every child.  A child that fails cancels the nursery's scope,
 *   so its siblings and the body see SCIO_ECANCELED at their next checkpoint.
 *
 * Scopes and nurseries are caller-allocated (usually on the task's stack) and
 * strictly nested per task: close them in the reverse order of opening.  A
 * task that returns with a scope or nursery still open, or that closes them
 * out of order, aborts the process with a message naming where the scope was
 * opened: that is a programming error C cannot report otherwise.
 *
 * Cancellation, in the same words everywhere:
 *   SCIO_ECANCELED  an enclosing cancel scope was cancelled (by hand, by its
 *                   deadline, or because a sibling task failed).
 *   SCIO_ETIMEDOUT  a scope opened with SCIO_SCOPE_FAIL (scio_fail_after)
 *                   caught a cancellation caused by its own deadline.
 *
 * Threads: one scio_run per thread at a time; every function here must be
 * called from inside a task of the calling thread's run, except where noted.
 */
#ifndef SCIO_CORE_H
#define SCIO_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "scio/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A task body: returns 0 on success or a negative error code. */
typedef int (*scio_fn)(void *arg);

/* An opaque handle to a task, valid while the task exists. */
typedef struct scio_task scio_task;

/* "No deadline". */
#define SCIO_DEADLINE_NONE (INFINITY)

/* ------------------------------------------------------------------------ */
/* Running                                                                   */

enum scio_clock_kind {
  SCIO_CLOCK_REAL = 0, /* CLOCK_MONOTONIC */
  /* Trio's MockClock(autojump_threshold=0): time starts at 0.0 and, whenever
   * every task is blocked and no I/O is ready, jumps to the next deadline.
   * Timeout tests become instant and deterministic. */
  SCIO_CLOCK_AUTOJUMP = 1
};

enum scio_run_flags {
  /* No guard page below each task stack: a stack overflow then corrupts
   * memory instead of crashing cleanly.  On Linux >= 6.13 guard pages are
   * page-table markers (MADV_GUARD_INSTALL) that cost about a microsecond
   * per new stack and no memory mapping; on older kernels each guarded
   * stack costs two mappings, so vm.max_map_count (65530 by default) limits
   * a run to about 32,000 tasks, and this flag lifts that limit. */
  SCIO_RUN_NO_GUARD_PAGES = 1u << 0
};

typedef struct scio_instrument scio_instrument;

/* Options of scio_run.  All-zero (or a NULL pointer) means defaults. */
typedef struct scio_run_opts {
  /* libevent backend: "epoll", "poll", "select", "kqueue", ... or NULL for
   * libevent's best.  A backend that is not available is -ENOSYS. */
  const char *backend;
  /* Stack size of each task in bytes, rounded up to whole pages.  0 means
   * 256 KiB; at least 16 KiB.  Only touched pages cost memory. */
  size_t stack_size;
  /* How many finished tasks' stacks are kept for reuse.  0 means 256. The
   * cache is trimmed to a sixteenth of that while the loop is idle. */
  size_t stack_cache;
  unsigned flags;      /* enum scio_run_flags */
  int clock;           /* enum scio_clock_kind */
  /* An instrument installed before the root task starts (may be NULL). */
  const scio_instrument *instrument;
} scio_run_opts;

/* Run `fn(arg)` as the root task of a new event loop in this thread and return
 * once every task has finished.  Returns fn's result, or:
 *   SCIO_ENESTED  a scio_run is already running in this thread;
 *   -ENOSYS       the requested backend is not available;
 *   -EINVAL       bad options (e.g. an absurd stack size);
 *   SCIO_ENOMEM   the loop or the root task could not be allocated.
 * The root task's last error detail stays readable through scio_errmsg(). */
SCIO_API int scio_run(scio_fn fn, void *arg, const scio_run_opts *opts);

/* The backend of the current run ("epoll", ...), or NULL outside a run. */
SCIO_API const char *scio_backend(void);

/* ------------------------------------------------------------------------ */
/* Cancel scopes                                                             */

/* Opaque, caller-allocated storage; the layout is private. */
typedef union scio_scope {
  unsigned char opaque[192];
  void *align_ptr;
  double align_double;
} scio_scope;

enum scio_scope_flags {
  /* Hide cancellation of enclosing scopes from this region. */
  SCIO_SCOPE_SHIELD = 1u << 0,
  /* scio_scope_close returns SCIO_ETIMEDOUT when this scope's deadline (not
   * a manual cancel) cancelled it and the cancellation was delivered. */
  SCIO_SCOPE_FAIL = 1u << 1
};

/* Open a cancel scope with an absolute deadline (scio_now()-based; use
 * SCIO_DEADLINE_NONE for none) in the current task.  A deadline already in
 * the past cancels the first checkpoint inside.  Not a checkpoint.
 * Returns 0, or -EINVAL (deadline is NaN, or not inside a task); on error the
 * scope is not open. */
#define scio_scope_open(cs, deadline, flags)                                  \
  scio_scope_open_loc((cs), (deadline), (flags), __FILE__, __LINE__)
SCIO_API int scio_scope_open_loc(scio_scope *cs, double deadline, unsigned flags,
                                const char *file, int line);

/* Sugar: a scope whose deadline is now + seconds (negative: already expired).
 * scio_fail_after adds SCIO_SCOPE_FAIL.  Returns 0 or -EINVAL (NaN). */
#define scio_move_on_after(cs, seconds)                                       \
  scio_move_on_after_loc((cs), (seconds), __FILE__, __LINE__)
#define scio_fail_after(cs, seconds)                                          \
  scio_fail_after_loc((cs), (seconds), __FILE__, __LINE__)
SCIO_API int scio_move_on_after_loc(scio_scope *cs, double seconds,
                                   const char *file, int line);
SCIO_API int scio_fail_after_loc(scio_scope *cs, double seconds,
                                const char *file, int line);

/* Close the innermost scope of the current task.  Not a checkpoint.  Returns
 * 0, or SCIO_ETIMEDOUT for a SCIO_SCOPE_FAIL scope whose deadline fired and
 * whose cancellation was delivered inside it.  Closing a scope that is not
 * the innermost open one aborts (misuse). */
SCIO_API int scio_scope_close(scio_scope *cs);

/* Cancel the scope: every task inside it (and the tasks of nurseries opened
 * inside it) sees SCIO_ECANCELED at its next checkpoint; tasks blocked in
 * it are woken.  Idempotent.  May be called from any task of the run, before
 * or after the scope closes (then it does nothing). */
SCIO_API void scio_scope_cancel(scio_scope *cs);

/* Move the deadline.  A deadline in the past cancels at once.  Returns 0 or
 * -EINVAL (NaN). */
SCIO_API int scio_scope_set_deadline(scio_scope *cs, double deadline);
SCIO_API double scio_scope_deadline(const scio_scope *cs);

/* Turn the shield on or off.  Removing a shield delivers a pending outer
 * cancellation to the tasks inside, waking those that are blocked. */
SCIO_API void scio_scope_set_shield(scio_scope *cs, int shield);
SCIO_API int scio_scope_shield(const scio_scope *cs);

/* True once cancellation was requested (by hand or by the deadline). */
SCIO_API int scio_scope_cancel_called(const scio_scope *cs);

/* True when this scope is the one that caught a cancellation: a checkpoint
 * inside returned SCIO_ECANCELED because of this scope.  The scope's body
 * may then treat SCIO_ECANCELED as "moved on".  Meaningful after close. */
SCIO_API int scio_scope_cancelled_caught(const scio_scope *cs);

/* The earliest deadline that applies to the current task (up to the nearest
 * shield), SCIO_DEADLINE_NONE if none, -INFINITY if already cancelled. */
SCIO_API double scio_current_effective_deadline(void);

/* ------------------------------------------------------------------------ */
/* Nurseries and tasks                                                       */

typedef union scio_nursery {
  unsigned char opaque[320];
  void *align_ptr;
  double align_double;
} scio_nursery;

/* Open a nursery in the current task.  The code up to scio_nursery_close (the
 * "body") runs inside the nursery's cancel scope.  Not a checkpoint.
 * Returns 0 or -EINVAL (not inside a task). */
#define scio_nursery_open(n) scio_nursery_open_loc((n), __FILE__, __LINE__)
SCIO_API int scio_nursery_open_loc(scio_nursery *n, const char *file, int line);

/* Schedule fn(arg) as a child of n.  The child starts at a later scheduler
 * round.  It may be called from any task of the run while n is open,
 * including from n's children while n is closing.
 * Returns 0, or SCIO_ENOMEM (no task or stack could be had; the errmsg
 * names the cause, e.g. vm.max_map_count), or SCIO_ECLOSED (n is already
 * closed: a misuse reported, nothing spawned). */
SCIO_API int scio_start_soon(scio_nursery *n, scio_fn fn, void *arg);
/* The same with a task name (the pointer is kept, not copied). */
SCIO_API int scio_start_soon_named(scio_nursery *n, scio_fn fn, void *arg,
                                   const char *name);

/* Start fn(arg) as a child of n and wait until it calls scio_started(v);
 * *value (if not NULL) gets v.  Until then the child runs inside the
 * caller's cancel scopes, not n's.  A checkpoint.  Returns 0 or:
 *   the child's error, if it failed before scio_started;
 *   SCIO_ENOTSTARTED if it returned 0 without calling scio_started;
 *   SCIO_ECANCELED if the caller was cancelled first (the child has ended);
 *   SCIO_ENOMEM, SCIO_ECLOSED as scio_start_soon.
 * A pending scio_start keeps n open: its close waits for it. */
SCIO_API int scio_start(scio_nursery *n, scio_fn fn, void *arg, void **value);

/* Signal the task waiting in scio_start that this task has started.  Returns
 * 0; a no-op returning 0 in a task launched by scio_start_soon; -EINVAL when
 * called twice or outside a task. */
SCIO_API int scio_started(void *value);

/* Cancel the nursery's scope (the body and every child). */
SCIO_API void scio_nursery_cancel(scio_nursery *n);

/* Close the nursery: wait until every child has finished (this wait is not
 * cut short by cancellation; the children see it), then close its scope.
 * A checkpoint.  Returns 0, or:
 *   the first failure's code, when one or more children failed; every
 *   failure is listed in scio_errmsg() ("2 tasks failed: a: ...; b: ...");
 *   SCIO_ECANCELED when an enclosing scope of the nursery is cancelled. */
SCIO_API int scio_nursery_close(scio_nursery *n);

/* The current task, or NULL outside a run. */
SCIO_API scio_task *scio_task_current(void);
/* The task's name: the one given, else the function's symbol where the
 * dynamic linker knows it, else "task@0x...". Valid while the task exists. */
SCIO_API const char *scio_task_name(scio_task *t);
/* Name a task; the string is kept by pointer and must outlive the task. */
SCIO_API void scio_task_set_name(scio_task *t, const char *name);

/* ------------------------------------------------------------------------ */
/* Checkpoints and time                                                      */

/* Yield to the scheduler, then return 0 or SCIO_ECANCELED. */
SCIO_API int scio_checkpoint(void);
/* Return SCIO_ECANCELED if the current task is cancelled, else 0.  Does not
 * yield. */
SCIO_API int scio_checkpoint_if_cancelled(void);
/* Yield to the scheduler without checking cancellation.  Returns 0. */
SCIO_API int scio_cancel_shielded_checkpoint(void);

/* Current time in seconds (monotonic; virtual under the autojump clock).
 * Outside a run: CLOCK_MONOTONIC. */
SCIO_API double scio_now(void);

/* Sleep for `seconds` (<= 0: just a checkpoint), until `deadline`, or until
 * cancelled.  Checkpoints.  Return 0, SCIO_ECANCELED, or -EINVAL (NaN). */
SCIO_API int scio_sleep(double seconds);
SCIO_API int scio_sleep_until(double deadline);
/* Sleep until cancelled: always returns SCIO_ECANCELED. */
SCIO_API int scio_sleep_forever(void);

/* Block until every other task is blocked (none runnable, no I/O ready).
 * Under the autojump clock this happens before time jumps.  A checkpoint;
 * returns 0 or SCIO_ECANCELED. */
SCIO_API int scio_wait_all_tasks_blocked(void);

/* Wait until a foreign fd is readable / writable.  The fd stays the caller's,
 * who must call scio_notify_closing(fd) before closing it (a number reused by
 * a new file is detected and re-registered, but a file closed while a task
 * waits on it is not reported on every backend).  At most one task may wait
 * for each direction of an fd (SCIO_EBUSY).  Checkpoints: 0, SCIO_ECANCELED,
 * SCIO_ECLOSED (scio_notify_closing was called on the fd), SCIO_EBUSY,
 * SCIO_ENOMEM, -EBADF (fd not open), SCIO_EINVAL (outside a task). */
SCIO_API int scio_wait_readable(int fd);
SCIO_API int scio_wait_writable(int fd);
/* Call before closing an fd others may wait on: wakes them with SCIO_ECLOSED
 * and forgets the fd. Not a checkpoint. */
SCIO_API void scio_notify_closing(int fd);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */

/* Print the tree of nurseries and tasks of the current run, with what each
 * task is waiting on and the deadlines that apply, to `out`. */
SCIO_API void scio_dump_tasks(FILE *out);

/* Instrument hooks (every slot may be NULL).  They run on the scheduler's
 * path: keep them short and do not call blocking scio functions. */
struct scio_instrument {
  void (*task_spawned)(void *ctx, scio_task *t);
  void (*task_scheduled)(void *ctx, scio_task *t); /* became runnable */
  void (*before_task_step)(void *ctx, scio_task *t);
  void (*after_task_step)(void *ctx, scio_task *t);
  void (*task_exited)(void *ctx, scio_task *t);
  /* timeout: seconds the poll may block (0 for a non-blocking poll). */
  void (*before_io_wait)(void *ctx, double timeout);
  void (*after_io_wait)(void *ctx, double timeout);
  void *ctx;
};

/* Add / remove an instrument of the current run (at most 8).  The struct is
 * kept by pointer.  Return 0, -EINVAL (outside a run, or unknown on remove),
 * or -ENOSPC (too many). */
SCIO_API int scio_instrument_add(const scio_instrument *ins);
SCIO_API int scio_instrument_remove(const scio_instrument *ins);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_CORE_H */
