/* scio — synchronization primitives for tasks of one run: event, lock,
 * semaphore, condition variable and capacity limiter (Trio/AnyIO style).
 *
 * Every object is caller-allocated (usually static, or in a frame that
 * outlives every task using it) and initialised pthread-style with its
 * _init function; the layout is private.  An object belongs to the run in
 * which it is used: it is not thread-safe, and it must not be used by two
 * runs at once.  An initialised object must not be moved or copied (tasks
 * wait in lists that point into it).  Only the capacity limiter allocates
 * memory, so it alone has a _destroy function; the others may simply go out
 * of scope once no task uses them.
 *
 * Rules common to all of them:
 *
 * - Every call that can block is a checkpoint (see scio/core.h): it first
 *   returns SCIO_ECANCELED if the calling task is cancelled, and it yields to
 *   the scheduler at least once even when it could complete at once, unless
 *   the object was initialised with SCIO_FAST_ACQUIRE (lock and semaphore).
 *   Every other call (_nowait, _release, _set, _notify, statistics...)
 *   never blocks and is not a checkpoint.
 * - Pointer arguments are borrowed: a function uses them during the call
 *   only, unless its comment says that it keeps, owns or takes them over.
 *   The objects themselves are the caller's storage, used by the run from
 *   _init on (until _destroy for the limiter).
 * - Waiters are served first-in, first-out, and ownership is handed off:
 *   when a lock, a semaphore unit or a limiter token is released while tasks
 *   wait, the first waiter owns it *before it runs again*.  Nobody can barge
 *   in: a task that calls _acquire or _acquire_nowait after the release but
 *   before the woken waiter runs finds the resource taken.
 * - Nothing is lost to cancellation.  A waiter whose resource was handed
 *   over returns 0 even if cancellation reaches it in the same scheduler
 *   round (it then sees SCIO_ECANCELED at its next checkpoint); a waiter
 *   cancelled before the hand-off returns SCIO_ECANCELED, owns nothing, and
 *   later releases go to the next waiter.
 * - Bad input is reported, never a crash: a NULL object, or one that was
 *   never initialised, is SCIO_EINVAL; a call that needs a task
 *   is SCIO_EINVAL outside one.  (An object is recognised by a magic number:
 *   zero-filled or destroyed storage always fails the check, leftover
 *   garbage almost always.)  Every error but SCIO_ECANCELED sets the detail
 *   read by scio_errmsg().  A call that returns an error has had no effect.
 */
#ifndef SCIO_SYNC_H
#define SCIO_SYNC_H

#include <stddef.h>
#include <sys/types.h>

#include "scio/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of scio_lock_init and scio_semaphore_init. */
enum scio_sync_flags {
  /* When the lock or unit is free and nobody waits, take it without
   * yielding.  The call still fails with SCIO_ECANCELED in a cancelled task,
   * but it is then no longer a scheduling point: a task that acquires and
   * releases in a loop can starve the others.  Use it for short critical
   * sections on hot paths. */
  SCIO_FAST_ACQUIRE = 1u << 0
};

/* ------------------------------------------------------------------------ */
/* Event: a one-shot flag that tasks can wait for.                           */

/* Opaque, caller-allocated storage; the layout is private. */
typedef union scio_event {
  unsigned char opaque[48];
  void *align_ptr;
} scio_event;

typedef struct scio_event_stats {
  size_t tasks_waiting; /* tasks blocked in scio_event_wait */
} scio_event_stats;

/* Initialise an unset event in the caller's storage `ev`, which it owns
 * (nothing is allocated).  Not a checkpoint.  Returns 0 or SCIO_EINVAL (ev
 * is NULL). */
SCIO_API int scio_event_init(scio_event *ev);

/* Set the event: wake every task waiting on it; later waits return at once.
 * Setting it again does nothing.  Not a checkpoint; may be called outside a
 * task (e.g. from a libevent callback of the run).  Returns 0 or SCIO_EINVAL. */
SCIO_API int scio_event_set(scio_event *ev);

/* 1 if the event is set, 0 if not, SCIO_EINVAL for a bad event.  Not a
 * checkpoint. */
SCIO_API int scio_event_is_set(const scio_event *ev);

/* Wait until the event is set.  A checkpoint (also when it is already
 * set).  Returns 0, or:
 *   SCIO_ECANCELED  the task was cancelled before the event was set (an
 *                   event set in the same round as the cancel still
 *                   returns 0);
 *   SCIO_EINVAL     bad event, or not inside a task. */
