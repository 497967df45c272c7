/* Events: a one-shot flag.  Setting it wakes every waiter at once; there is
 * nothing to hand off, so a waiter woken in the same round as its
 * cancellation simply returns 0. */
#include "scio/sync.h"
#include "waitq.h"

#define EVENT_MAGIC 0xe7e47e70u

typedef struct event_impl {
  scio__waitq waiters;
  int set;
  uint32_t magic;
} event_impl;

_Static_assert(sizeof(event_impl) <= sizeof(scio_event),
               "scio_event storage too small");
_Static_assert(_Alignof(event_impl) <= _Alignof(scio_event),
               "scio_event storage misaligned");

/* The implementation behind a public handle, or NULL when the handle is
 * NULL or was never initialised. */
static event_impl *E(const scio_event *ev) {
  event_impl *e = (event_impl *)(void *)ev;
  return e && e->magic == EVENT_MAGIC ? e : NULL;
}

SCIO_API int scio_event_init(scio_event *ev) {
  if (!ev)
    return scio__sync_bad_object(ev, "event_init");
  event_impl *e = (event_impl *)(void *)ev;
  scio__waitq_init(&e->waiters);
  e->set = 0;
  e->magic = EVENT_MAGIC;
  return 0;
}

SCIO_API int scio_event_set(scio_event *ev) {
  event_impl *e = E(ev);
  if (!e)
    return scio__sync_bad_object(ev, "event_set");
  e->set = 1;
  scio__waiter *w;
  while ((w = scio__waitq_pop(&e->waiters)))
    scio__task_wake(w->task, 0);
  return 0;
}

SCIO_API int scio_event_is_set(const scio_event *ev) {
  event_impl *e = E(ev);
  if (!e)
    return scio__sync_bad_object(ev, "event_is_set");
  return e->set;
}

SCIO_API int scio_event_wait(scio_event *ev) {
  event_impl *e = E(ev);
  if (!e)
    return scio__sync_bad_object(ev, "event_wait");
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__sync_no_task("event_wait");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (e->set) {
    /* Already set: still a checkpoint, so let the others run once. */
    scio__yield();
    return 0;
  }
  scio__waiter w;
  return scio__waitq_park(&e->waiters, &w, t, "event_wait");
}

SCIO_API int scio_event_statistics(const scio_event *ev,
                                   scio_event_stats *out) {
  event_impl *e = E(ev);
  if (!e)
    return scio__sync_bad_object(ev, "event_statistics");
  if (!out)
    return scio__seterr(SCIO_EINVAL, "event_statistics: out is NULL");
  out->tasks_waiting = e->waiters.count;
  return 0;
}
