/* scio — worker threads: run blocking code off the loop (Trio's
 * trio.to_thread, AnyIO's to_thread.run_sync).
 *
 * scio_to_thread(fn, arg, &result, opts) runs fn(arg) on a worker thread
 * and waits for it, while the loop goes on running other tasks.  Workers
 * come from a pool that belongs to the current scio_run: a worker is
 * reused by the next call, exits after it has been idle for a while
 * (scio_to_thread_set_idle_timeout), and the pool never outlives the run
 * (scio_run joins every worker before it returns, including workers still
 * running a call whose caller abandoned it).
 *
 * How many calls run at once is bounded by a capacity limiter
 * (<scio/sync.h>): each call borrows one token for as long as its thread
 * runs.  By default that is the run's own limiter of 40 tokens
 * (scio_to_thread_default_limiter), which may be resized; opts.limiter
 * names another.
 *
 * Cancellation (Trio's rules):
 *   - a call cancelled before its function starts (while it waits for a
 *     token, or before a worker picked it up) never runs it and returns
 *     SCIO_ECANCELED;
 *   - once fn runs, the caller waits for it, shielded from cancellation:
 *     C cannot stop a thread.  The call then returns fn's result (0), and
 *     the cancellation is seen at the caller's next checkpoint;
 *   - with opts.abandon_on_cancel, the caller instead returns SCIO_ECANCELED
 *     at once and fn goes on running in its thread; its result is dropped,
 *     and its limiter token is held until the thread really ends.
 *
 * fn runs in a plain thread: it must not call scio's async functions
 * directly.  It calls back into the loop with scio_from_thread_run (an
 * async function, run as part of the task that called scio_to_thread, so
 * inside its cancel scopes) or scio_from_thread_run_sync, and asks whether
 * its caller was cancelled with scio_from_thread_check_cancelled.
 *
 * A token (scio_token) names a run to threads that are not its workers: a
 * plain thread given a token can run synchronous functions on that loop
 * (scio_from_thread_run_sync).  To run async code from a plain thread, use
 * a blocking portal (scio_portal_*, below).
 *
 * Available since 0.3.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_THREAD_H
#define SCIO_THREAD_H

#include "scio/core.h"
#include "scio/sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A function run on a worker thread; its return value is the call's
 * result. */
typedef void *(*scio_thread_fn)(void *arg);

/* Options of scio_to_thread; zero (or NULL) means the defaults. */
typedef struct scio_to_thread_opts {
  /* The limiter to borrow a token from; NULL: the run's default limiter. */
  scio_limiter *limiter;
  /* Non-zero: on cancellation, return SCIO_ECANCELED at once and leave fn
   * running (Trio's abandon_on_cancel=True). */
  int abandon_on_cancel;
} scio_to_thread_opts;

/* Run fn(arg) on a worker thread and wait for it; *result (if result is
 * not NULL) receives fn's return value.  fn and arg are the caller's; arg
 * must stay valid until fn returns, which with abandon_on_cancel may be
 * after this call returned.  *result is set to NULL first.  A checkpoint.
 * Returns 0 once fn has returned, or:
 *   SCIO_ECANCELED  cancelled before fn started (fn never runs), or, with
 *                   abandon_on_cancel, while it ran (fn goes on running);
 *   SCIO_EINVAL     fn is NULL, not inside a task, or a bad limiter;
 *   SCIO_EDEADLK    the limiter refused the borrower (see scio_limiter_*);
 *   SCIO_ENOMEM     out of memory;
 *   SCIO_EAGAIN     no worker thread could be created (pthread_create),
 *                   and none is idle. */
SCIO_API int scio_to_thread(scio_thread_fn fn, void *arg, void **result,
                            const scio_to_thread_opts *opts);

/* The current run's default limiter for scio_to_thread (40 tokens when the
 * run first asks for it; change it with scio_limiter_set_total_tokens).
 * Owned by the run: valid until scio_run returns; do not destroy it.
 * Not a checkpoint.  NULL outside scio_run, or when out of memory (SCIO_ENOMEM
 * in scio_errmsg). */
SCIO_API scio_limiter *scio_to_thread_default_limiter(void);

/* How long an idle worker of the current run's pool waits for another call
 * before it exits, in seconds (default 10; 0: exit as soon as idle).  It
 * applies to workers that go idle from now on.  Not a checkpoint.
 * Returns 0, or SCIO_EINVAL (outside scio_run, negative or NaN seconds),
 * SCIO_ENOMEM. */
SCIO_API int scio_to_thread_set_idle_timeout(double seconds);

/* ------------------------------------------------------------------------ */
/* Calling back into the loop from a thread                                  */

/* A run's token: a thread-safe handle that names one scio_run (Trio's
 * TrioToken).  Once the run has ended, calls through it return
 * SCIO_ECLOSED; the token itself stays valid until closed. */
typedef struct scio_token scio_token;

/* From inside scio_run: a new token for the current run, in *out (set to
 * NULL first); the caller owns it and closes it with scio_token_close,
 * from any thread, before or after the run ends.  Not a checkpoint.
 * Returns 0, SCIO_EINVAL (out is NULL, not inside scio_run), SCIO_ENOMEM. */
SCIO_API int scio_token_open(scio_token **out);

/* Let go of a token (any thread); the token is the caller's and is gone
 * afterwards.  NULL is ignored.  Not a checkpoint.  Never fails. */
SCIO_API void scio_token_close(scio_token *token);

