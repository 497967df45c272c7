/* Calls from threads into a loop: tokens, scio_from_thread_*.
 *
 * A worker's call goes to its job's caller task (to_thread.c serves it), so
 * it runs inside that task's cancel scopes.  A plain thread's synchronous
 * call is a post on the token's wake-up handle that runs fn on the
 * scheduler; a post accepted before the loop ended always runs, so the
 * thread never waits for nothing. */
#include "thread_internal.h"

/* A token is a reference on the run's wake-up handle. */
static scio__wakeup *H(scio_token *t) { return (scio__wakeup *)(void *)t; }

SCIO_API int scio_token_open(scio_token **out) {
  if (!out)
    return scio__seterr(SCIO_EINVAL, "token_open: out is NULL");
  *out = NULL;
  if (!scio__loop_current())
    return scio__seterr(SCIO_EINVAL, "token_open: not inside scio_run");
  scio__wakeup *h = scio__wakeup_ref(NULL);
  if (!h)
    return SCIO_ENOMEM;
  *out = (scio_token *)(void *)h;
  return 0;
}

SCIO_API void scio_token_close(scio_token *token) {
  scio__wakeup_unref(H(token));
}

/* The worker's job, if token names (or may default to) its run. */
static scio__job *worker_job(scio_token *token) {
  scio__job *j = scio__job_current();
  if (j && (!token || H(token) == j->pool->wake))
    return j;
  return NULL;
}

static int deadlock_check(scio_token *token, const char *what) {
  scio__loop *l = scio__loop_current();
  if (l && token && scio__wakeup_is_loop(H(token), l))
    return scio__seterr(SCIO_EDEADLK,
                        "%s: called from the loop's own thread", what);
  return 0;
}

/* Hand a call to the job's caller task and wait for its result. */
static int job_call(scio__job *j, int (*fn)(void *), void *arg) {
  if (__atomic_load_n(&j->abandoned, __ATOMIC_RELAXED))
    return scio__seterr(SCIO_ECANCELED,
                        "from_thread: the to_thread call was abandoned");
  scio__call c;
  c.fn = fn;
  c.arg = arg;
  c.rc = 0;
  sem_init(&c.done, 0, 0);
  j->call = &c;
  scio__job_send(j, JOB_MSG_CALL);
  while (sem_wait(&c.done) != 0) {
  } /* EINTR */
  sem_destroy(&c.done);
  return c.rc;
}

SCIO_API int scio_from_thread_run(scio_token *token, scio_fn fn, void *arg) {
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "from_thread_run: fn is NULL");
  int rc = deadlock_check(token, "from_thread_run");
  if (rc < 0)
    return rc;
  scio__job *j = worker_job(token);
  if (!j)
    return scio__seterr(SCIO_EINVAL,
                        "from_thread_run: not a worker thread of this run "
                        "(use a portal to run async code from a thread)");
  return job_call(j, fn, arg);
}

/* A plain thread's synchronous call. */
typedef struct sync_call {
  scio__post post;
  int (*fn)(void *);
  void *arg;
  int rc;
  int done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} sync_call;

static void sync_call_run(void *p) {
  sync_call *c = p;
  int rc = c->fn(c->arg);
  pthread_mutex_lock(&c->mu);
  c->rc = rc;
  c->done = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

SCIO_API int scio_from_thread_run_sync(scio_token *token, int (*fn)(void *),
                                       void *arg) {
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "from_thread_run_sync: fn is NULL");
  int rc = deadlock_check(token, "from_thread_run_sync");
  if (rc < 0)
    return rc;
  scio__job *j = worker_job(token);
  if (j)
    return job_call(j, fn, arg);
  if (!token)
    return scio__seterr(SCIO_EINVAL, "from_thread_run_sync: no token, and "
                                     "not a worker thread");
  sync_call c;
  c.post.fn = sync_call_run;
  c.post.arg = &c;
  c.fn = fn;
  c.arg = arg;
  c.rc = 0;
  c.done = 0;
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  rc = scio__wakeup_post_node(H(token), &c.post);
  if (rc == 0) {
    pthread_mutex_lock(&c.mu);
    while (!c.done)
      pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    rc = c.rc;
  } else {
    rc = scio__seterr(rc, "from_thread_run_sync: the run has ended");
  }
  pthread_cond_destroy(&c.cv);
  pthread_mutex_destroy(&c.mu);
  return rc;
}

SCIO_API int scio_from_thread_check_cancelled(void) {
  scio__job *j = scio__job_current();
  if (!j)
    return scio__seterr(SCIO_EINVAL,
                        "from_thread_check_cancelled: not a worker thread");
  if (__atomic_load_n(&j->cancelled, __ATOMIC_RELAXED))
    return scio__seterr(SCIO_ECANCELED, "from_thread: the caller was "
                                        "cancelled");
  return 0;
}
