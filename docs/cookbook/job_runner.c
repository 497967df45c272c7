/* Cookbook: a bounded job runner.
 *
 * Run many jobs, at most LIMIT at a time, and collect every failure instead
 * of stopping at the first.  A fixed pool of workers reads jobs from a
 * channel: the channel's buffer bounds the backlog, the number of workers
 * bounds concurrency, and closing the send half ends the workers.  A job's
 * failure is recorded by its worker (which keeps going) rather than
 * returned, because a failing child would cancel the whole nursery.
 */
#include <errno.h>
#include <scio.h>
#include <stdio.h>

#define LIMIT 4
#define NJOBS 20

typedef struct pool {
  scio_rx *jobs;     /* shared by the workers through clones */
  int running, peak; /* concurrency actually reached */
  int done, failed;
} pool;

typedef struct worker {
  pool *p;
  scio_rx *jobs;     /* this worker's clone: it closes it */
} worker;

static int run_job(pool *p, int job) {
  if (++p->running > p->peak)
    p->peak = p->running;
  int rc = scio_sleep(0.010 * (job % 5 + 1));
  p->running--;
  if (rc < 0)
    return rc;
  return job % 7 == 3 ? scio_seterr(-EIO, "job %d: disk on fire", job) : 0;
}

static int work(void *arg) {
  worker *w = arg;
  int job, rc;
  while ((rc = scio_rx_receive(w->jobs, &job)) == 0) {
    int jrc = run_job(w->p, job);
    if (jrc == SCIO_ECANCELED) {
      rc = jrc;
      break;
    }
    if (jrc < 0) {
      w->p->failed++;
      printf("job runner: %s\n", scio_errmsg());
    } else {
      w->p->done++;
    }
  }
  scio_rx_close(w->jobs);
  return rc == SCIO_EOF ? 0 : rc;
}

static int app(void *arg) {
  (void)arg;
  pool p = {0};
  scio_tx *tx;
  int rc = scio_channel_open(sizeof(int), LIMIT, &tx, &p.jobs);
  if (rc < 0)
    return rc;
  worker ws[LIMIT];
  scio_nursery n;
  scio_nursery_open(&n);
  for (int i = 0; i < LIMIT; i++) {
    ws[i].p = &p;
    if ((rc = scio_rx_clone(p.jobs, &ws[i].jobs)) < 0)
      break;
    scio_start_soon(&n, work, &ws[i]);
  }
  scio_rx_close(p.jobs);              /* the workers hold the clones */
  for (int job = 0; job < NJOBS && rc == 0; job++)
    rc = scio_tx_send(tx, &job);      /* waits while the backlog is full */
  scio_tx_close(tx);                  /* workers drain, then see SCIO_EOF */
  int crc = scio_nursery_close(&n);
  if (rc == 0)
    rc = crc;
  printf("job runner: %d done, %d failed, at most %d at once, %.2f s\n",
         p.done, p.failed, p.peak, scio_now());
  return rc == 0 && p.done + p.failed == NJOBS && p.peak <= LIMIT ? 0 : -1;
}

int main(void) {
  scio_run_opts o = {.clock = SCIO_CLOCK_AUTOJUMP};
  return scio_run(app, NULL, &o) == 0 ? 0 : 1;
}
