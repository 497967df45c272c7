/* Cancel scopes.
 *
 * Each scope caches whether it is *effectively* cancelled (its own cancel was
 * called, or its parent is effectively cancelled and it is not shielded), so
 * that a checkpoint is one bit test.  The cache is kept right by recompute(),
 * which walks down the tree whenever a cancel, a shield change or a
 * re-parenting could change it, waking blocked tasks that became cancelled.
 *
 * Who catches a cancellation is decided when scopes close, as in Trio: a
 * delivery marks the task's innermost scope, and at close a marked scope
 * catches if it was cancelled and no enclosing cancellation is visible to
 * it; otherwise the mark moves out to the enclosing scope, like a Cancelled
 * exception propagating.  So when an inner and an outer scope are both
 * cancelled by the time the inner one closes, the outer one catches.
 *
 * A scope remembers why it was cancelled (deadline, by hand with optional
 * text, a failed child of its nursery); the reason is formatted into the
 * scope when it is cancelled, and a delivery copies it into scio_errmsg().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

_Static_assert(sizeof(scio__scope) <= sizeof(scio_scope),
               "scio_scope storage too small");
_Static_assert(_Alignof(scio__scope) <= _Alignof(scio_scope),
               "scio_scope storage misaligned");

static inline scio__scope *S(scio_scope *cs) { return (scio__scope *)cs; }
static inline const scio__scope *CS(const scio_scope *cs) {
  return (const scio__scope *)cs;
}

/* Wake the tasks whose innermost scope is s and that sit in an abortable
 * wait: their operation is undone by its abort function and they resume
 * with SCIO_ECANCELED.  A task whose abort function refused stays parked,
 * no longer abortable, with the cancellation pending. */
static void wake_cancelled(scio__scope *s) {
  scio__list_each(n, &s->tasks) {
    scio__task *t = scio__container_of(n, scio__task, scope_link);
    if (t->state == SCIO__T_BLOCKED && t->abort_fn) {
      scio__abort_fn fn = t->abort_fn;
      t->abort_fn = NULL;
      fn(t, t->abort_ctx);
      if (t->abort_refused) {
        t->abort_refused = 0;
        t->abort_ctx = NULL;
        continue;
      }
      t->cancel_woken = 1;
      scio__task_wake(t, SCIO_ECANCELED);
    }
  }
}

static int should_be_effective(const scio__scope *s) {
  if (s->bits & SCIO__SC_CANCEL_CALLED)
    return 1;
  return !(s->bits & SCIO__SC_SHIELD) && s->parent &&
         (s->parent->bits & SCIO__SC_EFFECTIVE);
}

static void recompute(scio__scope *s) {
  int eff = should_be_effective(s);
  if (eff == !!(s->bits & SCIO__SC_EFFECTIVE))
    return;
  if (eff) {
    s->bits |= SCIO__SC_EFFECTIVE;
    wake_cancelled(s);
  } else {
    s->bits &= ~SCIO__SC_EFFECTIVE;
  }
  scio__list_each(n, &s->children)
      recompute(scio__container_of(n, scio__scope, sibling));
}

void scio__scope_init_open(scio__scope *s, scio__task *owner,
                           scio__scope *parent, double deadline,
                           unsigned bits, const char *file, int line) {
  s->timer.key = deadline;
  s->timer.child = s->timer.sibling = s->timer.prev = NULL;
  s->parent = parent;
  scio__list_init(&s->children);
  scio__list_init(&s->tasks);
  if (parent)
    scio__list_push_back(&parent->children, &s->sibling);
  else
    scio__list_init(&s->sibling);
  s->owner = owner;
  s->file = file;
  s->line = line;
  s->magic = SCIO__SCOPE_MAGIC;
  s->bits = bits | SCIO__SC_OPEN;
  if (should_be_effective(s))
    s->bits |= SCIO__SC_EFFECTIVE;
  /* A scope cancelled before it was entered (scio_scope_init) keeps no
   * timer: its cancellation is already decided. */
  if (deadline < INFINITY && !(bits & SCIO__SC_CANCEL_CALLED)) {
    scio__loop *l = scio__loop_current();
    /* Compared with the last clock reading, not a fresh one: a fresh read
     * would double the cost of opening a scope.  A deadline that passed
     * since then fires at the next scheduling point, before this task's
     * next checkpoint returns. */
    if (deadline <= l->cached_now) {
      s->bits |= SCIO__SC_CANCEL_CALLED | SCIO__SC_BY_DEADLINE |
                 SCIO__SC_EFFECTIVE;
      s->cancel_kind = SCIO__CANCEL_DEADLINE;
    } else {
      scio__heap_insert(&l->timers, &s->timer);
      scio__tick_needed(l);
    }
  }
}

