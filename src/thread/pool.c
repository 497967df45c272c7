/* The run's worker pool: threads that take jobs from a FIFO queue, are
 * started when a job finds no idle worker, exit after idle_timeout
 * seconds without work, and are all joined when the run ends.
 *
 * Workers block every signal, so that signals go to the program's own
 * threads (and to scio's signal handling) as if no worker existed. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "thread_internal.h"

typedef struct scio__worker {
  struct scio__worker *next;
  pthread_t th;
  int exited; /* under the pool mutex */
  scio__pool *pool;
} scio__worker;

enum { POOL_DEFAULT_TOKENS = 40, POOL_MAX_FREE_JOBS = 64 };
#define POOL_DEFAULT_IDLE 10.0

/* One loop per thread, so one pool per thread at a time. */
static __thread scio__pool *tls_pool;
static __thread scio__job *tls_job; /* in a worker: the job it runs */

scio__job *scio__job_current(void) { return tls_job; }

static void deadline_add(struct timespec *ts, double secs) {
  if (secs > 1e6)
    secs = 1e6;
  double whole = floor(secs);
  ts->tv_sec += (time_t)whole;
  ts->tv_nsec += (long)((secs - whole) * 1e9);
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void deadline_after(struct timespec *ts, double secs) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  deadline_add(ts, secs);
}

static void *worker_main(void *arg) {
  scio__worker *w = arg;
  scio__pool *p = w->pool;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (p->nqueued == 0 && !p->shutdown) {
      /* Idle: exit idle_timeout seconds from now, as it is when each wait
       * starts (scio_to_thread_set_idle_timeout wakes us to re-read it). */
      struct timespec start;
      clock_gettime(CLOCK_MONOTONIC, &start);
      while (p->nqueued == 0 && !p->shutdown) {
        struct timespec until = start;
        deadline_add(&until, p->idle_timeout);
        p->nidle++;
        int rc = pthread_cond_timedwait(&p->work_cv, &p->mu, &until);
        p->nidle--;
        if (rc == ETIMEDOUT && p->nqueued == 0 && !p->shutdown)
          goto out;
      }
    }
    if (p->nqueued == 0)
      break; /* shut down with nothing left to do */
    scio__job *j =
        scio__container_of(p->queue.next, scio__job, qlink);
    scio__list_remove(&j->qlink);
    scio__list_init(&j->qlink);
    p->nqueued--;
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&p->mu);

    tls_job = j;
    j->result = j->fn(j->arg);
    tls_job = NULL;
    /* Counted as returning while it reports, so that a job the caller
     * queues meanwhile waits for this worker instead of starting a thread
     * for nothing.  The report is made without the mutex: the loop may
     * take it at once to queue the next job. */
    __atomic_add_fetch(&p->nreturning, 1, __ATOMIC_RELAXED);
    scio__job_send(j, JOB_MSG_DONE); /* j may be freed from here on */
    pthread_mutex_lock(&p->mu);
    __atomic_sub_fetch(&p->nreturning, 1, __ATOMIC_RELAXED);
  }
out:
  w->exited = 1;
  __atomic_store_n(&p->nexited, 1, __ATOMIC_RELAXED);
  p->nalive--;
  pthread_cond_broadcast(&p->exit_cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Join the workers that exited (loop thread).  A joined thread's exit was
 * recorded under the mutex, so pthread_join returns at once. */
static void reap_exited(scio__pool *p, int all) {
  scio__worker **pp = &p->workers, *done = NULL;
  if (!all && !__atomic_load_n(&p->nexited, __ATOMIC_RELAXED))
    return;
  pthread_mutex_lock(&p->mu);
  p->nexited = 0;
  while (*pp) {
    scio__worker *w = *pp;
    if (all || w->exited) {
      *pp = w->next;
      w->next = done;
      done = w;
    } else {
      pp = &w->next;
    }
  }
  pthread_mutex_unlock(&p->mu);
  while (done) {
    scio__worker *next = done->next;
    pthread_join(done->th, NULL);
    scio__free(done);
    done = next;
  }
}

/* The run is over: no task waits for a job any more, but abandoned jobs
 * may still run.  Their workers may call into the loop (from_thread), so
 * keep running the loop's posts while waiting for them. */
static void pool_at_exit(void *arg) {
  scio__pool *p = arg;
  pthread_mutex_lock(&p->mu);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->work_cv);
  while (p->nalive > 0) {
    pthread_mutex_unlock(&p->mu);
    scio__loop_run_posts(p->loop);
    pthread_mutex_lock(&p->mu);
    if (p->nalive > 0) {
      struct timespec until;
      deadline_after(&until, 0.002);
      pthread_cond_timedwait(&p->exit_cv, &p->mu, &until);
    }
  }
  pthread_mutex_unlock(&p->mu);
  reap_exited(p, 1);
  scio__loop_run_posts(p->loop); /* the last DONE posts: tokens, jobs */
  while (p->free_jobs) {
    scio__job *j = p->free_jobs;
    p->free_jobs = j->free_next;
    scio__free(j);
  }
  scio_limiter_destroy(&p->limiter);
  scio__wakeup_unref(p->wake);
  pthread_cond_destroy(&p->work_cv);
  pthread_cond_destroy(&p->exit_cv);
  pthread_mutex_destroy(&p->mu);
  if (tls_pool == p)
    tls_pool = NULL;
  scio__free(p);
}

