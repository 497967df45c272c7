/* Capacity limiters (AnyIO's CapacityLimiter): counted tokens, each held by
 * a named borrower, with FIFO hand-off.
 *
 * Invariant: tokens are free (borrowed < total) only when nobody waits,
 * because every release and every raise of the total hands free tokens to
 * the first waiters at once.  So "a token is free" alone means "free to
 * take", and nobody barges in ahead of a woken waiter.
 *
 * Borrowers live in a pointer set.  Handing a token to a waiter must not
 * fail, so it must not allocate: room is reserved before any call commits
 * to anything.  The set always has room for min(total, borrowed + waiting)
 * borrowers, which bounds every borrower a release or a raise of the total
 * can admit, since each admission moves one waiter into the set and only
 * while borrowed < total. */
#include <limits.h>

#include "ptrset.h"
#include "scio/sync.h"
#include "waitq.h"

#define LIMITER_MAGIC 0x11a117e5u

typedef struct limiter_impl {
  scio__waitq waiters; /* each waiter's borrower is in its record */
  size_t total;
  size_t borrowed;     /* == borrowers.count */
  scio__ptrset borrowers;
  uint32_t magic;
} limiter_impl;

_Static_assert(sizeof(limiter_impl) <= sizeof(scio_limiter),
               "scio_limiter storage too small");
_Static_assert(_Alignof(limiter_impl) <= _Alignof(scio_limiter),
               "scio_limiter storage misaligned");

static inline limiter_impl *LIM(const scio_limiter *lim) {
  limiter_impl *l = (limiter_impl *)(void *)lim;
  return l && l->magic == LIMITER_MAGIC ? l : NULL;
}

static int total_in_range(size_t total, const char *what) {
  /* Counts are reported as ssize_t, so they must fit in one. */
  if (total < 1 || total > (size_t)SSIZE_MAX)
    return scio__seterr(SCIO_EINVAL, "%s: total_tokens %zu is not in 1..%zd",
                        what, total, (ssize_t)SSIZE_MAX);
  return 0;
}

/* Keep the invariant of the file comment when `extra` more waiters or
 * borrowers are about to be added (and the total is `total`). */
static int reserve(limiter_impl *l, size_t total, size_t extra,
                   const char *what) {
  size_t demand = l->borrowed + l->waiters.count + extra;
  if (scio__ptrset_reserve(&l->borrowers, demand < total ? demand : total) < 0)
    return scio__seterr(SCIO_ENOMEM,
                        "%s: no memory to keep track of up to %zu "
                        "borrowers",
                        what,
                        demand < total ? demand : total);
  return 0;
}

static void lend(limiter_impl *l, const void *borrower) {
  scio__ptrset_add(&l->borrowers, borrower);
  l->borrowed++;
}

/* Hand free tokens to the first waiters, in order.  A waiter whose borrower
 * was given a token meanwhile (by another call on its behalf) is woken with
 * SCIO_EDEADLK instead, and the token goes to the next one. */
static void hand_off(limiter_impl *l) {
  scio__waiter *w;
  while (l->borrowed < l->total && (w = scio__waitq_pop(&l->waiters))) {
    if (scio__ptrset_has(&l->borrowers, w->borrower)) {
      scio__task_wake(w->task, SCIO_EDEADLK);
      continue;
    }
    lend(l, w->borrower);
    scio__task_wake(w->task, 0);
  }
}

/* The checks every acquire and release makes on its arguments. */
static limiter_impl *check_args(const scio_limiter *lim, const void *borrower,
                                const char *what, int *rc) {
  limiter_impl *l = LIM(lim);
  if (!l)
    *rc = scio__sync_bad_object(lim, what);
  else if (!borrower)
    *rc = scio__seterr(SCIO_EINVAL, "%s: the borrower is NULL", what);
  else
    return l;
  return NULL;
}

static int already_borrowing(const char *what) {
  return scio__seterr(SCIO_EDEADLK,
                      "%s: this borrower already holds one of the limiter's "
                      "tokens",
                      what);
}

SCIO_API int scio_limiter_init(scio_limiter *lim, size_t total_tokens) {
  if (!lim)
    return scio__sync_bad_object(lim, "limiter_init");
  int rc = total_in_range(total_tokens, "limiter_init");
  if (rc < 0)
    return rc;
  limiter_impl *l = (limiter_impl *)(void *)lim;
  scio__waitq_init(&l->waiters);
  l->total = total_tokens;
  l->borrowed = 0;
  scio__ptrset_init(&l->borrowers);
  l->magic = LIMITER_MAGIC;
  return 0;
}

SCIO_API int scio_limiter_destroy(scio_limiter *lim) {
  limiter_impl *l = LIM(lim);
  if (!l)
    return scio__sync_bad_object(lim, "limiter_destroy");
  if (l->borrowed || l->waiters.count)
    return scio__seterr(SCIO_EBUSY,
                        "limiter_destroy: %zu tokens borrowed, %zu tasks "
                        "waiting",
                        l->borrowed, l->waiters.count);
  scio__ptrset_free(&l->borrowers);
  l->magic = 0;
  return 0;
}

