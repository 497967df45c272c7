/* DTLS endpoints: one UDP socket, datagrams sorted by sender.
 *
 * The reader.  Whoever waits for a datagram (a channel's receive or
 * handshake, serve) and finds nobody reading the socket becomes the
 * reader: it receives one datagram, queues it for the sink it belongs to
 * (waking that sink's task), and goes on until its own sink has one.  When
 * it stops, it wakes another waiting task, which takes over.  So datagrams
 * move as long as anybody waits for one, and no task runs in the
 * background.
 *
 * A reader must sometimes be stopped from outside: its channel is closed
 * by another task.  It reads inside a scope of its own that the closer
 * cancels; a cancellation caught by that scope only means "look again".
 * Closing the endpoint closes the socket, which wakes the reader with
 * SCIO_ECLOSED.
 */
#include <netinet/in.h>
#include <openssl/rand.h>
#include <string.h>

#include "dtls_internal.h"

#define RBUF_SIZE 65536 /* the largest UDP payload fits */
#define QUEUE_MAX_DEFAULT 64

/* ---- lifetime ---------------------------------------------------------- */

void scio__dtls_ep_ref(scio_dtls_endpoint *ep) { ep->refs++; }

void scio__dtls_ep_unref(scio_dtls_endpoint *ep) {
  if (--ep->refs > 0)
    return;
  scio__dtls_table_free(&ep->table);
  scio__free(ep->rbuf);
  scio__free(ep);
}

static int ep_new(scio_udp *udp, const scio_dtls_endpoint_opts *o,
                  scio_dtls_endpoint **out) {
  scio_dtls_endpoint *ep = scio__calloc(1, sizeof *ep);
  unsigned char *rbuf = ep ? scio__malloc(RBUF_SIZE) : NULL;
  if (!rbuf) {
    scio__free(ep);
    return scio__seterr(SCIO_ENOMEM, "dtls endpoint: out of memory");
  }
  if (RAND_bytes(ep->secret, sizeof ep->secret) != 1) {
    scio__free(rbuf);
    scio__free(ep);
    return scio__tls_seterr(SCIO_ENOMEM, NULL, "dtls endpoint: no random "
                                               "cookie secret");
  }
  ep->udp = udp;
  ep->rbuf = rbuf;
  ep->refs = 1;
  ep->queue_max = o && o->queue_max ? o->queue_max : QUEUE_MAX_DEFAULT;
  ep->filter = o ? o->filter : NULL;
  ep->filter_arg = o ? o->filter_arg : NULL;
  scio__list_init(&ep->channels);
  scio__list_init(&ep->waiting);
  scio_lock_init(&ep->send_lock, SCIO_FAST_ACQUIRE);
  *out = ep;
  return 0;
}

SCIO_API int scio_dtls_endpoint_open_udp(scio_udp *udp,
                                         const scio_dtls_endpoint_opts *opts,
                                         scio_dtls_endpoint **out) {
  if (out)
    *out = NULL;
  if (!udp || !out) {
    scio_udp_close(udp);
    return scio__seterr(SCIO_EINVAL, "dtls endpoint: NULL argument");
  }
  struct sockaddr_storage ss;
  int rc = scio_udp_local_addr(udp, &ss);
  if (rc == 0 && ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    rc = scio__seterr(SCIO_EINVAL, "dtls endpoint: not a UDP socket");
  if (rc == 0)
    rc = ep_new(udp, opts, out);
  if (rc < 0)
    scio_udp_close(udp);
  return rc;
}

SCIO_API int scio_dtls_endpoint_open(const char *host, uint16_t port,
                                     const scio_dtls_endpoint_opts *opts,
                                     scio_dtls_endpoint **out) {
  if (out)
    *out = NULL;
  if (!out)
    return scio__seterr(SCIO_EINVAL, "dtls endpoint: NULL out pointer");
  scio_udp_opts uo = {.reuse_port = opts ? opts->reuse_port : 0,
                      .family = opts ? opts->family : 0};
  scio_udp *udp;
  int rc = scio_udp_open(host, port, &uo, &udp);
  if (rc < 0)
    return rc;
  return scio_dtls_endpoint_open_udp(udp, opts, out);
}

static void sink_wake(scio__dtls_sink *s, int value) {
  scio__task *t = s->waiter;
  if (!t)
    return;
  s->waiter = NULL;
  scio__list_remove(&s->node);
  scio__task_wake(t, value);
}

SCIO_API int scio_dtls_endpoint_close(scio_dtls_endpoint *ep) {
  if (!ep || ep->closed)
    return 0;
  ep->closed = 1;
  scio_udp_close(ep->udp); /* the reader wakes with SCIO_ECLOSED */
  ep->udp = NULL;
  scio__list_each(n, &ep->waiting)
      sink_wake(scio__container_of(n, scio__dtls_sink, node), SCIO_ECLOSED);
  scio__dtls_chans_endpoint_closed(ep);
  scio__dtls_ep_unref(ep);
  return 0;
}

SCIO_API int scio_dtls_endpoint_local_addr(scio_dtls_endpoint *ep,
                                           struct sockaddr_storage *out) {
  if (!ep || !out)
    return scio__seterr(SCIO_EINVAL, "dtls endpoint: NULL argument");
  if (ep->closed)
    return scio__seterr(SCIO_ECLOSED, "dtls endpoint: closed");
  return scio_udp_local_addr(ep->udp, out);
}

SCIO_API int scio_dtls_endpoint_statistics(scio_dtls_endpoint *ep,
                                           scio_dtls_statistics *out) {
  if (!ep || !out)
    return scio__seterr(SCIO_EINVAL, "dtls endpoint: NULL argument");
  *out = ep->stats;
  return 0;
}

/* ---- addresses -------------------------------------------------------- */

int scio__dtls_addr_eq(const struct sockaddr_storage *a,
                       const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
           x->sin6_scope_id == y->sin6_scope_id;
  }
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  return 0;
}

