/* Waiting for fd readiness.
 *
 * On a backend with edge-triggered notification (epoll), each fd is
 * registered once with a persistent EV_ET event; an edge that arrives while
 * nobody waits is remembered, so the next wait returns at once and the
 * caller retries its syscall.  On level-triggered backends (poll, select) a
 * persistent event would fire for as long as the fd stays readable, so an
 * event is added only while a task waits and removed when it wakes.
 */
#include <event2/event.h>
#include <poll.h>
#include <string.h>

#include "internal.h"

struct scio__fdrec {
  int fd;
  struct event *ev;       /* edge-triggered: one persistent event */
  struct event *lev[2];   /* level-triggered: one per direction */
  scio__task *waiter[2];  /* [0] read, [1] write */
  unsigned char edge[2];  /* an edge seen while nobody waited */
};

typedef struct fdwait {
  scio__fdrec *rec;
  int dir; /* 0 read, 1 write */
} fdwait;

static void et_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  scio__fdrec *r = arg;
  for (int i = 0; i < 2; i++) {
    if (!(what & (i ? EV_WRITE : EV_READ)))
      continue;
    if (r->waiter[i]) {
      scio__task *t = r->waiter[i];
      r->waiter[i] = NULL;
      scio__task_wake(t, 0);
    } else {
      r->edge[i] = 1;
    }
  }
}

static void lt_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  scio__fdrec *r = arg;
  int i = (what & EV_WRITE) ? 1 : 0;
  scio__loop *l = scio__loop_current();
  l->nfd_events--;
  if (r->waiter[i]) {
    scio__task *t = r->waiter[i];
    r->waiter[i] = NULL;
    scio__task_wake(t, 0);
  }
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
    if (l->edge_triggered) {
      r->ev = event_new(l->base, fd, EV_READ | EV_WRITE | EV_PERSIST | EV_ET,
                        et_cb, r);
      if (!r->ev || event_add(r->ev, NULL) < 0) {
        if (r->ev)
          event_free(r->ev);
        scio__free(r);
        return NULL;
      }
      l->nfd_events++;
    scio__tick_needed(l);
      scio__tick_needed(l);
    }
    l->fds[fd] = r;
  }
  return l->fds[fd];
}

static void abort_fd(scio__task *t, void *ctx) {
  (void)t;
  fdwait *w = ctx;
  w->rec->waiter[w->dir] = NULL;
  struct event *ev = w->rec->lev[w->dir];
  if (ev && event_pending(ev, EV_READ | EV_WRITE, NULL)) {
    event_del(ev);
    scio__loop_current()->nfd_events--;
  }
}

int scio__fd_wait(int fd, int dir) {
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
  if (l->edge_triggered) {
    if (r->edge[i]) {
      r->edge[i] = 0;
      return 0;
    }
  } else {
    if (!r->lev[i]) {
      r->lev[i] = event_new(l->base, fd, i ? EV_WRITE : EV_READ, lt_cb, r);
      if (!r->lev[i])
        return scio__seterr(SCIO_ENOMEM, "wait for fd %d: out of memory", fd);
    }
    if (event_add(r->lev[i], NULL) < 0)
      return scio__seterr(SCIO_ENOMEM, "wait for fd %d: event_add failed", fd);
    l->nfd_events++;
    scio__tick_needed(l);
  }
  fdwait w = {r, i};
  r->waiter[i] = scio__task_cur();
  return scio__park(abort_fd, &w, i ? "fd writable" : "fd readable");
}

static void rec_free(scio__loop *l, scio__fdrec *r, int wake_value) {
  for (int i = 0; i < 2; i++) {
    if (r->waiter[i]) {
      scio__task *t = r->waiter[i];
      r->waiter[i] = NULL;
      scio__task_wake(t, wake_value);
    }
    if (r->lev[i]) {
      if (event_pending(r->lev[i], EV_READ | EV_WRITE, NULL))
        l->nfd_events--;
      event_free(r->lev[i]);
    }
  }
  if (r->ev) {
    event_free(r->ev);
    l->nfd_events--;
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

void scio__fds_free(scio__loop *l) {
  for (int fd = 0; fd < l->fds_cap; fd++)
    if (l->fds[fd]) {
      scio__fdrec *r = l->fds[fd];
      l->fds[fd] = NULL;
      r->waiter[0] = r->waiter[1] = NULL;
      rec_free(l, r, 0);
    }
  scio__free(l->fds);
  l->fds = NULL;
  l->fds_cap = 0;
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
  struct pollfd p = {fd, pev, 0};
  if (poll(&p, 1, 0) == 1) {
    if (p.revents & POLLNVAL)
      return scio__seterr(-EBADF, "%s: fd %d is not open", what, fd);
    scio_cancel_shielded_checkpoint();
    return 0;
  }
  if (fd >= 0 && fd < l->fds_cap && l->fds[fd])
    l->fds[fd]->edge[dir == SCIO__FD_WRITE] = 0;
  return scio__fd_wait(fd, dir);
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