static int acquire(scio_limiter *lim, scio__task *t, const void *borrower,
                   const char *what) {
  int rc;
  limiter_impl *l = check_args(lim, borrower, what, &rc);
  if (!l)
    return rc;
  if (scio__ptrset_has(&l->borrowers, borrower))
    return already_borrowing(what);
  rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  rc = reserve(l, l->total, 1, what);
  if (rc < 0)
    return rc;
  if (l->borrowed < l->total) {
    lend(l, borrower);
    /* The checkpoint rule: yield once even though a token was free. */
    scio__yield();
    return 0;
  }
  /* The releaser lends us its token before waking us with 0. */
  scio__waiter w;
  w.borrower = borrower;
  rc = scio__waitq_park(&l->waiters, &w, t, what);
  if (rc == SCIO_EDEADLK)
    return scio__seterr(rc, "%s: the borrower was given a token by another "
                            "call while this one waited",
                        what);
  return rc;
}

SCIO_API int scio_limiter_acquire(scio_limiter *lim) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("limiter_acquire");
  return acquire(lim, t, t, "limiter_acquire");
}

SCIO_API int scio_limiter_acquire_on_behalf_of(scio_limiter *lim,
                                               const void *borrower) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("limiter_acquire_on_behalf_of");
  return acquire(lim, t, borrower, "limiter_acquire_on_behalf_of");
}

static int acquire_nowait(scio_limiter *lim, const void *borrower,
                          const char *what) {
  int rc;
  limiter_impl *l = check_args(lim, borrower, what, &rc);
  if (!l)
    return rc;
  if (scio__ptrset_has(&l->borrowers, borrower))
    return already_borrowing(what);
  if (l->borrowed >= l->total)
    return scio__seterr(SCIO_EWOULDBLOCK,
                        "%s: all %zu tokens are borrowed", what, l->total);
  rc = reserve(l, l->total, 1, what);
  if (rc < 0)
    return rc;
  lend(l, borrower);
  return 0;
}

SCIO_API int scio_limiter_acquire_nowait(scio_limiter *lim) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("limiter_acquire_nowait");
  return acquire_nowait(lim, t, "limiter_acquire_nowait");
}

SCIO_API int
scio_limiter_acquire_on_behalf_of_nowait(scio_limiter *lim,
                                         const void *borrower) {
  return acquire_nowait(lim, borrower,
                        "limiter_acquire_on_behalf_of_nowait");
}

static int release(scio_limiter *lim, const void *borrower,
                   const char *what) {
  int rc;
  limiter_impl *l = check_args(lim, borrower, what, &rc);
  if (!l)
    return rc;
  if (!scio__ptrset_remove(&l->borrowers, borrower))
    return scio__seterr(SCIO_EPERM,
                        "%s: this borrower holds none of the limiter's "
                        "tokens",
                        what);
  l->borrowed--;
  hand_off(l);
  return 0;
}

SCIO_API int scio_limiter_release(scio_limiter *lim) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("limiter_release");
  return release(lim, t, "limiter_release");
}

SCIO_API int scio_limiter_release_on_behalf_of(scio_limiter *lim,
                                               const void *borrower) {
  return release(lim, borrower, "limiter_release_on_behalf_of");
}

SCIO_API int scio_limiter_set_total_tokens(scio_limiter *lim,
                                           size_t total_tokens) {
  limiter_impl *l = LIM(lim);
  if (!l)
    return scio__sync_bad_object(lim, "limiter_set_total_tokens");
  int rc = total_in_range(total_tokens, "limiter_set_total_tokens");
  if (rc < 0)
    return rc;
  rc = reserve(l, total_tokens, 0, "limiter_set_total_tokens");
  if (rc < 0)
    return rc;
  l->total = total_tokens;
  hand_off(l);
  return 0;
}

SCIO_API ssize_t scio_limiter_borrowed_tokens(const scio_limiter *lim) {
  limiter_impl *l = LIM(lim);
  if (!l)
    return scio__sync_bad_object(lim, "limiter_borrowed_tokens");
  return (ssize_t)l->borrowed;
}

SCIO_API ssize_t scio_limiter_available_tokens(const scio_limiter *lim) {
  limiter_impl *l = LIM(lim);
  if (!l)
    return scio__sync_bad_object(lim, "limiter_available_tokens");
  return l->borrowed < l->total ? (ssize_t)(l->total - l->borrowed) : 0;
}

SCIO_API int scio_limiter_statistics(const scio_limiter *lim,
                                     scio_limiter_stats *out) {
  limiter_impl *l = LIM(lim);
  if (!l)
    return scio__sync_bad_object(lim, "limiter_statistics");
  if (!out)
    return scio__seterr(SCIO_EINVAL, "limiter_statistics: out is NULL");
  out->borrowed_tokens = l->borrowed;
  out->total_tokens = l->total;
  out->tasks_waiting = l->waiters.count;
  return 0;
}
