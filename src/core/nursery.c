/* Nurseries: task groups with an error group, and scio_start.
 *
 * A child that fails records itself in the nursery's failure list and
 * cancels the nursery's scope; closing the nursery waits for every child and
 * for every pending scio_start that targets it, then reports the first
 * failure's code with all of them in the error detail.  The records survive
 * the close as the closing task's error group (scio_failure_get), until the
 * task reports another group or exits.
 *
 * A child (or the body) that ends with SCIO_ECANCELED while its scope is
 * cancelled is not a failure: its cancellation propagates out of the
 * nursery, like Trio's Cancelled, and the nursery's scope catches it unless
 * an enclosing cancellation is visible there, in which case close returns
 * SCIO_ECANCELED to be caught further out.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

_Static_assert(sizeof(scio__nursery) <= sizeof(scio_nursery),
               "scio_nursery storage too small");
_Static_assert(_Alignof(scio__nursery) <= _Alignof(scio_nursery),
               "scio_nursery storage misaligned");

static inline scio__nursery *N(scio_nursery *n) { return (scio__nursery *)n; }

struct scio__start_state {
  scio__nursery *target;
  scio__nursery *hidden;
  void *value;
  int started;
};

struct scio__group {
  scio__failure *failures;
  size_t count;
  char text[]; /* the error detail the group was reported with */
};

/* What a task that returns SCIO_ECANCELED outside any cancelled scope most
 * likely did: it let its own move_on scope's result escape. */
static const char bogus_cancel_msg[] =
    "returned SCIO_ECANCELED but no enclosing scope was cancelled: map your "
    "own scope's result with scio_scope_close_with";

SCIO_API int scio_nursery_open_loc(scio_nursery *n, const char *file, int line) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "nursery_open: not inside a task");
  scio__nursery *nn = N(n);
  scio__scope_init_open(&nn->scope, t, t->scope, INFINITY, SCIO__SC_NURSERY,
                        file, line);
  scio__task_enter_scope(t, &nn->scope);
  scio__list_init(&nn->children);
  nn->nchildren = 0;
  nn->pending_starts = 0;
  nn->closer = NULL;
  nn->first_error = 0;
  nn->nfailed = 0;
  nn->nlost = 0;
  nn->ncancelled = 0;
  nn->failures = NULL;
  nn->failures_tail = &nn->failures;
  nn->magic = SCIO__NURSERY_MAGIC;
  nn->state = SCIO__N_OPEN;
  return 0;
}

SCIO_API scio_scope *scio_nursery_scope(scio_nursery *n) {
  scio__nursery *nn = N(n);
  if (!n || nn->magic != SCIO__NURSERY_MAGIC)
    return NULL;
  /* The scope is the nursery's first member, with room for a scio_scope
   * behind it (the storage asserts above and in scope.c). */
  return (scio_scope *)&nn->scope;
}

static int check_open(scio__nursery *nn, const char *what) {
  if (!scio__task_cur())
    return scio__seterr(SCIO_EINVAL, "%s: not inside a task", what);
  if (nn->magic != SCIO__NURSERY_MAGIC)
    return scio__seterr(SCIO_ECLOSED, "%s: not an open nursery", what);
  if (nn->state != SCIO__N_OPEN)
    return scio__seterr(SCIO_ECLOSED,
                        "%s: the nursery opened at %s:%d is already closed",
                        what, nn->scope.file, nn->scope.line);
  return 0;
}

SCIO_API int scio_start_soon_named(scio_nursery *n, scio_fn fn, void *arg,
                                   const char *name) {
  scio__nursery *nn = N(n);
  scio__loop *l = scio__loop_current();
  /* check_open's tests, inline: this is the spawn hot path. */
  if (__builtin_expect(l && l->current && nn->magic == SCIO__NURSERY_MAGIC &&
                           nn->state == SCIO__N_OPEN && fn,
                       1))
    return scio__spawn(l, nn, fn, arg, name, NULL);
  int rc = check_open(nn, "start_soon");
  if (rc < 0)
    return rc;
  return scio__seterr(SCIO_EINVAL, "start_soon: fn is NULL");
}

/* The function behind the macro of the same name (core.h), for callers that
 * cannot use the macro: the name is then resolved from the symbol. */
SCIO_API int(scio_start_soon)(scio_nursery *n, scio_fn fn, void *arg) {
  return scio_start_soon_named(n, fn, arg, NULL);
}

