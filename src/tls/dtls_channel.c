/* DTLS channels: one peer of an endpoint, an object stream of datagrams.
 *
 * OpenSSL reads the channel's queue through the BIO of dtls_bio.c and
 * writes datagrams to `io.out`, which the channel sends after each OpenSSL
 * call.  The handshake retransmits by itself, on scio's clock: the last
 * flight OpenSSL wrote (the "volley") is kept and sent again whenever the
 * peer stays silent for the retransmission timeout, which doubles after
 * each try (1 s, 2 s, ... 60 s; RFC 6347 section 4.2.4).  OpenSSL's own
 * timer runs on the real clock and is disabled (dtls_ctx.c).  Resending
 * the very same datagrams is sound: a copy the peer got already is a
 * replay it drops, and then the peer, still waiting, has a timer of its
 * own that sends its answer again.
 *
 * Except at the end: the side whose flight completes its handshake (the
 * server, in a full handshake) has no timer left, and the peer's
 * retransmitted flight is a replay to OpenSSL, which then does not
 * answer.  So that side keeps its final flight and sends it again
 * whenever handshake records still arrive, until application data from
 * the peer shows that the peer is done too (Trio does the same).  It
 * needs a task receiving on the channel, as every datagram does.
 */
#include <math.h>
#include <openssl/err.h>
#include <string.h>

#include "dtls_internal.h"

#define SCRATCH 16384 /* the largest DTLS record's plaintext */
#define RTO_MAX 60.0

struct scio__dtls_chan {
  scio_ostream base;
  scio__dtls_peer peer; /* SSL app data: endpoint and address */
  scio__dtls_sink sink;
  scio__node link; /* in ep->channels while linked */
  scio__dtls_hnode hnode; /* in ep->table while linked */
  int linked;
  scio_dtls_endpoint *ep;
  scio_tls_ctx *ctx;
  SSL *ssl;
  scio__dtls_io io;
  scio__dtls_queue volley; /* the handshake flight last sent */
  unsigned char *scratch;
  int handshaken, broken, peer_closed, receiving, replaced;
  int has_hello;
  unsigned char hello_random[32]; /* servers: the ClientHello's random */
  double hs_timeout, rto0;
};

static const scio_ostream_ops chan_ops;

scio_ostream *scio__dtls_chan_stream(scio__dtls_chan *c) { return &c->base; }
scio__dtls_sink *scio__dtls_chan_sink(scio__dtls_chan *c) { return &c->sink; }

scio__dtls_chan *scio__dtls_chan_find(scio_dtls_endpoint *ep,
                                      const struct sockaddr_storage *addr) {
  scio__dtls_hnode *h = scio__dtls_table_find(&ep->table, addr);
  return h ? scio__container_of(h, scio__dtls_chan, hnode) : NULL;
}

static void unlink_chan(scio__dtls_chan *c) {
  if (!c->linked)
    return;
  c->linked = 0;
  scio__list_remove(&c->link);
  scio__dtls_table_remove(&c->ep->table, &c->hnode);
  c->ep->stats.channels--;
}

void scio__dtls_chans_endpoint_closed(scio_dtls_endpoint *ep) {
  scio__list_each(n, &ep->channels) {
    scio__dtls_chan *c = scio__container_of(n, scio__dtls_chan, link);
    unlink_chan(c);
    c->sink.closed = 1;
  }
}

/* Record header (13 bytes: type, version, epoch, sequence, length), then
 * the handshake header (12: type, length, message_seq, fragment offset and
 * length), then client_version (2) and the random (32): the first
 * fragment of a ClientHello in epoch 0. */
const unsigned char *scio__dtls_hello_random(const unsigned char *p,
                                             size_t n) {
  if (n < 13 + 12 + 2 + 32 || p[0] != 22 || p[3] != 0 || p[4] != 0 ||
      p[13] != 1 || p[19] != 0 || p[20] != 0 || p[21] != 0)
    return NULL;
  return p + 13 + 12 + 2;
}

void scio__dtls_chan_set_hello(scio__dtls_chan *c, const unsigned char *rnd) {
  memcpy(c->hello_random, rnd, sizeof c->hello_random);
  c->has_hello = 1;
}

int scio__dtls_chan_new_hello(scio__dtls_chan *c, const unsigned char *p,
                              size_t n) {
  const unsigned char *rnd = scio__dtls_hello_random(p, n);
  return rnd && c->handshaken && c->has_hello &&
         memcmp(rnd, c->hello_random, sizeof c->hello_random) != 0;
}

