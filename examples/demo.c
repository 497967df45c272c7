/* scio demo: tasks in a nursery, a timeout, and scio_dump_tasks.
 *
 * A "fetcher" task per job sleeps for the job's duration, a move_on_after
 * scope gives the whole batch two seconds, and halfway through the main task
 * prints the task tree.  Jobs that were too slow report that they were
 * cancelled.  Build: cc demo.c $(pkg-config --cflags --libs scio)
 */
#include <scio.h>
#include <stdio.h>

static double t_start;

typedef struct job {
  const char *name;
  double seconds;
  int rc;
} job;

static int fetch(void *arg) {
  job *j = arg;
  scio_task_set_name(scio_task_current(), j->name);
  j->rc = scio_sleep(j->seconds);
  if (j->rc == 0)
    printf("[%5.2fs] %s finished after %.1fs\n", scio_now() - t_start, j->name,
           j->seconds);
  else
    printf("[%5.2fs] %s: %s\n", scio_now() - t_start, j->name, scio_strerror(j->rc));
  return j->rc;
}

static int show_tree(void *arg) {
  (void)arg;
  int rc = scio_sleep(1.0);
  if (rc == 0) {
    printf("[%5.2fs] the task tree:\n", scio_now() - t_start);
    scio_dump_tasks(stdout);
  }
  return rc;
}

static int demo(void *arg) {
  (void)arg;
  job jobs[] = {{"fast", 0.5, 1}, {"medium", 1.5, 1}, {"slow", 5.0, 1}};
  double t0 = t_start = scio_now();
  scio_task_set_name(scio_task_current(), "demo");
  scio_scope timeout;
  int rc = scio_move_on_after(&timeout, 2.0);
  if (rc < 0)
    return rc;
  scio_nursery n;
  scio_nursery_open(&n);
  for (size_t i = 0; i < sizeof jobs / sizeof jobs[0] && rc == 0; i++)
    rc = scio_start_soon(&n, fetch, &jobs[i]);
  if (rc == 0)
    rc = scio_start_soon_named(&n, show_tree, NULL, "show_tree");
  if (rc < 0)
    scio_nursery_cancel(&n);
  int nrc = scio_scope_close_with(&timeout, scio_nursery_close(&n));
  if (rc < 0)
    return rc;
  if (nrc < 0)
    return nrc;
  printf("[%5.2fs] done in %.1fs: the two-second timeout %s\n", scio_now() - t0,
         scio_now() - t0,
         scio_scope_cancelled_caught(&timeout) ? "cancelled the slow job"
                                               : "did not fire");
  return jobs[0].rc == 0 && jobs[1].rc == 0 && jobs[2].rc == SCIO_ECANCELED
             ? 0
             : -1;
}

int main(int argc, char **argv) {
  scio_run_opts opts = {0};
  /* --fast: the same demo under the autojump clock, for tests. */
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-' && argv[1][2] == 'f')
    opts.clock = SCIO_CLOCK_AUTOJUMP;
  int rc = scio_run(demo, NULL, &opts);
  if (rc != 0) {
    fprintf(stderr, "demo failed: %s (%s)\n", scio_strerror(rc), scio_errmsg());
    return 1;
  }
  return 0;
}
