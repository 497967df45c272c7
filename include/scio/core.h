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
 *   SCIO_ETIMEDOUT  a scope opened with SCIO_SCOPE_FAIL (scio_fail_after,
 *                   scio_fail_at) caught a cancellation caused by its own
 *                   deadline.
 * scio_errmsg() after SCIO_ECANCELED says which scope and why (see "Who
 * catches" in the cancel-scope section).
 *
 * Threads: one scio_run per thread at a time; every function here must be
 * called from inside a task of the calling thread's run, except where noted.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 * Scopes and nurseries are the caller's storage, which the run uses while
 * they are open.
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
   * Timeout tests become instant and deterministic.  Like Trio's, it does
   * not wait for work in other threads: a task waiting in scio_to_thread
   * (or for a portal, a process, a signal) counts as blocked, so a timeout
   * around it expires at once in real time.  Give such waits no deadline
   * in a test, or use the real clock there. */
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
   * libevent's best.  A backend that is not available is SCIO_ENOSYS. */
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
 *   SCIO_ENOSYS   the requested backend is not available;
 *   SCIO_EINVAL   bad options (e.g. an absurd stack size);
 *   SCIO_ENOMEM   the loop or the root task could not be allocated.
 * The root task's last error detail stays readable through scio_errmsg().
 * Not a checkpoint (it is called outside any run, and runs one). */
SCIO_API int scio_run(scio_fn fn, void *arg, const scio_run_opts *opts);

/* The backend of the current run ("epoll", ...), or NULL outside a run.
 * The string is owned by the run and valid while it lasts.  Not a
 * checkpoint; may be called outside a task.  Never fails. */
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
  /* The scope reports SCIO_ETIMEDOUT on close when it caught a cancellation
   * caused by its own deadline (not by a manual cancel). */
  SCIO_SCOPE_FAIL = 1u << 1
};

/* Who catches a cancellation (Trio's rule).  A checkpoint that returns
 * SCIO_ECANCELED starts a cancellation on its way out of the task's
 * innermost scope.  When a scope closes with one on its way out, it catches
 * it if it was cancelled itself and no cancellation of an enclosing scope
 * is visible to it (none, or it is shielded); otherwise the cancellation
 * goes on to the enclosing scope.  So of two nested cancelled scopes the
 * outer one catches, whatever order they were cancelled in, as long as
 * both were cancelled when the inner one closed.  scio_scope_close counts a
 * cancellation as on its way out once one was delivered inside the scope;
 * scio_scope_close_with decides from the body's result instead.
 *
 * Why: every checkpoint that returns SCIO_ECANCELED sets scio_errmsg() to
 * the reason of the scope that caused it (the outermost cancelled scope the
 * task can see), e.g. "cancelled: deadline of the scope opened at
 * main.c:12 expired", "cancelled: shutting down (scope opened at
 * main.c:12)", "cancelled: the scope opened at main.c:12 was cancelled",
 * or, for a nursery a child's failure cancelled, "cancelled: task job-3
 * failed: ECONNREFUSED: ...".  The first cancel of a scope gives its
 * reason; later ones change nothing. */

/* Open a cancel scope with an absolute deadline (scio_now()-based; use
 * SCIO_DEADLINE_NONE for none) in the current task.  A deadline already in
 * the past cancels the first checkpoint inside.  Not a checkpoint.
 * Returns 0, or SCIO_EINVAL (deadline is NaN, unknown flags, or not inside
 * a task); on error the scope is not open. */
#define scio_scope_open(cs, deadline, flags)                                  \
  scio_scope_open_loc((cs), (deadline), (flags), __FILE__, __LINE__)
SCIO_API int scio_scope_open_loc(scio_scope *cs, double deadline, unsigned flags,
                                const char *file, int line);

/* Sugar for Trio's move_on_after / fail_after (a deadline now + seconds;
 * negative: already expired) and move_on_at / fail_at (an absolute
 * deadline).  The fail_ variants add SCIO_SCOPE_FAIL.  Not checkpoints.
 * Return 0 or SCIO_EINVAL (NaN, or not inside a task). */
#define scio_move_on_after(cs, seconds)                                       \
  scio_move_on_after_loc((cs), (seconds), __FILE__, __LINE__)
#define scio_fail_after(cs, seconds)                                          \
  scio_fail_after_loc((cs), (seconds), __FILE__, __LINE__)
#define scio_move_on_at(cs, deadline)                                         \
  scio_move_on_at_loc((cs), (deadline), __FILE__, __LINE__)
