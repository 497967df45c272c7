/* Private: what the layers above the core (src/sync, src/streams, src/net,
 * src/tls, src/thread) may use.  docs/internals.md explains each part.
 *
 * The core's structures stay behind this line: a layer holds a task or a
 * loop only as an opaque pointer and goes through the calls below.  Core
 * files include "internal.h", which includes this header and adds the
 * structures, the scheduler and the inline versions of the hot calls
 * (scio__task_wake, scio__task_cur, ...); a layer gets the same functions
 * out of line (inlined again by link-time optimisation).  A file includes
 * one of the two headers, not both.
 */
#ifndef SCIO_CORE_LAYER_H
#define SCIO_CORE_LAYER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "scio/core.h"

#include "list.h"

struct event_base;

typedef struct scio__loop scio__loop;
typedef struct scio_task scio__task;

/* Called when cancellation is delivered to a task blocked in an abortable
 * wait: it must undo whatever registered the task (unlink it from a wait
 * queue, delete an event).  It runs on the canceller's stack; the task is
 * then resumed with SCIO_ECANCELED, unless the function refused with
 * scio__abort_refuse. */
typedef void (*scio__abort_fn)(scio__task *t, void *ctx);

/* ---- allocation (alloc.c): through scio_set_allocator ---- */
void *scio__malloc(size_t n);
void *scio__calloc(size_t n, size_t size);
void *scio__realloc(void *p, size_t n);
void scio__free(void *p);