void scio__task_enter_scope(scio__task *t, scio__scope *s) {
  scio__list_remove(&t->scope_link);
  scio__list_push_back(&s->tasks, &t->scope_link);
  t->scope = s;
  t->scope_file = s->file;
  t->scope_line = s->line;
  t->scope_bits = s->bits;
}

/* Take s out of the tree and out of the timer heap. */
void scio__scope_unlink(scio__scope *s) {
  scio__loop *l = scio__loop_current();
  if (scio__hnode_in_heap(&l->timers, &s->timer))
    scio__heap_remove(&l->timers, &s->timer);
  scio__list_remove(&s->sibling);
  s->bits &= ~SCIO__SC_OPEN;
  s->magic = 0;
}

/* Mark s cancelled for `kind`; the caller has checked that it was not
 * yet.  A scope not yet entered only records it: entering applies it. */
static void cancel_now(scio__scope *s, int kind) {
  s->bits |= SCIO__SC_CANCEL_CALLED;
  s->cancel_kind = (uint8_t)kind;
  if (kind == SCIO__CANCEL_DEADLINE)
    s->bits |= SCIO__SC_BY_DEADLINE;
  if (!(s->bits & SCIO__SC_OPEN))
    return;
  scio__loop *l = scio__loop_current();
  if (scio__hnode_in_heap(&l->timers, &s->timer))
    scio__heap_remove(&l->timers, &s->timer);
  recompute(s);
}

/* Whether a cancel of s would be recorded: s is open, or initialised and
 * not yet entered (magic set, not open), and not cancelled already.  A
 * closed scope has magic 0. */
static int cancellable(const scio__scope *s) {
  return s->magic == SCIO__SCOPE_MAGIC &&
         !(s->bits & SCIO__SC_CANCEL_CALLED);
}

void scio__scope_cancel(scio__scope *s, int by_deadline) {
  if (!cancellable(s))
    return;
  s->reason[0] = 0;
  cancel_now(s, by_deadline ? SCIO__CANCEL_DEADLINE : SCIO__CANCEL_MANUAL);
}

static void set_reason(scio__scope *s, const char *fmt, va_list ap) {
  int n = vsnprintf(s->reason, sizeof s->reason, fmt, ap);
  if (n >= (int)sizeof s->reason)
    memcpy(s->reason + sizeof s->reason - 4, "...", 4);
  else if (n < 0)
    s->reason[0] = 0;
}

void scio__scope_cancel_because(scio__scope *s, int kind, const char *fmt,
                                ...) {
  if (!cancellable(s))
    return;
  s->reason[0] = 0;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    set_reason(s, fmt, ap);
    va_end(ap);
  }
  cancel_now(s, kind);
}

void scio__scope_deadline_fired(scio__scope *s) { scio__scope_cancel(s, 1); }

void scio__scope_reparent(scio__scope *s, scio__scope *new_parent) {
  scio__list_remove(&s->sibling);
  scio__list_push_back(&new_parent->children, &s->sibling);
  s->parent = new_parent;
  recompute(s);
}

