/* scio_to_thread: the caller's side of a job (thread_internal.h has the
 * life of a job), and the worker's messages to it.
 *
 * The caller parks until its worker says something: DONE (fn returned),
 * or CALL (the worker asks the loop to run a function in the caller's
 * task, scio_from_thread_*).  It serves calls in its own task, so they run
 * inside its cancel scopes, and parks again.  A message that arrives while
 * the caller is not parked waits in `pending`. */
#include "thread_internal.h"

/* sem_post is safe against the worker returning (and destroying the
 * semaphore) as soon as the count is up. */
static void reply(scio__job *j, scio__call *c, int rc) {
  (void)j;
  c->rc = rc;
  sem_post(&c->done);
}

/* On the loop (a post): deliver the worker's message. */
static void job_posted(void *arg) {
  scio__job *j = arg;
  if (__atomic_load_n(&j->abandoned, __ATOMIC_RELAXED)) {
    if (j->msg == JOB_MSG_DONE) {
      /* The token was held until the thread really ended. */
      scio_limiter_release_on_behalf_of(j->limiter, j);
      scio__job_free(j);
    } else {
      reply(j, j->call, SCIO_ECANCELED);
    }
    return;
  }
  if (j->parked) {
    j->parked = 0;
    scio__task_wake(j->caller, j->msg);
  } else {
    j->pending = j->msg;
  }
}

void scio__job_send(scio__job *j, int msg) {
  j->msg = msg;
  j->post.fn = job_posted;
  j->post.arg = j;
  /* Workers are joined before the loop closes its wake-up record, so this
   * cannot be refused. */
  if (scio__wakeup_post_node(j->pool->wake, &j->post) != 0)
    scio__panic("to_thread: the loop refused a worker's message");
}

/* Cancellation of a parked caller (on the canceller's stack).  A job still
 * queued is taken back and the caller resumes cancelled; an abandoned one
 * too.  Otherwise C cannot stop the thread: the job is flagged (for
 * scio_from_thread_check_cancelled) and the abort refused, as Trio's
 * abort function returns Abort.FAILED: the caller stays parked, no longer
 * abortable, until the thread is done, and the cancellation stays pending
 * for its next checkpoint instead of being delivered to a call that
 * returns the thread's result. */
static void job_abort(scio__task *t, void *ctx) {
  scio__job *j = ctx;
  if (scio__pool_unqueue(j->pool, j)) {
    j->parked = 0;
    j->never_ran = 1; /* read by the caller without the pool's mutex */
    return;
  }
  __atomic_store_n(&j->cancelled, 1, __ATOMIC_RELAXED);
  if (j->abandon_on_cancel) {
    j->parked = 0;
    __atomic_store_n(&j->abandoned, 1, __ATOMIC_RELAXED);
    return;
  }
  scio__abort_refuse(t); /* still parked: j->parked stays set */
}

/* Run a worker's call in this (the caller's) task.  The call runs inside
 * the caller's scopes and may see their cancellation, but its result goes
 * to the worker: a cancellation it consumed has not left the caller, so
 * the mark of its delivery is put back as it was. */
static void serve_call(scio__job *j, scio__task *t) {
  scio__call *c = j->call;
  unsigned mark = scio__cancel_mark_save(t);
  int rc = c->fn(c->arg);
  scio__cancel_mark_restore(t, mark);
  reply(j, c, rc);
}

static void job_finish(scio__job *j) {
  scio_limiter_release_on_behalf_of(j->limiter, j);
  scio__job_free(j);
}

SCIO_API int scio_to_thread(scio_thread_fn fn, void *arg, void **result,
                            const scio_to_thread_opts *opts) {
  if (result)
    *result = NULL;
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "to_thread: fn is NULL");
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "to_thread: not inside a task");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  scio__pool *p = scio__pool_get();
  if (!p)
    return SCIO_ENOMEM;
  scio__job *j = scio__job_new(p);
  if (!j)
    return SCIO_ENOMEM;
  j->fn = fn;
  j->arg = arg;
  j->limiter = opts && opts->limiter ? opts->limiter : &p->limiter;
  int abandon = opts && opts->abandon_on_cancel;
  /* A checkpoint: cancelled while waiting for a token, fn never runs. */
  if ((rc = scio_limiter_acquire_on_behalf_of(j->limiter, j)) < 0) {
    scio__job_free(j);
    return rc;
  }
  j->caller = t;
  j->abandon_on_cancel = abandon;
  if ((rc = scio__pool_submit(p, j)) < 0) {
    job_finish(j);
    return rc;
  }
  for (;;) {
    int v;
    if (j->pending) {
      v = j->pending;
      j->pending = 0;
    } else {
      j->parked = 1;
      v = scio__park(job_abort, j, "to_thread");
    }
    if (v == SCIO_ECANCELED) {
      /* Taken back from the queue, or abandoned (the DONE post cleans up):
       * the only aborts job_abort accepts. */
      if (j->never_ran)
        job_finish(j);
      return SCIO_ECANCELED;
    }
    if (v == JOB_MSG_CALL) {
      serve_call(j, t);
      continue;
    }
    break; /* JOB_MSG_DONE */
  }
  if (result)
    *result = j->result;
  job_finish(j);
  return 0;
}
