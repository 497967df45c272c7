/* scio_run and the scheduler context.
 *
 * The scheduler runs on the thread's own stack.  Tasks switch among
 * themselves (task.c) and come back here only to poll libevent: when nothing
 * is runnable (then the poll blocks until the next deadline or I/O), or when
 * a poll is due so that a busy set of tasks cannot starve I/O.
 */
#include <event2/event.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "overflow.h"

__thread scio__loop *scio__tls_loop __attribute__((tls_model("initial-exec")));

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double scio__clock_read(scio__loop *l) {
  l->cached_now = l->clock_kind == SCIO_CLOCK_AUTOJUMP ? l->vnow
                                                       : monotonic_now();
  return l->cached_now;
}

SCIO_API double scio_now(void) {
  scio__loop *l = scio__tls_loop;
  return l ? scio__clock_read(l) : monotonic_now();
}

void scio__timers_fire(scio__loop *l, double now) {
  scio__hnode *h;
  while ((h = scio__heap_min(&l->timers)) && h->key <= now) {
    scio__heap_pop(&l->timers);
    if (h == &l->fd_sweep)
      scio__fds_sweep(l, now);
    else
      scio__scope_deadline_fired(scio__container_of(h, scio__scope, timer));
  }
}

/* Defined in time.c: wakes every task in scio_wait_all_tasks_blocked. */
int scio__wake_all_blocked_waiters(scio__loop *l);

static void noop_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
}

/* Event sources (layer.h).  A source that appears while a long budget runs
 * ends it, so that the poll comes within the usual cadence. */
void scio__loop_source_add(scio__loop *l) {
  l->nsources++;
  scio__tick_needed(l);
}

void scio__loop_source_remove(scio__loop *l) {
  if (__builtin_expect(l->nsources == 0, 0))
    scio__panic("event source removed more often than added");
  l->nsources--;
}

struct event_base *scio__loop_base(scio__loop *l) { return l->base; }

int scio__loop_edge_triggered(scio__loop *l) { return l->edge_triggered; }

int scio__loop_sees_eof(scio__loop *l) { return l->sees_eof; }

static void poll_nonblocking(scio__loop *l) {
  if (l->nsources != 0) {
    SCIO__INSTRUMENT(l, before_io_wait, 0.0);
    if (event_base_loop(l->base, EVLOOP_NONBLOCK | EVLOOP_ONCE) < 0)
      scio__fds_dispatch_failed(l);
    SCIO__INSTRUMENT(l, after_io_wait, 0.0);
    if (l->wakeup) /* posts made while the loop was busy wrote no eventfd */
      scio__wakeup_poll(l);
  }
  scio__timers_fire(l, scio__clock_read(l));
}

/* Block in libevent for at most `timeout` seconds (INFINITY: until I/O).
 * The timer is armed only for a deadline: without one, epoll_wait gets -1
 * and the kernel sets up no timer for the block.  With no deadline and no
 * source either, nothing can ever wake the loop (a deadlock of the
 * program's tasks); libevent would return at once with no event pending,
 * so the timer then bounds the block to an hour and the loop comes round
 * again instead of spinning. */
static void poll_blocking(scio__loop *l, double timeout) {
  int armed = timeout < INFINITY || l->nsources == 0;
  if (armed) {
    double t = timeout > 3600.0 ? 3600.0 : timeout;
    struct timeval tv;
    tv.tv_sec = (time_t)t;
    tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
    event_add(l->timeout_ev, &tv);
  }
  /* Posters write the wake-up eventfd only while the loop may sleep. */
  int posted = l->wakeup ? scio__wakeup_sleep_begin(l) : 0;
  SCIO__INSTRUMENT(l, before_io_wait, timeout);
  if (event_base_loop(l->base, posted ? EVLOOP_NONBLOCK | EVLOOP_ONCE
                                      : EVLOOP_ONCE) < 0)
    scio__fds_dispatch_failed(l);
  SCIO__INSTRUMENT(l, after_io_wait, timeout);
  if (l->wakeup)
    scio__wakeup_sleep_end(l);
  if (armed)
    event_del(l->timeout_ev);
  scio__timers_fire(l, scio__clock_read(l));
}

/* The loop is about to wait: give back cached stacks, but at most once a
 * second, so that a server idling between bursts keeps its warm stacks. */
static void maybe_trim(scio__loop *l) {
  if (l->stacks.cached <= l->stack_cache / 16)
    return;
  if (l->cached_now - l->last_trim < 1.0)
    return;
  l->last_trim = l->cached_now;
  scio__stack_pool_trim(&l->stacks, l->stack_cache / 16);
}

