/* Listeners: accept across several listening sockets, and close.
 *
 * A listener of one socket waits through the fd contract like a stream
 * socket: on epoll the socket is registered once, so an accept that finds
 * the queue empty costs no epoll_ctl (a server that drains its queue
 * waits once every few connections).  Serve gets the same for a listener
 * of several sockets by running one accept loop per socket.
 *
 * A listener may hold several sockets (IPv4 and IPv6), so an accept waits
 * for any of them.  scio__fd_wait watches one fd for one task; here one
 * libevent read event per socket is added for the time of the wait (level
 * triggered, so no connection that arrived earlier is missed), counted as
 * a loop source, and freed when the wait ends. */
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listener.h"

typedef struct scio__accept_wait {
  scio_listener *l;
  scio__task *t;
  scio__loop *loop;
  struct event **ev;
  int n;
  int fired;  /* index of the socket that became readable, or -1 */
} accept_wait;

scio_listener *scio__listener_new(int n) {
  scio_listener *l = scio__calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->socks = scio__calloc((size_t)n, sizeof *l->socks);
  if (!l->socks) {
    scio__free(l);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    l->socks[i].fd = -1;
  l->n = n;
  return l;
}

void scio__listener_discard(scio_listener *l) {
  for (int i = 0; i < l->n; i++)
    if (l->socks[i].fd >= 0)
      scio__fd_close(l->socks[i].fd);
  scio__free(l->path);
  scio__free(l->socks);
  scio__free(l);
}

void scio__listener_enter(scio_listener *l) { l->inflight++; }

void scio__listener_leave(scio_listener *l) {
  if (--l->inflight == 0 && l->free_pending) {
    scio__free(l->socks);
    scio__free(l);
  }
}

int scio__listen_socket(const struct sockaddr *sa, socklen_t len,
                        const scio_listen_opts *o, const char *what) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0)
    return scio__seterr(-errno, "%s: socket: %s", what, strerror(errno));
  int one = 1, rc = 0;
  if (sa->sa_family != AF_UNIX) {
    rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rc == 0 && o->reuse_port)
      rc = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (rc == 0 && sa->sa_family == AF_INET6)
      rc = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* What each accepted stream gets, set once here: Linux copies them to
     * the accepted sockets, which then need no setsockopt of their own
     * (try_accept checks the first one).  Failures only cost that. */
    if (rc == 0 && !(o->stream_flags & SCIO_SOCKET_KEEP_NAGLE))
      (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rc == 0)
      (void)setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);
  }
  const char *step = "setsockopt";
  if (rc == 0 && (step = "bind", rc = bind(fd, sa, len)) == 0)
    step = "listen", rc = listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN);
  if (rc < 0) {
    int e = errno;
    close(fd);
    char a[128];
    scio_sockaddr_format((const struct sockaddr_storage *)sa, a, sizeof a);
    return scio__seterr(-e, "%s: %s %s: %s", what, step, a, strerror(e));
  }
  return fd;
}

/* ---- waiting for any socket ---- */

static void accept_ready(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  accept_wait *w = arg;
  scio__loop_source_remove(w->loop); /* a non-persistent event fired */
  for (int i = 0; i < w->n; i++)
    if (event_get_fd(w->ev[i]) == fd && w->fired < 0)
      w->fired = i;
  if (w->t) {
    scio__task *t = w->t;
    w->t = NULL;
    scio__task_wake(t, 0);
  }
}

static void wait_release(accept_wait *w) {
  for (int i = 0; i < w->n; i++) {
    if (!w->ev[i])
      continue;
    if (event_pending(w->ev[i], EV_READ, NULL))
      scio__loop_source_remove(w->loop);
    event_free(w->ev[i]);
    w->ev[i] = NULL;
  }
  if (w->l->wait == w)
    w->l->wait = NULL;
}

static void accept_abort(scio__task *t, void *ctx) {
  (void)t;
  accept_wait *w = ctx;
  w->t = NULL;
  wait_release(w);
}

