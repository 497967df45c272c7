/* Private, core only: the structures of the core and its scheduler.  The
 * layers above (sync, streams, net, ...) include "layer.h", the part of the
 * internal API they may use; this header includes it.
 *
 * The run loop (scio__loop) belongs to one thread.  Tasks switch directly to
 * each other through the ready queue; the scheduler context (the thread's own
 * stack, where scio_run was called) runs only to poll libevent, to block when
 * nothing is runnable, and at the end of the run.
 */
#ifndef SCIO_CORE_INTERNAL_H
#define SCIO_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>

#include "scio/core.h"

#include "layer.h"
#include "ctx.h"
#include "heap.h"
#include "resume.h"
#include "list.h"
#include "stack.h"

struct event;

typedef struct scio__scope scio__scope;
typedef struct scio__nursery scio__nursery;

/* The calls that layer.h declares and that the core wants inline are
 * defined here, static inline, for core files (layer.h leaves their
 * declarations out when this header is included); layer.c, which defines
 * SCIO__EMIT_LAYER_CALLS, compiles the same definitions as the one
 * out-of-line copy that layers call.  (GNU "extern inline" would do it
 * without hiding the declarations, but cost chan_pingpong 2 instructions a
 * message under callgrind.)  The ready queue's push is defined the same
 * way, as those call it. */
#ifdef SCIO__EMIT_LAYER_CALLS
#define SCIO__LAYER_INLINE
#else
#define SCIO__LAYER_INLINE static inline
#endif

/* ------------------------------------------------------------------------ */

enum scio__scope_bits {
  SCIO__SC_SHIELD = 1u << 0,
  SCIO__SC_FAIL = 1u << 1,
  SCIO__SC_CANCEL_CALLED = 1u << 2,
  SCIO__SC_EFFECTIVE = 1u << 3,   /* cancelled, as seen from inside */
  SCIO__SC_CAUGHT = 1u << 4,      /* a checkpoint inside returned ECANCELED
                                     because of this scope */
  SCIO__SC_BY_DEADLINE = 1u << 5, /* the cancel came from the deadline */
  SCIO__SC_OPEN = 1u << 6,
  SCIO__SC_NURSERY = 1u << 7,     /* the scope of a nursery */
  SCIO__SC_DELIVERED = 1u << 8,   /* a cancellation was delivered inside and
                                     has not been caught by an inner scope:
                                     who catches it is decided at close */
  SCIO__SC_QUIET = 1u << 9,       /* internal scope (a sleep's) whose own
                                     cancellation is mapped away: delivering
                                     it does not write the errmsg */
};

/* Why a scope was cancelled (scio__scope.cancel_kind), for scio_errmsg(). */
enum scio__cancel_kind {
  SCIO__CANCEL_NONE = 0,
  SCIO__CANCEL_DEADLINE = 1, /* its deadline passed */
  SCIO__CANCEL_MANUAL = 2,   /* scio_scope_cancel / _cancel_reason /
                                scio_nursery_cancel; reason[] may hold text */
  SCIO__CANCEL_CHILD = 3     /* a child of its nursery failed; reason[] */
};

/* Bytes of reason text a scope keeps (with the NUL); longer text is
 * truncated, ending in "...". */
#define SCIO__REASON_MAX 64

#define SCIO__SCOPE_MAGIC 0x5c09e5c0u

/* A cancel scope.  Scopes form one tree per run that crosses task
 * boundaries: a child task's scopes hang below its nursery's scope, which
 * hangs below the scopes of the task that opened the nursery.  Each scope
 * lists its child scopes and the tasks whose innermost scope it is, so a
 * cancel can walk down the tree and wake exactly the affected tasks. */
struct scio__scope {
  scio__hnode timer;     /* key = deadline; in the loop's heap if finite */
  scio__scope *parent;
  scio__node children;   /* child scopes */
  scio__node sibling;    /* link in parent->children */
  scio__node tasks;      /* tasks whose innermost scope this is */
  scio__task *owner;     /* the task that opened it */
  const char *file;
  int line;
  unsigned bits;
  uint32_t magic;
  uint8_t cancel_kind;   /* enum scio__cancel_kind, once CANCEL_CALLED */
  /* Formatted when the scope is cancelled (not on delivery), into the
   * scope itself: delivering a cancellation allocates nothing but the
   * task's errmsg buffer. */
  char reason[SCIO__REASON_MAX];
};

#define SCIO__NURSERY_MAGIC 0x2b5e2b5eu

