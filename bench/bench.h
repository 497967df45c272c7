/* bench/bench.h -- what the scio benchmark programs share: the clock, the
 * output line, error exits, the choice of figures on the command line, and
 * best-of-BENCH_REPEAT timing.
 *
 * A benchmark prints one line per figure, "bench NAME VALUE UNIT"
 * (bench_report).  Figures are the best of BENCH_REPEAT repetitions, to
 * reduce noise on a shared machine: the lowest of costs (ns per operation),
 * the highest of rates (GB/s, lines/s).  A repetition is a function
 * returning its figure; it times its own work with bench_wall(), so that
 * preparing and checking stay outside the measure. */
#ifndef SCIO_BENCH_H
#define SCIO_BENCH_H

#include <errno.h>
#include <scio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_REPEAT 5

/* Which of BENCH_REPEAT figures is the best. */
typedef enum bench_keep { BENCH_LOWEST, BENCH_HIGHEST } bench_keep;

/* Seconds on the monotonic clock. */
static inline double bench_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bench_report(const char *name, double value,
                                const char *unit) {
  printf("bench %s %.3f %s\n", name, value, unit);
  fflush(stdout);
}

/* rc, unless it is a scio error: then say what failed and exit(1). */
static inline long bench_check(long rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s: %s (%s)\n", program_invocation_short_name, what,
            scio_strerror((int)rc), scio_errmsg());
    exit(1);
  }
  return rc;
}

/* Whether the figure `name' was asked for: named on the command line, or
 * no names given at all. */
static inline int bench_wanted(int argc, char **argv, const char *name) {
  if (argc < 2)
    return 1;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return 1;
  return 0;
}

/* The best of BENCH_REPEAT calls of once(arg). */
static inline double bench_best(double (*once)(void *), void *arg,
                                bench_keep keep) {
  double best = 0;
  for (int r = 0; r < BENCH_REPEAT; r++) {
    double v = once(arg);
    if (r == 0 || (keep == BENCH_LOWEST ? v < best : v > best))
      best = v;
  }
  return best;
}

typedef struct bench_best_job {
  double (*once)(void *);
  void *arg;
  bench_keep keep;
  double best;
} bench_best_job;

static inline int bench_best_body(void *job) {
  bench_best_job *j = job;
  j->best = bench_best(j->once, j->arg, j->keep);
  return 0;
}

/* The same, all BENCH_REPEAT calls inside one scio_run (default options). */
static inline double bench_run_best(double (*once)(void *), void *arg,
                                    bench_keep keep) {
  bench_best_job j = {once, arg, keep, 0};
  bench_check(scio_run(bench_best_body, &j, NULL), "run");
  return j.best;
}

#endif /* SCIO_BENCH_H */
