/* Blocking portals: a scio_run in a thread of its own, and plain threads
 * that hand it work (AnyIO's BlockingPortal).
 *
 * The portal's root task holds a nursery and waits for requests.  A request
 * is a post on the run's wake-up handle: its function (on the portal's
 * scheduler) appends the request to a list and wakes the root, which
 * starts each one as a task in the nursery.  A call's task hands its
 * result back under the portal's mutex; the calling thread waits on the
 * portal's condition variable.  Once stopping, the loop answers every new
 * request SCIO_ECLOSED; a post accepted before the run ended always runs,
 * so no caller waits forever for a request nobody saw. */
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "thread_internal.h"

enum { REQ_CALL = 1, REQ_SOON, REQ_STOP };

typedef struct preq {
  scio__post post;
  struct preq *next;  /* in the portal's list (loop thread) */
  scio_portal *p;
  int kind;
  scio_fn fn;
  void *arg;
  int cancel_remaining; /* REQ_STOP */
  int rc;               /* REQ_CALL: written before `done` is posted */
  sem_t done;           /* REQ_CALL, REQ_STOP: posted once */
  char msg[256];        /* REQ_CALL: the task's error detail */
} preq;

struct scio_portal {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* started, stopped */
  scio__wakeup *wake;     /* the run's handle: written before `started` */
  scio__loop *loop;
  scio_run_opts run_opts;
  int has_run_opts;
  int started;            /* under mu: 1 running, -1 failed to start */
  int start_rc;
  int stop_state;         /* under mu: 0, 1 stopping, 2 joined */
  int run_rc;
  /* loop thread only */
  preq *head, **tail;
  scio__task *root;
  int root_parked;
  int stopping;
};

/* Hand a result back.  A semaphore per request: the caller wakes without
 * meeting a mutex, and sem_post is safe against the waiter returning (and
 * destroying it) as soon as the count is up. */
static void req_complete(preq *r, int rc, const char *msg) {
  if (r->kind == REQ_SOON) {
    scio__free(r);
    return;
  }
  r->rc = rc;
  if (msg)
    snprintf(r->msg, sizeof r->msg, "%s", msg);
  sem_post(&r->done);
}

/* On the portal's loop: queue a request for the root task. */
static void req_posted(void *arg) {
  preq *r = arg;
  scio_portal *p = r->p;
  if (p->stopping && r->kind != REQ_STOP) {
    req_complete(r, SCIO_ECLOSED, "portal: stopped");
    return;
  }
  if (!p->root) { /* the root task has returned: the run is ending */
    req_complete(r, SCIO_ECLOSED, "portal: stopped");
    return;
  }
  r->next = NULL;
  *p->tail = r;
  p->tail = &r->next;
  if (p->root_parked) {
    p->root_parked = 0;
    scio__task_wake(p->root, 0);
  }
}

static int req_task(void *arg) {
  preq *r = arg;
  int rc = r->fn(r->arg);
  /* The result goes to the caller, not to the nursery: one failing call
   * must not cancel the others. */
  req_complete(r, rc, rc < 0 ? scio_errmsg() : NULL);
  return 0;
}

static int portal_main(void *arg) {
  scio_portal *p = arg;
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc == 0 && !(p->wake = scio__wakeup_ref(NULL)))
    rc = scio_nursery_close_with(&n, SCIO_ENOMEM);
  pthread_mutex_lock(&p->mu);
  p->loop = scio__loop_current();
  p->start_rc = rc;
  p->started = rc == 0 ? 1 : -1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (rc < 0)
    return rc;
  p->root = scio__task_cur();
  p->tail = &p->head;
  for (;;) {
    preq *r;
    while ((r = p->head)) {
      p->head = r->next;
      if (!p->head)
        p->tail = &p->head;
      if (r->kind == REQ_STOP) {
        p->stopping = 1;
        if (r->cancel_remaining)
          scio_scope_cancel(scio_nursery_scope(&n));
        continue; /* later requests are answered ECLOSED below */
      }
      if (p->stopping) {
        req_complete(r, SCIO_ECLOSED, "portal: stopped");
        continue;
      }
      int src = scio_start_soon(&n, req_task, r);
      if (src < 0)
        req_complete(r, src, scio_errmsg());
    }
    if (p->stopping)
      break;
    p->root_parked = 1;
    scio__park(NULL, NULL, "portal: waiting for requests");
  }
  rc = scio_nursery_close(&n);
  p->root = NULL; /* from now on requests are answered ECLOSED */
  return rc == SCIO_ECANCELED ? 0 : rc;
}