SCIO_API int scio_event_wait(scio_event *ev);

/* Fill *out.  Not a checkpoint.  Returns 0 or SCIO_EINVAL. */
SCIO_API int scio_event_statistics(const scio_event *ev,
                                   scio_event_stats *out);

/* ------------------------------------------------------------------------ */
/* Lock: a mutex owned by the task that acquired it.                         */

typedef union scio_lock {
  unsigned char opaque[64];
  void *align_ptr;
} scio_lock;

typedef struct scio_lock_stats {
  int locked;           /* 1 while some task holds it */
  scio_task *owner;     /* that task, or NULL */
  size_t tasks_waiting; /* tasks blocked in scio_lock_acquire */
} scio_lock_stats;

/* Initialise an unlocked lock.  flags: 0 or SCIO_FAST_ACQUIRE.  Not a
 * checkpoint.  Returns 0 or SCIO_EINVAL (lock is NULL, unknown flags). */
SCIO_API int scio_lock_init(scio_lock *lock, unsigned flags);

/* Acquire the lock for the calling task, waiting in FIFO order while another
 * task holds it.  A checkpoint (see SCIO_FAST_ACQUIRE).  Returns 0, or:
 *   SCIO_ECANCELED  cancelled before the lock was handed over; the task does
 *                   not hold it;
 *   SCIO_EDEADLK    the calling task already holds it (nothing changes);
 *   SCIO_EINVAL     bad lock, or not inside a task. */
SCIO_API int scio_lock_acquire(scio_lock *lock);

/* Acquire the lock only if that needs no wait.  Not a checkpoint.  Returns
 * 0, or SCIO_EWOULDBLOCK (held, possibly by a waiter it was just handed
 * to), SCIO_EDEADLK (the calling task holds it), SCIO_EINVAL (bad lock, or not
 * inside a task). */
SCIO_API int scio_lock_acquire_nowait(scio_lock *lock);

/* Release the lock.  If tasks wait, the first one becomes the owner at once
 * and is woken.  Not a checkpoint.  Returns 0, or:
 *   SCIO_EPERM  the calling task does not hold the lock (nothing changes);
 *   SCIO_EINVAL     bad lock, or not inside a task. */
SCIO_API int scio_lock_release(scio_lock *lock);

/* 1 if some task holds the lock, 0 if not, SCIO_EINVAL for a bad lock.  Not
 * a checkpoint. */
SCIO_API int scio_lock_locked(const scio_lock *lock);

/* Fill *out.  Not a checkpoint.  Returns 0 or SCIO_EINVAL.  The owner handle is
 * only as valid as the task: a task that exits holding a lock (a bug) leaves
 * it locked forever. */
SCIO_API int scio_lock_statistics(const scio_lock *lock, scio_lock_stats *out);

/* ------------------------------------------------------------------------ */
/* Semaphore: a counter of units, optionally bounded.  Units have no owner:  */
/* any task (or code outside a task) may release one.                        */

typedef union scio_semaphore {
  unsigned char opaque[64];
  void *align_ptr;
} scio_semaphore;

typedef struct scio_semaphore_stats {
  size_t value;         /* units available now */
  size_t max_value;     /* the bound, 0 for none */
  size_t tasks_waiting; /* tasks blocked in scio_semaphore_acquire */
} scio_semaphore_stats;

/* Initialise a semaphore holding `initial` units.  max_value bounds the
 * value (0: unbounded, i.e. SSIZE_MAX).  flags: 0 or SCIO_FAST_ACQUIRE.
 * Not a checkpoint.  Returns 0 or SCIO_EINVAL (sem is NULL, unknown flags,
 * initial above max_value, or either above SSIZE_MAX). */
SCIO_API int scio_semaphore_init(scio_semaphore *sem, size_t initial,
                                 size_t max_value, unsigned flags);

/* Take one unit, waiting in FIFO order while there is none.  A checkpoint
 * (see SCIO_FAST_ACQUIRE).  Returns 0, or SCIO_ECANCELED (cancelled before a
 * unit was handed over; nothing taken), SCIO_EINVAL (bad semaphore, or not
 * inside a task). */
SCIO_API int scio_semaphore_acquire(scio_semaphore *sem);

/* Take one unit only if that needs no wait.  Not a checkpoint; may be
 * called outside a task.  Returns 0, SCIO_EWOULDBLOCK (no unit free: units
 * released while tasks wait go to them), or SCIO_EINVAL. */
