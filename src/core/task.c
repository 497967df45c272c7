/* Tasks: spawning, switching, parking and waking, checkpoints.
 *
 * Switching is direct: a task that yields or blocks picks the next runnable
 * task itself and switches straight to it, so a switch costs one context
 * switch, not two.  Only when nothing is runnable, or when it is time to
 * poll for I/O, does it switch to the scheduler context (loop.c).
 */
#include <string.h>

#include "internal.h"

void scio__instrument_scheduled(scio__loop *l, scio__task *t) {
  SCIO__INSTRUMENT(l, task_scheduled, t);
}

/* Whether anything can come from a poll: an event source (layer.h). */
static int io_registered(const scio__loop *l) { return l->nsources != 0; }

/* At the end of each batch, count rounds: at least every 64 of them the
 * scheduler polls for I/O.  With no fd registered there is nothing to poll,
 * and the syscall is skipped. */
static void batch_boundary(scio__loop *l) {
  if (++l->batches_since_poll >= 64) {
    if (io_registered(l))
      l->poll_due = 1;
    else
      l->batches_since_poll = 0;
  }
  l->batch_left = l->nready;
}

/* Every 16 resumptions, read the clock: fire the deadlines that have passed
 * and poll if 100 µs went by since the last poll.  Reading the clock at
 * every switch would cost more than the switch itself. */
static void clock_tick(scio__loop *l) {
  l->resumes_since_clock = 0;
  int io = io_registered(l);
  if (!l->timers.root && !io)
    return;
  double now = scio__clock_read(l);
  if (l->timers.root)
    scio__timers_fire(l, now);
  if (io && now - l->last_poll >= 100e-6)
    l->poll_due = 1;
}

/* The slow path of pick: account for the picks made on the fast path since
 * the budget was granted, run the end-of-batch and clock-tick work that is
 * due, and grant a new budget.  NULL when the scheduler must run. */
__attribute__((noinline)) scio__task *scio__pick_slow(scio__loop *l) {
  size_t used = l->granted - l->budget;
  /* Rounds count only toward the next poll, so without I/O registered they
   * are not tracked at all, and the budget follows the clock tick alone. */
  int io = io_registered(l);
  l->resumes_since_clock += (unsigned)used;
  if (io) {
    l->batch_left = l->batch_left > used ? l->batch_left - used : 0;
    if (l->batch_left == 0)
      batch_boundary(l);
  }
  if (l->resumes_since_clock >= 16)
    clock_tick(l);
  l->budget = l->granted = 0;
  if (l->poll_due || l->nready == 0)
    return NULL;
  scio__task *t = scio__ready_pop(l);
  l->resumes_since_clock++;
  size_t b = 16 - l->resumes_since_clock;
  if (io) {
    l->batch_left--;
    if (l->batch_left < b)
      b = l->batch_left;
  } else if (!l->timers.root) {
    /* No deadline and no source: the tick would find nothing to do.  A
     * deadline or source that appears meanwhile ends this budget
     * (scio__tick_needed, scio__loop_source_add). */
    b = SCIO__LONG_BUDGET;
  }
  if (l->nins)
    b = 0; /* every pick comes here, and the yield fast path is off */
  l->budget = l->granted = b;
  t->state = SCIO__T_RUNNING;
  l->current = t;
  return t;
}

scio__task *scio__pick_from_scheduler(scio__loop *l) { return scio__pick(l); }

void scio__reap_zombie(scio__loop *l) {
  scio__task *z = l->zombie;
  if (!z)
    return;
  l->zombie = NULL;
  scio__ctx_release(&z->ctx);
  scio__stack_put(&l->stacks, z->stack);
}

/* schedule() with the instrument hooks around the switch. */
__attribute__((noinline)) int scio__schedule_instrumented(scio__task *cur) {
  scio__loop *l = cur->loop;
  SCIO__INSTRUMENT(l, after_task_step, cur);
  scio__task *next = scio__pick(l);
  if (next == cur) {
    SCIO__INSTRUMENT(l, before_task_step, cur);
    return 0;
  }
  if (next) {
    SCIO__INSTRUMENT(l, before_task_step, next);
    scio__ctx_switch(&cur->ctx, &next->ctx);
  } else {
    l->current = NULL;
    scio__ctx_switch(&cur->ctx, &l->main_ctx);
  }
  scio__reap_zombie(l);
  return 1;
}

int scio__schedule(scio__task *cur) { return scio__schedule_inline(cur, 0); }

int scio__yield(void) {
  return scio__schedule_inline(scio__task_cur(), 1);
}

void scio__wake_misuse(scio__task *t) {
  scio__panic("waking task %s that is not blocked (state %d)",
              scio_task_name(t), t->state);
}

int scio__park(scio__abort_fn abort_fn, void *abort_ctx, const char *what) {
  scio__task *t = scio__task_cur();
  if (abort_fn && scio__task_cancelled(t)) {
    abort_fn(t, abort_ctx);
    if (!t->abort_refused) {
      scio__deliver_cancel(t);
      return SCIO_ECANCELED;
    }
    /* Refused: wait for the waker, the cancellation stays pending. */
    t->abort_refused = 0;
    abort_fn = NULL;
    abort_ctx = NULL;
  }
  scio__park_prepare(t, abort_fn, abort_ctx, what);
  scio__schedule(t);
  return scio__park_finish(t);
}

/* ------------------------------------------------------------------------ */
/* Spawning and exiting                                                      */

static __attribute__((noreturn)) void task_exit(scio__task *t, int rc);

static void task_main(void *arg) {
  scio__task *t = arg;
  scio__reap_zombie(t->loop);
  task_exit(t, t->fn(t->arg));
}