/* One entry of a nursery's error group: a child (or the body) that
 * failed.  The name and the message are copied, because a task's name may
 * live in its own storage, which is recycled when it exits. */
typedef struct scio__failure {
  struct scio__failure *next;
  int code;
  int body;            /* the nursery's body (scio_nursery_close_with) */
  const char *message; /* the task's detail at exit, "" if none (in name) */
  char name[];         /* "name\0message\0" */
} scio__failure;

/* A task's last error group (nursery.c): the failures behind the error
 * detail that scio_nursery_close set.  One per task, replaced by the next
 * group and freed when the task exits. */
typedef struct scio__group scio__group;

enum scio__nursery_state { SCIO__N_OPEN = 1, SCIO__N_CLOSED = 2 };

struct scio__nursery {
  scio__scope scope;       /* the body and every child run inside it */
  scio__node children;     /* child tasks (scio_task.nursery_link) */
  size_t nchildren;
  size_t pending_starts;   /* scio_start calls targeting this nursery */
  scio__task *closer;      /* the task blocked in scio_nursery_close */
  int first_error;
  unsigned nfailed;
  unsigned nlost;          /* failures whose record could not be allocated */
  unsigned ncancelled;     /* children (or the body) that ended cancelled */
  scio__failure *failures, **failures_tail;
  uint32_t magic;
  int state;
};

/* ------------------------------------------------------------------------ */

enum scio__task_state {
  SCIO__T_READY = 1,   /* in the ready queue */
  SCIO__T_RUNNING = 2,
  SCIO__T_BLOCKED = 3, /* parked; woken by scio__task_wake */
  SCIO__T_DONE = 4
};

typedef struct scio__start_state scio__start_state;

/* A task.  It lives in the user area at the top of its own stack mapping,
 * so spawning does not call malloc. */
struct scio_task {
  scio__ctx ctx;
  scio__loop *loop;
  scio__task *ready_next;
  int state;
  int wake_value;          /* what scio__park returns */
  int cancel_woken;        /* woken by cancellation, not by the waker */
  int abort_refused;       /* its abort function called scio__abort_refuse */
  scio__scope *scope;      /* innermost scope */
  scio__scope *base_scope; /* the scope the task started in */
  /* Where the innermost scope was opened, mirrored here because a task
   * that returns with a scope open leaves it in a dead frame. */
  const char *scope_file;
  int scope_line;
  unsigned scope_bits;
  scio__node scope_link;   /* in scope->tasks */
  scio__abort_fn abort_fn; /* non-NULL while in an abortable wait */
  void *abort_ctx;
  const char *waiting_on;  /* what the task is blocked in, for dumps */
  scio__stack *stack;
  scio_fn fn;
  void *arg;
  const char *name;
  scio__nursery *nursery;  /* NULL for the root task */
  scio__node nursery_link;
  scio__start_state *start; /* launched by scio_start, not yet started */
  unsigned start_flags;    /* SCIO__TS_* */
  int result;
  uint64_t id;
  char *errmsg;            /* heap, lazily allocated */
  size_t errcap;
  scio__group *group;      /* the last error group, NULL if none */
  char namebuf[64];        /* resolved symbol name */
  void *uc_storage;        /* ucontext back-end */
};

enum { SCIO__TS_BY_START = 1, SCIO__TS_STARTED = 2 };

/* Bytes reserved for a task at the top of its stack (ucontext storage, if
 * any, follows). */
#define SCIO__TASK_SIZE ((sizeof(struct scio_task) + 63) & ~(size_t)63)

/* ------------------------------------------------------------------------ */

typedef struct scio__fdrec scio__fdrec;

#define SCIO__MAX_INSTRUMENTS 8

struct scio__loop {
  struct event_base *base;
  const char *backend;
  int edge_triggered;        /* the backend supports EV_ET */
  int sees_eof;              /* ...and EV_CLOSED (layer.h) */
  scio__ctx main_ctx;
  scio__task *current;
  scio__task *root;
  int root_result;
  scio__scope root_scope;    /* the root task's base scope */
  scio__task *ready_head, *ready_tail;
  size_t nready;
  size_t ntasks;             /* tasks alive */
  uint64_t next_id;
  scio__task *zombie;        /* exited task whose stack is still to recycle:
                                reaped by the next spawn, exit, task start
                                or scheduler run */
  scio__stack_pool stacks;
  size_t stack_cache;
  scio__heap timers;         /* scope deadlines */

