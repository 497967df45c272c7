/* Cookbook: a pipeline with a timeout.
 *
 * A producer, a transformer and a consumer connected by two channels; the
 * whole pipeline gets a deadline.  Closing a channel's send half is how a
 * stage says "no more": the next stage sees SCIO_EOF and finishes too, so
 * the pipeline shuts down from the front without any counter or flag.
 *
 * Run with --slow to make the consumer too slow for the deadline: the
 * timeout then cancels every stage and scio_scope_close_with maps the
 * result to SCIO_ETIMEDOUT.
 */
#include <scio.h>
#include <stdio.h>
#include <string.h>

typedef struct stage {
  scio_tx *out; /* owned by the stage: closed when it ends */
  scio_rx *in;  /* owned by the stage */
  double delay;
  long sum;
} stage;

static int produce(void *arg) {
  stage *st = arg;
  int rc = 0;
  for (int i = 1; i <= 100 && rc == 0; i++)
    rc = scio_tx_send(st->out, &i);
  scio_tx_close(st->out);          /* the transformer will see SCIO_EOF */
  return rc;
}

static int square(void *arg) {
  stage *st = arg;
  int v, rc;
  while ((rc = scio_rx_receive(st->in, &v)) == 0) {
    long sq = (long)v * v;
    if ((rc = scio_tx_send(st->out, &sq)) < 0)
      break;
  }
  scio_rx_close(st->in);
  scio_tx_close(st->out);
  return rc == SCIO_EOF ? 0 : rc;  /* the end of input is not an error */
}

static int consume(void *arg) {
  stage *st = arg;
  long v;
  int rc;
  while ((rc = scio_rx_receive(st->in, &v)) == 0) {
    st->sum += v;
    if (st->delay > 0 && (rc = scio_sleep(st->delay)) < 0)
      break;
  }
  scio_rx_close(st->in);
  return rc == SCIO_EOF ? 0 : rc;
}

static int pipeline(void *arg) {
  double delay = *(double *)arg;
  stage p = {0}, t = {0}, c = {0};
  int rc = scio_channel_open(sizeof(int), 8, &p.out, &t.in);
  if (rc < 0)
    return rc;
  if ((rc = scio_channel_open(sizeof(long), 8, &t.out, &c.in)) < 0) {
    scio_tx_close(p.out);
    scio_rx_close(t.in);
    return rc;
  }
  c.delay = delay;

  scio_scope deadline;
  scio_fail_after(&deadline, 1.0);
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, produce, &p);
  scio_start_soon(&n, square, &t);
  scio_start_soon(&n, consume, &c);
  rc = scio_nursery_close(&n);
  rc = scio_scope_close_with(&deadline, rc);
  if (rc == 0)
    printf("pipeline: sum of squares 1..100 = %ld\n", c.sum);
  else
    printf("pipeline: %s after %.1f s (%ld summed so far)\n",
           scio_err_name(rc), scio_now(), c.sum);
  return rc;
}

int main(int argc, char **argv) {
  double delay = argc > 1 && strcmp(argv[1], "--slow") == 0 ? 0.1 : 0.0;
  scio_run_opts o = {.clock = SCIO_CLOCK_AUTOJUMP};
  int rc = scio_run(pipeline, &delay, &o);
  if (delay > 0)
    return rc == SCIO_ETIMEDOUT ? 0 : 1; /* the slow run must time out */
  return rc == 0 ? 0 : 1;
}
