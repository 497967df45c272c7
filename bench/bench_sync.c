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

#include "bench.h"

/* ---- lock_uncontended ---- */
static double uncontended_once(void *arg) {
  (void)arg;
  const long iters = 20000000;
  scio_lock lock;
  bench_check(scio_lock_init(&lock, SCIO_FAST_ACQUIRE), "lock_init");
  double t0 = bench_wall();
  for (long i = 0; i < iters; i++) {
    scio_lock_acquire(&lock);
    scio_lock_release(&lock);
  }
  double ns = (bench_wall() - t0) * 1e9 / (double)iters;
  /* Make sure the loop did what it claims. */
  if (scio_lock_locked(&lock) != 0) {
    fprintf(stderr, "bench: lock_uncontended: the lock is still held\n");
    exit(1);
  }
  return ns;
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
    bench_check(scio_lock_acquire(&d->lock), "lock_acquire");
    if (d->last_owner != c->id)
      d->handoffs++;
    d->last_owner = c->id;
    bench_check(scio_lock_release(&d->lock), "lock_release");
  }
  return 0;
}

static double handoff_once(void *arg) {
  (void)arg;
  duel d = {.last_owner = 0, .handoffs = 0};
  contender_arg a = {&d, 1}, b = {&d, 2};
  bench_check(scio_lock_init(&d.lock, 0), "lock_init");
  scio_nursery n;
  scio_nursery_open(&n);
  bench_check(scio_start_soon(&n, contender, &a), "spawn");
  bench_check(scio_start_soon(&n, contender, &b), "spawn");
  double t0 = bench_wall();
  bench_check(scio_nursery_close(&n), "close");
  double elapsed = bench_wall() - t0;
  if (d.handoffs < handoff_iters) {
    fprintf(stderr,
            "bench: lock_handoff: only %ld hand-offs in %ld "
            "acquisitions\n",
            d.handoffs, 2 * handoff_iters);
    exit(1);
  }
  return elapsed * 1e9 / (double)d.handoffs;
}

int main(int argc, char **argv) {
  if (bench_wanted(argc, argv, "lock_uncontended"))
    bench_report("lock_uncontended",
                 bench_run_best(uncontended_once, NULL, BENCH_LOWEST), "ns");
  if (bench_wanted(argc, argv, "lock_handoff"))
    bench_report("lock_handoff",
                 bench_run_best(handoff_once, NULL, BENCH_LOWEST), "ns");
  return 0;
}