/* From a worker thread of scio_to_thread: run the async function fn(arg) on
 * the loop, as part of the task that called scio_to_thread (inside its
 * cancel scopes: if they are cancelled, fn's checkpoints return
 * SCIO_ECANCELED), wait for it and return what it returned.  token may be
 * NULL (the worker's own run) or that run's token.  fn and arg are the
 * caller's.  Blocks the calling thread.  Not a checkpoint (it runs
 * outside any task of the caller's).  Returns fn's result, or:
 *   SCIO_ECANCELED  the scio_to_thread call was abandoned (fn not run);
 *   SCIO_EINVAL     fn is NULL; not a worker thread (a plain thread must
 *                   use a portal for async functions), or a token of
 *                   another run;
 *   SCIO_EDEADLK    called from the loop's own thread. */
SCIO_API int scio_from_thread_run(scio_token *token, scio_fn fn, void *arg);

/* Run the synchronous function fn(arg) on the loop's thread and return its
 * result.  fn must not block or checkpoint.  From a worker thread of
 * scio_to_thread (token NULL or its run's), fn runs in the calling task
 * as scio_from_thread_run does; from any other thread, token names the
 * run and fn runs on its scheduler, outside any task.  fn and arg are the
 * caller's; token stays the caller's.  Blocks the calling thread.
 * Not a checkpoint.  Returns fn's result, or SCIO_ECANCELED (the worker's call was
 * abandoned), SCIO_ECLOSED (the token's run has ended: fn did not run),
 * SCIO_EINVAL (fn NULL; no token outside a worker thread), SCIO_EDEADLK
 * (called from the token's own loop thread), SCIO_ENOMEM. */
SCIO_API int scio_from_thread_run_sync(scio_token *token, int (*fn)(void *),
                                       void *arg);

/* From a worker thread of scio_to_thread: SCIO_ECANCELED if the task that
 * called scio_to_thread has seen a cancellation (it waits shielded, or it
 * abandoned the call), else 0.  Lets long-running thread code stop early
 * (Trio's from_thread.check_cancelled).  Not a checkpoint; no system call.
 * Returns 0, SCIO_ECANCELED, or SCIO_EINVAL (not a worker thread). */
SCIO_API int scio_from_thread_check_cancelled(void);

/* ------------------------------------------------------------------------ */
/* Blocking portals                                                          */
/*                                                                           */
/* A portal runs a scio_run in a thread of its own, so that plain            */
/* synchronous code (or another event loop) can call scio's async functions  */
/* (AnyIO's BlockingPortal).  Each call runs as a task of the portal's run;  */
/* calls from several threads run concurrently.  Every function below may    */
/* be called from any thread except the portal's own.                        */

typedef struct scio_portal scio_portal;

/* Options of scio_portal_start; zero (or NULL) means the defaults. */
typedef struct scio_portal_opts {
  /* Options of the portal's scio_run (backend, clock, ...); NULL: the
   * defaults.  Copied: the struct may go once scio_portal_start returns. */
  const scio_run_opts *run;
} scio_portal_opts;

/* Start a portal: a new thread running a scio_run that waits for work.
 * Returns once the portal takes calls, with the portal in *out (set to NULL
 * first), owned by the caller until scio_portal_free.  Not a checkpoint
 * (it may be called outside scio_run).  Returns 0, or SCIO_EINVAL (out is
 * NULL), SCIO_ENOMEM, SCIO_EAGAIN (no thread), or scio_run's error for bad
 * run options (SCIO_ENOSYS, SCIO_EINVAL). */
SCIO_API int scio_portal_start(scio_portal **out,
                               const scio_portal_opts *opts);

/* Run fn(arg) as a task in the portal's run and wait (blocking the calling
 * thread: called from a task of another run, it blocks that run's loop,
 * so call it there through scio_to_thread) for it to return; return what it returned (with its scio_errmsg
 * detail copied to the caller's thread).  fn and arg are the caller's.
 * Not a checkpoint.  Returns fn's result, or SCIO_EINVAL (p or fn NULL),
 * SCIO_ECLOSED (the portal is stopping or stopped: fn did not run),
 * SCIO_EDEADLK (called from the portal's own thread), SCIO_ENOMEM (no task
 * could be started: fn did not run). */
SCIO_API int scio_portal_call(scio_portal *p, scio_fn fn, void *arg);

/* Start fn(arg) as a task in the portal's run and return at once; its
 * result is dropped (it does not affect other tasks).  arg must stay valid
 * until fn returns.  Not a checkpoint.  Returns 0, or SCIO_EINVAL (p or fn
 * NULL), SCIO_ECLOSED (the portal is stopping or stopped), SCIO_ENOMEM. */
SCIO_API int scio_portal_start_task_soon(scio_portal *p, scio_fn fn,
                                         void *arg);

/* Stop the portal: refuse new work (SCIO_ECLOSED), then, with
 * cancel_remaining, cancel the tasks still running, and wait for them all
 * to return and for the portal's thread to end.  Calls waiting on those
 * tasks get their results (SCIO_ECANCELED where cancelled).  Several
 * threads may stop one portal; each returns once it has stopped.
 * Not a checkpoint.  Returns the portal run's result (0 normally), or
 * SCIO_EINVAL (p NULL), SCIO_EDEADLK (called from the portal's own
 * thread). */
SCIO_API int scio_portal_stop(scio_portal *p, int cancel_remaining);

/* Free a portal (the caller's, gone afterwards), stopping it first
 * (cancelling what runs) if it was not stopped.  No other thread may use
 * it any more.  NULL is ignored.  Not a checkpoint.  Never fails. */
SCIO_API void scio_portal_free(scio_portal *p);

#ifdef __cplusplus
}
#endif

#endif