/* Put s's reason for being cancelled into the current task's errmsg. */
static void report_reason(const scio__scope *s) {
  const char *what = (s->bits & SCIO__SC_NURSERY) ? "nursery" : "scope";
  /* Internal scopes are named by their file field and have no line. */
  const char *file = s->file ? s->file : "?";
  switch (s->cancel_kind) {
  case SCIO__CANCEL_DEADLINE:
    if (s->line > 0)
      scio__seterr(SCIO_ECANCELED,
                   "cancelled: deadline of the %s opened at %s:%d expired",
                   what, file, s->line);
    else
      scio__seterr(SCIO_ECANCELED, "cancelled: deadline of %s expired", file);
    return;
  case SCIO__CANCEL_CHILD:
    scio__seterr(SCIO_ECANCELED, "cancelled: %s", s->reason);
    return;
  default:
    if (s->reason[0])
      scio__seterr(SCIO_ECANCELED, "cancelled: %s (%s opened at %s:%d)",
                   s->reason, what, file, s->line);
    else
      scio__seterr(SCIO_ECANCELED,
                   "cancelled: the %s opened at %s:%d was cancelled", what,
                   file, s->line);
    return;
  }
}

/* A checkpoint of t returns SCIO_ECANCELED.  The cancellation starts out
 * from t's innermost scope (if t opened it; else it leaves the task, whose
 * result tells its nursery).  Its cause, for the errmsg, is the outermost
 * cancelled scope t can see up to the nearest shield: the one that will
 * catch it if the body lets it through. */
void scio__deliver_cancel(scio__task *t) {
  scio__scope *in = t->scope;
  if (in->owner == t)
    in->bits |= SCIO__SC_DELIVERED;
  scio__scope *cause = NULL;
  for (scio__scope *s = in; s; s = s->parent) {
    if (s->bits & SCIO__SC_CANCEL_CALLED)
      cause = s;
    if (s->bits & SCIO__SC_SHIELD)
      break;
  }
  if (cause && !(cause->bits & SCIO__SC_QUIET))
    report_reason(cause);
}

void scio__abort_refuse(scio__task *t) { t->abort_refused = 1; }

unsigned scio__cancel_mark_save(const scio__task *t) {
  if (!t)
    return 0;
  const scio__scope *s = t->scope;
  return s->owner == t ? s->bits & SCIO__SC_DELIVERED : 0;
}

void scio__cancel_mark_restore(scio__task *t, unsigned saved) {
  if (!t)
    return;
  scio__scope *s = t->scope;
  if (s->owner == t)
    s->bits = (s->bits & ~(unsigned)SCIO__SC_DELIVERED) |
              (saved & SCIO__SC_DELIVERED);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

_Static_assert((unsigned)SCIO_SCOPE_SHIELD == SCIO__SC_SHIELD &&
                   (unsigned)SCIO_SCOPE_FAIL == SCIO__SC_FAIL,
               "public scope flags are the internal bits");

SCIO_API int scio_scope_open_loc(scio_scope *cs, double deadline, unsigned flags,
                                const char *file, int line) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "scope_open: not inside a task");
  if (deadline != deadline)
    return scio__seterr(SCIO_EINVAL, "scope_open: deadline is NaN");
  if (flags & ~(unsigned)(SCIO_SCOPE_SHIELD | SCIO_SCOPE_FAIL))
    return scio__seterr(SCIO_EINVAL, "scope_open: unknown flags 0x%x", flags);
  /* The public flags are the first internal bits (asserted above). */
  unsigned bits = flags;
  scio__scope *s = S(cs);
  scio__scope_init_open(s, t, t->scope, deadline, bits, file, line);
  scio__task_enter_scope(t, s);
  return 0;
}

SCIO_API int scio_move_on_at_loc(scio_scope *cs, double deadline,
                                 const char *file, int line) {
  return scio_scope_open_loc(cs, deadline, 0, file, line);
}

SCIO_API int scio_fail_at_loc(scio_scope *cs, double deadline,
                              const char *file, int line) {
  return scio_scope_open_loc(cs, deadline, SCIO_SCOPE_FAIL, file, line);
}