static void wake_closer_if_done(scio__nursery *nn) {
  if (nn->closer && nn->nchildren == 0 && nn->pending_starts == 0) {
    scio__task *c = nn->closer;
    nn->closer = NULL;
    scio__task_wake(c, 0);
  }
}

/* ------------------------------------------------------------------------ */
/* The error group                                                           */

/* Append a failure to nn's group.  `suffix` follows the name ("" for a
 * child, " (body)" for the nursery's body).  A record that cannot be
 * allocated is counted as lost; the code is kept either way. */
static void record_failure(scio__nursery *nn, const char *name,
                           const char *suffix, int rc, const char *message,
                           int body) {
  if (nn->nfailed++ == 0)
    nn->first_error = rc;
  size_t nlen = strlen(name) + strlen(suffix), mlen = strlen(message);
  scio__failure *f = scio__malloc(sizeof *f + nlen + mlen + 2);
  if (!f) {
    nn->nlost++;
    return;
  }
  snprintf(f->name, nlen + 1, "%s%s", name, suffix);
  f->message = f->name + nlen + 1;
  memcpy(f->name + nlen + 1, message, mlen + 1);
  f->code = rc;
  f->body = body;
  f->next = NULL;
  *nn->failures_tail = f;
  nn->failures_tail = &f->next;
}

static const char *task_detail(const scio__task *t) {
  return t->errmsg ? t->errmsg : "";
}

void scio__nursery_child_done(scio__task *t, int rc) {
  scio__nursery *nn = t->nursery;
  int cancelled = rc == SCIO_ECANCELED && scio__task_cancelled(t);
  if (rc < 0 && !cancelled) {
    const char *detail =
        rc == SCIO_ECANCELED ? bogus_cancel_msg : task_detail(t);
    record_failure(nn, scio_task_name(t), "", rc, detail, 0);
    scio__scope_cancel_because(&nn->scope, SCIO__CANCEL_CHILD,
                               "task %s failed: %s%s%s", scio_task_name(t),
                               scio_err_name(rc),
                               detail && detail[0] ? ": " : "",
                               detail ? detail : "");
  } else if (cancelled) {
    nn->ncancelled++; /* propagates out of the close (propagate_cancel) */
  }
  scio__list_remove(&t->nursery_link);
  nn->nchildren--;
  wake_closer_if_done(nn);
}

static void free_failures(scio__failure *f) {
  while (f) {
    scio__failure *next = f->next;
    scio__free(f);
    f = next;
  }
}

void scio__task_free_group(scio__task *t) {
  if (!t->group)
    return;
  free_failures(t->group->failures);
  scio__free(t->group);
  t->group = NULL;
}

/* The flattened text of the group: "task a: EIO: detail" for one failure,
 * "2 tasks failed: a: EIO: detail; b: EPERM" for more.  With buf NULL,
 * only the length (without the terminator) is computed. */
static size_t group_text(const scio__nursery *nn, char *buf, size_t cap) {
  size_t off = 0;
#define PUT(...)                                                              \
  off += (size_t)snprintf(buf ? buf + off : NULL, buf ? cap - off : 0,        \
                          __VA_ARGS__)
  if (nn->nfailed == 1 && nn->failures)
    PUT("task ");
  else
    PUT("%u tasks failed: ", nn->nfailed);
  for (const scio__failure *f = nn->failures; f; f = f->next)
    PUT("%s%s: %s%s%s", f == nn->failures ? "" : "; ", f->name,
        scio_err_name(f->code), f->message[0] ? ": " : "", f->message);
  if (nn->nlost)
    PUT("; and %u more (detail lost: out of memory)", nn->nlost);
#undef PUT
  return off;
}

/* Hand the nursery's failures to the closing task t: they become its
 * error group and its error detail.  When the only failure is the body's
 * own (scio_nursery_close_with) and it has a detail, that detail is kept
 * as it is rather than wrapped in a one-entry list. */
