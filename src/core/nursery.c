/* Nurseries: task groups with an error group, and scio_start.
 *
 * A child that fails records itself in the nursery's failure list and
 * cancels the nursery's scope; closing the nursery waits for every child and
 * for every pending scio_start that targets it, then reports the first
 * failure's code with all of them in the error detail.
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
  nn->failures = NULL;
  nn->failures_tail = &nn->failures;
  nn->magic = SCIO__NURSERY_MAGIC;
  nn->state = SCIO__N_OPEN;
  return 0;
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
  int rc = check_open(nn, "start_soon");
  if (rc < 0)
    return rc;
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "start_soon: fn is NULL");
  return scio__spawn(nn, fn, arg, name, NULL);
}

SCIO_API int scio_start_soon(scio_nursery *n, scio_fn fn, void *arg) {
  return scio_start_soon_named(n, fn, arg, NULL);
}

static void wake_closer_if_done(scio__nursery *nn) {
  if (nn->closer && nn->nchildren == 0 && nn->pending_starts == 0) {
    scio__task *c = nn->closer;
    nn->closer = NULL;
    scio__task_wake(c, 0);
  }
}

/* Record a failure as "name: ERRNAME: detail". */
static void record_failure(scio__nursery *nn, scio__task *t, int rc) {
  const char *name = scio_task_name(t);
  const char *detail = t->errmsg && t->errmsg[0] ? t->errmsg : NULL;
  int len = snprintf(NULL, 0, "%s: %s%s%s", name, scio_err_name(rc),
                     detail ? ": " : "", detail ? detail : "");
  scio__failure *f = scio__malloc(sizeof *f + (size_t)len + 1);
  if (!f) {
    nn->nlost++;
    return;
  }
  snprintf(f->text, (size_t)len + 1, "%s: %s%s%s", name, scio_err_name(rc),
           detail ? ": " : "", detail ? detail : "");
  f->code = rc;
  f->next = NULL;
  *nn->failures_tail = f;
  nn->failures_tail = &f->next;
}

void scio__nursery_child_done(scio__task *t, int rc) {
  scio__nursery *nn = t->nursery;
  int cancelled = rc == SCIO_ECANCELED && scio__task_cancelled(t);
  if (rc < 0 && !cancelled) {
    if (nn->nfailed++ == 0)
      nn->first_error = rc;
    record_failure(nn, t, rc);
    const char *detail = t->errmsg && t->errmsg[0] ? t->errmsg : NULL;
    scio__scope_cancel_because(&nn->scope, SCIO__CANCEL_CHILD,
                               "task %s failed: %s%s%s", scio_task_name(t),
                               scio_err_name(rc), detail ? ": " : "",
                               detail ? detail : "");
  }
  scio__list_remove(&t->nursery_link);
  nn->nchildren--;
  wake_closer_if_done(nn);
}

/* Put the error group into the closing task's detail and free it. */
static void report_failures(scio__nursery *nn) {
  size_t total = 64;
  for (scio__failure *f = nn->failures; f; f = f->next)
    total += strlen(f->text) + 2;
  char *buf = scio__malloc(total);
  if (buf) {
    size_t off = 0;
    if (nn->nfailed == 1 && nn->failures)
      off += (size_t)snprintf(buf, total, "task ");
    else
      off += (size_t)snprintf(buf, total, "%u tasks failed: ", nn->nfailed);
    for (scio__failure *f = nn->failures; f; f = f->next)
      off += (size_t)snprintf(buf + off, total - off, "%s%s",
                              f == nn->failures ? "" : "; ", f->text);
    if (nn->nlost)
      snprintf(buf + off, total - off, "; and %u more (detail lost: out of "
                                       "memory)",
               nn->nlost);
    scio__seterr(nn->first_error, "%s", buf);
    scio__free(buf);
  } else {
    scio__seterr(nn->first_error, "%u tasks failed (detail lost: out of "
                                  "memory)",
                 nn->nfailed);
  }
  scio__failure *f = nn->failures;
  while (f) {
    scio__failure *next = f->next;
    scio__free(f);
    f = next;
  }
  nn->failures = NULL;
  nn->failures_tail = &nn->failures;
}

SCIO_API int scio_nursery_close(scio_nursery *n) {
  scio__task *t = scio__task_cur();
  scio__nursery *nn = N(n);
  if (!t)
    scio__panic("nursery_close outside a task");
  if (nn->magic != SCIO__NURSERY_MAGIC || nn->state != SCIO__N_OPEN)
    scio__panic("nursery_close of a nursery that is not open");
  scio__scope_check_close(t, &nn->scope, "nursery_close");
  int parked = 0;
  while (nn->nchildren > 0 || nn->pending_starts > 0) {
    nn->closer = t;
    scio__park(NULL, NULL, "nursery_close");
    parked = 1;
  }
  if (!parked)
    scio__yield(); /* a checkpoint yields even when there is nothing to do */
  scio__scope *parent = nn->scope.parent;
  scio__scope_close_in(t, &nn->scope);
  nn->state = SCIO__N_CLOSED;
  if (nn->nfailed) {
    report_failures(nn);
    return nn->first_error;
  }
  if (parent && (parent->bits & SCIO__SC_EFFECTIVE)) {
    scio__deliver_cancel(t);
    return SCIO_ECANCELED;
  }
  return 0;
}

SCIO_API void scio_nursery_cancel(scio_nursery *n) {
  scio__nursery *nn = N(n);
  if (nn->magic != SCIO__NURSERY_MAGIC || nn->state != SCIO__N_OPEN)
    return;
  scio__scope_cancel(&nn->scope, 0);
}

/* ------------------------------------------------------------------------ */
/* scio_start: the child runs in a hidden nursery of the caller until it calls
 * scio_started, which moves it (and its scopes) into the target nursery. */

SCIO_API int scio_start(scio_nursery *n, scio_fn fn, void *arg, void **value) {
  scio__nursery *target = N(n);
  int rc = check_open(target, "start");
  if (rc < 0)
    return rc;
  if (!fn)
    return scio__seterr(SCIO_EINVAL, "start: fn is NULL");
  rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  scio_nursery hidden;
  scio__start_state st = {target, N(&hidden), NULL, 0};
  scio_nursery_open_loc(&hidden, __FILE__, __LINE__);
  target->pending_starts++;
  scio__task *child;
  rc = scio__spawn(N(&hidden), fn, arg, NULL, &child);
  if (rc == 0) {
    child->start = &st;
    child->start_flags = SCIO__TS_BY_START;
  }
  int crc = scio_nursery_close(&hidden);
  target->pending_starts--;
  wake_closer_if_done(target);
  if (rc < 0)
    return rc;
  if (st.started) {
    if (value)
      *value = st.value;
    return 0;
  }
  if (crc < 0)
    return crc;
  return scio__seterr(SCIO_ENOTSTARTED,
                      "start: task returned without calling scio_started()");
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
  scio__nursery *from = st->hidden, *to = st->target;
  /* Move the task between nurseries. */
  scio__list_remove(&t->nursery_link);
  from->nchildren--;
  scio__list_push_back(&to->children, &t->nursery_link);
  to->nchildren++;
  t->nursery = to;
  /* Move its scopes: the outermost scope it opened, or the task itself. */
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
  return 0;
}