#define scio_fail_at(cs, deadline)                                            \
  scio_fail_at_loc((cs), (deadline), __FILE__, __LINE__)
SCIO_API int scio_move_on_after_loc(scio_scope *cs, double seconds,
                                   const char *file, int line);
SCIO_API int scio_fail_after_loc(scio_scope *cs, double seconds,
                                const char *file, int line);
SCIO_API int scio_move_on_at_loc(scio_scope *cs, double deadline,
                                 const char *file, int line);
SCIO_API int scio_fail_at_loc(scio_scope *cs, double deadline,
                              const char *file, int line);

/* A scope made before it is entered (Trio's CancelScope() outside `with`):
 * scio_scope_init sets up caller storage with a deadline and flags; it
 * needs no task and allocates nothing.  Until it is entered, the scope can
 * be cancelled (scio_scope_cancel, _cancel_reason), given a deadline
 * (scio_scope_set_deadline), shielded and queried, from any task.
 * scio_scope_enter then opens it in the current task, exactly like
 * scio_scope_open: if it was cancelled, or its deadline has passed, the
 * first checkpoint inside returns SCIO_ECANCELED.  Close it with
 * scio_scope_close or scio_scope_close_with.  A scope is entered at most
 * once (initialising the storage again, once closed, makes a new scope).
 * Neither call is a checkpoint.
 * scio_scope_init returns 0 or SCIO_EINVAL (deadline is NaN, unknown
 * flags: the storage is then unusable; or cs is an open scope, left as
 * it is).  scio_scope_enter returns 0 or
 * SCIO_EINVAL (not inside a task; the scope was not initialised, is
 * already entered, or was entered and closed). */
SCIO_API int scio_scope_init(scio_scope *cs, double deadline, unsigned flags);
#define scio_scope_enter(cs) scio_scope_enter_loc((cs), __FILE__, __LINE__)
SCIO_API int scio_scope_enter_loc(scio_scope *cs, const char *file, int line);

/* Close the innermost scope of the current task.  Not a checkpoint.  Returns
 * 0, or SCIO_ETIMEDOUT for a SCIO_SCOPE_FAIL scope that caught a
 * cancellation caused by its deadline.  Closing a scope that is not the
 * innermost open one aborts (misuse).  The storage stays the caller's; once
 * closed the run no longer uses it. */
SCIO_API int scio_scope_close(scio_scope *cs);

/* Close cs and map the result rc of the code that ran inside it:
 *   rc == SCIO_ECANCELED: 0 if cs caught the cancellation (SCIO_ETIMEDOUT,
 *     with the errmsg saying so, for a SCIO_SCOPE_FAIL scope whose deadline
 *     caused it); else SCIO_ECANCELED, which belongs to an enclosing scope
 *     (pass it on: that scope's scio_scope_close_with will catch it);
 *   rc another error: rc (the error replaced the cancellation: cs catches
 *     nothing);
 *   rc >= 0: what scio_scope_close returns if that is an error
 *     (SCIO_ETIMEDOUT), else rc.
 * So a body is written as
 *     scio_scope cs;
 *     scio_move_on_after(&cs, 5.0);
 *     int rc = work();
 *     rc = scio_scope_close_with(&cs, rc);
 * Not a checkpoint; misuse aborts as scio_scope_close. */
SCIO_API int scio_scope_close_with(scio_scope *cs, int rc);

/* Cancel the scope: every task inside it (and the tasks of nurseries opened
 * inside it) sees SCIO_ECANCELED at its next checkpoint; tasks blocked in
 * it are woken.  Idempotent: the first cancel (or the deadline) gives the
 * reason.  May be called from any task of the run, before the scope is
 * entered (scio_scope_init), while it is open, or after it closed (then it
 * does nothing).  Not a checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_scope_cancel(scio_scope *cs);
/* The same, with a reason for scio_errmsg() ("cancelled: <reason> (scope
 * opened at file:line)").  The text is copied, up to 63 bytes (longer text
 * ends in "..."); NULL is scio_scope_cancel.  Not a checkpoint.  Returns
 * nothing; never fails. */
SCIO_API void scio_scope_cancel_reason(scio_scope *cs, const char *reason);

/* Move the deadline (before entry too).  A deadline in the past cancels an
 * open scope at once (one not yet entered, on entry).  Not a checkpoint.
 * Returns 0 or SCIO_EINVAL (NaN). */
SCIO_API int scio_scope_set_deadline(scio_scope *cs, double deadline);
/* The scope's deadline (SCIO_DEADLINE_NONE if none).  Not a checkpoint.
 * Never fails. */