static int cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
  return rc;
}

scio__pool *scio__pool_get(void) {
  scio__loop *l = scio__loop_current();
  if (!l) {
    scio__seterr(SCIO_EINVAL, "to_thread: not inside scio_run");
    return NULL;
  }
  if (tls_pool && tls_pool->loop == l)
    return tls_pool;
  scio__pool *p = scio__calloc(1, sizeof *p);
  if (!p) {
    scio__seterr(SCIO_ENOMEM, "to_thread: out of memory");
    return NULL;
  }
  p->loop = l;
  p->idle_timeout = POOL_DEFAULT_IDLE;
  scio__list_init(&p->queue);
  p->wake = scio__wakeup_ref(l);
  if (!p->wake) {
    scio__free(p);
    return NULL;
  }
  scio_limiter_init(&p->limiter, POOL_DEFAULT_TOKENS);
  pthread_mutexattr_t ma; /* adaptive: short sections, often contended */
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(&p->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  cond_init_monotonic(&p->work_cv);
  cond_init_monotonic(&p->exit_cv);
  if (scio__loop_at_exit(l, pool_at_exit, p) < 0) {
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->exit_cv);
    pthread_mutex_destroy(&p->mu);
    scio_limiter_destroy(&p->limiter);
    scio__wakeup_unref(p->wake);
    scio__free(p);
    return NULL;
  }
  tls_pool = p;
  return p;
}

static int start_worker(scio__pool *p) {
  scio__worker *w = scio__calloc(1, sizeof *w);
  if (!w)
    return scio__seterr(SCIO_ENOMEM, "to_thread: out of memory");
  w->pool = p;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&w->th, NULL, worker_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    scio__free(w);
    return scio__seterr(SCIO_EAGAIN, "to_thread: cannot start a thread: %s",
                        strerror(rc));
  }
  w->next = p->workers; /* under the mutex: the caller holds it */
  p->workers = w;
  p->nalive++;
  return 0;
}

/* Tests only: at most this many workers (0: no cap), so that a job can be
 * made to wait in the queue. */
int scio__pool_test_max_workers;

int scio__pool_submit(scio__pool *p, scio__job *j) {
  reap_exited(p, 0);
  pthread_mutex_lock(&p->mu);
  j->state = JOB_QUEUED;
  scio__list_push_back(&p->queue, &j->qlink);
  p->nqueued++;
  int rc = 0, signal = 0;
  if (p->nqueued <= p->nidle +
                        __atomic_load_n(&p->nreturning, __ATOMIC_RELAXED)) {
    signal = p->nidle != 0; /* else a returning worker finds the job */
  } else if (scio__pool_test_max_workers > 0 &&
             p->nalive >= (size_t)scio__pool_test_max_workers) {
    /* (tests) a busy worker will come back for it */
  } else if ((rc = start_worker(p)) < 0) {
    scio__list_remove(&j->qlink);
    scio__list_init(&j->qlink);
    p->nqueued--;
    if (p->nalive > 0) {
      /* A busy worker will come back for it: queue it after all. */
      scio__list_push_back(&p->queue, &j->qlink);
      p->nqueued++;
      rc = 0;
    }
  }
  pthread_mutex_unlock(&p->mu);
  /* After unlocking: the woken worker does not then block on the mutex. */
  if (signal)
    pthread_cond_signal(&p->work_cv);
  return rc;
}

int scio__pool_unqueue(scio__pool *p, scio__job *j) {
  pthread_mutex_lock(&p->mu);
  int queued = j->state == JOB_QUEUED;
  if (queued) {
    scio__list_remove(&j->qlink);
    scio__list_init(&j->qlink);
    p->nqueued--;
    j->state = JOB_NEVER_RAN;
  }
  pthread_mutex_unlock(&p->mu);
  return queued;
}

scio__job *scio__job_new(scio__pool *p) {
  scio__job *j = p->free_jobs;
  if (j) {
    p->free_jobs = j->free_next;
    p->nfree--;
  } else if (!(j = scio__malloc(sizeof *j))) {
    scio__seterr(SCIO_ENOMEM, "to_thread: out of memory");
    return NULL;
  }
  memset(j, 0, sizeof *j);
  j->pool = p;
  scio__list_init(&j->qlink);
  return j;
}

void scio__job_free(scio__job *j) {
  scio__pool *p = j->pool;
  if (p->nfree < POOL_MAX_FREE_JOBS) {
    j->free_next = p->free_jobs;
    p->free_jobs = j;
    p->nfree++;
  } else {
    scio__free(j);
  }
}

SCIO_API scio_limiter *scio_to_thread_default_limiter(void) {
  scio__pool *p = scio__pool_get();
  return p ? &p->limiter : NULL;
}

SCIO_API int scio_to_thread_set_idle_timeout(double seconds) {
  if (!(seconds >= 0))
    return scio__seterr(SCIO_EINVAL,
                        "to_thread_set_idle_timeout: %g is not >= 0",
                        seconds);
  scio__pool *p = scio__pool_get();
  if (!p)
    return scio__loop_current() ? SCIO_ENOMEM : SCIO_EINVAL;
  pthread_mutex_lock(&p->mu);
  p->idle_timeout = seconds;
  pthread_cond_broadcast(&p->work_cv); /* idle ones re-read it */
  pthread_mutex_unlock(&p->mu);
  return 0;
}