SCIO_API int scio_semaphore_acquire_nowait(scio_semaphore *sem);

/* Give one unit back: to the first waiter if there is one (the value stays
 * 0), else to the counter.  Not a checkpoint; may be called outside a task.
 * Returns 0, or:
 *   -EOVERFLOW  the value would exceed max_value (or SSIZE_MAX when
 *               unbounded); nothing changes;
 *   SCIO_EINVAL     bad semaphore. */
SCIO_API int scio_semaphore_release(scio_semaphore *sem);

/* The number of units available now (>= 0), or SCIO_EINVAL (bad
 * semaphore).  Not a checkpoint. */
SCIO_API ssize_t scio_semaphore_value(const scio_semaphore *sem);

/* Fill *out.  Not a checkpoint.  Returns 0 or SCIO_EINVAL. */
SCIO_API int scio_semaphore_statistics(const scio_semaphore *sem,
                                       scio_semaphore_stats *out);

/* ------------------------------------------------------------------------ */
/* Condition: wait until notified, around a lock.                            */

typedef union scio_condition {
  unsigned char opaque[128];
  void *align_ptr;
} scio_condition;

typedef struct scio_condition_stats {
  /* Tasks in scio_condition_wait that wait to be notified.  A task that was
   * notified (or cancelled) and now waits to take the lock back is counted
   * in lock.tasks_waiting instead. */
  size_t tasks_waiting;
  scio_lock_stats lock; /* the statistics of the condition's lock */
} scio_condition_stats;

/* Initialise a condition over `lock`, an initialised lock that the caller
 * keeps alive as long as the condition (it is borrowed, not owned), or over
 * a lock of its own when `lock` is NULL.  Not a checkpoint.  Returns 0 or
 * SCIO_EINVAL (cond is NULL, lock is not initialised). */
SCIO_API int scio_condition_init(scio_condition *cond, scio_lock *lock);

/* The lock the condition uses (its own, owned by the condition, or the one
 * given, still the caller's).  NULL for a bad condition (the detail says
 * so, as for SCIO_EINVAL).  Not a checkpoint. */
SCIO_API scio_lock *scio_condition_lock(scio_condition *cond);

/* scio_lock_acquire / scio_lock_release on the condition's lock, with the
 * same results: acquire is a checkpoint (SCIO_ECANCELED, SCIO_EDEADLK,
 * SCIO_EINVAL), release is not (SCIO_EPERM, SCIO_EINVAL). */
SCIO_API int scio_condition_acquire(scio_condition *cond);
SCIO_API int scio_condition_release(scio_condition *cond);

/* Atomically release the lock and wait to be notified, then re-acquire the
 * lock.  The calling task must hold the lock, and it holds it again when the
 * call returns, whatever the result: the re-acquisition is shielded from
 * cancellation.  A checkpoint.  Returns 0 (notified), or:
 *   SCIO_ECANCELED  cancelled before a notification reached the task (a
 *                   notify in the same round as the cancel still returns
 *                   0); if the task was already cancelled on entry, the lock
 *                   is not even released;
 *   SCIO_EPERM      the calling task does not hold the lock;
 *   SCIO_EINVAL     bad condition, or not inside a task. */
SCIO_API int scio_condition_wait(scio_condition *cond);

/* Wake up to `n` waiting tasks (0: none), first-come first-served.  Each
 * then waits for the lock, which the caller still holds.  The calling task
 * must hold the lock.  Not a checkpoint.  Returns the number of tasks woken
 * (>= 0, capped at INT_MAX), or SCIO_EPERM (the caller does not hold the
 * lock) or SCIO_EINVAL (bad condition, or not inside a task). */
SCIO_API int scio_condition_notify(scio_condition *cond, size_t n);
/* scio_condition_notify for every waiting task.  Not a checkpoint.
 * Returns the number of tasks woken, or SCIO_EPERM or SCIO_EINVAL as
 * scio_condition_notify. */
SCIO_API int scio_condition_notify_all(scio_condition *cond);

/* Fill *out.  Not a checkpoint.  Returns 0 or SCIO_EINVAL. */
SCIO_API int scio_condition_statistics(const scio_condition *cond,
                                       scio_condition_stats *out);

/* ------------------------------------------------------------------------ */
/* Capacity limiter (AnyIO's CapacityLimiter): at most `total_tokens`        */
/* borrowers hold a token at a time.  A borrower is the calling task, or any */
/* non-NULL pointer given to the _on_behalf_of calls (a connection, a job),  */
/* and holds at most one token of a limiter.  A borrower is only a key: a   */
/* task that exits, or an object freed, while holding a token keeps it       */
/* borrowed (a leak the program must avoid).                                 */