static void report_failures(scio__task *t, scio__nursery *nn) {
  const scio__failure *only = nn->nfailed == 1 ? nn->failures : NULL;
  int keep_body = only && only->body && only->message[0];
  size_t len = keep_body ? strlen(only->message) : group_text(nn, NULL, 0);
  scio__group *g = scio__malloc(sizeof *g + len + 1);
  if (!g) {
    scio__seterr(nn->first_error,
                 "%u tasks failed (detail lost: out of memory)", nn->nfailed);
    free_failures(nn->failures);
  } else {
    if (keep_body)
      memcpy(g->text, only->message, len + 1);
    else
      group_text(nn, g->text, len + 1);
    g->failures = nn->failures;
    g->count = 0;
    for (const scio__failure *f = g->failures; f; f = f->next)
      g->count++;
    scio__task_free_group(t);
    t->group = g;
    scio__seterr(nn->first_error, "%s", g->text);
  }
  nn->failures = NULL;
  nn->failures_tail = &nn->failures;
}

/* The current task's group, if its error detail is still the one the
 * group was reported with (a later error replaces the detail, and with it
 * what scio_failures_count reports). */
static const scio__group *current_group(void) {
  scio__task *t = scio__task_cur();
  if (!t || !t->group)
    return NULL;
  return strcmp(task_detail(t), t->group->text) == 0 ? t->group : NULL;
}

SCIO_API size_t scio_failures_count(void) {
  const scio__group *g = current_group();
  return g ? g->count : 0;
}

SCIO_API int scio_failure_get(size_t i, scio_failure_info *out) {
  /* No error detail on SCIO_EINVAL: it would replace the group. */
  if (!out)
    return SCIO_EINVAL;
  memset(out, 0, sizeof *out);
  const scio__group *g = current_group();
  if (!g || i >= g->count)
    return SCIO_EINVAL;
  const scio__failure *f = g->failures;
  while (i--)
    f = f->next;
  out->task = f->name;
  out->code = f->code;
  out->message = f->message;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                   */

/* The body's own result, given to scio_nursery_close_with: a failure joins
 * the group and cancels the children (as an exception leaving a Trio
 * nursery block does); the body's cancellation propagates like a child's. */
static void add_body_result(scio__task *t, scio__nursery *nn, int rc) {
  if (rc >= 0)
    return;
  if (rc == SCIO_ECANCELED && scio__task_cancelled(t)) {
    nn->ncancelled++;
    return;
  }
  const char *detail =
      rc == SCIO_ECANCELED ? bogus_cancel_msg : task_detail(t);
  record_failure(nn, scio_task_name(t), " (body)", rc, detail, 1);
  scio__scope_cancel_because(&nn->scope, SCIO__CANCEL_CHILD,
                             "the body of task %s failed: %s%s%s",
                             scio_task_name(t), scio_err_name(rc),
                             detail && detail[0] ? ": " : "",
                             detail ? detail : "");
}

/* Close the nursery's scope, deciding who catches (scope.c's rule, the
 * same as for any scope): a cancellation left the nursery if a child or the
 * body ended cancelled, or a checkpoint of the body inside it returned
 * SCIO_ECANCELED.  The nursery's scope catches it unless an enclosing
 * cancellation is visible there; then it goes on as SCIO_ECANCELED, with
 * the reason in scio_errmsg().  With nothing propagated the close was a
 * schedule point, not a cancellation point: 0. */
static int close_scope(scio__task *t, scio__nursery *nn) {
  scio__scope *s = &nn->scope;
  if (nn->ncancelled)
    s->bits |= SCIO__SC_DELIVERED;
  int delivered = (s->bits & SCIO__SC_DELIVERED) != 0;
  scio__scope_close_in(t, s);
  if (!delivered || (s->bits & SCIO__SC_CAUGHT))
    return 0;
  scio__deliver_cancel(t); /* t's scope is now the enclosing one */
  return SCIO_ECANCELED;
}

static int close_nursery(scio_nursery *n, int body_rc) {
  scio__task *t = scio__task_cur();
  scio__nursery *nn = N(n);
  if (!t)
    scio__panic("nursery_close outside a task");
  if (nn->magic != SCIO__NURSERY_MAGIC || nn->state != SCIO__N_OPEN)
    scio__panic("nursery_close of a nursery that is not open");
  scio__scope_check_close(t, &nn->scope, "nursery_close");
  add_body_result(t, nn, body_rc);
  /* Trio's __aexit__: the wait is not cut short by cancellation (the
   * children see it), and with nothing to wait for the close is a
   * cancel-shielded checkpoint. */
  int parked = 0;
  while (nn->nchildren > 0 || nn->pending_starts > 0) {
    nn->closer = t;
    scio__park(NULL, NULL, "nursery_close");
    parked = 1;
  }
  if (!parked)
    scio__yield();
  int rc = close_scope(t, nn);
  nn->state = SCIO__N_CLOSED;
  if (nn->nfailed) {
    report_failures(t, nn);
    return nn->first_error;
  }
  return rc;
}

SCIO_API int scio_nursery_close(scio_nursery *n) { return close_nursery(n, 0); }

SCIO_API int scio_nursery_close_with(scio_nursery *n, int body_rc) {
  return close_nursery(n, body_rc);
}

SCIO_API void scio_nursery_cancel(scio_nursery *n) {
  scio__nursery *nn = N(n);
  if (nn->magic != SCIO__NURSERY_MAGIC || nn->state != SCIO__N_OPEN)
    return;
  scio__scope_cancel(&nn->scope, 0);
}

/* ------------------------------------------------------------------------ */
/* scio_start: the child runs in a hidden nursery of the caller until it calls
 * scio_started, which moves it (and its scopes) into the target nursery.
 * As in Trio, the caller's cancellation does not prevent the spawn: the
 * child starts under the caller's scopes and meets the cancellation at its
 * first checkpoint, and scio_started after that moves nothing. */

SCIO_API int scio_start_named(scio_nursery *n, scio_fn fn, void *arg,
                              void **value, const char *name) {
  if (value)
    *value = NULL;
  scio__nursery *target = N(n);
  int rc = check_open(target, "start");
  if (rc < 0)
    return rc;
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "start: fn is NULL");
  scio_nursery hidden;
  scio__start_state st = {target, N(&hidden), NULL, 0};
  scio_nursery_open_loc(&hidden, __FILE__, __LINE__);
  target->pending_starts++;
  scio__task *child;
  rc = scio__spawn(scio__loop_current(), N(&hidden), fn, arg, name, &child);
  if (rc == 0) {
    child->start = &st;
    child->start_flags = SCIO__TS_BY_START;
  }
  int crc = scio_nursery_close(&hidden);
  target->pending_starts--;
  wake_closer_if_done(target);
  if (rc < 0)
    return rc;
  if (crc < 0)
    return crc; /* failed, or cancelled, while still under the caller */
  if (st.started) {
    if (value)
      *value = st.value;
    return 0;
  }
  if (name)
    return scio__seterr(SCIO_ENOTSTARTED, "start: task %s returned without "
                                          "calling scio_started()",
                        name);
  return scio__seterr(SCIO_ENOTSTARTED,
                      "start: task returned without calling scio_started()");
}

