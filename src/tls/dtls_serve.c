/* DTLS servers: cookies for strangers, a channel and a task for each
 * client that proves its address.
 *
 * Datagrams from addresses without a channel come to serve.  Each goes,
 * alone, through DTLSv1_listen on one listening SSL: without a valid
 * cookie OpenSSL writes a HelloVerifyRequest (sent back at once) and
 * keeps nothing; with one, that SSL holds the ClientHello and becomes the
 * new client's channel, and a fresh listening SSL takes its place.
 */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "dtls_internal.h"
#include "net/net_internal.h"

#define SERVE_HANDSHAKE_TIMEOUT 10.0

typedef struct serve_state {
  scio__dtls_peer peer;  /* app data of the listening SSL */
  scio__dtls_sink sink;  /* datagrams from unknown addresses */
  scio__dtls_queue one;  /* the listening SSL's input: one at a time */
  scio__dtls_io io;
  SSL *ssl;              /* listening */
  BIO_ADDR *baddr;
  scio_dtls_endpoint *ep;
  scio_tls_ctx *ctx;
  scio_dtls_opts o;
  scio_dtls_handler handler;
  void *arg;
  scio_nursery *nursery;
} serve_state;

/* What a connection's task needs (serve may be gone when it runs). */
typedef struct serve_conn {
  scio__dtls_chan *c;
  scio_dtls_endpoint *ep; /* the channel holds a reference */
  struct sockaddr_storage peer;
  scio_dtls_handler handler;
  void *arg;
  scio_serve_error_fn on_error;
  void *error_ctx;
} serve_conn;

static void default_report(void *ctx, const struct sockaddr_storage *peer,
                           int code, const char *detail) {
  (void)ctx;
  scio__serve_report_line("scio dtls serve", "?", peer, code, detail);
}

static int conn_task(void *p) {
  serve_conn sc = *(serve_conn *)p;
  scio__free(p);
  scio_ostream *s = scio__dtls_chan_stream(sc.c);
  int rc = scio__dtls_chan_handshake(sc.c);
  if (rc == 0)
    rc = sc.handler(s, sc.arg);
  /* Cancelled, or the endpoint closed under it: the server is stopping,
   * which is no failure of this client's. */
  int stopping =
      (rc == SCIO_ECANCELED && scio__task_cancelled(scio__task_cur())) ||
      (rc == SCIO_ECLOSED && sc.ep->closed);
  if (rc < 0 && !stopping)
    sc.on_error(sc.error_ctx, &sc.peer, rc, scio_errmsg());
  scio_ostream_close(s);
  return 0;
}

static int new_listener(serve_state *sv) {
  SSL *ssl = SSL_new(sv->ctx->ssl_ctx);
  BIO *b = ssl ? scio__dtls_bio_new(&sv->io) : NULL;
  if (!b) {
    SSL_free(ssl);
    ERR_clear_error();
    return scio__seterr(SCIO_ENOMEM, "dtls serve: out of memory");
  }
  SSL_set_bio(ssl, b, b);
  SSL_set_app_data(ssl, &sv->peer);
  SSL_set_accept_state(ssl);
  int rc = scio__dtls_ssl_setup(ssl, sv->o.mtu, AF_INET);
  if (rc < 0) {
    SSL_free(ssl);
    return rc;
  }
  sv->ssl = ssl;
  return 0;
}

/* The listening SSL accepted a cookie from `peer`: it becomes a channel
 * with a task of its own. */
static void accept_client(serve_state *sv, const struct sockaddr_storage *peer,
                          const unsigned char *hello_random) {
  SSL *ssl = sv->ssl;
  sv->ssl = NULL;
  scio__dtls_chan *old = scio__dtls_chan_find(sv->ep, peer);
  if (old) /* the peer restarted: its old channel is broken */
    scio__dtls_chan_replace(old);
  serve_conn *sc = scio__malloc(sizeof *sc);
  scio__dtls_chan *c = NULL;
  int rc = sc ? scio__dtls_chan_new(sv->ep, sv->ctx, ssl, peer, &sv->o, &c)
              : (SSL_free(ssl), SCIO_ENOMEM);
  if (rc == 0) {
    scio__dtls_chan_set_hello(c, hello_random);
    *sc = (serve_conn){c, sv->ep, *peer, sv->handler, sv->arg, sv->o.on_error,
                       sv->o.error_ctx};
    rc = scio_start_soon_named(sv->nursery, conn_task, sc, "dtls-connection");
    if (rc < 0)
      scio_ostream_close(scio__dtls_chan_stream(c));
  }
  if (rc < 0)
    scio__free(sc);
  new_listener(sv); /* without one, the next datagram makes one */
}

