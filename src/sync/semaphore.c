/* Semaphores: a counter of units with FIFO hand-off.
 *
 * Invariant: the value is above zero only when nobody waits, because a
 * release with waiters gives its unit to the first one instead of counting
 * it.  So a positive value alone means "free to take", and a unit released
 * to a waiter cannot be taken by anyone else before the waiter runs. */
#include <limits.h>

#include "scio/sync.h"
#include "waitq.h"

#define SEM_MAGIC 0x5e3a5e3au

typedef struct sem_impl {
  scio__waitq waiters;
  size_t value;
  size_t max_value; /* the effective bound: SSIZE_MAX when unbounded */
  size_t max_given; /* as given to init: 0 for unbounded */
  unsigned flags;
  uint32_t magic;
} sem_impl;

_Static_assert(sizeof(sem_impl) <= sizeof(scio_semaphore),
               "scio_semaphore storage too small");
_Static_assert(_Alignof(sem_impl) <= _Alignof(scio_semaphore),
               "scio_semaphore storage misaligned");

static inline sem_impl *S(const scio_semaphore *sem) {
  sem_impl *s = (sem_impl *)(void *)sem;
  return s && s->magic == SEM_MAGIC ? s : NULL;
}

SCIO_API int scio_semaphore_init(scio_semaphore *sem, size_t initial,
                                 size_t max_value, unsigned flags) {
  if (!sem)
    return scio__sync_bad_object(sem, "semaphore_init");
  if (flags & ~(unsigned)SCIO_FAST_ACQUIRE)
    return scio__seterr(SCIO_EINVAL, "semaphore_init: unknown flags 0x%x",
                        flags);
  /* The value is reported as an ssize_t, so it must fit in one. */
  size_t bound = max_value ? max_value : (size_t)SSIZE_MAX;
  if (bound > (size_t)SSIZE_MAX || initial > bound)
    return scio__seterr(SCIO_EINVAL,
                        "semaphore_init: initial value %zu or max_value %zu "
                        "out of range",
                        initial, max_value);
  sem_impl *s = (sem_impl *)(void *)sem;
  scio__waitq_init(&s->waiters);
  s->value = initial;
  s->max_value = bound;
  s->max_given = max_value;
  s->flags = flags;
  s->magic = SEM_MAGIC;
  return 0;
}

SCIO_API int scio_semaphore_acquire(scio_semaphore *sem) {
  sem_impl *s = S(sem);
  if (!s)
    return scio__sync_bad_object(sem, "semaphore_acquire");
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("semaphore_acquire");
  if (scio__task_cancelled(t)) {
    scio__deliver_cancel(t);
    return SCIO_ECANCELED;
  }
  if (s->value > 0) {
    s->value--;
    /* The checkpoint rule: yield once even though a unit was free. */
    if (!(s->flags & SCIO_FAST_ACQUIRE))
      scio__yield();
    return 0;
  }
  /* The releaser gives us its unit before waking us with 0. */
  scio__waiter w;
  return scio__waitq_park(&s->waiters, &w, t, "semaphore_acquire");
}

SCIO_API int scio_semaphore_acquire_nowait(scio_semaphore *sem) {
  sem_impl *s = S(sem);
  if (!s)
    return scio__sync_bad_object(sem, "semaphore_acquire_nowait");
  if (s->value == 0)
    return scio__seterr(SCIO_EWOULDBLOCK,
                        "semaphore_acquire_nowait: no unit is free");
  s->value--;
  return 0;
}

SCIO_API int scio_semaphore_release(scio_semaphore *sem) {
  sem_impl *s = S(sem);
  if (!s)
    return scio__sync_bad_object(sem, "semaphore_release");
  scio__waiter *w = scio__waitq_pop(&s->waiters);
  if (w) {
    /* Hand-off: the unit goes straight to the first waiter. */
    scio__task_wake(w->task, 0);
    return 0;
  }
  if (s->value >= s->max_value)
    return scio__seterr(-EOVERFLOW,
                        "semaphore_release: released more often than "
                        "acquired (the value is already %zu)",
                        s->value);
  s->value++;
  return 0;
}

SCIO_API ssize_t scio_semaphore_value(const scio_semaphore *sem) {
  sem_impl *s = S(sem);
  if (!s)
    return scio__sync_bad_object(sem, "semaphore_value");
  return (ssize_t)s->value;
}

SCIO_API int scio_semaphore_statistics(const scio_semaphore *sem,
                                       scio_semaphore_stats *out) {
  sem_impl *s = S(sem);
  if (!s)
    return scio__sync_bad_object(sem, "semaphore_statistics");
  if (!out)
    return scio__seterr(SCIO_EINVAL, "semaphore_statistics: out is NULL");
  out->value = s->value;
  out->max_value = s->max_given;
  out->tasks_waiting = s->waiters.count;
  return 0;
}