SCIO_API int(scio_start)(scio_nursery *n, scio_fn fn, void *arg,
                         void **value) {
  return scio_start_named(n, fn, arg, value, NULL);
}

/* Move the started task t, and the scopes it has opened, from the hidden
 * nursery into the target. */
static void move_to_target(scio__task *t, scio__nursery *from,
                           scio__nursery *to) {
  scio__list_remove(&t->nursery_link);
  from->nchildren--;
  scio__list_push_back(&to->children, &t->nursery_link);
  to->nchildren++;
  t->nursery = to;
  if (t->scope == t->base_scope) {
    scio__task_enter_scope(t, &to->scope);
  } else {
    scio__scope *top = t->scope;
    while (top->parent != t->base_scope)
      top = top->parent;
    scio__scope_reparent(top, &to->scope);
  }
  t->base_scope = &to->scope;
  wake_closer_if_done(from);
}

SCIO_API int scio_started(void *value) {
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__seterr(SCIO_EINVAL, "started: not inside a task");
  if (!(t->start_flags & SCIO__TS_BY_START))
    return 0;
  if (t->start_flags & SCIO__TS_STARTED)
    return scio__seterr(SCIO_EINVAL, "started: called twice");
  scio__start_state *st = t->start;
  t->start_flags |= SCIO__TS_STARTED;
  t->start = NULL;
  st->started = 1;
  st->value = value;
  /* Trio: once the caller is cancelled, started() moves nothing.  The
   * child stays under the caller's cancelled scopes, where its
   * cancellation can be caught, and scio_start reports what it does. */
  if (st->hidden->scope.bits & SCIO__SC_EFFECTIVE)
    return 0;
  move_to_target(t, st->hidden, st->target);
  return 0;
}
