/* Private: the worker pool and the jobs that go through it (src/thread).
 *
 * One pool per scio_run, created on the first scio_to_thread of the run and
 * found through a thread-local pointer of the loop's thread; scio_run's end
 * (scio__loop_at_exit) joins its workers and frees it.
 *
 * A job is one scio_to_thread call.  Its life:
 *   loop:   borrow a token, queue the job (QUEUED), park the caller;
 *   worker: take it (RUNNING), call fn, post DONE to the loop;
 *   loop:   the post wakes the caller, which gives the token back.
 * Cancellation while QUEUED unlinks the job (it never runs).  Cancellation
 * while RUNNING either flags the job (the caller's abort is refused: it
 * stays parked, and the cancellation waits for its next checkpoint) or
 * abandons it (the caller returns; the DONE post then gives the token back
 * and frees the job).  A worker talks to the loop only through the run's
 * wake-up handle (a post carrying the job), never by touching a task. */
#ifndef SCIO_THREAD_INTERNAL_H
#define SCIO_THREAD_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>

#include "core/layer.h"
#include "scio/thread.h"

typedef struct scio__pool scio__pool;
typedef struct scio__job scio__job;

enum { JOB_QUEUED = 1, JOB_RUNNING, JOB_NEVER_RAN };
/* Wake values of a caller parked in scio_to_thread (positive: never a
 * scio error code). */
enum { JOB_MSG_DONE = 1, JOB_MSG_CALL = 2 };

/* A call from the worker into the loop (scio_from_thread_*), served by the
 * job's caller task.  The worker waits on `done` (posted once rc is set). */
typedef struct scio__call {
  int (*fn)(void *arg); /* run in the caller task (async: may checkpoint) */
  void *arg;
  int rc;
  sem_t done;
} scio__call;

struct scio__job {
  scio__post post;         /* the worker's message to the loop */
  scio__node qlink;        /* in the pool's queue while QUEUED */
  scio__job *free_next;    /* in the pool's free list */
  scio__pool *pool;
  scio_thread_fn fn;
  void *arg;
  void *result;
  scio_limiter *limiter;
  scio__task *caller;      /* loop: the task in scio_to_thread */
  int abandon_on_cancel;
  int state;               /* under the pool mutex */
  int msg;                 /* what `post` says; set by the worker */
  scio__call *call;        /* with JOB_MSG_CALL */
  int parked;              /* loop: the caller waits in its park */
  int pending;             /* loop: a message that came while it did not */
  int never_ran;           /* loop: job_abort took it back from the queue */
  int cancelled;           /* atomic: the caller saw cancellation */
  int abandoned;           /* atomic: the caller left */
};

struct scio__pool {
  scio__loop *loop;
  scio__wakeup *wake;      /* the run's handle; workers post through it */
  scio_limiter limiter;    /* the run's default limiter */
  pthread_mutex_t mu;
  pthread_cond_t work_cv;  /* idle workers wait here */
  pthread_cond_t exit_cv;  /* a worker exited */
  scio__node queue;        /* QUEUED jobs */
  size_t nqueued;
  size_t nidle;            /* workers waiting on work_cv */
  size_t nalive;           /* workers running */
  size_t nreturning;       /* atomic: workers reporting a job's end */
  int nexited;             /* atomic: a worker exited, to be joined */
  struct scio__worker *workers; /* every thread not joined yet */
  double idle_timeout;
  int shutdown;
  scio__job *free_jobs;    /* loop thread only */
  size_t nfree;
};

/* The current run's pool, created on first use; NULL outside a run or on
 * SCIO_ENOMEM (errmsg set). */
scio__pool *scio__pool_get(void);
/* Queue a job (loop thread).  0, or SCIO_EAGAIN / SCIO_ENOMEM: no worker
 * could be started for it (it is not queued). */
int scio__pool_submit(scio__pool *p, scio__job *j);
/* Take a QUEUED job back (the caller was cancelled before it ran): 1 if it
 * was unlinked (it will never run), 0 if a worker has it. */
int scio__pool_unqueue(scio__pool *p, scio__job *j);
/* Tests only: cap the number of workers (0: none). */
extern int scio__pool_test_max_workers;
scio__job *scio__job_new(scio__pool *p);
void scio__job_free(scio__job *j);
/* The job the calling worker thread runs now, NULL in other threads. */
scio__job *scio__job_current(void);
/* Worker side: send j's message (msg, call) to the loop. */
void scio__job_send(scio__job *j, int msg);

#endif
