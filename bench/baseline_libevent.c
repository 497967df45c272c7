/* Baseline: hand-written libevent code doing what the scio benchmarks do,
 * measured in the same run so that scio's figures can be read as ratios on
 * a noisy shared machine.
 *   dispatch   two events that activate each other (event_active), ns per
 *              callback: the libevent analogue of a task switch
 *   timer      evtimer_add + evtimer_del of a pending timer, ns: the
 *              analogue of a cancel scope with a deadline
 *   new_free   event_new + event_free, ns: the analogue of spawning
 */
#include <event2/event.h>
#include <stdio.h>
#include <time.h>

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct event *ev_a, *ev_b;
static long remaining;

static void pong(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  if (--remaining > 0)
    event_active((struct event *)arg, EV_READ, 0);
}

int main(void) {
  struct event_config *cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  struct event_base *base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!base)
    return 1;
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    ev_a = event_new(base, -1, 0, pong, NULL);
    ev_b = event_new(base, -1, 0, pong, ev_a);
    event_assign(ev_a, base, -1, 0, pong, ev_b);
    remaining = 4000000;
    long n = remaining;
    double t0 = wall();
    event_active(ev_a, EV_READ, 0);
    event_base_loop(base, 0);
    double ns = (wall() - t0) * 1e9 / (double)n;
    if (ns < best)
      best = ns;
    event_free(ev_a);
    event_free(ev_b);
  }
  printf("bench libevent_dispatch %.3f ns\n", best);

  best = 1e30;
  struct event *t = evtimer_new(base, pong, NULL);
  struct timeval tv = {1000, 0};
  for (int r = 0; r < 5; r++) {
    const long iters = 5000000;
    double t0 = wall();
    for (long i = 0; i < iters; i++) {
      evtimer_add(t, &tv);
      evtimer_del(t);
    }
    double ns = (wall() - t0) * 1e9 / (double)iters;
    if (ns < best)
      best = ns;
  }
  event_free(t);
  printf("bench libevent_timer %.3f ns\n", best);

  best = 1e30;
  for (int r = 0; r < 5; r++) {
    const long iters = 2000000;
    double t0 = wall();
    for (long i = 0; i < iters; i++)
      event_free(event_new(base, -1, 0, pong, NULL));
    double ns = (wall() - t0) * 1e9 / (double)iters;
    if (ns < best)
      best = ns;
  }
  printf("bench libevent_new_free %.3f ns\n", best);
  event_base_free(base);
  return 0;
}