static int scope_is_open_above_current(const scio__scope *s) {
  scio__task *t = scio__task_cur();
  for (const scio__scope *p = t ? t->scope : NULL; p; p = p->parent)
    if (p == s)
      return 1;
  return 0;
}

SCIO_API int scio_scope_init(scio_scope *cs, double deadline, unsigned flags) {
  scio__scope *s = S(cs);
  /* Re-initialising a scope that is open would tear it out of the tree.
   * The storage may be uninitialised (as a first init's usually is), so
   * the check looks for it among the open scopes above the current task
   * instead of reading it. */
  if (scope_is_open_above_current(s))
    return scio__seterr(SCIO_EINVAL,
                        "scope_init: the scope opened at %s:%d is open",
                        s->file, s->line);
  s->magic = 0; /* unusable unless everything below is right */
  if (deadline != deadline)
    return scio__seterr(SCIO_EINVAL, "scope_init: deadline is NaN");
  if (flags & ~(unsigned)(SCIO_SCOPE_SHIELD | SCIO_SCOPE_FAIL))
    return scio__seterr(SCIO_EINVAL, "scope_init: unknown flags 0x%x", flags);
  unsigned bits = flags;
  s->timer.key = deadline;
  s->timer.child = s->timer.sibling = s->timer.prev = NULL;
  s->parent = NULL;
  s->owner = NULL;
  s->file = NULL;
  s->line = 0;
  s->bits = bits;
  s->cancel_kind = SCIO__CANCEL_NONE;
  s->reason[0] = 0;
  s->magic = SCIO__SCOPE_MAGIC;
  return 0;
}

SCIO_API int scio_scope_enter_loc(scio_scope *cs, const char *file, int line) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "scope_enter: not inside a task");
  scio__scope *s = S(cs);
  if (s->magic != SCIO__SCOPE_MAGIC)
    return scio__seterr(SCIO_EINVAL,
                        "scope_enter at %s:%d: the scope is not initialised "
                        "(scio_scope_init) or was already used",
                        file, line);
  if (s->bits & SCIO__SC_OPEN)
    return scio__seterr(SCIO_EINVAL,
                        "scope_enter at %s:%d: the scope is already entered "
                        "(at %s:%d); a scope is entered once",
                        file, line, s->file, s->line);
  unsigned bits = s->bits & (SCIO__SC_SHIELD | SCIO__SC_FAIL |
                             SCIO__SC_CANCEL_CALLED | SCIO__SC_BY_DEADLINE);
  double deadline = s->timer.key;
  /* Entering is when a deadline set beforehand is first compared with the
   * clock (Trio does the same); a fresh reading, since entering is rare. */
  if (!(bits & SCIO__SC_CANCEL_CALLED) && deadline < INFINITY &&
      deadline <= scio__clock_read(t->loop)) {
    bits |= SCIO__SC_CANCEL_CALLED | SCIO__SC_BY_DEADLINE;
    s->cancel_kind = SCIO__CANCEL_DEADLINE;
  }
  scio__scope_init_open(s, t, t->scope, deadline, bits, file, line);
  scio__task_enter_scope(t, s);
  return 0;
}

static int open_after(scio_scope *cs, double seconds, unsigned flags,
                      const char *file, int line, const char *what) {
  if (seconds != seconds)
    return scio__seterr(SCIO_EINVAL, "%s: delay is NaN", what);
  if (!scio__task_cur())
    return scio__seterr(SCIO_EINVAL, "%s: not inside a task", what);
  return scio_scope_open_loc(cs, scio_now() + seconds, flags, file, line);
}

SCIO_API int scio_move_on_after_loc(scio_scope *cs, double seconds,
                                   const char *file, int line) {
  return open_after(cs, seconds, 0, file, line, "move_on_after");
}