/* ---- sending ----------------------------------------------------------- */

int scio__dtls_send(scio_dtls_endpoint *ep, const struct sockaddr_storage *to,
                    const void *data, size_t len) {
  if (ep->closed)
    return scio__seterr(SCIO_ECLOSED, "dtls: the endpoint is closed");
  if (ep->filter && ep->filter(ep->filter_arg, 1, to, data, len))
    return scio_checkpoint(); /* lost on the way, as far as anyone knows */
  int rc = scio_lock_acquire(&ep->send_lock);
  if (rc < 0)
    return rc;
  rc = ep->closed ? scio__seterr(SCIO_ECLOSED, "dtls: the endpoint is closed")
                  : scio_udp_send_to(ep->udp, data, len, to);
  scio_lock_release(&ep->send_lock);
  if (rc == 0)
    ep->stats.sent++;
  return rc;
}

/* ---- receiving: the reader --------------------------------------------- */

void scio__dtls_deliver(scio_dtls_endpoint *ep, scio__dtls_sink *s,
                        scio__dtls_dgram *d) {
  if (s->in.n >= ep->queue_max) {
    s->dropped++;
    ep->stats.dropped++;
    scio__free(d);
    return;
  }
  scio__dtls_push(&s->in, d);
  sink_wake(s, 0);
}

/* Queue the datagram in rbuf for its sink. */
static void dispatch(scio_dtls_endpoint *ep, const struct sockaddr_storage *from,
                     size_t n) {
  ep->stats.received++;
  if (ep->filter && ep->filter(ep->filter_arg, 0, from, ep->rbuf, n)) {
    ep->stats.dropped++;
    return;
  }
  scio__dtls_chan *c = scio__dtls_chan_find(ep, from);
  scio__dtls_sink *s = c ? scio__dtls_chan_sink(c) : ep->serve;
  /* A peer that restarted with the same address: serve decides (after a
   * cookie round) whether it replaces the channel. */
  if (c && ep->serve && scio__dtls_chan_new_hello(c, ep->rbuf, n))
    s = ep->serve;
  if (!s || s->closed) {
    ep->stats.dropped++; /* nobody to talk to */
    return;
  }
  scio__dtls_dgram *d =
      s->in.n < ep->queue_max ? scio__dtls_dgram_new(ep->rbuf, n) : NULL;
  if (!d) {
    s->dropped++;
    ep->stats.dropped++;
    return;
  }
  d->peer = *from;
  scio__dtls_deliver(ep, s, d);
}

/* Read one datagram as the reader.  0: something may have changed, look
 * again; < 0: an error of the socket, or the caller's cancellation. */
static int read_once(scio_dtls_endpoint *ep, scio__dtls_sink *s) {
  scio_scope cs;
  int rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  if (rc < 0)
    return rc;
  ep->reading = 1;
  ep->reader_sink = s;
  ep->reader_scope = &cs;
  struct sockaddr_storage from;
  ssize_t n = scio_udp_receive_from(ep->udp, ep->rbuf, RBUF_SIZE, &from);
  ep->reader_scope = NULL;
  ep->reader_sink = NULL;
  ep->reading = 0;
  scio_scope_close(&cs);
  if (n >= 0 && !ep->closed)
    dispatch(ep, &from, (size_t)n); /* even when interrupted: keep it */
  if (n == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs))
    return 0; /* interrupted by a close: look again */
  if (n < 0 && ep->closed)
    return scio__seterr(SCIO_ECLOSED, "dtls: the endpoint is closed");
  return n < 0 ? (int)n : 0;
}

static void abort_wait(scio__task *t, void *ctx) {
  (void)t;
  scio__dtls_sink *s = ctx;
  s->waiter = NULL;
  scio__list_remove(&s->node);
}

/* Let another waiting task read, now that nobody does. */
static void hand_over(scio_dtls_endpoint *ep) {
  if (!ep->reading && !scio__list_empty(&ep->waiting))
    sink_wake(scio__container_of(ep->waiting.next, scio__dtls_sink, node), 0);
}

int scio__dtls_wait(scio_dtls_endpoint *ep, scio__dtls_sink *s) {
  int rc = 0;
  for (;;) {
    if (s->in.n > 0)
      break;
    if (s->closed || ep->closed) {
      rc = scio__seterr(SCIO_ECLOSED, "dtls: %s is closed",
                        ep->closed ? "the endpoint" : "the channel");
      break;
    }
    if (!ep->reading) {
      if ((rc = read_once(ep, s)) < 0)
        break;
      continue;
    }
    s->waiter = scio__task_cur();
    scio__list_push_back(&ep->waiting, &s->node);
    rc = scio__park(abort_wait, s, "dtls: waiting for a datagram");
    if (rc < 0 && rc != SCIO_ECLOSED)
      break;
    rc = 0; /* a datagram, a hand-over, or a close: look again */
  }
  hand_over(ep);
  return rc;
}

void scio__dtls_sink_close(scio_dtls_endpoint *ep, scio__dtls_sink *s) {
  s->closed = 1;
  sink_wake(s, SCIO_ECLOSED);
  if (ep->reading && ep->reader_sink == s && ep->reader_scope)
    scio_scope_cancel(ep->reader_scope);
  scio__dtls_queue_clear(&s->in);
}
