/* Waiting for fd readiness: the fd contract of layer.h, and the public
 * scio_wait_readable / scio_wait_writable built on it.
 *
 * On a backend with edge-triggered notification (epoll), each fd is
 * registered once with a persistent EV_ET event; an edge that arrives while
 * nobody waits is remembered, so the next wait returns at once
 * (SCIO__FD_NOPARK) and the caller retries its syscall.  Waiting then costs
 * no syscall at all.  The price is that the registration outlives a single
 * wait: an fd closed without scio__fd_forget would leave it to the next fd
 * with the same number, which the kernel no longer watches (epoll drops a
 * closed file silently), so that fd would never wake.  Layer code therefore
 * closes through scio__fd_close; the public path, which serves fds scio does
 * not own, checks the registration against the fd's identity when it is
 * about to park (see validate_public).
 *
 * On level-triggered backends (poll, select) a persistent event would fire
 * for as long as the fd stays readable, so an event is added only while a
 * task waits and removed when it wakes: nothing outlives the wait, and a
 * reused number is harmless.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* A bounded wait (scio__fd_wait_bounded) in one direction: linked into the
 * loop's fd_bounded list, in the order the waits began, exactly while its
 * task is parked in it. */
typedef struct fdbound {
  scio__node node;
  unsigned gen;      /* the loop's fd_bgen when the wait began */
  unsigned char dir; /* its index in scio__fdrec.bound */
} fdbound;

struct scio__fdrec {
  /* What every wait and every edge touches comes first, so that a wait in
   * the read direction stays within the record's first 48 bytes (a server
   * with many connections finds these records cold). */
  scio__task *waiter[2];  /* [0] read, [1] write */
  unsigned char edge[2];  /* an edge seen while nobody waited */
  unsigned char eof_seen; /* EV_CLOSED was reported (scio__fd_eof_seen) */
  short ev_dirs;          /* EV_READ / EV_WRITE that ev watches */
  int fd;
  fdbound bound[2];       /* bounded waits, [0] read, [1] write */
  struct event *ev;       /* edge-triggered: one persistent event */
  struct event *lev[2];   /* level-triggered: one per direction */
  unsigned char has_id;   /* dev/ino below were read (public path) */
  dev_t dev;              /* the file the registration was made for */
  ino_t ino;
};

typedef struct fdwait {
  scio__fdrec *rec;
  int dir; /* 0 read, 1 write */
} fdwait;

/* The task waiting on r in direction i, which stops waiting there (NULL
 * if none): every way a wait ends goes through here, so a bounded wait
 * leaves the sweep's list exactly when its task is woken. */
static scio__task *take_waiter(scio__fdrec *r, int i) {
  scio__task *t = r->waiter[i];
  r->waiter[i] = NULL;
  if (scio__node_linked(&r->bound[i].node))
    scio__list_remove(&r->bound[i].node);
  return t;
}

static void et_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  scio__fdrec *r = arg;
  if (what & EV_CLOSED)
    r->eof_seen = 1;
  for (int i = 0; i < 2; i++) {
    if (!(what & (i ? EV_WRITE : EV_READ)))
      continue;
    if (r->waiter[i])
      scio__task_wake(take_waiter(r, i), 0);
    else
      r->edge[i] = 1;
  }
}

static void lt_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  scio__fdrec *r = arg;
  int i = (what & EV_WRITE) ? 1 : 0;
  scio__loop_source_remove(scio__loop_current()); /* not persistent: done */
  if (r->waiter[i])
    scio__task_wake(take_waiter(r, i), 0);
}

static scio__fdrec *find_rec(const scio__loop *l, int fd) {
  return fd < l->fds_cap ? l->fds[fd] : NULL;
}

static scio__fdrec *get_rec(scio__loop *l, int fd) {
  if (fd >= l->fds_cap) {
    int cap = l->fds_cap ? l->fds_cap : 64;
    while (cap <= fd)
      cap *= 2;
    scio__fdrec **p = scio__realloc(l->fds, (size_t)cap * sizeof *p);
    if (!p)
      return NULL;
    memset(p + l->fds_cap, 0, (size_t)(cap - l->fds_cap) * sizeof *p);
    l->fds = p;
    l->fds_cap = cap;
  }
  if (!l->fds[fd]) {
    scio__fdrec *r = scio__calloc(1, sizeof *r);
    if (!r)
      return NULL;
    r->fd = fd;
    for (int i = 0; i < 2; i++) {
      scio__list_init(&r->bound[i].node);
      r->bound[i].dir = (unsigned char)i;
    }
    l->fds[fd] = r;
  }
  return l->fds[fd];
}

