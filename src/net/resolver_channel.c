/* A c-ares channel driven by the calling task (see resolver.h for why one
 * channel per lookup). */
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "resolver.h"

struct scio__dns_sock {
  scio__dns_sock *next;
  scio__dns *dns;
  int fd;
  short what;          /* EV_READ / EV_WRITE c-ares asked for */
  unsigned char rd, wr; /* readiness seen, not yet processed */
  /* the struct event follows (event_get_struct_event_size() bytes), so a
   * watched socket costs one allocation, from scio's allocator */
};

static struct event *sock_event(scio__dns_sock *s) {
  return (struct event *)(void *)((char *)s +
                                  ((sizeof *s + 15) & ~(size_t)15));
}

/* ---- c-ares's allocator: scio's, once per process ---- */

static int lib_status = ARES_ENOTINITIALIZED;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* c-ares 1.18 turns some allocation failures into a dropped packet (the
 * query then times out) or a different status.  Counting the failures lets
 * a lookup that failed while memory ran out say so (SCIO_ENOMEM) instead of
 * blaming the DNS servers. */
static __thread unsigned long ares_nomem;

static void *ares_malloc_hook(size_t n) {
  void *p = scio__malloc(n);
  if (!p && n)
    ares_nomem++;
  return p;
}

static void *ares_realloc_hook(void *old, size_t n) {
  void *p = scio__realloc(old, n);
  if (!p && n)
    ares_nomem++;
  return p;
}

static void lib_init(void) {
  lib_status = ares_library_init_mem(ARES_LIB_INIT_ALL, ares_malloc_hook,
                                     scio__free, ares_realloc_hook);
}

int scio__dns_status(scio__dns *d, int status) {
  if (status != ARES_SUCCESS && ares_nomem != d->nomem0)
    return ARES_ENOMEM;
  return status;
}

/* ---- errors ---- */

int scio__dns_error(int status, const char *what) {
  switch (status) {
  case ARES_ENOTFOUND:
    return scio__seterr(SCIO_ENOTFOUND, "%s: no such host", what);
  case ARES_ENODATA:
    return scio__seterr(SCIO_ENOTFOUND, "%s: no address of that family",
                        what);
  case ARES_ETIMEOUT:
    return scio__seterr(SCIO_EDNS, "%s: no answer from the DNS servers "
                                   "(timed out)", what);
  case ARES_ECONNREFUSED:
    return scio__seterr(SCIO_EDNS, "%s: the DNS servers refused or could "
                                   "not be reached", what);
  case ARES_ESERVFAIL:
    return scio__seterr(SCIO_EDNS, "%s: DNS server failure", what);
  case ARES_EREFUSED:
    return scio__seterr(SCIO_EDNS, "%s: the DNS server refused the query",
                        what);
  case ARES_ENOMEM:
    return scio__seterr(SCIO_ENOMEM, "%s: out of memory", what);
  case ARES_EBADNAME:
    return scio__seterr(SCIO_EINVAL, "%s: misformed name", what);
  case ARES_ESERVICE:
    return scio__seterr(SCIO_EINVAL, "%s: unknown service", what);
  case ARES_EBADFAMILY:
  case ARES_EBADFLAGS:
  case ARES_EBADHINTS:
  case ARES_EBADSTR:
    return scio__seterr(SCIO_EINVAL, "%s: %s", what, ares_strerror(status));
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    return scio__seterr(SCIO_ECANCELED, "%s: cancelled", what);
  default:
    return scio__seterr(SCIO_EDNS, "%s: %s", what, ares_strerror(status));
  }
}

/* ---- watching c-ares's sockets ---- */

static void sock_ready(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  scio__dns_sock *s = arg;
  if (what & EV_READ)
    s->rd = 1;
  if (what & EV_WRITE)
    s->wr = 1;
  scio__dns *d = s->dns;
  if (d->waiter) {
    scio__task *t = d->waiter;
    d->waiter = NULL;
    scio__task_wake(t, 0);
  }
}

static scio__dns_sock **sock_find(scio__dns *d, int fd) {
  scio__dns_sock **p = &d->socks;
  while (*p && (*p)->fd != fd)
    p = &(*p)->next;
  return p;
}

