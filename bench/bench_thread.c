/* bench/bench_thread.c -- the cost of a round trip to a thread and back.
 *
 *   to_thread_rtt            µs per scio_to_thread of a function that does
 *                            nothing (a warm worker), wall clock
 *   pthread_eventfd_rtt      the same hand-off written by hand: a mutex and
 *                            condition variable to a waiting pthread
 *                            (signalled after unlocking), an eventfd back
 *                            to the caller, which blocks in read() (no
 *                            event loop at all)
 *   to_thread_rtt_vs_pthread the ratio of the two (target <= 1.3)
 *   portal_call              µs per scio_portal_call of a function that
 *                            returns at once, from a plain thread
 *   portal_call_vs_pthread   its ratio to pthread_eventfd_rtt (target <= 1.5)
 * and for each, NAME_cpu: CPU time of the whole process per round trip (both
 * threads), which is steadier than wall time on a loaded machine.  Each
 * figure is the best of BENCH_REPEAT repetitions, in the same run; the
 * baseline's repetitions alternate with scio's (pthread_eventfd_rtt beside
 * to_thread_rtt, pthread_eventfd_rtt_2 beside portal_call), so that a
 * change of the machine's load hits both sides of a ratio alike. */
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"

enum { ROUNDS = 20000 };

typedef struct figure {
  double wall; /* µs per round trip */
  double cpu;
} figure;

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void keep_best(figure *best, int r, double wall, double cpu) {
  if (r == 0 || wall < best->wall)
    best->wall = wall;
  if (r == 0 || cpu < best->cpu)
    best->cpu = cpu;
}

/* ---- the baseline: pthread + eventfd ---- */

typedef struct handoff {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending; /* jobs posted, not yet taken */
  int stop;
  int efd;     /* worker -> caller */
  void *(*fn)(void *);
  void *arg;
  void *result;
} handoff;

static void *handoff_worker(void *p) {
  handoff *h = p;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (!h->pending && !h->stop)
      pthread_cond_wait(&h->cv, &h->mu);
    if (h->stop)
      break;
    h->pending = 0;
    pthread_mutex_unlock(&h->mu);
    h->result = h->fn(h->arg);
    uint64_t one = 1;
    if (write(h->efd, &one, sizeof one) != sizeof one)
      abort();
    pthread_mutex_lock(&h->mu);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static void *nothing(void *arg) { return arg; }

static void baseline_start(handoff *h, pthread_t *th) {
  memset(h, 0, sizeof *h);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  h->efd = eventfd(0, EFD_CLOEXEC);
  h->fn = nothing;
  pthread_create(th, NULL, handoff_worker, h);
}

/* One repetition: ROUNDS hand-offs. */
static void baseline_rep(handoff *h, figure *best, int r) {
  double w0 = bench_wall(), c0 = cpu_now();
  for (int i = 0; i < ROUNDS; i++) {
    pthread_mutex_lock(&h->mu);
    h->arg = (void *)(intptr_t)i;
    h->pending = 1;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_signal(&h->cv); /* after unlocking, as scio does */
    uint64_t v;
    if (read(h->efd, &v, sizeof v) != sizeof v)
      abort();
    if (h->result != (void *)(intptr_t)i)
      abort();
  }
  keep_best(best, r, (bench_wall() - w0) * 1e6 / ROUNDS,
            (cpu_now() - c0) * 1e6 / ROUNDS);
}

static void baseline_stop(handoff *h, pthread_t th) {
  pthread_mutex_lock(&h->mu);
  h->stop = 1;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  pthread_join(th, NULL);
  close(h->efd);
}

/* ---- scio_to_thread ---- */

/* Repetitions of the baseline and of scio alternate, so that a change of
 * the machine's load hits both alike. */
typedef struct pair {
  figure base, scio;
} pair;

static int to_thread_body(void *arg) {
  pair *pr = arg;
  handoff h;
  pthread_t th;
  baseline_start(&h, &th);
  void *res;
  bench_check(scio_to_thread(nothing, NULL, &res, NULL), "to_thread");
  for (int r = 0; r < BENCH_REPEAT; r++) {
    baseline_rep(&h, &pr->base, r); /* blocks the loop: nothing else runs */
    double w0 = bench_wall(), c0 = cpu_now();
    for (int i = 0; i < ROUNDS; i++) {
      bench_check(scio_to_thread(nothing, (void *)(intptr_t)i, &res, NULL),
                  "to_thread");
      if (res != (void *)(intptr_t)i)
        abort();
    }
    keep_best(&pr->scio, r, (bench_wall() - w0) * 1e6 / ROUNDS,
              (cpu_now() - c0) * 1e6 / ROUNDS);
  }
  baseline_stop(&h, th);
  return 0;
}

/* ---- scio_portal_call ---- */

static int returns_zero(void *arg) {
  (void)arg;
  return 0;
}

static void portal(pair *pr) {
  handoff h;
  pthread_t th;
  baseline_start(&h, &th);
  scio_portal *p;
  bench_check(scio_portal_start(&p, NULL), "portal_start");
  bench_check(scio_portal_call(p, returns_zero, NULL), "portal_call");
  for (int r = 0; r < BENCH_REPEAT; r++) {
    baseline_rep(&h, &pr->base, r);
    double w0 = bench_wall(), c0 = cpu_now();
    for (int i = 0; i < ROUNDS; i++)
      bench_check(scio_portal_call(p, returns_zero, NULL), "portal_call");
    keep_best(&pr->scio, r, (bench_wall() - w0) * 1e6 / ROUNDS,
              (cpu_now() - c0) * 1e6 / ROUNDS);
  }
  bench_check(scio_portal_stop(p, 0), "portal_stop");
  scio_portal_free(p);
  baseline_stop(&h, th);
}

static void report(const char *name, figure f) {
  char cpu[64];
  snprintf(cpu, sizeof cpu, "%s_cpu", name);
  bench_report(name, f.wall, "us");
  bench_report(cpu, f.cpu, "us");
}

int main(int argc, char **argv) {
  int want_tt = bench_wanted(argc, argv, "to_thread_rtt");
  int want_portal = bench_wanted(argc, argv, "portal_call");
  if (want_tt) {
    pair pr;
    memset(&pr, 0, sizeof pr);
    bench_check(scio_run(to_thread_body, &pr, NULL), "run");
    report("pthread_eventfd_rtt", pr.base);
    report("to_thread_rtt", pr.scio);
    bench_report("to_thread_rtt_vs_pthread", pr.scio.wall / pr.base.wall,
                 "ratio");
    bench_report("to_thread_rtt_cpu_vs_pthread", pr.scio.cpu / pr.base.cpu,
                 "ratio");
  }
  if (want_portal) {
    pair pr;
    memset(&pr, 0, sizeof pr);
    portal(&pr);
    report("pthread_eventfd_rtt_2", pr.base);
    report("portal_call", pr.scio);
    bench_report("portal_call_vs_pthread", pr.scio.wall / pr.base.wall,
                 "ratio");
    bench_report("portal_call_cpu_vs_pthread", pr.scio.cpu / pr.base.cpu,
                 "ratio");
  }
  return 0;
}