/* Edge-triggered: make the fd's persistent event watch direction i too.
 * Only the directions ever waited on are watched: a socket that is only
 * read from would otherwise wake the loop with a write edge each time its
 * peer consumes data (Unix sockets signal every freed buffer).  Adding a
 * direction replaces the event (one epoll_ctl, once per fd and direction);
 * the new event is added before the old one goes, so a failure leaves the
 * old registration as it was.  Returns 0 or SCIO_ENOMEM. */
static int et_watch(scio__loop *l, scio__fdrec *r, int i) {
  short dir = i ? EV_WRITE : EV_READ;
  if (r->ev_dirs & dir)
    return 0;
  short dirs = (short)(r->ev_dirs | dir);
  /* EV_CLOSED too where the backend has it: see scio__fd_eof_seen. */
  short flags = (short)(dirs | EV_PERSIST | EV_ET | (l->sees_eof ? EV_CLOSED : 0));
  struct event *ev = event_new(l->base, r->fd, flags, et_cb, r);
  if (!ev || event_add(ev, NULL) < 0) {
    if (ev)
      event_free(ev);
    return SCIO_ENOMEM;
  }
  if (r->ev)
    event_free(r->ev);
  else
    scio__loop_source_add(l);
  r->ev = ev;
  r->ev_dirs = dirs;
  return 0;
}

static void abort_fd(scio__task *t, void *ctx) {
  (void)t;
  fdwait *w = ctx;
  take_waiter(w->rec, w->dir);
  struct event *ev = w->rec->lev[w->dir];
  if (ev && event_pending(ev, EV_READ | EV_WRITE, NULL)) {
    event_del(ev);
    scio__loop_source_remove(scio__loop_current());
  }
}

/* Start the bounded wait of r in direction i, and the sweep if it is not
 * running: it comes SCIO__FD_BOUND after the clock's last reading, which
 * the scheduler keeps recent (it reads the clock every few resumptions and
 * at every poll). */
static void bound_begin(scio__loop *l, scio__fdrec *r, int i) {
  fdbound *b = &r->bound[i];
  b->gen = l->fd_bgen;
  scio__list_push_back(&l->fd_bounded, &b->node);
  if (!scio__hnode_in_heap(&l->timers, &l->fd_sweep)) {
    l->fd_sweep.key = l->cached_now + SCIO__FD_BOUND;
    scio__heap_insert(&l->timers, &l->fd_sweep);
    scio__tick_needed(l);
  }
}

/* Every SCIO__FD_BOUND seconds while bounded waits exist: the waits that
 * began before the previous sweep (so SCIO__FD_BOUND to twice that ago)
 * end with SCIO__FD_EXPIRED.  The list is in the order the waits began, so
 * the due ones are at its head.  One heap entry for the whole loop, where
 * a deadline per wait would cost a heap insertion and removal per wait. */
void scio__fds_sweep(scio__loop *l, double now) {
  l->fd_bgen++;
  while (!scio__list_empty(&l->fd_bounded)) {
    fdbound *b = scio__container_of(l->fd_bounded.next, fdbound, node);
    if (l->fd_bgen - b->gen < 2)
      break;
    scio__fdrec *r = scio__container_of(b - b->dir, scio__fdrec, bound);
    scio__task *t = r->waiter[b->dir];
    fdwait w = {r, b->dir};
    abort_fd(t, &w); /* unlinks b, and undoes a level-triggered event */
    scio__task_wake(t, SCIO__FD_EXPIRED);
  }
  if (!scio__list_empty(&l->fd_bounded)) {
    l->fd_sweep.key = now + SCIO__FD_BOUND;
    scio__heap_insert(&l->timers, &l->fd_sweep);
  }
}

