/* Cancel scopes.
 *
 * Each scope caches whether it is *effectively* cancelled (its own cancel was
 * called, or its parent is effectively cancelled and it is not shielded), so
 * that a checkpoint is one bit test.  The cache is kept right by recompute(),
 * which walks down the tree whenever a cancel, a shield change or a
 * re-parenting could change it, waking blocked tasks that became cancelled.
 */
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
 * with SCIO_ECANCELED. */
static void wake_cancelled(scio__scope *s) {
  scio__list_each(n, &s->tasks) {
    scio__task *t = scio__container_of(n, scio__task, scope_link);
    if (t->state == SCIO__T_BLOCKED && t->abort_fn) {
      scio__abort_fn fn = t->abort_fn;
      t->abort_fn = NULL;
      fn(t, t->abort_ctx);
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
  if (deadline < INFINITY) {
    scio__loop *l = scio__loop_current();
    /* Compared with the last clock reading, not a fresh one: a fresh read
     * would double the cost of opening a scope.  A deadline that passed
     * since then fires at the next scheduling point, before this task's
     * next checkpoint returns. */
    if (deadline <= l->cached_now) {
      s->bits |= SCIO__SC_CANCEL_CALLED | SCIO__SC_BY_DEADLINE |
                 SCIO__SC_EFFECTIVE;
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

void scio__scope_cancel(scio__scope *s, int by_deadline) {
  if (!(s->bits & SCIO__SC_OPEN) || (s->bits & SCIO__SC_CANCEL_CALLED))
    return;
  s->bits |= SCIO__SC_CANCEL_CALLED;
  if (by_deadline)
    s->bits |= SCIO__SC_BY_DEADLINE;
  scio__loop *l = scio__loop_current();
  if (scio__hnode_in_heap(&l->timers, &s->timer))
    scio__heap_remove(&l->timers, &s->timer);
  recompute(s);
}

void scio__scope_deadline_fired(scio__scope *s) { scio__scope_cancel(s, 1); }

void scio__scope_reparent(scio__scope *s, scio__scope *new_parent) {
  scio__list_remove(&s->sibling);
  scio__list_push_back(&new_parent->children, &s->sibling);
  s->parent = new_parent;
  recompute(s);
}

/* The scope that catches a cancellation delivered to t: the outermost
 * cancelled scope t can see (looking up to and including the nearest
 * shield).  It records the catch only if t itself opened it; a scope of
 * another task catches through that task's own checkpoints. */
void scio__deliver_cancel(scio__task *t) {
  scio__scope *catcher = NULL;
  for (scio__scope *s = t->scope; s; s = s->parent) {
    if (s->bits & SCIO__SC_CANCEL_CALLED)
      catcher = s;
    if (s->bits & SCIO__SC_SHIELD)
      break;
  }
  if (catcher && catcher->owner == t)
    catcher->bits |= SCIO__SC_CAUGHT;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

SCIO_API int scio_scope_open_loc(scio_scope *cs, double deadline, unsigned flags,
                                const char *file, int line) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "scope_open: not inside a task");
  if (deadline != deadline)
    return scio__seterr(SCIO_EINVAL, "scope_open: deadline is NaN");
  if (flags & ~(unsigned)(SCIO_SCOPE_SHIELD | SCIO_SCOPE_FAIL))
    return scio__seterr(SCIO_EINVAL, "scope_open: unknown flags 0x%x", flags);
  unsigned bits = 0;
  if (flags & SCIO_SCOPE_SHIELD)
    bits |= SCIO__SC_SHIELD;
  if (flags & SCIO_SCOPE_FAIL)
    bits |= SCIO__SC_FAIL;
  scio__scope *s = S(cs);
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

/* Close s in its owner t; the caller has checked LIFO order. */
void scio__scope_close_in(scio__task *t, scio__scope *s) {
  if (!scio__list_empty(&s->children))
    scio__panic("scope opened at %s:%d closed with scopes of other tasks "
                "still inside it",
                s->file, s->line);
  scio__task_enter_scope(t, s->parent);
  scio__scope_unlink(s);
}

SCIO_API int scio_scope_close(scio_scope *cs) {
  scio__task *t = scio__task_cur();
  scio__scope *s = S(cs);
  scio__scope_check_close(t, s, "scope_close");
  if (s->bits & SCIO__SC_NURSERY)
    scio__panic("scope_close on the nursery opened at %s:%d; use "
                "scio_nursery_close",
                s->file, s->line);
  scio__scope_close_in(t, s);
  unsigned want = SCIO__SC_FAIL | SCIO__SC_BY_DEADLINE | SCIO__SC_CAUGHT;
  if ((s->bits & want) == want)
    return scio__seterr(SCIO_ETIMEDOUT, "fail_after: deadline expired (scope "
                                        "opened at %s:%d)",
                        s->file, s->line);
  return 0;
}

SCIO_API void scio_scope_cancel(scio_scope *cs) {
  scio__scope *s = S(cs);
  if (s->magic != SCIO__SCOPE_MAGIC)
    return;
  scio__scope_cancel(s, 0);
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
  return (CS(cs)->bits & SCIO__SC_CANCEL_CALLED) != 0;
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