typedef union scio_limiter {
  unsigned char opaque[128];
  void *align_ptr;
} scio_limiter;

typedef struct scio_limiter_stats {
  size_t borrowed_tokens; /* tokens held */
  size_t total_tokens;    /* the current capacity */
  size_t tasks_waiting;   /* tasks blocked in an _acquire call */
} scio_limiter_stats;

/* Initialise a limiter with `total_tokens` tokens (1 .. SSIZE_MAX).  Does
 * not allocate (bookkeeping of borrowers is allocated on demand and kept
 * until scio_limiter_destroy).  Not a checkpoint.  Returns 0 or SCIO_EINVAL (lim
 * is NULL, total_tokens out of range). */
SCIO_API int scio_limiter_init(scio_limiter *lim, size_t total_tokens);

/* Free the limiter's memory.  It must be idle.  Not a checkpoint.  Returns
 * 0, or SCIO_EBUSY (tokens are borrowed or tasks wait: nothing is freed),
 * or SCIO_EINVAL (bad limiter).  Afterwards every call on it is SCIO_EINVAL until it
 * is initialised again. */
SCIO_API int scio_limiter_destroy(scio_limiter *lim);

/* Borrow a token for the calling task / for `borrower`, waiting in FIFO
 * order while none is free.  A checkpoint.  Returns 0, or:
 *   SCIO_ECANCELED  cancelled before a token was handed over; none is held;
 *   SCIO_EDEADLK    the borrower already holds a token of this limiter (on
 *                   entry, or, for _on_behalf_of, given to it by another
 *                   call while this one waited);
 *   SCIO_ENOMEM     no memory for the borrower bookkeeping;
 *   SCIO_EINVAL     bad limiter, NULL borrower, or not inside a task. */
SCIO_API int scio_limiter_acquire(scio_limiter *lim);
SCIO_API int scio_limiter_acquire_on_behalf_of(scio_limiter *lim,
                                               const void *borrower);

/* Borrow a token only if that needs no wait.  Not a checkpoint; the
 * _on_behalf_of form may be called outside a task.  Returns 0, or
 * SCIO_EDEADLK (the borrower holds one already), SCIO_EWOULDBLOCK (no token
 * free, or tasks wait for one), SCIO_ENOMEM, SCIO_EINVAL (bad limiter, NULL
 * borrower, or no current task for scio_limiter_acquire_nowait). */
SCIO_API int scio_limiter_acquire_nowait(scio_limiter *lim);
SCIO_API int scio_limiter_acquire_on_behalf_of_nowait(scio_limiter *lim,
                                                      const void *borrower);

/* Give back the token held by the calling task / by `borrower`.  If tasks
 * wait and the limiter is under capacity, the token is handed to the first
 * one at once.  Not a checkpoint; the _on_behalf_of form may be called
 * outside a task.  Returns 0, or SCIO_EPERM (the borrower holds no token;
 * nothing changes), SCIO_EINVAL (bad limiter, NULL borrower, no current task). */
SCIO_API int scio_limiter_release(scio_limiter *lim);
SCIO_API int scio_limiter_release_on_behalf_of(scio_limiter *lim,
                                               const void *borrower);

/* Change the capacity (1 .. SSIZE_MAX).  Raising it hands the new tokens to
 * waiting tasks at once; lowering it below the tokens borrowed takes effect
 * as they are released.  Not a checkpoint; may be called outside a task.
 * Returns 0, or SCIO_EINVAL (bad limiter, total_tokens out of range) or
 * SCIO_ENOMEM (no memory for the bookkeeping of the borrowers it would
 * admit; nothing changes). */
SCIO_API int scio_limiter_set_total_tokens(scio_limiter *lim,
                                           size_t total_tokens);

/* Tokens borrowed now, and tokens free now (0 when the capacity was lowered
 * below what is borrowed); SCIO_EINVAL for a bad limiter.  Not
 * checkpoints. */
SCIO_API ssize_t scio_limiter_borrowed_tokens(const scio_limiter *lim);
SCIO_API ssize_t scio_limiter_available_tokens(const scio_limiter *lim);

/* Fill *out.  Not a checkpoint.  Returns 0 or SCIO_EINVAL. */
SCIO_API int scio_limiter_statistics(const scio_limiter *lim,
                                     scio_limiter_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_SYNC_H */
