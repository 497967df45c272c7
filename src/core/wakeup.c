/* Cross-thread posts to a loop: the only part of the core that other
 * threads may touch.
 *
 * A wake-up record (scio__wakeup) is shared by the loop and every thread
 * that holds a handle to it, and lives until the last of them lets go
 * (a reference count): a thread that posts after the loop has ended finds
 * the record still there, marked closed, and gets SCIO_ECLOSED.  The loop
 * closes it when its run ends (under the mutex: from then on every post is
 * refused) and drops the eventfd's event; the eventfd itself is closed
 * with the record, by the last reference, so a poster (which writes it
 * after unlocking) never writes into a closed or reused fd.
 *
 * One eventfd per loop, written only when the loop may be blocked in its
 * poll: the loop sets `sleeping` (under the mutex) before a blocking poll
 * and clears it after, and a poster writes the fd only if it sees
 * `sleeping` and nobody has written since the loop went to sleep.  While
 * the loop is busy, posts cost a mutex and no syscall: the scheduler looks
 * at the queue (one atomic load) at every poll, which comes at its usual
 * cadence because the eventfd's event is a source.
 *
 * Posted functions run on the loop's scheduler context, not in a task.  A
 * post accepted (0 returned) always runs: at a poll, or at the latest when
 * the loop closes the record at the end of its run. */
#include <event2/event.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct scio__wakeup {
  pthread_mutex_t mu;
  int refs;              /* atomic: the loop's (until it closes) + handles */
  int efd;
  int edge;              /* the eventfd's event is edge-triggered (epoll) */
  int closed;            /* under mu */
  int sleeping;          /* under mu: the loop may be blocked in its poll */
  int signalled;         /* under mu: the eventfd was written this sleep */
  unsigned long writes;  /* atomic: eventfd writes made (for tests) */
  scio__post *head, **tail; /* under mu; head also read atomically */
  struct event *ev;      /* loop thread only */
  scio__loop *loop;      /* loop thread only; NULL once closed */
};

typedef struct at_exit_node {
  struct at_exit_node *next;
  void (*fn)(void *);
  void *arg;
} at_exit_node;

static scio__post *take_all(scio__wakeup *w) {
  pthread_mutex_lock(&w->mu);
  scio__post *p = w->head;
  __atomic_store_n(&w->head, NULL, __ATOMIC_RELAXED);
  w->tail = &w->head;
  pthread_mutex_unlock(&w->mu);
  return p;
}

/* Run a list of posts in order.  A node's fn may free the node (it is
 * embedded in the caller's record), so read it before the call. */
static void run_list(scio__post *p) {
  while (p) {
    scio__post *next = p->next;
    void (*fn)(void *) = p->fn;
    void *arg = p->arg;
    int owned = p->owned;
    if (owned)
      scio__free(p);
    fn(arg);
    p = next;
  }
}

static void drain_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  scio__wakeup *w = arg;
  if (!w->edge) { /* level-triggered: drain, or the poll never blocks */
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v); /* one read takes the whole count */
    (void)n;
  }
  /* Edge-triggered, the count may grow undrained: every write is an edge
   * for epoll, and at most one write per sleep of the loop cannot bring a
   * 64-bit counter near its limit. */
  run_list(take_all(w));
}

int scio__loop_enable_wakeup(scio__loop *l) {
  if (l->wakeup)
    return 0;
  scio__wakeup *w = scio__calloc(1, sizeof *w);
  if (!w)
    return scio__seterr(SCIO_ENOMEM, "wakeup: out of memory");
  w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->efd < 0) {
    int e = errno;
    scio__free(w);
    return scio__seterr(-e, "wakeup: eventfd failed");
  }
  w->edge = scio__loop_edge_triggered(l);
  w->ev = event_new(l->base, w->efd,
                    EV_READ | EV_PERSIST | (w->edge ? EV_ET : 0), drain_cb,
                    w);
  if (!w->ev || event_add(w->ev, NULL) < 0) {
    if (w->ev)
      event_free(w->ev);
    close(w->efd);
    scio__free(w);
    return scio__seterr(SCIO_ENOMEM, "wakeup: cannot register the eventfd");
  }
  /* Adaptive: the sections are a few instructions, and a poster and the
   * loop often meet on them; spinning briefly beats a futex sleep. */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(&w->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  w->tail = &w->head;
  w->refs = 1; /* the loop's */
  w->loop = l;
  l->wakeup = w;
  scio__loop_source_add(l); /* the eventfd's persistent event */
  return 0;
}

scio__wakeup *scio__wakeup_ref(scio__loop *l) {
  if (!l)
    l = scio__loop_current();
  if (!l) {
    scio__seterr(SCIO_EINVAL, "wakeup: no loop in this thread");
    return NULL;
  }
  if (scio__loop_enable_wakeup(l) < 0)
    return NULL;
  __atomic_add_fetch(&l->wakeup->refs, 1, __ATOMIC_RELAXED);
  return l->wakeup;
}

void scio__wakeup_hold(scio__wakeup *w) {
  __atomic_add_fetch(&w->refs, 1, __ATOMIC_RELAXED);
}

