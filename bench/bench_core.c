/* Benchmarks of the core.  Prints one line per figure:
 *   bench NAME VALUE UNIT
 * Figures are best-of-N to reduce noise on a shared machine; ratios against
 * the plain libevent baseline are printed by bench/baseline_libevent.
 *
 * Usage: bench_core [NAME...]   (no names: all)
 *   SCIO_BENCH_MAX_TASKS=N overrides the max_tasks target (default 1000000).
 *
 * Built with BENCH_CORE_SHARED (bench_core_shared, linked with the shared
 * libscio as users link it), it measures only the switch, as
 * switch_shared: calls into libscio.so go through the PLT, and the static
 * `switch' beside it in the same run shows what that costs.
 */
#include <scio.h>
#ifdef BENCH_CORE_SHARED
#include <link.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifndef BENCH_CORE_SHARED
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

#endif

/* ---- switch: two tasks yielding to each other through the scheduler ---- */
static long switch_iters = 2000000;

static int yielder(void *arg) {
  (void)arg;
  for (long i = 0; i < switch_iters; i++)
    scio_checkpoint();
  return 0;
}

static double switch_once(void *arg) {
  (void)arg;
  scio_nursery n;
  scio_nursery_open(&n);
  bench_check(scio_start_soon(&n, yielder, NULL), "spawn");
  bench_check(scio_start_soon(&n, yielder, NULL), "spawn");
  double t0 = bench_wall();
  bench_check(scio_nursery_close(&n), "close");
  return (bench_wall() - t0) * 1e9 / (2.0 * (double)switch_iters);
}

#ifndef BENCH_CORE_SHARED
/* ---- spawn: start_soon + finish, warm stack cache ---- */
static int nothing(void *arg) {
  (void)arg;
  return 0;
}

static double spawn_once(void *arg) {
  (void)arg;
  const int batch = 100, rounds = 2000;
  double t0 = bench_wall();
  for (int k = 0; k < rounds; k++) {
    scio_nursery n;
    scio_nursery_open(&n);
    for (int i = 0; i < batch; i++)
      bench_check(scio_start_soon(&n, nothing, NULL), "spawn");
    bench_check(scio_nursery_close(&n), "close");
  }
  return (bench_wall() - t0) * 1e9 / (double)(batch * rounds);
}

/* ---- spawn_cold: 10k tasks alive at once, each on a fresh stack ---- */
static int wait_once(void *arg) {
  (void)arg;
  return scio_checkpoint();
}

static int bench_spawn_cold(void *arg) {
  double *out = arg;
  const int count = 10000;
  scio_nursery n;
  scio_nursery_open(&n);
  double t0 = bench_wall();
  for (int i = 0; i < count; i++)
    bench_check(scio_start_soon(&n, wait_once, NULL), "spawn");
  bench_check(scio_nursery_close(&n), "close");
  *out = (bench_wall() - t0) * 1e9 / count;
  return 0;
}

/* ---- scope: open + close with a deadline ---- */
static double scope_once(void *arg) {
  (void)arg;
  const long iters = 5000000;
  double deadline = scio_now() + 1000.0;
  double t0 = bench_wall();
  for (long i = 0; i < iters; i++) {
    scio_scope cs;
    scio_scope_open(&cs, deadline, 0);
    scio_scope_close(&cs);
  }
  return (bench_wall() - t0) * 1e9 / (double)iters;
}

/* ---- idle tasks: RSS per sleeping task, and how many fit ---- */
typedef struct many {
  long target;
  long reached;
  long rss_before, rss_after;
} many;

static int sleeper(void *arg) {
  (void)arg;
  return scio_sleep_forever();
}

static int spawn_many(void *arg) {
  many *m = arg;
  m->rss_before = rss_kib();
  scio_nursery n;
  scio_nursery_open(&n);
  int rc = 0;
  for (m->reached = 0; m->reached < m->target; m->reached++)
    if ((rc = scio_start_soon(&n, sleeper, NULL)) < 0) {
      fprintf(stderr, "bench: stopped at %ld tasks: %s\n", m->reached,
              scio_errmsg());
      break;
    }
  scio_wait_all_tasks_blocked();
  m->rss_after = rss_kib();
  scio_nursery_cancel(&n);
  int crc = scio_nursery_close(&n);
  return crc < 0 ? crc : 0;
}

static void run_many(long target, many *m) {
  scio_run_opts o = {0};
  o.flags = SCIO_RUN_NO_GUARD_PAGES;
  m->target = target;
  bench_check(scio_run(spawn_many, m, &o), "many tasks");
}

#endif

#ifdef BENCH_CORE_SHARED
/* dl_iterate_phdr callback: whether a loaded object is libscio.so. */
static int is_libscio(struct dl_phdr_info *info, size_t size, void *found) {
  (void)size;
  const char *slash = strrchr(info->dlpi_name, '/');
  const char *base = slash ? slash + 1 : info->dlpi_name;
  if (strncmp(base, "libscio.so", 10) == 0)
    *(int *)found = 1;
  return 0;
}

int main(void) {
  int shared = 0;
  dl_iterate_phdr(is_libscio, &shared);
  if (!shared) {
    /* --disable-shared: libscio.la is the static library, and the figure
     * would only repeat `switch'. */
    fprintf(stderr, "bench_core_shared: libscio is not a shared library "
                    "in this build: no switch_shared\n");
    return 0;
  }
  bench_report("switch_shared",
               bench_run_best(switch_once, NULL, BENCH_LOWEST), "ns");
  return 0;
}
#else
int main(int argc, char **argv) {
  if (bench_wanted(argc, argv, "switch"))
    bench_report("switch", bench_run_best(switch_once, NULL, BENCH_LOWEST),
                 "ns");
  if (bench_wanted(argc, argv, "spawn"))
    bench_report("spawn", bench_run_best(spawn_once, NULL, BENCH_LOWEST), "ns");
  if (bench_wanted(argc, argv, "spawn_cold")) {
    double ns = 0;
    bench_check(scio_run(bench_spawn_cold, &ns, NULL), "run");
    bench_report("spawn_cold", ns, "ns");
  }
  if (bench_wanted(argc, argv, "scope"))
    bench_report("scope", bench_run_best(scope_once, NULL, BENCH_LOWEST), "ns");
  if (bench_wanted(argc, argv, "idle_task_rss")) {
    many m = {0, 0, 0, 0};
    run_many(100000, &m);
    bench_report("idle_task_rss",
                 (double)(m.rss_after - m.rss_before) / 100000.0, "KiB");
  }
  if (bench_wanted(argc, argv, "max_tasks")) {
    const char *env = getenv("SCIO_BENCH_MAX_TASKS");
    long target = env ? atol(env) : 1000000;
    many m = {0, 0, 0, 0};
    run_many(target, &m);
    bench_report("max_tasks", (double)m.reached, "tasks");
    bench_report("max_tasks_rss", (double)m.rss_after / (1024.0 * 1024.0),
                 "GiB");
  }
  return 0;
}
#endif