void scio__dtls_chan_replace(scio__dtls_chan *c) {
  c->replaced = 1;
  c->broken = 1;
  unlink_chan(c);
  scio__dtls_sink_close(c->ep, &c->sink);
}

static int closed_err(scio__dtls_chan *c) {
  return scio__seterr(SCIO_ECLOSED, "dtls: %s is closed",
                      c->ep->closed ? "the endpoint" : "the channel");
}

/* SSL_get_error needs an empty queue before the call it explains.  scio
 * leaves it empty after every failure, so only look (cheaply) on the hot
 * paths: clearing costs more than a 100-byte AES-GCM record. */
static void errors_clear(void) {
  if (ERR_peek_error())
    ERR_clear_error();
}

/* ---- sending ----------------------------------------------------------- */

/* Send (and drop) what OpenSSL wrote.  On an error the rest is dropped
 * too: datagrams may be lost anyway. */
static int flush_out(scio__dtls_chan *c) {
  scio__dtls_dgram *d;
  int rc = 0;
  while ((d = scio__dtls_pop(&c->io.out))) {
    if (rc == 0)
      rc = scio__dtls_send(c->ep, &c->peer.addr, d->data, d->len);
    scio__free(d);
  }
  return rc;
}

static int send_volley(scio__dtls_chan *c) {
  for (scio__dtls_dgram *d = c->volley.head; d; d = d->next) {
    int rc = scio__dtls_send(c->ep, &c->peer.addr, d->data, d->len);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* The error of a failed OpenSSL call `r`; the channel is broken. */
static int ssl_failure(scio__dtls_chan *c, int r, const char *what) {
  c->broken = 1;
  if (c->io.oom) {
    c->io.oom = 0;
    ERR_clear_error();
    return scio__seterr(SCIO_ENOMEM, "%s: no memory for DTLS records", what);
  }
  (void)r;
  return scio__tls_seterr(SCIO_ETLS, c->ssl, what);
}

/* ---- the handshake ------------------------------------------------------ */

/* Wait for a datagram until `deadline`: 0, 1 when the deadline passed,
 * or an error. */
static int wait_until(scio__dtls_chan *c, double deadline) {
  if (c->sink.in.n > 0)
    return 0;
  scio_scope cs;
  int rc = scio_move_on_at(&cs, deadline);
  if (rc < 0)
    return rc;
  rc = scio__dtls_wait(c->ep, &c->sink);
  scio_scope_close(&cs);
  if (rc == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs))
    return 1;
  return rc;
}

/* Take what OpenSSL just wrote as the new flight, and send it. */
static int new_volley(scio__dtls_chan *c) {
  scio__dtls_queue_clear(&c->volley);
  c->volley = c->io.out;
  memset(&c->io.out, 0, sizeof c->io.out);
  return send_volley(c);
}

/* Wait for the peer's next datagram, sending our flight again each time
 * the retransmission timeout passes in silence (doubling it). */
static int await_peer(scio__dtls_chan *c, double *rto, double *deadline) {
  int rc;
  while ((rc = wait_until(c, *deadline)) == 1) {
    *rto = *rto * 2 < RTO_MAX ? *rto * 2 : RTO_MAX;
    if ((rc = send_volley(c)) < 0)
      return rc;
    *deadline = scio_now() + *rto;
  }
  return rc;
}

static int handshake(scio__dtls_chan *c) {
  double rto = c->rto0, deadline = INFINITY;
  int sent_last = 0;
  for (;;) {
    if (c->ep->closed)
      return closed_err(c);
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
    /* A new flight (or an alert, sent before the failure is reported):
     * the timer starts over. */
    if ((sent_last = c->io.out.n > 0)) {
      int rc = new_volley(c);
      rto = c->rto0;
      deadline = scio_now() + rto;
      if (rc < 0 && e == SSL_ERROR_WANT_READ)
        return rc;
    }
    if (r == 1)
      break;
    if (e != SSL_ERROR_WANT_READ || c->io.oom)
      return ssl_failure(c, r, "dtls handshake");
    int rc = await_peer(c, &rto, &deadline);
    if (rc < 0)
      return rc;
  }
  /* The flight that completed our handshake is the final one (kept for
   * the peer); one sent before it evidently reached the peer. */
  if (!sent_last)
    scio__dtls_queue_clear(&c->volley);
  c->io.seen = 0;
  c->handshaken = 1;
  return 0;
}

/* After the handshake: keep the final flight until the peer sends data,
 * and send it again when the peer is still sending its own flight. */
static void final_flight(scio__dtls_chan *c) {
  int seen = c->io.seen;
  c->io.seen = 0;
  if (c->volley.n == 0)
    return;
  if (seen & SCIO__DTLS_SEEN_DATA)
    scio__dtls_queue_clear(&c->volley);
  else if (seen & SCIO__DTLS_SEEN_HANDSHAKE)
    send_volley(c); /* best effort: the peer will ask again */
}

static int handshake_arg(void *c) { return handshake(c); }

int scio__dtls_chan_handshake(scio__dtls_chan *c) {
  return scio__tls_handshake_timed(handshake_arg, c, c->hs_timeout,
                                   "dtls handshake");
}

/* ---- the object stream -------------------------------------------------- */

static int deliver(scio__dtls_chan *c, scio_datagram *dg, size_t n) {
  size_t k = n < dg->cap ? n : dg->cap;
  if (k)
    memcpy(dg->data, c->scratch, k);
  dg->len = k;
  dg->truncated = n > dg->cap;
  scio_cancel_shielded_checkpoint();
  return 0;
}

static int replaced_err(void) {
  return scio__seterr(SCIO_EBROKEN, "dtls: the peer started a new "
                                    "handshake from the same address");
}

static int receive_loop(scio__dtls_chan *c, scio_datagram *dg) {
  for (;;) {
    if (c->replaced)
      return replaced_err();
    if (c->sink.closed || c->ep->closed)
      return closed_err(c);
    if (c->broken)
      return scio__seterr(SCIO_EBROKEN, "dtls receive: the channel is "
                                        "broken");
    if (c->peer_closed)
      return SCIO_EOF;
    size_t n = 0;
    errors_clear();
    int r = SSL_read_ex(c->ssl, c->scratch, SCRATCH, &n);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
    final_flight(c);
    int rc = flush_out(c); /* alerts */
    if (r == 1)
      return deliver(c, dg, n); /* delivered whatever the flush did */
    if (e == SSL_ERROR_ZERO_RETURN) {
      c->peer_closed = 1;
      return SCIO_EOF;
    }
    if (e != SSL_ERROR_WANT_READ || c->io.oom)
      return ssl_failure(c, r, "dtls receive");
    if (rc < 0)
      return rc;
    if ((rc = scio__dtls_wait(c->ep, &c->sink)) < 0)
      return c->replaced ? replaced_err() : rc;
  }
}

static int chan_receive(scio_ostream *s, void *item) {
  scio__dtls_chan *c = (scio__dtls_chan *)s;
  scio_datagram *dg = item;
  if (!dg->data && dg->cap > 0)
    return scio__seterr(SCIO_EINVAL, "dtls receive: data is NULL");
  if (c->receiving)
    return scio__seterr(SCIO_EBUSY, "dtls receive: another task is "
                                    "receiving on this channel");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  c->receiving = 1;
  rc = receive_loop(c, dg);
  c->receiving = 0;
  return rc;
}

static int chan_send(scio_ostream *s, const void *item) {
  scio__dtls_chan *c = (scio__dtls_chan *)s;
  const scio_datagram *dg = item;
  if (!dg->data && dg->len > 0)
    return scio__seterr(SCIO_EINVAL, "dtls send: data is NULL");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (c->replaced)
    return replaced_err();
  if (c->sink.closed || c->ep->closed)
    return closed_err(c);
  if (c->broken)
    return scio__seterr(SCIO_EBROKEN, "dtls send: the channel is broken");
  size_t mtu = DTLS_get_data_mtu(c->ssl);
  if (dg->len > mtu)
    return scio__seterr(SCIO_EMSGSIZE, "dtls send: %zu bytes do not fit in "
                                       "one datagram (cleartext MTU %zu)",
                        dg->len, mtu);
  if (dg->len == 0)
    return scio__seterr(SCIO_EINVAL, "dtls send: DTLS cannot send an empty "
                                     "datagram");
  size_t w = 0;
  errors_clear();
  if (SSL_write_ex(c->ssl, dg->data, dg->len, &w) != 1 || c->io.oom) {
    int e = ssl_failure(c, 0, "dtls send");
    scio__dtls_queue_clear(&c->io.out);
    return e;
  }
  return flush_out(c);
}

/* close_notify, best effort: one datagram, sent within a second even in a
 * cancelled task. */
static void goodbye(scio__dtls_chan *c) {
  if (!c->handshaken || c->broken || c->ep->closed || !scio_task_current())
    return;
  ERR_clear_error();
  if (SSL_shutdown(c->ssl) < 0) {
    ERR_clear_error();
    scio__dtls_queue_clear(&c->io.out);
    return;
  }
  scio_scope cs;
  if (scio_scope_open(&cs, scio_now() + 1.0, SCIO_SCOPE_SHIELD) < 0)
    return;
  flush_out(c);
  scio_scope_close(&cs);
}

static int chan_close(scio_ostream *s) {
  scio__dtls_chan *c = (scio__dtls_chan *)s;
  goodbye(c);
  unlink_chan(c);
  scio__dtls_sink_close(c->ep, &c->sink);
  return 0;
}

static void chan_free(scio_ostream *s) {
  scio__dtls_chan *c = (scio__dtls_chan *)s;
  SSL_free(c->ssl);
  ERR_clear_error();
  scio__dtls_queue_clear(&c->io.out);
  scio__dtls_queue_clear(&c->volley);
  scio__dtls_queue_clear(&c->sink.in);
  scio__free(c->scratch);
  scio_tls_ctx_close(c->ctx);
  scio__dtls_ep_unref(c->ep);
  scio__free(c);
}

static int chan_attr(scio_ostream *s, int key, void *out, size_t len) {
  scio__dtls_chan *c = (scio__dtls_chan *)s;
  switch (key) {
  case SCIO_ATTR_REMOTE_ADDR:
  case SCIO_ATTR_LOCAL_ADDR:
    if (len < sizeof(struct sockaddr_storage))
      return -ENOSPC;
    if (key == SCIO_ATTR_LOCAL_ADDR)
      return scio_dtls_endpoint_local_addr(c->ep, out);
    memcpy(out, &c->peer.addr, sizeof c->peer.addr);
    return 0;
  case SCIO_ATTR_FAMILY:
    if (len < sizeof(int))
      return -ENOSPC;
    *(int *)out = c->peer.addr.ss_family;
    return 0;
  default:
    return scio__tls_ssl_attr(c->ssl, key, out, len);
  }
}

static const scio_ostream_ops chan_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "dtls",
    .do_send = chan_send,
    .do_receive = chan_receive,
    .do_close = chan_close,
    .do_free = chan_free,
    .do_attr = chan_attr,
};