  /* Scheduler rounds: a batch is the set of tasks runnable at its start.
   * `budget` picks may go by on the fast path before the slow path must
   * run (end of batch, or the 16-resumption clock tick); `granted` is what
   * it was set to, so the slow path can count the picks that happened. */
  size_t budget, granted;    /* budget is 0 while nins != 0 */
  size_t batch_left;
  unsigned batches_since_poll;
  unsigned resumes_since_clock;
  int poll_due;

  int clock_kind;
  double vnow;               /* autojump virtual time */
  double cached_now;         /* last clock reading */
  double last_poll;
  double last_trim;          /* when the stack cache was last trimmed */
  struct event *timeout_ev;  /* bounds a blocking poll with a deadline */
  size_t nsources;           /* libevent events pending (layer.h: sources) */

  scio__fdrec **fds;
  int fds_cap;
  scio__node fd_bounded;     /* bounded fd waits, oldest first (fdwait.c) */
  unsigned fd_bgen;          /* sweeps so far */
  scio__hnode fd_sweep;      /* in `timers` while fd_bounded may be busy */

  scio__node blocked_waiters; /* tasks in scio_wait_all_tasks_blocked */

  const scio_instrument *ins[SCIO__MAX_INSTRUMENTS];
  int nins;

  scio__wakeup *wakeup;      /* cross-thread posts, lazily created */
  struct at_exit_node *at_exit; /* scio__loop_at_exit, run by loop_finish */
};

/* initial-exec: inside libscio.so the default model would call
 * __tls_get_addr at every checkpoint; one pointer fits the static TLS
 * surplus that glibc keeps for such libraries. */
extern __thread scio__loop *scio__tls_loop
    __attribute__((tls_model("initial-exec")));

SCIO__LAYER_INLINE scio__loop *scio__loop_current(void) {
  return scio__tls_loop;
}
SCIO__LAYER_INLINE scio__task *scio__task_cur(void) {
  scio__loop *l = scio__tls_loop;
  return l ? l->current : NULL;
}

/* ---- errors (error.c) ---- */
void scio__task_free_errmsg(scio__task *t);
/* Hand the root task's message to the thread after the run. */
void scio__errmsg_adopt(char *msg);

/* ---- scheduling (task.c, loop.c) ---- */
/* scio__task_wake (layer.h) is defined below, inline: every hand-off in
 * sync and channels calls it. */
__attribute__((noreturn, cold)) void scio__wake_misuse(scio__task *t);
/* scio__park in two halves around the caller's own scio__schedule(t), for
 * a hot path that must suspend at one call site whether it blocks or only
 * yields (see channel.c).  The caller has checked cancellation: unlike
 * scio__park, park_prepare never aborts. */
static inline void scio__park_prepare(scio__task *t, scio__abort_fn abort_fn,
                                      void *abort_ctx, const char *what);
static inline int scio__park_finish(scio__task *t);
/* Pick the next task (or the scheduler) and switch to it; the current task
 * must already be queued or blocked.  1 if it switched (resume.h). */
int scio__schedule(scio__task *cur);
void scio__instrument_scheduled(scio__loop *l, scio__task *t);
/* Append t to the ready queue. */
SCIO__LAYER_INLINE void scio__ready_push(scio__loop *l, scio__task *t) {
  t->state = SCIO__T_READY;
  t->ready_next = NULL;
  if (l->ready_tail)
    l->ready_tail->ready_next = t;
  else
    l->ready_head = t;
  l->ready_tail = t;
  l->nready++;
  if (__builtin_expect(l->nins != 0, 0))
    scio__instrument_scheduled(l, t);
}
SCIO__LAYER_INLINE void scio__task_wake(scio__task *t, int value) {
  if (__builtin_expect(t->state != SCIO__T_BLOCKED, 0))
    scio__wake_misuse(t);
  t->abort_fn = NULL;
  t->abort_ctx = NULL;
  t->waiting_on = NULL;
  t->wake_value = value;
  scio__ready_push(t->loop, t);
}
static inline void scio__park_prepare(scio__task *t, scio__abort_fn abort_fn,
                                      void *abort_ctx, const char *what) {
  t->abort_fn = abort_fn;
  t->abort_ctx = abort_ctx;
  t->waiting_on = what;
  t->state = SCIO__T_BLOCKED;
}
static inline int scio__park_finish(scio__task *t) {
  if (__builtin_expect(t->wake_value == SCIO_ECANCELED && t->cancel_woken, 0)) {
    t->cancel_woken = 0;
    scio__deliver_cancel(t);
  }
  return t->wake_value;
}
/* Recycle a task that has exited (loop.c/task.c). */
void scio__reap_zombie(scio__loop *l);

