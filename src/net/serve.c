/* scio_listener_serve: accept forever, one handler task per connection.
 *
 * A handler's failure is the handler's business, not the server's: its
 * task reports it through the error hook and returns 0, so the nursery is
 * never cancelled by one bad connection.  Accept failures for lack of
 * resources (fds, buffers, memory) back off with a doubling pause, since
 * the pending connection stays queued and retrying at once would spin. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "listener.h"

typedef struct serve_conn {
  scio_stream *conn;
  scio_serve_handler handler;
  void *arg;
  scio_serve_error_fn on_error;
  void *error_ctx;
  struct sockaddr_storage peer; /* from accept (family 0: unknown) */
} serve_conn;

void scio__serve_report_line(const char *who, const char *nopeer,
                             const struct sockaddr_storage *peer, int code,
                             const char *detail) {
  char a[160];
  snprintf(a, sizeof a, "%s", nopeer);
  if (peer)
    scio_sockaddr_format(peer, a, sizeof a);
  fprintf(stderr, "%s: %s: %s: %s\n", who, a, scio_err_name(code),
          detail && detail[0] ? detail : scio_strerror(code));
}

static void default_report(void *ctx, const struct sockaddr_storage *peer,
                           int code, const char *detail) {
  (void)ctx;
  scio__serve_report_line("scio serve", "accept", peer, code, detail);
}

static int conn_task(void *p) {
  serve_conn c = *(serve_conn *)p;
  scio__free(p);
  /* The peer came with the accept: after a reset, getpeername would have
   * nothing to say. */
  int rc = c.handler(c.conn, c.arg);
  int cancelled = rc == SCIO_ECANCELED && scio__task_cancelled(scio__task_cur());
  if (rc < 0 && !cancelled)
    c.on_error(c.error_ctx, c.peer.ss_family ? &c.peer : NULL, rc,
               scio_errmsg());
  scio_close(c.conn);
  return 0;
}

static int spawn_conn(scio_nursery *n, scio_stream *conn,
                      const struct sockaddr_storage *peer,
                      scio_serve_handler handler, void *arg,
                      const scio_serve_opts *o) {
  serve_conn *c = scio__malloc(sizeof *c);
  if (!c)
    return scio__seterr(SCIO_ENOMEM, "serve: out of memory");
  *c = (serve_conn){conn, handler, arg, o->on_error, o->error_ctx, *peer};
  int rc = scio_start_soon_named(n, conn_task, c, "serve-connection");
  if (rc < 0)
    scio__free(c);
  return rc;
}

static int out_of_resources(int rc) {
  return rc == SCIO_EMFILE || rc == -ENFILE || rc == -ENOBUFS ||
         rc == SCIO_ENOMEM;
}

/* What one accept loop needs: it accepts on socket `which` of l (-1: on
 * any) and starts the handlers in `conns`. */
typedef struct acceptor {
  scio_listener *l;
  int which;
  scio_serve_handler handler;
  void *arg;
  scio_nursery *conns;
  const scio_serve_opts *o;
} acceptor;

static int serve_loop(const acceptor *a) {
  scio_listener *l = a->l;
  const scio_serve_opts *o = a->o;
  double pause = 0;
  int reported = 0;
  for (;;) {
    scio_stream *conn;
    struct sockaddr_storage peer;
    int rc = scio__listener_accept_peer(l, a->which, &conn, &peer);
    if (rc == 0) {
      rc = spawn_conn(a->conns, conn, &peer, a->handler, a->arg, o);
      if (rc == 0) {
        pause = 0; /* the episode is over */
        reported = 0;
        continue;
      }
      scio_close(conn);
    }
    if (!out_of_resources(rc))
      return rc;
    if (!reported) {
      char detail[256];
      snprintf(detail, sizeof detail, "%s; backing off", scio_errmsg());
      o->on_error(o->error_ctx, NULL, rc, detail);
      reported = 1;
    }
    pause = pause == 0 ? o->backoff_initial : pause * 2;
    if (pause > o->backoff_max)
      pause = o->backoff_max;
    if ((rc = scio_sleep(pause)) < 0)
      return rc;
  }
}

static int accept_task(void *p) {
  int rc = serve_loop(p);
  return rc == SCIO_ECLOSED ? 0 : rc;
}

/* One accept loop per socket of a listener of several (IPv4 and IPv6):
 * each then waits on its own socket through the fd contract, registered
 * once, where one loop over all of them would add and remove a libevent
 * event per socket each time it waits, and try each socket's accept4 in
 * turn.  They run in a nursery of their own: one that fails (not for
 * lack of resources, which only pauses it) stops the others, and serve
 * returns its error; the listener's close ends them all. */
static int serve_sockets(scio_listener *l, const acceptor *proto) {
  acceptor local[4];
  acceptor *a = local;
  if (l->n > 4 && !(a = scio__calloc((size_t)l->n, sizeof *a)))
    return scio__seterr(SCIO_ENOMEM, "serve: out of memory");
  scio_nursery accepts;
  int rc = scio_nursery_open(&accepts);
  if (rc < 0) {
    if (a != local)
      scio__free(a);
    return rc;
  }
  for (int i = 0; i < l->n && rc == 0; i++) {
    a[i] = *proto;
    a[i].which = i;
    rc = scio_start_soon_named(&accepts, accept_task, &a[i], "serve-accept");
  }
  if (rc < 0)
    scio_nursery_cancel(&accepts);
  int crc = scio_nursery_close(&accepts);
  if (rc == 0)
    rc = crc;
  if (a != local)
    scio__free(a);
  return rc;
}

SCIO_API int scio_listener_serve(scio_listener *l, scio_serve_handler handler,
                                 void *arg, scio_nursery *nursery,
                                 const scio_serve_opts *opts) {
  scio_serve_opts o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!l || !handler || !(o.backoff_initial >= 0) || !(o.backoff_max >= 0))
    return scio__seterr(SCIO_EINVAL, "serve: bad argument");
  if (!scio_task_current())
    return scio__seterr(SCIO_EINVAL, "serve: not inside a task");
  if (!o.on_error)
    o.on_error = default_report;
  if (o.backoff_initial == 0)
    o.backoff_initial = 0.1;
  if (o.backoff_max == 0)
    o.backoff_max = 1.0;
  if (o.backoff_max < o.backoff_initial)
    o.backoff_max = o.backoff_initial;
  scio_nursery own;
  scio_nursery *n = nursery;
  if (!n) {
    int rc = scio_nursery_open(&own);
    if (rc < 0)
      return rc;
    n = &own;
  }
  scio__listener_enter(l);
  acceptor a = {l, -1, handler, arg, n, &o};
  int rc = l->n > 1 ? serve_sockets(l, &a) : serve_loop(&a);
  scio__listener_leave(l); /* l may be gone now (closed meanwhile) */
  /* Closed by another task: the graceful end of serving. */
  if (rc == SCIO_ECLOSED)
    rc = 0;
  if (n == &own) {
    int nrc = scio_nursery_close(&own);
    if (rc == 0)
      rc = nrc;
  }
  return rc;
}