static void task_init(scio__task *t, scio__loop *l, scio__stack *st,
                      scio_fn fn, void *arg, const char *name) {
  t->loop = l;
  t->ready_next = NULL;
  t->state = 0;
  t->wake_value = 0;
  t->cancel_woken = 0;
  t->abort_refused = 0;
  t->abort_fn = NULL;
  t->abort_ctx = NULL;
  t->waiting_on = NULL;
  t->stack = st;
  t->fn = fn;
  t->arg = arg;
  t->name = name;
  t->start = NULL;
  t->start_flags = 0;
  t->result = 0;
  t->id = ++l->next_id;
  t->errmsg = NULL;
  t->errcap = 0;
  t->group = NULL;
  t->namebuf[0] = 0;
}

int scio__task_new(scio__loop *l, scio_fn fn, void *arg, const char *name,
                   scio__task **out) {
  int err = SCIO_ENOMEM;
  char msg[256];
  msg[0] = 0;
  scio__reap_zombie(l); /* its stack is the warmest to reuse */
  scio__stack *st = scio__stack_get(&l->stacks, &err, msg, sizeof msg);
  if (!st)
    return scio__seterr(err, "spawn: %s", msg[0] ? msg : "no stack");
  scio__task *t = st->user;
  task_init(t, l, st, fn, arg, name);
  t->uc_storage = (char *)st->user + SCIO__TASK_SIZE;
  int rc = scio__ctx_make(&t->ctx, st->lo, st->size, task_main, t,
                          scio__ctx_uc_size() ? t->uc_storage : NULL);
  if (rc < 0) {
    scio__stack_put(&l->stacks, st);
    return scio__seterr(rc, "spawn: cannot make a context");
  }
  *out = t;
  return 0;
}

int scio__spawn(scio__loop *l, scio__nursery *n, scio_fn fn, void *arg,
                const char *name, scio__task **out) {
  scio__task *t;
  int rc = scio__task_new(l, fn, arg, name, &t);
  if (rc < 0)
    return rc;
  t->nursery = n;
  scio__list_push_back(&n->children, &t->nursery_link);
  n->nchildren++;
  t->scope = t->base_scope = &n->scope;
  scio__list_push_back(&n->scope.tasks, &t->scope_link);
  l->ntasks++;
  SCIO__INSTRUMENT(l, task_spawned, t);
  scio__ready_push(l, t);
  if (out)
    *out = t;
  return 0;
}

/* A task returned with a scope still open.  The scope itself lived in the
 * frame that just returned, so it is named from the copy in the task. */
static __attribute__((noinline, noreturn)) void
scope_left_open(scio__task *t) {
  scio__panic("task %s returned with a %s opened at %s:%d still open",
              scio_task_name(t),
              (t->scope_bits & SCIO__SC_NURSERY) ? "nursery" : "cancel scope",
              t->scope_file, t->scope_line);
}

static void task_exit(scio__task *t, int rc) {
  scio__loop *l = t->loop;
  if (t->scope != t->base_scope)
    scope_left_open(t);
  t->result = rc;
  t->state = SCIO__T_DONE;
  SCIO__INSTRUMENT(l, after_task_step, t);
  SCIO__INSTRUMENT(l, task_exited, t);
  if (t->nursery)
    scio__nursery_child_done(t, rc);
  else
    l->root_result = rc;
  scio__list_remove(&t->scope_link);
  if (__builtin_expect(t->group != NULL, 0))
    scio__task_free_group(t);
  if (t == l->root) {
    scio__errmsg_adopt(t->errmsg);
    t->errmsg = NULL;
    l->root = NULL;
  } else {
    scio__task_free_errmsg(t);
  }
  l->ntasks--;
  /* Our stack is recycled later (see reap_zombie): it must not be reused
   * while we are still running on it.  An earlier zombie's stack is free
   * to go now. */
  scio__reap_zombie(l);
  l->zombie = t;
  scio__task *next = scio__pick(l);
  if (next) {
    SCIO__INSTRUMENT(l, before_task_step, next);
    scio__ctx_exit_to(&t->ctx, &next->ctx);
  }
  l->current = NULL;
  scio__ctx_exit_to(&t->ctx, &l->main_ctx);
}

/* ------------------------------------------------------------------------ */
/* Public: checkpoints and task handles                                      */

SCIO_API int scio_checkpoint_if_cancelled(void) {
  scio__task *t = scio__task_cur();
  if (t && scio__task_cancelled(t)) {
    scio__deliver_cancel(t);
    return SCIO_ECANCELED;
  }
  return 0;
}

static scio__rs checkpoint(void) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__rs_make(
        scio__seterr(SCIO_EINVAL, "checkpoint: not inside a task"), 0);
  if (scio__task_cancelled(t)) {
    scio__deliver_cancel(t);
    return scio__rs_make(SCIO_ECANCELED, 0);
  }
  int switched = scio__schedule_inline(t, 1); /* the yield, in this frame */
  if (scio__task_cancelled(t)) {
    scio__deliver_cancel(t);
    return scio__rs_make(SCIO_ECANCELED, switched);
  }
  return scio__rs_make(0, switched);
}

SCIO__BLOCKING(scio_checkpoint, (void), checkpoint())

static scio__rs cancel_shielded_checkpoint(void) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__rs_make(
        scio__seterr(SCIO_EINVAL, "checkpoint: not inside a task"), 0);
  return scio__rs_make(0, scio__schedule_inline(t, 1));
}

SCIO__BLOCKING(scio_cancel_shielded_checkpoint, (void),
               cancel_shielded_checkpoint())

SCIO_API scio_task *scio_task_current(void) { return scio__task_cur(); }

SCIO_API void scio_task_set_name(scio_task *t, const char *name) {
  if (t)
    t->name = name;
}