static void sock_unwatch(scio__dns *d, scio__dns_sock **p) {
  scio__dns_sock *s = *p;
  *p = s->next;
  struct event *ev = sock_event(s);
  if (s->what) {
    event_del(ev);
    scio__loop_source_remove(d->loop);
  }
  scio__free(s);
}

/* (Re)arm s's event for `what`; on failure the socket is not watched and
 * the run reports SCIO_ENOMEM. */
static void sock_arm(scio__dns *d, scio__dns_sock *s, short what) {
  struct event *ev = sock_event(s);
  if (s->what) {
    event_del(ev);
    scio__loop_source_remove(d->loop);
    s->what = 0;
  }
  if (event_assign(ev, scio__loop_base(d->loop), s->fd, what | EV_PERSIST, sock_ready,
                   s) < 0 ||
      event_add(ev, NULL) < 0) {
    d->oom = 1;
    return;
  }
  s->what = what;
  scio__loop_source_add(d->loop);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares says which sockets to watch (r = w = 0:
 * stop; the socket is about to be closed). */
static void sock_state(void *data, ares_socket_t fd, int r, int w) {
  scio__dns *d = data;
  scio__dns_sock **p = sock_find(d, fd);
  if (!r && !w) {
    if (*p)
      sock_unwatch(d, p);
    return;
  }
  short what = (short)((r ? EV_READ : 0) | (w ? EV_WRITE : 0));
  if (!*p) {
    size_t size = ((sizeof **p + 15) & ~(size_t)15) +
                  event_get_struct_event_size();
    scio__dns_sock *s = scio__calloc(1, size);
    if (!s) {
      d->oom = 1;
      return;
    }
    s->dns = d;
    s->fd = fd;
    *p = s;
  }
  if ((*p)->what != what)
    sock_arm(d, *p, what);
}

/* ---- c-ares's socket calls, through scio ---- */

static ares_socket_t so_socket(int domain, int type, int protocol, void *u) {
  (void)u;
  return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

static int so_close(ares_socket_t fd, void *u) {
  scio__dns *d = u;
  scio__dns_sock **p = sock_find(d, fd);
  if (*p) /* c-ares said (0, 0) first; this is only a safety net */
    sock_unwatch(d, p);
  int rc = scio__fd_close(fd);
  if (rc < 0) {
    errno = -rc;
    return -1;
  }
  return 0;
}

static int so_connect(ares_socket_t fd, const struct sockaddr *sa,
                      ares_socklen_t len, void *u) {
  (void)u;
  return connect(fd, sa, len);
}

static ares_ssize_t so_recvfrom(ares_socket_t fd, void *buf, size_t len,
                                int flags, struct sockaddr *from,
                                ares_socklen_t *fromlen, void *u) {
  (void)u;
  return recvfrom(fd, buf, len, flags, from, fromlen);
}

static ares_ssize_t so_sendv(ares_socket_t fd, const struct iovec *iov,
                             int n, void *u) {
  (void)u;
  return writev(fd, iov, n);
}

static const struct ares_socket_functions so_funcs = {
    so_socket, so_close, so_connect, so_recvfrom, so_sendv};

/* ---- the channel ---- */

static int check_opts(const scio_dns_opts *o, const char *what) {
  if (!o)
    return 0;
  if (isnan(o->timeout) || o->timeout < 0 || o->timeout > 86400)
    return scio__seterr(SCIO_EINVAL, "%s: bad DNS timeout %g", what,
                        o->timeout);
  if (o->tries < 0 || o->tries > 100)
    return scio__seterr(SCIO_EINVAL, "%s: bad DNS tries %d", what, o->tries);
  return 0;
}

int scio__dns_open(scio__dns *d, const scio_dns_opts *o, const char *what) {
  memset(d, 0, sizeof *d);
  int rc = check_opts(o, what);
  if (rc < 0)
    return rc;
  pthread_once(&lib_once, lib_init);
  if (lib_status != ARES_SUCCESS)
    return scio__dns_error(lib_status, what);
  d->loop = scio__loop_current();
  d->nomem0 = ares_nomem;
  struct ares_options ao;
  memset(&ao, 0, sizeof ao);
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS;
  ao.sock_state_cb = sock_state;
  ao.sock_state_cb_data = d;
  ao.lookups = (char *)"fb"; /* /etc/hosts, then DNS */
  if (o && o->timeout > 0) {
    double ms = ceil(o->timeout * 1000.0);
    ao.timeout = ms < 1 ? 1 : (int)ms;
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (o && o->tries > 0) {
    ao.tries = o->tries;
    mask |= ARES_OPT_TRIES;
  }
  int st = ares_init_options(&d->ch, &ao, mask);
  if (st != ARES_SUCCESS) {
    d->ch = NULL;
    if (st == ARES_ENOMEM)
      return scio__seterr(SCIO_ENOMEM, "%s: out of memory", what);
    return scio__seterr(SCIO_EDNS, "%s: cannot set up the resolver: %s",
                        what, ares_strerror(st));
  }
  ares_set_socket_functions(d->ch, &so_funcs, d);
  if (o && o->servers) {
    st = ares_set_servers_ports_csv(d->ch, o->servers);
    if (st != ARES_SUCCESS) {
      ares_destroy(d->ch);
      d->ch = NULL;
      if (st == ARES_ENOMEM)
        return scio__seterr(SCIO_ENOMEM, "%s: out of memory", what);
      return scio__seterr(SCIO_EINVAL, "%s: bad DNS server list \"%s\"",
                          what, o->servers);
    }
  }
  return 0;
}

void scio__dns_close(scio__dns *d) {
  if (d->ch) {
    ares_destroy(d->ch); /* runs pending callbacks, closes sockets */
    d->ch = NULL;
  }
  while (d->socks) /* only if c-ares closed a socket without telling us */
    sock_unwatch(d, &d->socks);
}

/* Hand every socket seen ready to c-ares, one at a time: processing may
 * close sockets (and so free records), so the scan restarts each time.
 * Returns 1 if anything was processed. */
static int process_ready(scio__dns *d) {
  int any = 0;
  for (;;) {
    scio__dns_sock *s = d->socks;
    while (s && !s->rd && !s->wr)
      s = s->next;
    if (!s)
      return any;
    ares_socket_t r = s->rd ? s->fd : ARES_SOCKET_BAD;
    ares_socket_t w = s->wr ? s->fd : ARES_SOCKET_BAD;
    s->rd = s->wr = 0;
    ares_process_fd(d->ch, r, w);
    any = 1;
  }
}

static void abort_wait(scio__task *t, void *ctx) {
  (void)t;
  scio__dns *d = ctx;
  d->waiter = NULL;
}

/* Park until a socket is ready or c-ares's next timeout.  0, or
 * SCIO_ECANCELED when the caller is cancelled. */
static int wait_io(scio__dns *d) {
  struct timeval tv;
  struct timeval *tvp = ares_timeout(d->ch, NULL, &tv);
  double deadline = tvp ? scio_now() + (double)tv.tv_sec +
                              (double)tv.tv_usec * 1e-6
                        : SCIO_DEADLINE_NONE;
  scio_scope cs;
  int rc = scio_scope_open(&cs, deadline, 0);
  if (rc < 0)
    return rc;
  d->waiter = scio__task_cur();
  d->yielded = 1;
  rc = scio__park(abort_wait, d, "dns lookup");
  d->waiter = NULL;
  scio_scope_close(&cs);
  if (rc == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs)) {
    /* our deadline: let c-ares retry or give up */
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    return 0;
  }
  return rc;
}

int scio__dns_run(scio__dns *d) {
  while (d->pending > 0) {
    if (d->oom)
      return SCIO_ENOMEM;
    if (process_ready(d))
      continue;
    int rc = wait_io(d);
    if (rc < 0)
      return rc;
  }
  return 0;
}

void scio__dns_finish_checkpoint(scio__dns *d) {
  if (!d->yielded)
    scio_cancel_shielded_checkpoint();
}
