/* Task names and scio_dump_tasks: the tree of tasks and nurseries with what
 * each task waits on and the deadlines that apply to it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

SCIO_API const char *scio_task_name(scio_task *t) {
  if (!t)
    return "(none)";
  if (t->name)
    return t->name;
  if (!t->namebuf[0]) {
    Dl_info info;
    void *sym = NULL;
    memcpy(&sym, &t->fn, sizeof sym < sizeof t->fn ? sizeof sym : sizeof t->fn);
    if (dladdr(sym, &info) && info.dli_sname)
      snprintf(t->namebuf, sizeof t->namebuf, "%s", info.dli_sname);
    else
      snprintf(t->namebuf, sizeof t->namebuf, "task@%p", sym);
  }
  return t->namebuf;
}

static const char *state_name(const scio__task *t) {
  switch (t->state) {
  case SCIO__T_READY:
    return "runnable";
  case SCIO__T_RUNNING:
    return "running";
  case SCIO__T_BLOCKED:
    return t->waiting_on ? t->waiting_on : "blocked";
  default:
    return "done";
  }
}

static void indent(FILE *out, int depth) {
  for (int i = 0; i < depth; i++)
    fputs("  ", out);
}

static void dump_task(FILE *out, scio__task *t, int depth, double now);

/* The scopes task t opened below `s`, printed as a path, with nurseries
 * expanded into their children. */
static void dump_scopes(FILE *out, scio__task *t, scio__scope *s, int depth,
                        double now) {
  scio__list_each(n, &s->children) {
    scio__scope *c = scio__container_of(n, scio__scope, sibling);
    if (c->owner != t)
      continue;
    indent(out, depth);
    if (c->bits & SCIO__SC_NURSERY) {
      scio__nursery *nn = (scio__nursery *)c;
      fprintf(out, "nursery %s:%d (%zu children%s)\n", c->file, c->line,
              nn->nchildren, (c->bits & SCIO__SC_EFFECTIVE) ? ", cancelled"
                                                            : "");
      scio__list_each(m, &nn->children) dump_task(
          out, scio__container_of(m, scio__task, nursery_link), depth + 1,
          now);
    } else {
      if (c->line)
        fprintf(out, "scope %s:%d", c->file, c->line);
      else
        fprintf(out, "%s", c->file); /* an internal scope, e.g. "sleep" */
      if (c->timer.key < INFINITY)
        fprintf(out, " deadline %+.3fs", c->timer.key - now);
      if (c->bits & SCIO__SC_SHIELD)
        fputs(" shielded", out);
      if (c->bits & SCIO__SC_CANCEL_CALLED)
        fputs(" cancelled", out);
      fputc('\n', out);
    }
    dump_scopes(out, t, c, depth + 1, now);
  }
}

static void dump_task(FILE *out, scio__task *t, int depth, double now) {
  indent(out, depth);
  fprintf(out, "task %s #%llu [%s]\n", scio_task_name(t),
          (unsigned long long)t->id, state_name(t));
  dump_scopes(out, t, t->base_scope, depth + 1, now);
}

SCIO_API void scio_dump_tasks(FILE *out) {
  scio__loop *l = scio__loop_current();
  if (!l) {
    fputs("scio: no run in this thread\n", out);
    return;
  }
  double now = scio__clock_read(l);
  fprintf(out, "scio run: backend %s, %zu tasks, %zu runnable, now %.6f\n",
          l->backend, l->ntasks, l->nready, now);
  if (l->root)
    dump_task(out, l->root, 1, now);
}