void scio__wakeup_unref(scio__wakeup *w) {
  if (!w)
    return;
  if (__atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  close(w->efd);
  pthread_mutex_destroy(&w->mu);
  scio__free(w);
}

unsigned long scio__wakeup_writes(scio__wakeup *w) {
  return __atomic_load_n(&w->writes, __ATOMIC_RELAXED);
}

int scio__wakeup_is_loop(scio__wakeup *w, const scio__loop *l) {
  pthread_mutex_lock(&w->mu);
  int is = w->loop == l && !w->closed;
  pthread_mutex_unlock(&w->mu);
  return is;
}

static int post_node(scio__wakeup *w, scio__post *p) {
  p->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->closed) {
    pthread_mutex_unlock(&w->mu);
    return SCIO_ECLOSED;
  }
  if (w->tail == &w->head) /* the loop reads head without the mutex */
    __atomic_store_n(&w->head, p, __ATOMIC_RELEASE);
  else
    *w->tail = p;
  w->tail = &p->next;
  int wake = w->sleeping && !w->signalled;
  if (wake)
    w->signalled = 1;
  pthread_mutex_unlock(&w->mu);
  if (wake) {
    /* After unlocking, so that the loop, woken at once on another CPU,
     * does not wait for the mutex.  The fd stays open while we hold our
     * reference (it is closed with the record). */
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n; /* EAGAIN only when the counter is saturated: signalled */
    __atomic_add_fetch(&w->writes, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

int scio__wakeup_post_node(scio__wakeup *w, scio__post *p) {
  p->owned = 0;
  return post_node(w, p);
}

int scio__wakeup_post(scio__wakeup *w, void (*fn)(void *), void *arg) {
  scio__post *p = scio__malloc(sizeof *p);
  if (!p)
    return SCIO_ENOMEM;
  p->fn = fn;
  p->arg = arg;
  p->owned = 1;
  int rc = post_node(w, p);
  if (rc < 0)
    scio__free(p);
  return rc;
}

int scio__loop_post(scio__loop *l, void (*fn)(void *), void *arg) {
  if (!l->wakeup)
    return SCIO_ECLOSED;
  return scio__wakeup_post(l->wakeup, fn, arg);
}

/* ---- the loop's side (internal.h) ---- */

void scio__wakeup_poll(scio__loop *l) {
  scio__wakeup *w = l->wakeup;
  if (__atomic_load_n(&w->head, __ATOMIC_ACQUIRE))
    run_list(take_all(w));
}

void scio__loop_run_posts(scio__loop *l) {
  if (l->wakeup)
    run_list(take_all(l->wakeup));
}

int scio__wakeup_sleep_begin(scio__loop *l) {
  scio__wakeup *w = l->wakeup;
  pthread_mutex_lock(&w->mu);
  int pending = w->head != NULL;
  if (!pending) {
    w->sleeping = 1;
    w->signalled = 0;
  }
  pthread_mutex_unlock(&w->mu);
  return pending;
}

void scio__wakeup_sleep_end(scio__loop *l) {
  scio__wakeup *w = l->wakeup;
  pthread_mutex_lock(&w->mu);
  w->sleeping = 0;
  scio__post *p = w->head;
  __atomic_store_n(&w->head, NULL, __ATOMIC_RELAXED);
  w->tail = &w->head;
  pthread_mutex_unlock(&w->mu);
  /* A write made after the poll returned leaves the fd readable: the next
   * poll reads it (drain_cb) and finds nothing more to run. */
  run_list(p);
}

int scio__loop_at_exit(scio__loop *l, void (*fn)(void *), void *arg) {
  at_exit_node *n = scio__malloc(sizeof *n);
  if (!n)
    return scio__seterr(SCIO_ENOMEM, "at_exit: out of memory");
  n->fn = fn;
  n->arg = arg;
  n->next = l->at_exit; /* last registered runs first */
  l->at_exit = n;
  return 0;
}

void scio__loop_finish(scio__loop *l) {
  while (l->at_exit) {
    at_exit_node *n = l->at_exit;
    l->at_exit = n->next;
    void (*fn)(void *) = n->fn;
    void *arg = n->arg;
    scio__free(n);
    fn(arg);
  }
  scio__wakeup *w = l->wakeup;
  if (!w)
    return;
  /* Close: from now on every post is refused, so this is the last list. */
  pthread_mutex_lock(&w->mu);
  w->closed = 1;
  scio__post *p = w->head;
  __atomic_store_n(&w->head, NULL, __ATOMIC_RELAXED);
  w->tail = &w->head;
  pthread_mutex_unlock(&w->mu);
  run_list(p);
}

void scio__wakeup_free(scio__loop *l) {
  while (l->at_exit) { /* an error path before the run: nothing ran */
    at_exit_node *n = l->at_exit;
    l->at_exit = n->next;
    scio__free(n);
  }
  scio__wakeup *w = l->wakeup;
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  w->closed = 1;
  scio__post *p = w->head;
  __atomic_store_n(&w->head, NULL, __ATOMIC_RELAXED);
  w->tail = &w->head;
  event_free(w->ev); /* the fd itself lives as long as the record */
  w->ev = NULL;
  w->loop = NULL;
  pthread_mutex_unlock(&w->mu);
  scio__loop_source_remove(l);
  l->wakeup = NULL;
  run_list(p); /* empty after scio__loop_finish */
  scio__wakeup_unref(w);
}