static void on_datagram(serve_state *sv, scio__dtls_dgram *d) {
  struct sockaddr_storage from = d->peer;
  /* Queued before an earlier datagram of the same peer made its channel
   * (a retransmitted ClientHello): the channel's now. */
  scio__dtls_chan *c = scio__dtls_chan_find(sv->ep, &from);
  if (c && !scio__dtls_chan_new_hello(c, d->data, d->len)) {
    scio__dtls_deliver(sv->ep, scio__dtls_chan_sink(c), d);
    return;
  }
  if (!sv->ssl && new_listener(sv) < 0) {
    scio__free(d);
    sv->ep->stats.dropped++;
    return;
  }
  sv->peer.addr = from;
  unsigned char rnd[32] = {0};
  const unsigned char *hr = scio__dtls_hello_random(d->data, d->len);
  if (hr)
    memcpy(rnd, hr, sizeof rnd);
  scio__dtls_push(&sv->one, d);
  ERR_clear_error();
  int r = DTLSv1_listen(sv->ssl, sv->baddr);
  scio__dtls_queue_clear(&sv->one);
  int answered = sv->io.out.n > 0;
  scio__dtls_dgram *o;
  while ((o = scio__dtls_pop(&sv->io.out))) {
    if (scio__dtls_send(sv->ep, &from, o->data, o->len) == 0)
      sv->ep->stats.hello_verify_sent++;
    scio__free(o);
  }
  ERR_clear_error();
  if (r == 1) {
    accept_client(sv, &from, rnd);
    return;
  }
  if (!answered)
    sv->ep->stats.garbage++;
  if (r < 0) { /* start over with a clean listening SSL */
    SSL_free(sv->ssl);
    sv->ssl = NULL;
    new_listener(sv);
  }
}

static int serve_loop(serve_state *sv) {
  for (;;) {
    int rc = scio__dtls_wait(sv->ep, &sv->sink);
    if (rc < 0)
      return rc == SCIO_ECLOSED ? 0 : rc;
    /* Sending a cookie is a checkpoint: the endpoint may close meanwhile
     * (serve_fini drops what is left). */
    scio__dtls_dgram *d;
    while (!sv->ep->closed && (d = scio__dtls_pop(&sv->sink.in)))
      on_datagram(sv, d);
  }
}

static int check_args(scio_dtls_endpoint *ep, scio_tls_ctx *ctx,
                      scio_dtls_handler handler) {
  if (!ep || !ctx || !handler || !scio_task_current())
    return scio__seterr(SCIO_EINVAL, "dtls serve: NULL argument, or not in "
                                     "a task");
  if (!ctx->dtls || ctx->role != SCIO_TLS_SERVER)
    return scio__seterr(SCIO_EINVAL, "dtls serve: not a DTLS server context "
                                     "(scio_dtls_ctx_open)");
  if (ep->serve)
    return scio__seterr(SCIO_EBUSY, "dtls serve: the endpoint is served "
                                    "already");
  return scio_checkpoint_if_cancelled();
}

static int serve_init(serve_state *sv, scio_dtls_endpoint *ep,
                      scio_tls_ctx *ctx, const scio_dtls_opts *opts) {
  memset(sv, 0, sizeof *sv);
  sv->ep = ep;
  sv->ctx = ctx;
  sv->peer.ep = ep;
  if (opts)
    sv->o = *opts;
  if (sv->o.handshake_timeout == 0)
    sv->o.handshake_timeout = SERVE_HANDSHAKE_TIMEOUT;
  if (!sv->o.on_error)
    sv->o.on_error = default_report;
  sv->io.in = &sv->one;
  scio__list_init(&sv->sink.node);
  if (!(sv->baddr = BIO_ADDR_new())) {
    ERR_clear_error();
    return scio__seterr(SCIO_ENOMEM, "dtls serve: out of memory");
  }
  return new_listener(sv);
}

static void serve_fini(serve_state *sv) {
  SSL_free(sv->ssl);
  BIO_ADDR_free(sv->baddr);
  scio__dtls_queue_clear(&sv->one);
  scio__dtls_queue_clear(&sv->io.out);
  scio__dtls_queue_clear(&sv->sink.in);
  ERR_clear_error();
}

SCIO_API int scio_dtls_serve(scio_dtls_endpoint *ep, scio_tls_ctx *ctx,
                             scio_dtls_handler handler, void *arg,
                             scio_nursery *nursery,
                             const scio_dtls_opts *opts) {
  int rc = check_args(ep, ctx, handler);
  if (rc < 0)
    return rc;
  if (ep->closed)
    return 0;
  serve_state sv;
  if ((rc = serve_init(&sv, ep, ctx, opts)) < 0) {
    serve_fini(&sv);
    return rc;
  }
  sv.handler = handler;
  sv.arg = arg;
  scio_nursery own;
  if (!nursery && (rc = scio_nursery_open(&own)) < 0) {
    serve_fini(&sv);
    return rc;
  }
  sv.nursery = nursery ? nursery : &own;
  scio__dtls_ep_ref(ep);
  ep->serve = &sv.sink;
  rc = serve_loop(&sv);
  ep->serve = NULL;
  scio__dtls_sink_close(ep, &sv.sink);
  serve_fini(&sv);
  if (!nursery) {
    int crc = scio_nursery_close(&own);
    if (rc == 0)
      rc = crc;
  }
  scio__dtls_ep_unref(ep);
  return rc;
}
