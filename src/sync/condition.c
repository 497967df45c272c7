/* Condition variables over a scio_lock.
 *
 * A notify wakes the waiter with 0; the waiter then re-acquires the lock
 * itself, inside a shielded cancel scope, so that it holds the lock again
 * when scio_condition_wait returns, whether it was notified or cancelled.
 * The notifier must hold the lock, so a notified waiter normally queues on
 * the lock until the notifier releases it. */
#include <limits.h>

#include "lock.h"
#include "waitq.h"

#define COND_MAGIC 0xc0dec0deu

typedef struct cond_impl {
  scio_lock own_lock; /* used when no lock was given to init */
  scio_lock *lock;    /* the lock in use: &own_lock or the caller's */
  scio__waitq waiters;
  uint32_t magic;
} cond_impl;

_Static_assert(sizeof(cond_impl) <= sizeof(scio_condition),
               "scio_condition storage too small");
_Static_assert(_Alignof(cond_impl) <= _Alignof(scio_condition),
               "scio_condition storage misaligned");

static inline cond_impl *C(const scio_condition *cond) {
  cond_impl *c = (cond_impl *)(void *)cond;
  return c && c->magic == COND_MAGIC ? c : NULL;
}

SCIO_API int scio_condition_init(scio_condition *cond, scio_lock *lock) {
  if (!cond)
    return scio__sync_bad_object(cond, "condition_init");
  if (lock && !scio__lock_valid(lock))
    return scio__seterr(SCIO_EINVAL,
                        "condition_init: the lock is not initialised");
  cond_impl *c = (cond_impl *)(void *)cond;
  if (!lock) {
    scio_lock_init(&c->own_lock, 0);
    lock = &c->own_lock;
  }
  c->lock = lock;
  scio__waitq_init(&c->waiters);
  c->magic = COND_MAGIC;
  return 0;
}

SCIO_API scio_lock *scio_condition_lock(scio_condition *cond) {
  cond_impl *c = C(cond);
  if (!c) {
    scio__sync_bad_object(cond, "condition_lock");
    return NULL;
  }
  return c->lock;
}

SCIO_API int scio_condition_acquire(scio_condition *cond) {
  cond_impl *c = C(cond);
  if (!c)
    return scio__sync_bad_object(cond, "condition_acquire");
  return scio_lock_acquire(c->lock);
}

SCIO_API int scio_condition_release(scio_condition *cond) {
  cond_impl *c = C(cond);
  if (!c)
    return scio__sync_bad_object(cond, "condition_release");
  return scio_lock_release(c->lock);
}

/* Take the lock back whatever happens to the task meanwhile: the caller of
 * scio_condition_wait relies on holding it when the call returns. */
static void reacquire_shielded(scio_lock *lock) {
  scio_scope shield;
  scio_scope_open(&shield, SCIO_DEADLINE_NONE, SCIO_SCOPE_SHIELD);
  int rc = scio_lock_acquire(lock);
  scio_scope_close(&shield);
  /* Shielded, and released by us just before: only a lock re-initialised
   * or overwritten under our feet can fail here. */
  if (rc < 0)
    scio__panic("condition_wait: cannot re-acquire the lock: %s (%s)",
                scio_strerror(rc), scio_errmsg());
}

SCIO_API int scio_condition_wait(scio_condition *cond) {
  cond_impl *c = C(cond);
  if (!c)
    return scio__sync_bad_object(cond, "condition_wait");
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("condition_wait");
  int rc = scio__lock_check_owner(c->lock, "condition_wait");
  if (rc < 0)
    return rc;
  /* Cancelled already: fail before giving the lock up, so the caller keeps
   * it without a pointless release and re-acquire. */
  rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  scio_lock_release(c->lock);
  scio__waiter w;
  rc = scio__waitq_park(&c->waiters, &w, t, "condition_wait");
  reacquire_shielded(c->lock);
  return rc;
}

SCIO_API int scio_condition_notify(scio_condition *cond, size_t n) {
  cond_impl *c = C(cond);
  if (!c)
    return scio__sync_bad_object(cond, "condition_notify");
  if (!scio__task_cur())
    return scio__sync_no_task("condition_notify");
  int rc = scio__lock_check_owner(c->lock, "condition_notify");
  if (rc < 0)
    return rc;
  size_t woken = 0;
  scio__waiter *w;
  while (woken < n && (w = scio__waitq_pop(&c->waiters))) {
    scio__task_wake(w->task, 0);
    woken++;
  }
  return woken > INT_MAX ? INT_MAX : (int)woken;
}

SCIO_API int scio_condition_notify_all(scio_condition *cond) {
  return scio_condition_notify(cond, (size_t)-1);
}

SCIO_API int scio_condition_statistics(const scio_condition *cond,
                                       scio_condition_stats *out) {
  cond_impl *c = C(cond);
  if (!c)
    return scio__sync_bad_object(cond, "condition_statistics");
  if (!out)
    return scio__seterr(SCIO_EINVAL, "condition_statistics: out is NULL");
  out->tasks_waiting = c->waiters.count;
  return scio_lock_statistics(c->lock, &out->lock);
}