SCIO_API int scio_fail_after_loc(scio_scope *cs, double seconds,
                                const char *file, int line) {
  return open_after(cs, seconds, SCIO_SCOPE_FAIL, file, line, "fail_after");
}

/* Check that s is the current task's innermost scope; anything else is a
 * broken LIFO discipline that would corrupt the tree, so it aborts. */
void scio__scope_check_close(scio__task *t, scio__scope *s, const char *what) {
  if (!t)
    scio__panic("%s outside a task", what);
  if (s->magic != SCIO__SCOPE_MAGIC || !(s->bits & SCIO__SC_OPEN))
    scio__panic("%s of a scope that is not open", what);
  if (s->owner != t)
    scio__panic("%s: the scope opened at %s:%d belongs to another task", what,
                s->file, s->line);
  if (t->scope != s)
    scio__panic("%s: the scope opened at %s:%d is closed while the %s "
                "opened at %s:%d inside it is still open",
                what, s->file, s->line,
                (t->scope->bits & SCIO__SC_NURSERY) ? "nursery" : "scope",
                t->scope->file, t->scope->line);
}

/* An uncaught cancellation reached the end of s (Trio's CancelScope._close
 * with a Cancelled propagating): s catches it if s was cancelled and no
 * enclosing cancellation is visible to it; otherwise it propagates to the
 * enclosing scope, if that is also t's (past t's outermost scope it leaves
 * the task). */
static __attribute__((noinline, cold)) void decide_catch(scio__task *t,
                                                         scio__scope *s) {
  scio__scope *p = s->parent;
  int outer_visible =
      !(s->bits & SCIO__SC_SHIELD) && p && (p->bits & SCIO__SC_EFFECTIVE);
  if ((s->bits & SCIO__SC_CANCEL_CALLED) && !outer_visible)
    s->bits |= SCIO__SC_CAUGHT;
  else if (p && p->owner == t)
    p->bits |= SCIO__SC_DELIVERED;
}

/* Unlink s and make its parent t's innermost scope; catching is decided. */
static inline __attribute__((always_inline)) void
close_in(scio__task *t, scio__scope *s) {
  if (!scio__list_empty(&s->children))
    scio__panic("scope opened at %s:%d closed with scopes of other tasks "
                "still inside it",
                s->file, s->line);
  scio__task_enter_scope(t, s->parent);
  scio__scope_unlink(s);
}

void scio__scope_close_in(scio__task *t, scio__scope *s) {
  if (s->bits & SCIO__SC_DELIVERED)
    decide_catch(t, s);
  close_in(t, s);
}

/* Inline in both closes: scio_scope_close is the hot one (bench_core's
 * `scope` figure), so the rare cases share one test of the bits. */
static inline __attribute__((always_inline)) int
close_plain(scio__task *t, scio__scope *s, const char *what) {
  scio__scope_check_close(t, s, what);
  if (__builtin_expect(s->bits & (SCIO__SC_NURSERY | SCIO__SC_DELIVERED), 0)) {
    if (s->bits & SCIO__SC_NURSERY)
      scio__panic("closing the nursery opened at %s:%d as a cancel scope; "
                  "use scio_nursery_close",
                  s->file, s->line);
    decide_catch(t, s);
  }
  close_in(t, s);
  unsigned want = SCIO__SC_FAIL | SCIO__SC_BY_DEADLINE | SCIO__SC_CAUGHT;
  if (__builtin_expect((s->bits & want) == want, 0))
    return scio__seterr(SCIO_ETIMEDOUT,
                        "timed out: deadline of the scope opened at %s:%d "
                        "expired",
                        s->file, s->line);
  return 0;
}

SCIO_API int scio_scope_close(scio_scope *cs) {
  return close_plain(scio__task_cur(), S(cs), "scope_close");
}