SCIO_API double scio_scope_deadline(const scio_scope *cs);

/* Turn the shield on or off.  Removing a shield delivers a pending outer
 * cancellation to the tasks inside, waking those that are blocked.  Not a
 * checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_scope_set_shield(scio_scope *cs, int shield);
/* 1 if the scope is shielded, else 0.  Not a checkpoint.  Never fails. */
SCIO_API int scio_scope_shield(const scio_scope *cs);

/* True once cancellation was requested (by hand or by the deadline; for a
 * scope not yet entered, also when its deadline has passed).  Not a
 * checkpoint.  Never fails. */
SCIO_API int scio_scope_cancel_called(const scio_scope *cs);

/* True when this scope caught a cancellation (see "Who catches" above): the
 * body may then treat its SCIO_ECANCELED as "moved on".  Decided at close:
 * meaningful after close.  Not a checkpoint.  Never fails. */
SCIO_API int scio_scope_cancelled_caught(const scio_scope *cs);

/* The earliest deadline that applies to the current task (up to the nearest
 * shield), SCIO_DEADLINE_NONE if none (also outside a task), -INFINITY if
 * already cancelled.  Not a checkpoint.  Never fails. */
SCIO_API double scio_current_effective_deadline(void);

/* ------------------------------------------------------------------------ */
/* Nurseries and tasks                                                       */

typedef union scio_nursery {
  unsigned char opaque[320];
  void *align_ptr;
  double align_double;
} scio_nursery;

/* Open a nursery in the current task.  The code up to scio_nursery_close (the
 * "body") runs inside the nursery's cancel scope.  The storage n stays the
 * caller's: it must outlive scio_nursery_close.  Not a checkpoint.
 * Returns 0 or SCIO_EINVAL (not inside a task). */
#define scio_nursery_open(n) scio_nursery_open_loc((n), __FILE__, __LINE__)
SCIO_API int scio_nursery_open_loc(scio_nursery *n, const char *file, int line);

/* The nursery's own cancel scope (Trio's nursery.cancel_scope): the body
 * and every child run inside it.  Shield it, give it a deadline, cancel it
 * or query it with the scio_scope_* calls; scio_scope_cancelled_caught
 * stays readable after scio_nursery_close.  Closing it is
 * scio_nursery_close's job (scio_scope_close on it aborts).  The pointer
 * lives in n (owned by it: valid while n is).  NULL if n was never
 * opened.  Not a checkpoint.  Never fails. */
SCIO_API scio_scope *scio_nursery_scope(scio_nursery *n);

/* Schedule fn(arg) as a child of n.  The child starts at a later scheduler
 * round.  It may be called from any task of the run while n is open,
 * including from n's children while n is closing.  Not a checkpoint.
 * Returns 0, or SCIO_ENOMEM (no task or stack could be had; the errmsg
 * names the cause, e.g. vm.max_map_count), SCIO_EINVAL (fn is NULL, or not
 * inside a task) or SCIO_ECLOSED (n is already closed: a misuse reported,
 * nothing spawned).
 *
 * Task names.  scio_start_soon and scio_start are macros that name the
 * child after the function argument as written at the call site (#fn:
 * "worker" for scio_start_soon(&n, worker, arg)), so dumps and failure
 * lists read well without -rdynamic.  The _named functions take any name
 * (kept by pointer, not copied: it must outlive the task; NULL resolves
 * the function's symbol where the dynamic linker knows it, else
 * "task@0x...").  The functions scio_start_soon and scio_start are
 * exported too, for function pointers and other languages: call them as
 * (scio_start_soon)(n, fn, arg), or #undef the macro; they pass NULL. */
SCIO_API int scio_start_soon_named(scio_nursery *n, scio_fn fn, void *arg,
                                   const char *name);