static int wait_any(scio_listener *l) {
  scio__loop *loop = scio__loop_current();
  struct event *evs[8];
  struct event **ev = evs;
  if (l->n > 8 && !(ev = scio__calloc((size_t)l->n, sizeof *ev)))
    return scio__seterr(SCIO_ENOMEM, "accept: out of memory");
  accept_wait w = {l, scio__task_cur(), loop, ev, l->n, -1};
  memset(ev, 0, (size_t)l->n * sizeof *ev);
  int rc = 0;
  for (int i = 0; i < l->n && rc == 0; i++) {
    ev[i] = event_new(scio__loop_base(loop), l->socks[i].fd, EV_READ, accept_ready, &w);
    if (!ev[i] || event_add(ev[i], NULL) < 0)
      rc = scio__seterr(SCIO_ENOMEM, "accept: cannot watch the listener");
    else
      scio__loop_source_add(loop);
  }
  if (rc == 0) {
    l->wait = &w;
    rc = scio__park(accept_abort, &w, "accept");
  }
  wait_release(&w);
  if (rc == 0 && w.fired >= 0)
    l->next = w.fired;
  if (ev != evs)
    scio__free(ev);
  return rc;
}

/* ---- accept ---- */

/* Does the accepted TCP socket fd have TCP_INQ, and TCP_NODELAY unless
 * Nagle is kept, already (copied from its listening socket)? */
static int opts_inherited(int fd, unsigned flags) {
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INQ, &v, &len) < 0 || v != 1)
    return 0;
  if (flags & SCIO_SOCKET_KEEP_NAGLE)
    return 1;
  v = 0;
  len = sizeof v;
  return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v != 0;
}

/* One pass over the sockets, starting where the last one left off (or
 * over socket `which` alone, if it is >= 0): 1 accepted, 0 nothing
 * queued, < 0 an error.  peer may be NULL. */
static int try_accept(scio_listener *l, int which, scio_stream **out,
                      struct sockaddr_storage *peer) {
  int count = which >= 0 ? 1 : l->n;
  for (int k = 0; k < count; k++) {
    int i = which >= 0 ? which : (l->next + k) % l->n;
    scio__lsock *ls = &l->socks[i];
    for (;;) {
      socklen_t plen = sizeof *peer;
      int fd = accept4(ls->fd, (struct sockaddr *)peer, peer ? &plen : NULL,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        l->next = (i + 1) % l->n;
        unsigned flags = l->stream_flags;
        if (ls->family == AF_INET || ls->family == AF_INET6) {
          if (ls->inherits == 0)
            ls->inherits = opts_inherited(fd, flags) ? 1 : -1;
          if (ls->inherits > 0)
            flags |= SCIO__SOCK_OPTS_SET;
        }
        int rc = scio__sock_wrap(fd, ls->family, flags, out);
        if (rc < 0) {
          close(fd);
          return rc;
        }
        return 1;
      }
      /* Aborted before we got to it: skip, as Trio does. */
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return scio__seterr(-errno, "accept: %s", strerror(errno));
    }
  }
  return 0;
}

static int accept_loop(scio_listener *l, int which, scio_stream **out,
                       struct sockaddr_storage *peer) {
  int yielded = 0;
  if (which < 0 && l->n == 1)
    which = 0;
  for (;;) {
    int rc = try_accept(l, which, out, peer);
    if (rc == 1) {
      scio__yield_once(yielded);
      return 0;
    }
    if (rc < 0)
      return rc;
    rc = which >= 0 ? scio__fd_wait(l->socks[which].fd, SCIO__FD_READ)
                    : wait_any(l);
    if (rc < 0 && !(rc == SCIO_ECLOSED && l->closed))
      return rc;
    if (l->closed)
      return scio__seterr(SCIO_ECLOSED, "accept: listener closed while "
                                        "waiting");
    if (rc == 0)
      yielded = 1; /* parked; SCIO__FD_NOPARK did not */
  }
}

