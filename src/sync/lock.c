/* Locks: a mutex owned by a task, with FIFO hand-off.
 *
 * Invariant: the lock has no owner only when nobody waits, because a
 * release with waiters makes the first one the owner instead of freeing the
 * lock.  So "no owner" alone means "free to take", and nobody can barge in
 * between a release and the woken waiter's return.
 *
 * The owner is recorded as the task and its id: a task struct lives at the
 * top of a recycled stack, so a later task can reuse the address of one that
 * exited holding the lock, but not its id. */
#include "lock.h"
#include "waitq.h"

#define LOCK_MAGIC 0x10c410c4u

typedef struct lock_impl {
  scio__waitq waiters;
  scio__task *owner;
  uint64_t owner_id;
  unsigned flags;
  uint32_t magic;
} lock_impl;

_Static_assert(sizeof(lock_impl) <= sizeof(scio_lock),
               "scio_lock storage too small");
_Static_assert(_Alignof(lock_impl) <= _Alignof(scio_lock),
               "scio_lock storage misaligned");

static inline lock_impl *L(const scio_lock *lock) {
  lock_impl *l = (lock_impl *)(void *)lock;
  return l && l->magic == LOCK_MAGIC ? l : NULL;
}

static inline int held_by(const lock_impl *l, const scio__task *t) {
  return l->owner == t && l->owner_id == scio__task_id(t);
}

static inline void set_owner(lock_impl *l, scio__task *t) {
  l->owner = t;
  l->owner_id = t ? scio__task_id(t) : 0;
}

/* The argument checks shared by acquire, acquire_nowait and release.
 * Returns the current task, or NULL with *rc set to the error. */
static inline scio__task *check_call(const scio_lock *lock, const char *what,
                                     int *rc) {
  scio__task *t = scio__task_cur();
  if (__builtin_expect(L(lock) && t, 1))
    return t;
  *rc = L(lock) ? scio__sync_no_task(what) : scio__sync_bad_object(lock, what);
  return NULL;
}

static int already_held(const char *what) {
  return scio__seterr(SCIO_EDEADLK,
                      "%s: the calling task already holds this lock", what);
}

SCIO_API int scio_lock_init(scio_lock *lock, unsigned flags) {
  if (!lock)
    return scio__sync_bad_object(lock, "lock_init");
  if (flags & ~(unsigned)SCIO_FAST_ACQUIRE)
    return scio__seterr(SCIO_EINVAL, "lock_init: unknown flags 0x%x", flags);
  lock_impl *l = (lock_impl *)(void *)lock;
  scio__waitq_init(&l->waiters);
  set_owner(l, NULL);
  l->flags = flags;
  l->magic = LOCK_MAGIC;
  return 0;
}

SCIO_API int scio_lock_acquire(scio_lock *lock) {
  int rc;
  scio__task *t = check_call(lock, "lock_acquire", &rc);
  if (!t)
    return rc;
  lock_impl *l = L(lock);
  if (held_by(l, t))
    return already_held("lock_acquire");
  if (scio__task_cancelled(t)) {
    scio__deliver_cancel(t);
    return SCIO_ECANCELED;
  }
  if (!l->owner) {
    set_owner(l, t);
    /* The checkpoint rule: yield once even though we got it at once. */
    if (!(l->flags & SCIO_FAST_ACQUIRE))
      scio__yield();
    return 0;
  }
  /* The releaser makes us the owner before waking us with 0. */
  scio__waiter w;
  return scio__waitq_park(&l->waiters, &w, t, "lock_acquire");
}

SCIO_API int scio_lock_acquire_nowait(scio_lock *lock) {
  int rc;
  scio__task *t = check_call(lock, "lock_acquire_nowait", &rc);
  if (!t)
    return rc;
  lock_impl *l = L(lock);
  if (held_by(l, t))
    return already_held("lock_acquire_nowait");
  if (l->owner)
    return scio__seterr(SCIO_EWOULDBLOCK,
                        "lock_acquire_nowait: the lock is held by task %llu",
                        (unsigned long long)l->owner_id);
  set_owner(l, t);
  return 0;
}

SCIO_API int scio_lock_release(scio_lock *lock) {
  int rc;
  scio__task *t = check_call(lock, "lock_release", &rc);
  if (!t)
    return rc;
  lock_impl *l = L(lock);
  if (!held_by(l, t))
    return scio__lock_check_owner(lock, "lock_release");
  scio__waiter *w = scio__waitq_pop(&l->waiters);
  if (!w) {
    set_owner(l, NULL);
    return 0;
  }
  /* Hand-off: the first waiter owns the lock before it runs again. */
  set_owner(l, w->task);
  scio__task_wake(w->task, 0);
  return 0;
}

SCIO_API int scio_lock_locked(const scio_lock *lock) {
  lock_impl *l = L(lock);
  if (!l)
    return scio__sync_bad_object(lock, "lock_locked");
  return l->owner != NULL;
}

SCIO_API int scio_lock_statistics(const scio_lock *lock, scio_lock_stats *out) {
  lock_impl *l = L(lock);
  if (!l)
    return scio__sync_bad_object(lock, "lock_statistics");
  if (!out)
    return scio__seterr(SCIO_EINVAL, "lock_statistics: out is NULL");
  out->locked = l->owner != NULL;
  out->owner = l->owner;
  out->tasks_waiting = l->waiters.count;
  return 0;
}

int scio__lock_valid(const scio_lock *lock) { return L(lock) != NULL; }

int scio__lock_check_owner(const scio_lock *lock, const char *what) {
  lock_impl *l = L(lock);
  if (!l)
    return scio__sync_bad_object(lock, what);
  scio__task *t = scio__task_cur();
  if (t && held_by(l, t))
    return 0;
  if (!l->owner)
    return scio__seterr(SCIO_EPERM, "%s: the lock is not held", what);
  /* Named by id: the owner may have exited (a bug), and its struct must not
   * be read then. */
  return scio__seterr(SCIO_EPERM,
                      "%s: the lock is held by task %llu, not by the calling "
                      "task",
                      what, (unsigned long long)l->owner_id);
}