static void *portal_thread(void *arg) {
  scio_portal *p = arg;
  int rc = scio_run(portal_main, p, p->has_run_opts ? &p->run_opts : NULL);
  pthread_mutex_lock(&p->mu);
  p->run_rc = rc;
  if (p->started == 0) { /* scio_run failed before the root ran */
    p->started = -1;
    p->start_rc = rc;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

SCIO_API int scio_portal_start(scio_portal **out, const scio_portal_opts *opts) {
  if (!out)
    return scio__seterr(SCIO_EINVAL, "portal_start: out is NULL");
  *out = NULL;
  scio_portal *p = scio__calloc(1, sizeof *p);
  if (!p)
    return scio__seterr(SCIO_ENOMEM, "portal_start: out of memory");
  if (opts && opts->run) {
    p->run_opts = *opts->run;
    p->has_run_opts = 1;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&p->th, NULL, portal_thread, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    scio__free(p);
    return scio__seterr(SCIO_EAGAIN, "portal_start: cannot start a thread: "
                                     "%s", strerror(rc));
  }
  pthread_mutex_lock(&p->mu);
  while (p->started == 0)
    pthread_cond_wait(&p->cv, &p->mu);
  int ok = p->started > 0;
  rc = p->start_rc;
  pthread_mutex_unlock(&p->mu);
  if (!ok) {
    pthread_join(p->th, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    scio__free(p);
    return scio__seterr(rc < 0 ? rc : SCIO_ENOMEM,
                        "portal_start: the portal's run failed");
  }
  *out = p;
  return 0;
}

static int own_thread(scio_portal *p, const char *what) {
  if (scio__loop_current() && scio__loop_current() == p->loop)
    return scio__seterr(SCIO_EDEADLK, "%s: called from the portal's own "
                                      "thread", what);
  return 0;
}

SCIO_API int scio_portal_call(scio_portal *p, scio_fn fn, void *arg) {
  if (!p || !fn)
    return scio__seterr(SCIO_EINVAL, "portal_call: %s is NULL",
                        p ? "fn" : "portal");
  int rc = own_thread(p, "portal_call");
  if (rc < 0)
    return rc;
  preq r;
  memset(&r, 0, sizeof r);
  r.p = p;
  r.kind = REQ_CALL;
  r.fn = fn;
  r.arg = arg;
  r.post.fn = req_posted;
  r.post.arg = &r;
  sem_init(&r.done, 0, 0);
  if ((rc = scio__wakeup_post_node(p->wake, &r.post)) < 0) {
    sem_destroy(&r.done);
    return scio__seterr(rc, "portal_call: the portal has stopped");
  }
  while (sem_wait(&r.done) != 0) {
  } /* EINTR */
  sem_destroy(&r.done);
  if (r.rc < 0)
    return scio__seterr(r.rc, "%s", r.msg);
  return r.rc;
}

SCIO_API int scio_portal_start_task_soon(scio_portal *p, scio_fn fn,
                                         void *arg) {
  if (!p || !fn)
    return scio__seterr(SCIO_EINVAL, "portal_start_task_soon: %s is NULL",
                        p ? "fn" : "portal");
  preq *r = scio__calloc(1, sizeof *r);
  if (!r)
    return scio__seterr(SCIO_ENOMEM, "portal_start_task_soon: out of "
                                     "memory");
  r->p = p;
  r->kind = REQ_SOON;
  r->fn = fn;
  r->arg = arg;
  r->post.fn = req_posted;
  r->post.arg = r;
  int rc = scio__wakeup_post_node(p->wake, &r->post);
  if (rc < 0) {
    scio__free(r);
    return scio__seterr(rc, "portal_start_task_soon: the portal has "
                            "stopped");
  }
  return 0;
}

SCIO_API int scio_portal_stop(scio_portal *p, int cancel_remaining) {
  if (!p)
    return scio__seterr(SCIO_EINVAL, "portal_stop: portal is NULL");
  int rc = own_thread(p, "portal_stop");
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&p->mu);
  if (p->stop_state != 0) { /* another stop did or does it: wait for it */
    while (p->stop_state != 2)
      pthread_cond_wait(&p->cv, &p->mu);
    rc = p->run_rc;
    pthread_mutex_unlock(&p->mu);
    return rc;
  }
  p->stop_state = 1;
  pthread_mutex_unlock(&p->mu);
  preq r;
  memset(&r, 0, sizeof r);
  r.p = p;
  r.kind = REQ_STOP;
  r.cancel_remaining = cancel_remaining;
  r.post.fn = req_posted;
  r.post.arg = &r;
  sem_init(&r.done, 0, 0); /* posted only if it comes too late */
  scio__wakeup_post_node(p->wake, &r.post); /* ECLOSED: ended already */
  pthread_join(p->th, NULL);
  sem_destroy(&r.done);
  pthread_mutex_lock(&p->mu);
  p->stop_state = 2;
  rc = p->run_rc;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return rc;
}

SCIO_API void scio_portal_free(scio_portal *p) {
  if (!p)
    return;
  int state;
  pthread_mutex_lock(&p->mu);
  state = p->stop_state;
  pthread_mutex_unlock(&p->mu);
  if (state != 2)
    scio_portal_stop(p, 1);
  scio__wakeup_unref(p->wake);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  scio__free(p);
}
