/* Private: the FIFO wait queue every primitive of src/sync is built on.
 *
 * A waiter record lives on the blocked task's stack, so waiting never
 * allocates.  The queue keeps a count so that statistics are O(1).
 *
 * Hand-off protocol: whoever completes a waiter's operation (a release, a
 * set, a notify) first does the work on the waiter's behalf (makes it the
 * owner, takes the unit or token for it), then pops it and wakes it with
 * 0.  A woken task is never aborted afterwards, so what it was given stays
 * given.  A waiter that is cancelled while still queued is unlinked by the
 * abort function and owns nothing.
 */
#ifndef SCIO_SYNC_WAITQ_H
#define SCIO_SYNC_WAITQ_H

#include <stddef.h>

#include "core/layer.h"

typedef struct scio__waitq {
  scio__node head;
  size_t count;
} scio__waitq;

typedef struct scio__waiter {
  scio__node link;
  scio__waitq *queue; /* the queue it is in, for the abort function */
  scio__task *task;
  const void *borrower; /* used by the capacity limiter only */
} scio__waiter;

static inline void scio__waitq_init(scio__waitq *q) {
  scio__list_init(&q->head);
  q->count = 0;
}

static inline int scio__waitq_empty(const scio__waitq *q) {
  return q->count == 0;
}

static inline scio__waiter *scio__waitq_first(const scio__waitq *q) {
  if (q->count == 0)
    return NULL;
  return scio__container_of(q->head.next, scio__waiter, link);
}

static inline void scio__waitq_remove(scio__waiter *w) {
  scio__list_remove(&w->link);
  w->queue->count--;
}

/* Unlink and return the first waiter, or NULL.  The caller then wakes its
 * task, after completing the operation on its behalf. */
static inline scio__waiter *scio__waitq_pop(scio__waitq *q) {
  scio__waiter *w = scio__waitq_first(q);
  if (w)
    scio__waitq_remove(w);
  return w;
}

/* Queue the current task t at the back of q and block it until it is woken
 * (the wake value is returned) or cancelled (it is unlinked and
 * SCIO_ECANCELED is returned).  `what` names the wait in task dumps.  The
 * caller has already checked cancellation, as the checkpoint rule asks. */
int scio__waitq_park(scio__waitq *q, scio__waiter *w, scio__task *t,
                     const char *what);

/* Reject a call on an object that is NULL or was never initialised, naming
 * the call in the error detail.  Returns -EINVAL. */
int scio__sync_bad_object(const void *obj, const char *what);

/* Reject a call that needs a current task when there is none.  Returns
 * -EINVAL. */
int scio__sync_no_task(const char *what);

#endif
