/* Cookbook: the first responder wins.
 *
 * Ask several replicas the same question at once and take the first answer;
 * the others are cancelled the moment it arrives.  The winner records its
 * answer and cancels the nursery: the losers see SCIO_ECANCELED at their
 * next checkpoint, which is their cancellation, not a failure, so the
 * nursery closes cleanly.
 */
#include <scio.h>
#include <stdio.h>

typedef struct race {
  scio_nursery n;
  const char *winner;
  int cancelled;      /* how many losers were cancelled */
} race;

typedef struct replica {
  race *r;
  const char *name;
  double latency;
} replica;

static int ask(void *arg) {
  replica *rep = arg;
  int rc = scio_sleep(rep->latency);   /* stands for a network round trip */
  if (rc == SCIO_ECANCELED) {
    rep->r->cancelled++;
    return rc;                         /* cancelled: not a failure */
  }
  if (rc < 0)
    return rc;
  if (!rep->r->winner) {
    rep->r->winner = rep->name;
    scio_nursery_cancel(&rep->r->n);   /* stop the others */
  }
  return 0;
}

static int app(void *arg) {
  (void)arg;
  race r = {0};
  replica reps[] = {{&r, "eu-west", 0.120}, {&r, "us-east", 0.045},
                    {&r, "ap-south", 0.300}};
  scio_nursery_open(&r.n);
  for (size_t i = 0; i < sizeof reps / sizeof reps[0]; i++)
    scio_start_soon(&r.n, ask, &reps[i]);
  int rc = scio_nursery_close(&r.n);
  if (rc < 0)
    return rc;
  printf("first responder: %s after %.3f s; %d others cancelled\n", r.winner,
         scio_now(), r.cancelled);
  return r.winner && r.cancelled == 2 ? 0 : -1;
}

int main(void) {
  scio_run_opts o = {.clock = SCIO_CLOCK_AUTOJUMP};
  return scio_run(app, NULL, &o) == 0 ? 0 : 1;
}