SCIO_API int scio_listener_accept(scio_listener *l, scio_stream **out) {
  return scio__listener_accept_peer(l, -1, out, NULL);
}

int scio__listener_accept_peer(scio_listener *l, int which, scio_stream **out,
                               struct sockaddr_storage *peer) {
  if (out)
    *out = NULL;
  if (peer)
    memset(peer, 0, sizeof *peer);
  if (!l || !out)
    return scio__seterr(SCIO_EINVAL, "listener_accept: NULL argument");
  if (!scio_task_current())
    return scio__seterr(SCIO_EINVAL, "listener_accept: not inside a task");
  if (l->closed)
    return scio__seterr(SCIO_ECLOSED, "accept: listener is closed");
  /* One task accepts on each socket: on all of them (which < 0), or on
   * one of them (serve's accept loop for that socket). */
  if (which >= l->n)
    return scio__seterr(SCIO_EINVAL, "listener_accept: no socket %d", which);
  if (l->accepting || (which < 0 ? l->sock_accepting > 0
                                 : l->socks[which].accepting))
    return scio__seterr(SCIO_EBUSY, "accept: another task is accepting on "
                                    "this listener");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (which < 0) {
    l->accepting = 1;
  } else {
    l->socks[which].accepting = 1;
    l->sock_accepting++;
  }
  scio__listener_enter(l);
  rc = accept_loop(l, which, out, peer);
  if (which < 0) {
    l->accepting = 0;
  } else {
    l->socks[which].accepting = 0;
    l->sock_accepting--;
  }
  scio__listener_leave(l);
  return rc;
}

/* Remove the socket file only if it is still the one bind() made: a newer
 * listener may have replaced a file this one still names. */
static void unlink_ours(scio_listener *l) {
  struct stat st;
  if (l->path && lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
      st.st_ino == l->ino)
    unlink(l->path);
}

SCIO_API int scio_listener_close(scio_listener *l) {
  if (!l || l->closed)
    return 0;
  l->closed = 1;
  if (l->wait) {
    accept_wait *w = l->wait;
    scio__task *t = w->t;
    w->t = NULL;
    wait_release(w);
    if (t)
      scio__task_wake(t, SCIO_ECLOSED);
  }
  for (int i = 0; i < l->n; i++)
    if (l->socks[i].fd >= 0) {
      scio__fd_close(l->socks[i].fd);
      l->socks[i].fd = -1;
    }
  unlink_ours(l);
  scio__free(l->path);
  l->path = NULL;
  l->free_pending = 1;
  scio__listener_enter(l);
  scio__listener_leave(l);
  return 0;
}

SCIO_API int scio_listener_addrs(scio_listener *l,
                                 struct sockaddr_storage *addrs, size_t max) {
  if (!l || (!addrs && max > 0) || l->closed)
    return scio__seterr(SCIO_EINVAL, "listener_addrs: bad argument");
  for (int i = 0; i < l->n && (size_t)i < max; i++) {
    memset(&addrs[i], 0, sizeof addrs[i]);
    socklen_t sl = sizeof addrs[i];
    if (getsockname(l->socks[i].fd, (struct sockaddr *)&addrs[i], &sl) < 0)
      return scio__seterr(-errno, "listener_addrs: %s", strerror(errno));
  }
  return l->n;
}

SCIO_API int scio_listener_fds(scio_listener *l, int *fds, size_t max) {
  if (!l || (!fds && max > 0) || l->closed)
    return scio__seterr(SCIO_EINVAL, "listener_fds: bad argument");
  for (int i = 0; i < l->n && (size_t)i < max; i++)
    fds[i] = l->socks[i].fd;
  return l->n;
}

SCIO_API int scio_listener_port(scio_listener *l) {
  struct sockaddr_storage ss;
  int rc = scio_listener_addrs(l, &ss, 1);
  if (rc < 0)
    return rc;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return scio__seterr(SCIO_EINVAL, "listener_port: not a TCP listener");
}