/* Nothing is runnable: find something to do. */
static void idle(scio__loop *l) {
  maybe_trim(l);
  if (l->clock_kind == SCIO_CLOCK_AUTOJUMP ||
      !scio__list_empty(&l->blocked_waiters)) {
    /* "All tasks blocked" and a jump of the virtual clock both mean: no
     * I/O is ready either, so look without blocking first. */
    poll_nonblocking(l);
    if (l->nready)
      return;
    if (scio__wake_all_blocked_waiters(l))
      return;
  } else {
    /* Otherwise block at once: the blocking poll returns whatever is
     * ready, so a timeout-0 poll before it would be one syscall more.
     * Deadlines already passed fire without one. */
    if (l->timers.root) {
      scio__timers_fire(l, scio__clock_read(l));
      if (l->nready)
        return;
    }
  }
  scio__hnode *h = scio__heap_min(&l->timers);
  if (l->clock_kind == SCIO_CLOCK_AUTOJUMP) {
    if (h) {
      if (h->key > l->vnow)
        l->vnow = h->key;
      scio__timers_fire(l, scio__clock_read(l));
      return;
    }
    poll_blocking(l, INFINITY);
    return;
  }
  double timeout = h ? h->key - scio__clock_read(l) : INFINITY;
  if (timeout < 0)
    timeout = 0;
  poll_blocking(l, timeout);
}

static void scheduler(scio__loop *l) {
  while (l->ntasks > 0) {
    scio__reap_zombie(l);
    if (l->nready == 0)
      idle(l);
    else if (l->poll_due)
      poll_nonblocking(l);
    l->poll_due = 0;
    l->budget = l->granted = 0;
    l->batches_since_poll = 0;
    l->resumes_since_clock = 0;
    l->last_poll = l->cached_now;
    l->batch_left = 0;
    scio__task *t = scio__pick_from_scheduler(l);
    if (t) {
      SCIO__INSTRUMENT(l, before_task_step, t);
      scio__ctx_switch(&l->main_ctx, &t->ctx);
    }
  }
  scio__reap_zombie(l);
}

/* Is the backend compiled into libevent and usable here?  Returns 1, 0, or
 * SCIO_ENOMEM (libevent allocates the list; it keeps one copy for the life
 * of the process).  Under a lock: libevent frees and remakes that one copy
 * at every call, so two threads starting runs at once would free it under
 * each other (found by TSan with portals started from several threads). */
static int backend_supported(const char *backend) {
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&mu);
  const char **m = event_get_supported_methods();
  int rc = m ? 0 : SCIO_ENOMEM;
  for (int i = 0; m && m[i]; i++)
    if (strcmp(m[i], backend) == 0) {
      rc = 1;
      break;
    }
  pthread_mutex_unlock(&mu);
  return rc;
}

/* Make an event_base with exactly the requested backend. */
static int make_base(scio__loop *l, const char *backend) {
  static const char *const methods[] = {"epoll",  "poll",  "select", "kqueue",
                                        "devpoll", "evport", "win32", NULL};
  struct event_config *cfg = event_config_new();
  if (!cfg)
    return scio__seterr(SCIO_ENOMEM, "run: cannot allocate event_config");
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  if (backend) {
    int ok = backend_supported(backend);
    if (ok <= 0) {
      event_config_free(cfg);
      if (ok < 0)
        return scio__seterr(ok, "run: out of memory listing backends");
      return scio__seterr(-ENOSYS, "run: backend %s is not available",
                          backend);
    }
    int known = 0;
    for (int i = 0; methods[i]; i++) {
      if (strcmp(methods[i], backend) == 0) {
        known = 1;
      } else if (event_config_avoid_method(cfg, methods[i]) < 0) {
        event_config_free(cfg);
        return scio__seterr(SCIO_ENOMEM, "run: out of memory configuring "
                                         "the event_base");
      }
    }
    if (!known) {
      event_config_free(cfg);
      return scio__seterr(-ENOSYS, "run: unknown backend \"%s\"", backend);
    }
  }
  l->base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!l->base)
    return scio__seterr(SCIO_ENOMEM, "run: cannot create an event_base");
  l->backend = event_base_get_method(l->base);
  if (backend && strcmp(l->backend, backend) != 0) {
    event_base_free(l->base);
    l->base = NULL;
    return scio__seterr(-ENOSYS, "run: libevent chose %s, not %s", l->backend,
                        backend);
  }
  int features = event_base_get_features(l->base);
  l->edge_triggered = (features & EV_FEATURE_ET) != 0;
  l->sees_eof = l->edge_triggered && (features & EV_FEATURE_EARLY_CLOSE);
  return 0;
}