/* ---- making channels ----------------------------------------------------- */

int scio__dtls_chan_new(scio_dtls_endpoint *ep, scio_tls_ctx *ctx, SSL *ssl,
                        const struct sockaddr_storage *peer,
                        const scio_dtls_opts *o, scio__dtls_chan **out) {
  *out = NULL;
  int rc = scio__dtls_ssl_setup(ssl, o->mtu, peer->ss_family);
  if (rc < 0) {
    SSL_free(ssl);
    return rc;
  }
  scio__dtls_chan *c = scio__calloc(1, sizeof *c);
  unsigned char *scratch = c ? scio__malloc(SCRATCH) : NULL;
  BIO *b = scratch ? scio__dtls_bio_new(&c->io) : NULL;
  if (b) {
    c->peer.addr = *peer;
    c->hnode.addr = &c->peer.addr;
    if (scio__dtls_table_add(&ep->table, &c->hnode) < 0) {
      BIO_free(b);
      b = NULL;
    }
  }
  if (!b) {
    scio__free(scratch);
    scio__free(c);
    SSL_free(ssl);
    ERR_clear_error();
    return scio__seterr(SCIO_ENOMEM, "dtls: out of memory for a channel");
  }
  scio_ostream_init(&c->base, &chan_ops, NULL, sizeof(scio_datagram));
  c->scratch = scratch;
  c->io.in = &c->sink.in;
  c->ssl = ssl;
  SSL_set_bio(ssl, b, b); /* one reference, for both ways */
  SSL_set_app_data(ssl, &c->peer);
  c->peer.ep = ep;
  c->ep = ep;
  scio__dtls_ep_ref(ep);
  c->ctx = ctx;
  scio__tls_ctx_ref(ctx);
  c->hs_timeout = o->handshake_timeout;
  c->rto0 = o->retransmit_timeout > 0 ? o->retransmit_timeout : 1.0;
  scio__list_init(&c->sink.node);
  scio__list_push_back(&ep->channels, &c->link);
  c->linked = 1;
  ep->stats.channels++;
  *out = c;
  return 0;
}

SCIO_API size_t scio_dtls_channel_cleartext_mtu(scio_ostream *ch) {
  if (!ch || ch->ops != &chan_ops)
    return 0;
  return DTLS_get_data_mtu(((scio__dtls_chan *)ch)->ssl);
}

SCIO_API uint64_t scio_dtls_channel_dropped(scio_ostream *ch) {
  if (!ch || ch->ops != &chan_ops)
    return 0;
  return ((scio__dtls_chan *)ch)->sink.dropped;
}
