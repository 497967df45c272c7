/* Sleeping and "all tasks blocked".
 *
 * A sleep is a cancel scope with the wake-up time as its deadline around an
 * abortable wait that nothing else wakes: deadlines have one mechanism only,
 * and a sleep is cancelled by an outer scope exactly like any other wait.
 */
#include <math.h>

#include "internal.h"

static void abort_nothing(scio__task *t, void *ctx) {
  (void)t;
  (void)ctx;
}

SCIO_API int scio_sleep_forever(void) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "sleep_forever: not inside a task");
  return scio__park(abort_nothing, NULL, "sleep");
}

SCIO_API int scio_sleep_until(double deadline) {
  if (deadline != deadline)
    return scio__seterr(SCIO_EINVAL, "sleep_until: deadline is NaN");
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "sleep_until: not inside a task");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  /* A quiet scope: when its own deadline wakes the sleep, the delivery
   * leaves the errmsg alone (the sleep returns 0), so a timed sleep costs
   * no formatting. */
  scio_scope cs;
  scio__scope *s = (scio__scope *)&cs;
  scio__scope_init_open(s, t, t->scope, deadline, SCIO__SC_QUIET, "sleep", 0);
  scio__task_enter_scope(t, s);
  if (scio_scope_cancel_called(&cs)) {
    /* Already due: still a checkpoint, so yield once. */
    scio_scope_close(&cs);
    return scio_checkpoint();
  }
  rc = scio__park(abort_nothing, NULL, "sleep");
  /* 0 when this sleep's own deadline (and nothing outside) woke it. */
  return scio_scope_close_with(&cs, rc);
}

SCIO_API int scio_sleep(double seconds) {
  if (seconds != seconds)
    return scio__seterr(SCIO_EINVAL, "sleep: duration is NaN");
  if (seconds <= 0)
    return scio_checkpoint();
  return scio_sleep_until(scio_now() + seconds);
}

typedef struct blocked_waiter {
  scio__node link;
  scio__task *task;
} blocked_waiter;

static void abort_blocked_wait(scio__task *t, void *ctx) {
  (void)t;
  scio__list_remove(&((blocked_waiter *)ctx)->link);
}

int scio__wake_all_blocked_waiters(scio__loop *l) {
  if (scio__list_empty(&l->blocked_waiters))
    return 0;
  scio__list_each(n, &l->blocked_waiters) {
    blocked_waiter *w = scio__container_of(n, blocked_waiter, link);
    scio__list_remove(&w->link);
    scio__task_wake(w->task, 0);
  }
  return 1;
}

SCIO_API int scio_wait_all_tasks_blocked(void) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL,
                        "wait_all_tasks_blocked: not inside a task");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  blocked_waiter w;
  w.task = t;
  scio__list_push_back(&t->loop->blocked_waiters, &w.link);
  return scio__park(abort_blocked_wait, &w, "wait_all_tasks_blocked");
}