/* ---- the scheduler's hot path, inline (task.c has the rest) ---- */
/* Picks granted at once when the loop has neither deadlines nor fds (see
 * scio__pick_slow); with either, a budget lasts at most 16 picks. */
#define SCIO__LONG_BUDGET 256

/* A deadline or an event source has just been registered: make the next
 * pick take the slow path, so that the clock tick and the poll see it
 * within the usual 16 resumptions instead of at the end of a long budget.
 * Sources call it through scio__loop_source_add. */
static inline void scio__tick_needed(scio__loop *l) {
  if (l->granted > 16)
    l->budget = 0;
}

scio__task *scio__pick_slow(scio__loop *l);
int scio__schedule_instrumented(scio__task *cur);

static inline scio__task *scio__ready_pop(scio__loop *l) {
  scio__task *t = l->ready_head;
  scio__task *n = t->ready_next;
  l->ready_head = n;
  if (!n) {
    l->ready_tail = NULL;
  } else if (l->nready > 4) {
    /* The task after t runs once t parks again: ask for its record and
     * the top of its saved stack (the frames it parked from) now, so that
     * they arrive while t runs (a server's t spends microseconds in system
     * calls), not when the switch to n needs them.  With many tasks (a
     * server with many connections) they are cold; with a few they are
     * hot, and the queue is short, so the prefetches are skipped.  At 1000
     * connections x 16 KiB this moved the echo server from 0.92 to 0.96
     * of the libevent baseline (median of 8 alternating runs). */
    char *sp = n->ctx.sp;
    __builtin_prefetch(n, 0, 2);
    __builtin_prefetch((char *)n + 64, 0, 2);
    __builtin_prefetch((char *)n + 128, 0, 2);
    for (int i = 0; i < 8; i++)
      __builtin_prefetch(sp + 64 * i, 0, 2);
  }
  l->nready--;
  return t;
}

/* The next task to run, popped and marked running; NULL when the scheduler
 * must run (nothing runnable, or a poll is due).  The fast path is one
 * counter: while the budget lasts and a task is queued, the batch goes on,
 * no clock tick is due, and the task at the head is the next one. */
static inline scio__task *scio__pick(scio__loop *l) {
  if (__builtin_expect(l->budget == 0 || !l->ready_head, 0))
    return scio__pick_slow(l);
  l->budget--;
  scio__task *t = scio__ready_pop(l);
  t->state = SCIO__T_RUNNING;
  l->current = t;
  return t;
}

/* Switch from cur to next (NULL: the scheduler), which is already marked
 * running and current.  Returns 1, once cur is resumed (resume.h). */
static inline __attribute__((always_inline)) int
scio__switch_inline(scio__task *cur, scio__task *next) {
  scio__loop *l = cur->loop;
  scio__ctx *to;
  if (__builtin_expect(next != NULL, 1)) {
    to = &next->ctx;
  } else {
    l->current = NULL;
    to = &l->main_ctx;
  }
  scio__ctx_switch_fast(&cur->ctx, to);
  /* Resumed: whoever switched here set l->current to us.  A task that
   * exited meanwhile stays a zombie until the next spawn, exit or
   * scheduler run recycles its stack: not worth a test on every resume. */
  return 1;
}

/* scio__schedule, inline for the hot paths that want the switch in their
 * own frame, with the current task first queued again if `requeue` (a
 * yield).  There is one switch in it, whichever task or the scheduler
 * comes next, so each use is one resume address.  Returns 1 if the task
 * was switched away from and back (resume.h), 0 if it went on. */
static inline __attribute__((always_inline)) int
scio__schedule_inline(scio__task *cur, int requeue) {
  scio__loop *l = cur->loop;
  scio__task *next = l->ready_head;
  if (requeue && __builtin_expect(next && l->budget != 0, 1)) {
    /* A yield with others queued: the head runs and cur goes to the back,
     * in one step (the queue's length does not change).  The budget is 0
     * while instruments are installed (scio__pick_slow), so this fast path
     * needs no test of its own for them. */
    l->budget--;
    /* Without a branch: if next is the only one queued it is also the
     * tail, so linking cur after the tail makes next->ready_next = cur,
     * the new head either way.  next's stale link is never read: it is
     * reset when next is queued again. */
    l->ready_tail->ready_next = cur;
    l->ready_head = next->ready_next;
    l->ready_tail = cur;
    cur->ready_next = NULL;
    cur->state = SCIO__T_READY;
    next->state = SCIO__T_RUNNING;
    l->current = next;
  } else {
    if (requeue)
      scio__ready_push(l, cur);
    if (__builtin_expect(l->nins != 0, 0))
      return scio__schedule_instrumented(cur);
    next = scio__pick(l);
    if (next == cur)
      return 0;
  }
  return scio__switch_inline(cur, next);
}

