/* Benchmarks of the synchronization primitives.  Prints one line per
 * figure:
 *   bench NAME VALUE UNIT
 * Figures are best-of-5 to reduce noise on a shared machine.
 *
 *   lock_uncontended  one task: acquire + release of a SCIO_FAST_ACQUIRE
 *                     lock nobody else wants, ns per pair.
 *   lock_handoff      two tasks taking turns on one lock: every release
 *                     hands the lock to the other task, which was waiting;
 *                     ns per hand-off (a release, a wake-up and a switch).
 *
 * Usage: bench_sync [NAME...]   (no names: all)
 */
#include <scio.h>
#include <scio/sync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEAT 5

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const char *name, double value, const char *unit) {
  printf("bench %s %.3f %s\n", name, value, unit);
  fflush(stdout);
}

static int check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "bench: %s: %s (%s)\n", what, scio_strerror(rc),
            scio_errmsg());
    exit(1);
  }
  return rc;
}

/* ---- lock_uncontended ---- */
static int bench_uncontended(void *arg) {
  double *best = arg;
  const long iters = 20000000;
  scio_lock lock;
  check(scio_lock_init(&lock, SCIO_FAST_ACQUIRE), "lock_init");
  for (int r = 0; r < REPEAT; r++) {
    double t0 = wall();
    for (long i = 0; i < iters; i++) {
      scio_lock_acquire(&lock);
      scio_lock_release(&lock);
    }
    double ns = (wall() - t0) * 1e9 / (double)iters;
    if (ns < *best)
      *best = ns;
  }
  /* Make sure the loop did what it claims. */
  return scio_lock_locked(&lock) == 0 ? 0 : -1;
}

/* ---- lock_handoff ---- */
static const long handoff_iters = 2000000; /* per task */

/* The lock is a plain one: with SCIO_FAST_ACQUIRE and nobody waiting, the
 * first task would loop on it without ever yielding, and nothing would be
 * handed off at all.  Hand-offs are counted, not assumed: one happened
 * whenever a task gets the lock right after the other held it. */
typedef struct duel {
  scio_lock lock;
  int last_owner;
  long handoffs;
} duel;

typedef struct contender_arg {
  duel *d;
  int id;
} contender_arg;

static int contender(void *arg) {
  contender_arg *c = arg;
  duel *d = c->d;
  for (long i = 0; i < handoff_iters; i++) {
    check(scio_lock_acquire(&d->lock), "lock_acquire");
    if (d->last_owner != c->id)
      d->handoffs++;
    d->last_owner = c->id;
    check(scio_lock_release(&d->lock), "lock_release");
  }
  return 0;
}

static int bench_handoff(void *arg) {
  double *best = arg;
  for (int r = 0; r < REPEAT; r++) {
    duel d = {.last_owner = 0, .handoffs = 0};
    contender_arg a = {&d, 1}, b = {&d, 2};
    check(scio_lock_init(&d.lock, 0), "lock_init");
    scio_nursery n;
    scio_nursery_open(&n);
    check(scio_start_soon(&n, contender, &a), "spawn");
    check(scio_start_soon(&n, contender, &b), "spawn");
    double t0 = wall();
    check(scio_nursery_close(&n), "close");
    double elapsed = wall() - t0;
    if (d.handoffs < handoff_iters) {
      fprintf(stderr, "bench: lock_handoff: only %ld hand-offs in %ld "
                      "acquisitions\n",
              d.handoffs, 2 * handoff_iters);
      exit(1);
    }
    double ns = elapsed * 1e9 / (double)d.handoffs;
    if (ns < *best)
      *best = ns;
  }
  return 0;
}

static int wanted(int argc, char **argv, const char *name) {
  if (argc < 2)
    return 1;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return 1;
  return 0;
}

int main(int argc, char **argv) {
  double best;
  if (wanted(argc, argv, "lock_uncontended")) {
    best = 1e30;
    check(scio_run(bench_uncontended, &best, NULL), "run");
    report("lock_uncontended", best, "ns");
  }
  if (wanted(argc, argv, "lock_handoff")) {
    best = 1e30;
    check(scio_run(bench_handoff, &best, NULL), "run");
    report("lock_handoff", best, "ns");
  }
  return 0;
}