static int check_opts(const scio_run_opts *o) {
  if (o->clock != SCIO_CLOCK_REAL && o->clock != SCIO_CLOCK_AUTOJUMP)
    return scio__seterr(SCIO_EINVAL, "run: unknown clock %d", o->clock);
  if (o->flags & ~(unsigned)SCIO_RUN_NO_GUARD_PAGES)
    return scio__seterr(SCIO_EINVAL, "run: unknown flags 0x%x", o->flags);
  if (o->stack_size && (o->stack_size < 16384 || o->stack_size > (1ul << 30)))
    return scio__seterr(SCIO_EINVAL,
                        "run: stack_size %zu outside [16 KiB, 1 GiB]",
                        o->stack_size);
  return 0;
}

static void loop_free(scio__loop *l) {
  scio__fds_free(l);
  scio__wakeup_free(l);
  if (l->timeout_ev)
    event_free(l->timeout_ev);
  if (l->base)
    event_base_free(l->base);
  scio__stack_pool_fini(&l->stacks);
  scio__ctx_fini_main(&l->main_ctx);
  scio__free(l);
}

static int loop_new(const scio_run_opts *o, scio__loop **out) {
  scio__loop *l = scio__calloc(1, sizeof *l);
  if (!l)
    return scio__seterr(SCIO_ENOMEM, "run: cannot allocate the loop");
  scio__list_init(&l->blocked_waiters);
  scio__list_init(&l->fd_bounded);
  scio__heap_init(&l->timers);
  l->clock_kind = o->clock;
  l->stack_cache = o->stack_cache ? o->stack_cache : 256;
  size_t user = SCIO__TASK_SIZE + ((scio__ctx_uc_size() + 63) & ~(size_t)63);
  int rc = scio__stack_pool_init(&l->stacks, o->stack_size, user,
                                 !(o->flags & SCIO_RUN_NO_GUARD_PAGES),
                                 l->stack_cache);
  if (rc < 0) {
    scio__free(l);
    return scio__seterr(rc, "run: bad stack size");
  }
  if ((rc = scio__ctx_init_main(&l->main_ctx)) < 0) {
    scio__stack_pool_fini(&l->stacks);
    scio__free(l);
    return scio__seterr(rc, "run: cannot describe the thread's stack");
  }
  if ((rc = make_base(l, o->backend)) < 0) {
    loop_free(l);
    return rc;
  }
  l->timeout_ev = evtimer_new(l->base, noop_cb, NULL);
  if (!l->timeout_ev) {
    loop_free(l);
    return scio__seterr(SCIO_ENOMEM, "run: cannot allocate a timer event");
  }
  scio__clock_read(l);
  l->last_poll = l->cached_now;
  *out = l;
  return 0;
}

SCIO_API const char *scio_backend(void) {
  return scio__tls_loop ? scio__tls_loop->backend : NULL;
}

SCIO_API int scio_run(scio_fn fn, void *arg, const scio_run_opts *opts) {
  static const scio_run_opts defaults;
  const scio_run_opts *o = opts ? opts : &defaults;
  if (scio__tls_loop)
    return scio__seterr(SCIO_ENESTED, "run: scio_run is already running in "
                                      "this thread");
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "run: fn is NULL");
  int rc = check_opts(o);
  if (rc < 0)
    return rc;
  scio__loop *l = NULL;
  if ((rc = loop_new(o, &l)) < 0)
    return rc;
  scio__scope_init_open(&l->root_scope, NULL, NULL, INFINITY, 0, "scio_run",
                        0);
  scio__task *root = NULL;
  rc = scio__task_new(l, fn, arg, NULL, &root);
  if (rc < 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", scio_errmsg());
    loop_free(l);
    return scio__seterr(rc, "run: %s", msg);
  }
  if (o->instrument)
    l->ins[l->nins++] = o->instrument;
  scio__tls_loop = l;
  l->root = root;
  root->nursery = NULL;
  root->scope = root->base_scope = &l->root_scope;
  l->root_scope.owner = root;
  scio__list_push_back(&l->root_scope.tasks, &root->scope_link);
  l->ntasks = 1;
  SCIO__INSTRUMENT(l, task_spawned, root);
  scio__ready_push(l, root);
  scio__overflow_guard_enter(l); /* overflow.c: names an overflowing task */
  scheduler(l);
  scio__loop_finish(l); /* at-exit functions, last cross-thread posts */
  scio__overflow_guard_leave();
  rc = l->root_result;
  scio__tls_loop = NULL;
  loop_free(l);
  return rc;
}