static int fd_wait(int fd, int dir, int bounded) {
  scio__loop *l = scio__loop_current();
  if (fd < 0)
    return scio__seterr(-EBADF, "wait for fd %d: bad fd", fd);
  scio__fdrec *r = get_rec(l, fd);
  if (!r)
    return scio__seterr(SCIO_ENOMEM, "wait for fd %d: out of memory", fd);
  int i = dir == SCIO__FD_WRITE ? 1 : 0;
  if (r->waiter[i])
    return scio__seterr(SCIO_EBUSY, "fd %d: another task is already waiting "
                                    "to %s",
                        fd, i ? "write" : "read");
  scio__task *t = scio__task_cur();
  if (l->edge_triggered) {
    if (r->edge[i]) {
      r->edge[i] = 0;
      return SCIO__FD_NOPARK;
    }
    if (et_watch(l, r, i) < 0)
      return scio__seterr(SCIO_ENOMEM, "wait for fd %d: cannot register it",
                          fd);
  } else {
    /* Cancelled already: scio__park would only undo the registration. */
    if (scio__task_cancelled(t)) {
      scio__deliver_cancel(t);
      return SCIO_ECANCELED;
    }
    if (!r->lev[i]) {
      r->lev[i] = event_new(l->base, fd, i ? EV_WRITE : EV_READ, lt_cb, r);
      if (!r->lev[i])
        return scio__seterr(SCIO_ENOMEM, "wait for fd %d: out of memory", fd);
    }
    if (event_add(r->lev[i], NULL) < 0)
      return scio__seterr(SCIO_ENOMEM, "wait for fd %d: event_add failed", fd);
    scio__loop_source_add(l);
  }
  fdwait w = {r, i};
  r->waiter[i] = t;
  if (bounded)
    bound_begin(l, r, i);
  return scio__park(abort_fd, &w, i ? "fd writable" : "fd readable");
}

int scio__fd_wait(int fd, int dir) { return fd_wait(fd, dir, 0); }

int scio__fd_eof_seen(int fd) {
  scio__loop *l = scio__loop_current();
  scio__fdrec *r = fd >= 0 ? find_rec(l, fd) : NULL;
  return r && r->eof_seen;
}

int scio__fd_wait_bounded(int fd, int dir) { return fd_wait(fd, dir, 1); }

static void rec_free(scio__loop *l, scio__fdrec *r, int wake_value) {
  for (int i = 0; i < 2; i++) {
    if (r->waiter[i])
      scio__task_wake(take_waiter(r, i), wake_value);
    if (r->lev[i]) {
      if (event_pending(r->lev[i], EV_READ | EV_WRITE, NULL))
        scio__loop_source_remove(l);
      event_free(r->lev[i]);
    }
  }
  if (r->ev) {
    event_free(r->ev);
    scio__loop_source_remove(l);
  }
  scio__free(r);
}

void scio__fd_forget(scio__loop *l, int fd, int wake_value) {
  if (fd < 0 || fd >= l->fds_cap || !l->fds[fd])
    return;
  scio__fdrec *r = l->fds[fd];
  l->fds[fd] = NULL;
  rec_free(l, r, wake_value);
}

int scio__fd_close(int fd) {
  scio__loop *l = scio__loop_current();
  if (l)
    scio__fd_forget(l, fd, SCIO_ECLOSED);
  /* On Linux the fd is released even when close fails with EINTR: never
   * retry, the number may already belong to someone else. */
  if (close(fd) < 0 && errno != EINTR) {
    int e = errno;
    return scio__seterr(-e, "close fd %d: %s", fd, strerror(e));
  }
  return 0;
}

void scio__fds_free(scio__loop *l) {
  for (int fd = 0; fd < l->fds_cap; fd++)
    if (l->fds[fd]) {
      scio__fdrec *r = l->fds[fd];
      l->fds[fd] = NULL;
      take_waiter(r, 0);
      take_waiter(r, 1);
      rec_free(l, r, 0);
    }
  scio__free(l->fds);
  l->fds = NULL;
  l->fds_cap = 0;
}

/* The backend's dispatch failed (event_base_loop returned -1): the loop
 * cannot learn readiness, and a parked fd waiter would wait for ever while
 * the scheduler comes round again and again.  Two causes are known: an fd
 * closed behind scio's back while a task waits on it (select fails with
 * EBADF for the whole set), and the backend failing to grow its arrays
 * (poll, select: out of memory).  Waiters on fds that are no longer open
 * are forgotten with -EBADF; if there were none, every fd waiter is woken
 * with SCIO_ENOMEM, so that tasks see an error instead of hanging.
 * Returns how many tasks were woken. */