SCIO_API int scio_scope_close_with(scio_scope *cs, int rc) {
  scio__task *t = scio__task_cur();
  scio__scope *s = S(cs);
  /* The body's result says whether a cancellation leaves it: SCIO_ECANCELED
   * does, another error replaces it, success leaves what was delivered. */
  if (t && s->magic == SCIO__SCOPE_MAGIC && (s->bits & SCIO__SC_OPEN)) {
    if (rc == SCIO_ECANCELED)
      s->bits |= SCIO__SC_DELIVERED;
    else if (rc < 0)
      s->bits &= ~SCIO__SC_DELIVERED;
  }
  int crc = close_plain(t, s, "scope_close_with");
  if (rc == SCIO_ECANCELED)
    return (s->bits & SCIO__SC_CAUGHT) ? crc : SCIO_ECANCELED;
  if (rc < 0)
    return rc;
  return crc < 0 ? crc : rc;
}

SCIO_API void scio_scope_cancel(scio_scope *cs) {
  scio__scope_cancel(S(cs), 0);
}

SCIO_API void scio_scope_cancel_reason(scio_scope *cs, const char *reason) {
  if (reason)
    scio__scope_cancel_because(S(cs), SCIO__CANCEL_MANUAL, "%s", reason);
  else
    scio__scope_cancel(S(cs), 0);
}

SCIO_API int scio_scope_set_deadline(scio_scope *cs, double deadline) {
  scio__scope *s = S(cs);
  if (deadline != deadline)
    return scio__seterr(SCIO_EINVAL, "scope_set_deadline: deadline is NaN");
  if (s->magic != SCIO__SCOPE_MAGIC || !(s->bits & SCIO__SC_OPEN)) {
    s->timer.key = deadline;
    return 0;
  }
  scio__loop *l = scio__loop_current();
  if (scio__hnode_in_heap(&l->timers, &s->timer))
    scio__heap_remove(&l->timers, &s->timer);
  s->timer.key = deadline;
  if (s->bits & SCIO__SC_CANCEL_CALLED)
    return 0;
  if (deadline <= scio__clock_read(l))
    scio__scope_cancel(s, 1);
  else if (deadline < INFINITY) {
    scio__heap_insert(&l->timers, &s->timer);
    scio__tick_needed(l);
  }
  return 0;
}

SCIO_API double scio_scope_deadline(const scio_scope *cs) {
  return CS(cs)->timer.key;
}

SCIO_API void scio_scope_set_shield(scio_scope *cs, int shield) {
  scio__scope *s = S(cs);
  if (shield)
    s->bits |= SCIO__SC_SHIELD;
  else
    s->bits &= ~SCIO__SC_SHIELD;
  if (s->magic == SCIO__SCOPE_MAGIC && (s->bits & SCIO__SC_OPEN))
    recompute(s);
}

SCIO_API int scio_scope_shield(const scio_scope *cs) {
  return (CS(cs)->bits & SCIO__SC_SHIELD) != 0;
}

SCIO_API int scio_scope_cancel_called(const scio_scope *cs) {
  const scio__scope *s = CS(cs);
  if (s->bits & SCIO__SC_CANCEL_CALLED)
    return 1;
  /* Not entered yet: a deadline that has passed will cancel it on entry,
   * so say so now (Trio's cancel_called does the same). */
  return s->magic == SCIO__SCOPE_MAGIC && !(s->bits & SCIO__SC_OPEN) &&
         s->timer.key < INFINITY && s->timer.key <= scio_now();
}

SCIO_API int scio_scope_cancelled_caught(const scio_scope *cs) {
  return (CS(cs)->bits & SCIO__SC_CAUGHT) != 0;
}

SCIO_API double scio_current_effective_deadline(void) {
  scio__task *t = scio__task_cur();
  if (!t)
    return SCIO_DEADLINE_NONE;
  if (scio__task_cancelled(t))
    return -INFINITY;
  double d = INFINITY;
  for (scio__scope *s = t->scope; s; s = s->parent) {
    if (s->timer.key < d)
      d = s->timer.key;
    if (s->bits & SCIO__SC_SHIELD)
      break;
  }
  return d;
}
