/* The FIFO wait queue shared by the synchronization primitives, and the
 * error helpers they have in common. */
#include "waitq.h"

/* Cancellation reached a queued waiter: nothing was handed to it yet (a
 * woken task is never aborted), so unlinking it is all there is to undo. */
static void waitq_abort(scio__task *t, void *ctx) {
  (void)t;
  scio__waitq_remove(ctx);
}

int scio__waitq_park(scio__waitq *q, scio__waiter *w, scio__task *t,
                     const char *what) {
  w->queue = q;
  w->task = t;
  scio__list_push_back(&q->head, &w->link);
  q->count++;
  return scio__park(waitq_abort, w, what);
}

int scio__sync_bad_object(const void *obj, const char *what) {
  if (!obj)
    return scio__seterr(SCIO_EINVAL, "%s: the object is NULL", what);
  return scio__seterr(SCIO_EINVAL, "%s: the object is not initialised", what);
}

int scio__sync_no_task(const char *what) {
  return scio__seterr(SCIO_EINVAL, "%s: not inside a task", what);
}