int scio__fds_dispatch_failed(scio__loop *l) {
  int woken = 0, bad = 0;
  for (int fd = 0; fd < l->fds_cap; fd++) {
    scio__fdrec *r = l->fds[fd];
    if (r && (r->waiter[0] || r->waiter[1]) && fcntl(fd, F_GETFD) < 0 &&
        errno == EBADF) {
      woken += (r->waiter[0] != NULL) + (r->waiter[1] != NULL);
      scio__fd_forget(l, fd, -EBADF);
      bad = 1;
    }
  }
  if (bad)
    return woken;
  for (int fd = 0; fd < l->fds_cap; fd++) {
    scio__fdrec *r = l->fds[fd];
    for (int i = 0; r && i < 2; i++)
      if (r->waiter[i]) {
        scio__task *t = r->waiter[i];
        fdwait w = {r, i};
        abort_fd(t, &w); /* unregisters, as a cancel would */
        scio__task_wake(t, SCIO_ENOMEM);
        woken++;
      }
  }
  return woken;
}

/* The public path is about to park on a foreign fd (epoll only).  If the fd
 * was closed behind scio's back and its number reused, the registration
 * left from the old file would never fire: compare the file with the one
 * recorded when the registration was made, and register afresh on a
 * mismatch.  One fstat per parking wait, on top of the poll this path makes
 * anyway; layers use scio__fd_wait and scio__fd_close, and pay neither.
 * Files that share one inode (eventfds, timerfds: anonymous inodes) cannot
 * be told apart this way: for those the caller's scio_notify_closing is the
 * only protection. */
static int validate_public(scio__loop *l, int fd, const char *what) {
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    return scio__seterr(-e, "%s: fd %d: %s", what, fd, strerror(e));
  }
  scio__fdrec *r = find_rec(l, fd);
  if (r && r->has_id && (r->dev != st.st_dev || r->ino != st.st_ino)) {
    scio__fd_forget(l, fd, SCIO_ECLOSED); /* its waiters wait on a dead file */
    r = NULL;
  }
  if (!r && !(r = get_rec(l, fd)))
    return scio__seterr(SCIO_ENOMEM, "%s: fd %d: out of memory", what, fd);
  r->has_id = 1;
  r->dev = st.st_dev;
  r->ino = st.st_ino;
  return 0;
}

/* Level semantics for foreign fds: ask the kernel first, so that a user who
 * did not read until EAGAIN is not left waiting for an edge that already
 * happened. */
static int wait_public(int fd, int dir, short pev, const char *what) {
  scio__loop *l = scio__loop_current();
  if (!l || !l->current)
    return scio__seterr(SCIO_EINVAL, "%s: not inside a task", what);
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (fd < 0)
    return scio__seterr(-EBADF, "%s: bad fd %d", what, fd);
  struct pollfd p = {fd, pev, 0};
  if (poll(&p, 1, 0) == 1) {
    if (p.revents & POLLNVAL) {
      /* Closed without scio_notify_closing: drop what it left behind. */
      scio__fd_forget(l, fd, SCIO_ECLOSED);
      return scio__seterr(-EBADF, "%s: fd %d is not open", what, fd);
    }
    scio_cancel_shielded_checkpoint();
    return 0;
  }
  if (l->edge_triggered) {
    scio__fdrec *r = find_rec(l, fd);
    if (!r || !r->waiter[dir == SCIO__FD_WRITE]) {
      if ((rc = validate_public(l, fd, what)) < 0)
        return rc;
      /* The kernel says not ready: an edge remembered earlier is stale. */
      find_rec(l, fd)->edge[dir == SCIO__FD_WRITE] = 0;
    }
  }
  rc = scio__fd_wait(fd, dir);
  if (rc == SCIO__FD_NOPARK) {
    scio_cancel_shielded_checkpoint();
    rc = 0;
  }
  return rc;
}

SCIO_API int scio_wait_readable(int fd) {
  return wait_public(fd, SCIO__FD_READ, POLLIN, "wait_readable");
}

SCIO_API int scio_wait_writable(int fd) {
  return wait_public(fd, SCIO__FD_WRITE, POLLOUT, "wait_writable");
}

SCIO_API void scio_notify_closing(int fd) {
  scio__loop *l = scio__loop_current();
  if (l)
    scio__fd_forget(l, fd, SCIO_ECLOSED);
}