/* ---- errors (error.c) ---- */
/* Set the current task's (or thread's) error detail; returns `code`. */
int scio__seterr(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int scio__vseterr(int code, const char *fmt, va_list ap);

/* Abort the process with a message (misuse C cannot report). */
__attribute__((noreturn, format(printf, 1, 2))) void
scio__panic(const char *fmt, ...);

/* ---- tasks: current, park, wake, cancellation ---- */
/* The loop running in this thread, or NULL outside scio_run. */
#ifndef SCIO_CORE_INTERNAL_H /* the core has them inline */
scio__loop *scio__loop_current(void);
#endif
/* The running task, or NULL (outside scio_run, or on the scheduler). */
#ifndef SCIO_CORE_INTERNAL_H /* the core has them inline */
scio__task *scio__task_cur(void);
#endif
/* Block the current task until woken.  With abort_fn, the wait is abortable
 * and cancellation resumes the task with SCIO_ECANCELED (after calling
 * abort_fn); without, cancellation waits.  `what` names the wait in dumps.
 * If the task is already cancelled and the wait is abortable, abort_fn runs
 * and SCIO_ECANCELED is returned without blocking.  Returns the wake value. */
int scio__park(scio__abort_fn abort_fn, void *abort_ctx, const char *what);
/* Make a parked task runnable; its scio__park returns `value`.  Only for a
 * task that is parked (anything else panics); it does not switch. */
#ifndef SCIO_CORE_INTERNAL_H /* the core has them inline */
void scio__task_wake(scio__task *t, int value);
#endif
/* Put the current task at the back of the ready queue and run others;
 * 1 if another task ran meanwhile. */
int scio__yield(void);
/* The task's number, unique within the run: unlike its address (stacks are
 * recycled), it tells a task from a later one. */
#ifndef SCIO_CORE_INTERNAL_H /* the core has them inline */
uint64_t scio__task_id(const scio__task *t);
#endif
/* Whether t is cancelled as seen from its innermost scope. */
#ifndef SCIO_CORE_INTERNAL_H /* the core has them inline */
int scio__task_cancelled(const scio__task *t);
#endif
/* Inside an abort function, for a wait that cannot be undone (a worker
 * thread that runs on): refuse the abort, like Trio's Abort.FAILED.  The
 * task stays parked, no longer abortable, until its waker wakes it with
 * its result; no cancellation is delivered, so it stays pending and the
 * task's next checkpoint reports it.  The abort function may have acted
 * (flagged its operation as cancelled) before refusing. */
void scio__abort_refuse(scio__task *t);
/* Every checkpoint that returns SCIO_ECANCELED calls this first: it records
 * that a cancellation is on its way out of the task's innermost scope (who
 * catches it is decided as scopes close) and sets scio_errmsg() to the
 * reason of the scope that caused it.  (scio_checkpoint_if_cancelled is
 * both steps for the current task.) */
void scio__deliver_cancel(scio__task *t);
/* The mark scio__deliver_cancel leaves on t's innermost scope: save it
 * before running code whose cancellation is consumed on the spot (its
 * SCIO_ECANCELED is handed to someone else, or replaced by a success that
 * leaves the cancellation pending), restore it after.  A cancellation that
 * did not leave the task's code then does not make that scope catch at
 * close (scio_scope_cancelled_caught); the next checkpoint delivers it
 * again.  t's innermost scope must be the same at both calls; t NULL
 * (outside a run): nothing to save, nothing done. */
unsigned scio__cancel_mark_save(const scio__task *t);
void scio__cancel_mark_restore(scio__task *t, unsigned saved);

/* ---- the fd contract (fdwait.c) ----
 * Every fd that scio code waits on is registered with the loop once (on
 * epoll: one persistent edge-triggered event) and MUST be closed through
 * scio__fd_close (or handed back with scio__fd_forget first): a registration
 * that outlives its fd would be inherited by the next fd with that number. */
enum { SCIO__FD_READ = 1, SCIO__FD_WRITE = 2 };
#define SCIO__FD_NOPARK 1
/* Wait until fd is ready for dir, after the caller's syscall returned EAGAIN
 * (or a stream socket's read came back short: its queue was drained).
 * Returns 0 when the task parked and was woken (it yielded: the checkpoint
 * rule is met); SCIO__FD_NOPARK when it returned at once on an edge
 * remembered while nobody waited (it did NOT yield); < 0 on error, including
 * SCIO_ECANCELED (abortable wait), SCIO_ECLOSED (fd closed meanwhile),
 * SCIO_EBUSY (another task waits in that direction), SCIO_ENOMEM.
 * A spurious wake-up is possible: retry the syscall in a loop.  No syscall. */
int scio__fd_wait(int fd, int dir);
/* scio__fd_wait for a caller that trusts the next edge but not for ever (a
 * socket whose queue TCP_INQ reported drained, while a reset may already be
 * pending with no edge to come: net/socket.c).  If neither an edge nor
 * anything else wakes the task for SCIO__FD_BOUND to twice that many
 * seconds, it returns SCIO__FD_EXPIRED (the task parked: it yielded), and
 * the caller tries its syscall again.  The bound costs no timer per wait:
 * one sweep per loop every SCIO__FD_BOUND seconds ends the waits that are
 * due, on the scheduler's clock (so the autojump clock jumps to it).
 * Otherwise as scio__fd_wait.  No syscall. */
#define SCIO__FD_EXPIRED 2
#define SCIO__FD_BOUND 0.05
int scio__fd_wait_bounded(int fd, int dir);
/* Forget fd's registration (waking its waiters with SCIO_ECLOSED) and
 * close(2) it, in one call.  Returns 0 or the negative errno of close
 * (EINTR counts as closed: 0). */
int scio__fd_close(int fd);
/* Forget without closing (handing an fd back to its owner); waiters are
 * woken with wake_value. */
void scio__fd_forget(scio__loop *l, int fd, int wake_value);

/* ---- event sources (loop.c) ----
 * Every libevent event that scio code adds to the loop's event_base (fd
 * events, c-ares sockets and timers, signals, wake-ups) is counted through
 * these two calls, so the scheduler's I/O polling cadence sees it: with no
 * source counted the scheduler never polls while tasks are runnable.  Call
 * add when the event becomes pending (event_add), remove when it stops
 * being pending (event_del, or it fired and is not persistent). */
void scio__loop_source_add(scio__loop *l);
void scio__loop_source_remove(scio__loop *l);
/* The loop's event_base, to create events on (count them as above). */
struct event_base *scio__loop_base(scio__loop *l);
/* Whether fd waits are edge-triggered (epoll) or level-triggered (poll,
 * select): a layer that wants to skip a syscall must know which. */
int scio__loop_edge_triggered(scio__loop *l);
/* Whether the edge-triggered registrations also watch for the peer's end
 * of stream (epoll's EPOLLRDHUP, libevent's EV_CLOSED), so that
 * scio__fd_eof_seen can answer.  0 on level-triggered backends. */
int scio__loop_sees_eof(scio__loop *l);
/* 1 once fd's registration has reported that the peer shut down its side
 * (a stream socket's FIN is queued), else 0; sticky until the fd is
 * forgotten.  What it is for: after a short read on an edge-triggered
 * loop, a FIN that arrived with the bytes was reported by the same edge,
 * and no edge will come for it; if this says 0, a FIN that is queued has
 * an edge still to come, so waiting is safe.  Only meaningful where
 * scio__loop_sees_eof.  No syscall. */
int scio__fd_eof_seen(int fd);

/* ---- cross-thread wakeup (wakeup.c) ----
 * A thread other than the loop's reaches the loop only through a wake-up
 * handle: a reference-counted record that outlives the loop for as long as
 * someone holds it.  Posted functions run on the loop's scheduler context
 * (not in a task) in the order posted; a post that was accepted always
 * runs, at the latest when the loop's run ends (after its last task and
 * its at-exit functions).  Posts share one eventfd per loop, written only
 * while the loop may be blocked in its poll. */
typedef struct scio__wakeup scio__wakeup;
/* A post embedded in the poster's own record (no allocation per post).
 * Set fn and arg; it must stay valid until fn has been called. */
typedef struct scio__post {
  struct scio__post *next;
  void (*fn)(void *);
  void *arg;
  int owned; /* internal: 0 for a caller's node */
} scio__post;
/* From the loop's own thread (l NULL: the current loop): a handle on l's
 * wake-up record, creating it on first use (the eventfd is then a source).
 * NULL on error (SCIO_ENOMEM, -errno of eventfd; errmsg set). */
scio__wakeup *scio__wakeup_ref(scio__loop *l);
/* Any thread holding a handle: one more reference to it. */
void scio__wakeup_hold(scio__wakeup *h);
/* Any thread: let go of a reference (the last one frees the record and
 * closes its eventfd: a handle held after the run keeps one fd open).
 * NULL is ignored. */
void scio__wakeup_unref(scio__wakeup *h);
/* Any thread holding a handle: run fn(arg) on the loop.  Returns 0,
 * SCIO_ENOMEM, or SCIO_ECLOSED once the loop's run has ended (fn will
 * never run).  Never touches freed memory, whenever the loop ends. */
int scio__wakeup_post(scio__wakeup *h, void (*fn)(void *), void *arg);
/* The same with the caller's node: no allocation; SCIO_ECLOSED or 0. */
int scio__wakeup_post_node(scio__wakeup *h, scio__post *node);
/* Any thread holding a handle: whether it is the handle of loop l (which
 * must be alive, e.g. the caller's own loop).  0 once the loop ended. */
int scio__wakeup_is_loop(scio__wakeup *h, const scio__loop *l);
/* The old interface, kept for the loop's own thread (or any code that knows
 * the loop is alive): enable, then post through the loop's own record. */
int scio__loop_enable_wakeup(scio__loop *l);
int scio__loop_post(scio__loop *l, void (*fn)(void *), void *arg);
/* From the loop thread: run the posts queued now (a layer that must settle
 * its threads' posts itself, in an at-exit function). */
void scio__loop_run_posts(scio__loop *l);
/* From the loop thread: call fn(arg) when the run ends, after the last task
 * and before the wake-up record closes (last registered runs first).  For
 * a layer that must join its threads.  0 or SCIO_ENOMEM. */
int scio__loop_at_exit(scio__loop *l, void (*fn)(void *), void *arg);

#endif