SCIO_API int scio_start_soon(scio_nursery *n, scio_fn fn, void *arg);
#define scio_start_soon(n, fn, arg)                                           \
  scio_start_soon_named((n), (fn), (arg), #fn)

/* Start fn(arg) as a child of n and wait until it calls scio_started(v);
 * *value (if not NULL) gets v, and NULL on error.  Until then the child
 * runs inside the caller's cancel scopes, not n's; once it calls
 * scio_started it moves into n.  A checkpoint.
 *
 * The child is spawned even when the caller is already cancelled (Trio's
 * nursery.start): it then sees SCIO_ECANCELED at its first checkpoint.
 * Once the caller is cancelled, scio_started moves nothing: the child
 * stays under the caller's scopes and nothing reaches n.  So what
 * scio_start returns follows from what the child did: 0 (and its value)
 * if it called scio_started and either moved into n or returned 0; else
 *   the child's error, if it failed before (or without) moving into n;
 *   SCIO_ECANCELED if it ended cancelled under the caller's scopes (the
 *                  caller's cancellation; caught like any other);
 *   SCIO_ENOTSTARTED if it returned 0 without calling scio_started;
 *   SCIO_ENOMEM, SCIO_EINVAL, SCIO_ECLOSED as scio_start_soon.
 * An error of the child before it moved is never reported to n.  A pending
 * scio_start keeps n open: its close waits for it.  Names: as
 * scio_start_soon (scio_start is a macro over scio_start_named). */
SCIO_API int scio_start_named(scio_nursery *n, scio_fn fn, void *arg,
                              void **value, const char *name);
SCIO_API int scio_start(scio_nursery *n, scio_fn fn, void *arg, void **value);
#define scio_start(n, fn, arg, value)                                         \
  scio_start_named((n), (fn), (arg), (value), #fn)

/* Signal the task waiting in scio_start that this task has started: hand it
 * `value` and move this task into the target nursery (unless the waiting
 * task was cancelled meanwhile; see scio_start).  Not a checkpoint.
 * Returns 0; a no-op returning 0 in a task launched by scio_start_soon;
 * SCIO_EINVAL when called twice or outside a task. */
SCIO_API int scio_started(void *value);

/* Cancel the nursery's scope (the body and every child).  Not a
 * checkpoint.  Does nothing if n is not open.  Returns nothing; never
 * fails. */
SCIO_API void scio_nursery_cancel(scio_nursery *n);

/* Close the nursery: wait until every child has finished (this wait is not
 * cut short by cancellation; the children see it), then close its scope.
 * A checkpoint only as a schedule point, not a cancellation point: with no
 * child left it yields once and never returns SCIO_ECANCELED on its own
 * account.  The storage n is the caller's again afterwards.  Returns 0, or:
 *   the first failure's code, when one or more children failed: a child
 *     fails when it returns a negative code, except SCIO_ECANCELED while
 *     an enclosing scope is cancelled (its cancellation); SCIO_ECANCELED
 *     with none cancelled is a failure, whose message says so.  Every
 *     failure is listed in scio_errmsg() ("2 tasks failed: a: EIO: detail;
 *     b: EPERM") and can be walked with scio_failure_get;
 *   SCIO_ECANCELED when a child (or, with scio_nursery_close_with, the
 *     body) ended cancelled and an enclosing scope of the nursery is
 *     cancelled: the cancellation goes on to that scope.  When only the
 *     nursery's own scope was cancelled, it catches it and close returns 0.
 * Misuse (not open, closed out of order, not the opening task) aborts. */
SCIO_API int scio_nursery_close(scio_nursery *n);

/* scio_nursery_close for a body that has a result of its own, as an
 * exception leaving a Trio nursery block joins the nursery's error group:
 *
 *     int rc = body(&n);
 *     return scio_nursery_close_with(&n, rc);
 *
 * body_rc >= 0 adds nothing.  SCIO_ECANCELED while the nursery's scope is
 * cancelled is the body's cancellation: it propagates as a child's does.
 * Any other negative code is a failure of the body: it is recorded in the
 * group (task "NAME (body)"; SCIO_ECANCELED with nothing cancelled is
 * reported as that mistake), it cancels the children before the wait, and
 * the result is the group's first code (an earlier child failure comes
 * first).  When the body's failure is the only one, scio_errmsg() keeps the
 * body's own detail.  Otherwise as scio_nursery_close (a checkpoint only
 * as a schedule point). */
SCIO_API int scio_nursery_close_with(scio_nursery *n, int body_rc);

/* The error group of the current task: the failures that its last
 * scio_nursery_close (or scio_start, or scio_nursery_close_with) reported,
 * in the order they happened, while scio_errmsg() still shows that report.
 * Once another error detail replaces it (or scio_errmsg_clear), the count
 * is 0.  Failures whose record could not be allocated are not listed (the
 * errmsg says how many). */
typedef struct scio_failure_info {
  const char *task;    /* the task's name; "NAME (body)" for a body */
  int code;            /* what it returned */
  const char *message; /* its scio_errmsg() when it ended, "" if none */
} scio_failure_info;

/* The number of failures in the current task's error group (above): 0
 * when there is none, or outside a task.  Not a checkpoint.  Never
 * fails. */
SCIO_API size_t scio_failures_count(void);
/* The i-th failure (from 0) of the group into *out.  The strings belong to
 * the task: they stay valid until it reports another group or exits, and
 * need no freeing; an ignored group is freed then too.  Not a checkpoint.
 * Returns 0, or
 * SCIO_EINVAL (out is NULL, i >= scio_failures_count(), or outside a task;
 * *out is zeroed, and the error detail is left alone so the group stays
 * readable). */
SCIO_API int scio_failure_get(size_t i, scio_failure_info *out);

/* The current task, or NULL outside a run.  The handle is owned by the run
 * and valid while the task exists.  Not a checkpoint.  Never fails. */
SCIO_API scio_task *scio_task_current(void);
/* The task's name: the one given (by the scio_start_soon / scio_start
 * macros, the function as written at the call site), else the function's
 * symbol where the dynamic linker knows it, else "task@0x...";
 * "(none)" for NULL.  The string is owned by the task (or is the caller's
 * name) and valid while the task exists.  Not a checkpoint.  Never
 * fails. */
SCIO_API const char *scio_task_name(scio_task *t);
/* Name a task (NULL t does nothing); the string is kept by pointer, not
 * copied, and must outlive the task.  Not a checkpoint.  Returns nothing;
 * never fails. */
SCIO_API void scio_task_set_name(scio_task *t, const char *name);

/* ------------------------------------------------------------------------ */
/* Checkpoints and time                                                      */

/* Yield to the scheduler, then return 0 or SCIO_ECANCELED.  A checkpoint:
 * the plain one. */
SCIO_API int scio_checkpoint(void);
/* Return SCIO_ECANCELED if the current task is cancelled, else 0.  Does not
 * yield: the cancellation half of a checkpoint, not a checkpoint itself. */
SCIO_API int scio_checkpoint_if_cancelled(void);
/* Yield to the scheduler without checking cancellation: the schedule half
 * of a checkpoint, not a checkpoint itself (never SCIO_ECANCELED).
 * Returns 0; never fails. */
SCIO_API int scio_cancel_shielded_checkpoint(void);

/* Current time in seconds (monotonic; virtual under the autojump clock).
 * Outside a run: CLOCK_MONOTONIC.  Not a checkpoint.  Never fails. */
SCIO_API double scio_now(void);

/* Sleep for `seconds` (<= 0: just a checkpoint), until `deadline`, or until
 * cancelled.  Checkpoints.  Return 0, SCIO_ECANCELED, or SCIO_EINVAL (NaN). */
SCIO_API int scio_sleep(double seconds);
SCIO_API int scio_sleep_until(double deadline);
/* Sleep until cancelled: a checkpoint that always returns SCIO_ECANCELED. */
SCIO_API int scio_sleep_forever(void);

/* Block until every other task is blocked (none runnable, no I/O ready).
 * Under the autojump clock this happens before time jumps.  A checkpoint;
 * returns 0 or SCIO_ECANCELED. */
SCIO_API int scio_wait_all_tasks_blocked(void);

/* Wait until a foreign fd is readable / writable.  The fd stays the caller's,
 * who must call scio_notify_closing(fd) before closing it (a number reused by
 * a new file is detected and re-registered, but a file closed while a task
 * waits on it is not reported on every backend).  At most one task may wait
 * for each direction of an fd (SCIO_EBUSY).  These are checkpoints.  They
 * return 0, SCIO_ECANCELED,
 * SCIO_ECLOSED (scio_notify_closing was called on the fd), SCIO_EBUSY,
 * SCIO_ENOMEM, SCIO_EBADF (fd not open), SCIO_EINVAL (outside a task). */
SCIO_API int scio_wait_readable(int fd);
SCIO_API int scio_wait_writable(int fd);
/* Call before closing an fd others may wait on: wakes them with SCIO_ECLOSED
 * and forgets the fd (which stays the caller's to close).  Not a
 * checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_notify_closing(int fd);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */

/* Print the tree of nurseries and tasks of the current run, with what each
 * task is waiting on and the deadlines that apply, to `out` (outside a
 * run: one line saying so).  Not a checkpoint.  Returns nothing; never
 * fails (write errors stay in `out`'s error indicator). */
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
 * kept by pointer, not copied: it must outlive its use (until removed or
 * the run ends).  Not checkpoints.  Return 0, SCIO_EINVAL (outside a run,
 * or unknown on remove), or SCIO_ENOSPC (too many). */
SCIO_API int scio_instrument_add(const scio_instrument *ins);
SCIO_API int scio_instrument_remove(const scio_instrument *ins);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_CORE_H */