int scio__task_new(scio__loop *l, scio_fn fn, void *arg, const char *name,
                   scio__task **out);
scio__task *scio__pick_from_scheduler(scio__loop *l);
/* Spawn fn(arg) into n, which the caller has checked is open. */
int scio__spawn(scio__loop *l, scio__nursery *n, scio_fn fn, void *arg,
                const char *name, scio__task **out);
/* Process expired deadlines at time `now`. */
void scio__timers_fire(scio__loop *l, double now);
double scio__clock_read(scio__loop *l);

/* ---- scopes (scope.c) ---- */
SCIO__LAYER_INLINE uint64_t scio__task_id(const scio__task *t) {
  return t->id;
}
SCIO__LAYER_INLINE int scio__task_cancelled(const scio__task *t) {
  return (t->scope->bits & SCIO__SC_EFFECTIVE) != 0;
}
void scio__scope_init_open(scio__scope *s, scio__task *owner,
                           scio__scope *parent, double deadline,
                           unsigned bits, const char *file, int line);
void scio__scope_unlink(scio__scope *s);
void scio__scope_cancel(scio__scope *s, int by_deadline);
/* Cancel s for `kind` (SCIO__CANCEL_MANUAL or _CHILD) with a reason
 * formatted into the scope (truncated to SCIO__REASON_MAX), which every
 * checkpoint the cancellation reaches reports in scio_errmsg() as
 * "cancelled: <reason>".  Only the first cancel of a scope counts: a
 * later one formats nothing.  fmt may be NULL (no text). */
void scio__scope_cancel_because(scio__scope *s, int kind, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));
/* Move task t (not blocked anywhere scope-related) under scope s. */
void scio__task_enter_scope(scio__task *t, scio__scope *s);
/* Re-parent a scope subtree (scio_started) and recompute cancellation. */
void scio__scope_reparent(scio__scope *s, scio__scope *new_parent);
void scio__scope_check_close(scio__task *t, scio__scope *s, const char *what);
/* Close s in its owner t (LIFO order checked by the caller).  If a
 * cancellation was delivered inside s and is still uncaught, s catches it
 * when s was cancelled and no enclosing cancellation is visible to it;
 * otherwise it goes on to the enclosing scope of t (Trio's rule). */
void scio__scope_close_in(scio__task *t, scio__scope *s);
/* A scope with its deadline crossed. */
void scio__scope_deadline_fired(scio__scope *s);

/* ---- nurseries (nursery.c) ---- */
/* A child has returned rc; account for it in its nursery. */
void scio__nursery_child_done(scio__task *t, int rc);
/* Free the task's last error group (at exit). */
void scio__task_free_group(scio__task *t);

/* ---- fds (fdwait.c; the contract is in layer.h) ---- */
void scio__fds_free(scio__loop *l);
/* event_base_loop failed: wake the fd waiters that would otherwise hang
 * (fdwait.c explains); returns how many were woken. */
int scio__fds_dispatch_failed(scio__loop *l);
/* The fd_sweep timer fired (loop.c): end the bounded waits that are due. */
void scio__fds_sweep(scio__loop *l, double now);

/* ---- cross-thread wakeup (wakeup.c) ---- */
void scio__wakeup_free(scio__loop *l);
/* The run's end: at-exit functions, then close the record to posters and
 * run what they posted before. */
void scio__loop_finish(scio__loop *l);
/* Called with l->wakeup set: run posts if any are queued (one atomic load
 * when none). */
void scio__wakeup_poll(scio__loop *l);
/* Around a blocking poll: begin returns 1 if posts are already queued (poll
 * without blocking then); end runs what was posted. */
int scio__wakeup_sleep_begin(scio__loop *l);
void scio__wakeup_sleep_end(scio__loop *l);
/* How many times posters wrote the eventfd (tests: none while busy). */
unsigned long scio__wakeup_writes(scio__wakeup *h);

/* ---- instruments (instrument.c) ---- */
#define SCIO__INSTRUMENT(l, slot, ...)                                        \
  do {                                                                        \
    if (__builtin_expect((l)->nins != 0, 0))                                  \
      for (int i_ = 0; i_ < (l)->nins; i_++)                                  \
        if ((l)->ins[i_]->slot)                                               \
          (l)->ins[i_]->slot((l)->ins[i_]->ctx, __VA_ARGS__);                 \
  } while (0)

#endif
