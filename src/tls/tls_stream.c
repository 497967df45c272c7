/* The TLS stream: OpenSSL over any scio byte stream.
 *
 * OpenSSL only ever talks to the two queues of tls_bio.c; this file moves
 * ciphertext between them and the wrapped stream, as a task, between
 * OpenSSL calls.  Two rules keep that sound:
 *
 *  - Every write of ciphertext to the wrapped stream happens under `wlock`
 *    and takes the whole `out` queue at once, so records reach the peer in
 *    the order OpenSSL produced them even when a receiver (answering a key
 *    update) and a sender both flush.
 *  - Only a receive (or the handshake, close, unwrap, which run alone) reads
 *    from the wrapped stream.  Renegotiation is off, so SSL_write never
 *    needs to read.
 *
 * A flush that fails half-way (cancelled, or the peer vanished) leaves the
 * peer with part of a record: the stream is then broken, and only close
 * works, as in Trio.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "core/layer.h"
#include "scio/sync.h"
#include "streams/stream_internal.h"
#include "tls_bio.h"
#include "tls_internal.h"

/* Room made in the receive queue before each read of the wrapped stream:
 * it starts at IN_ROOM_MIN (a handshake flight) and doubles each time a
 * read fills it, up to IN_ROOM_MAX: several full records (16 KiB + 256
 * each), so bulk transfers read many records per call below. */
#define IN_ROOM_MIN 4096
#define IN_ROOM_MAX 65536
/* SSL_write pieces: each becomes up to four records, then a flush. */
#define WRITE_CHUNK 65536

typedef struct tls_stream {
  scio_stream base;
  SSL *ssl;
  scio_tls_ctx *ctx;
  scio__tls_io io;
  scio_lock wlock;       /* serialises flushes to the wrapped stream */
  int broken;            /* a flush was cut short: only close works */
  int handshaken;
  int peer_closed;       /* the peer's close_notify arrived */
  int ragged_ok;
  int unwrapping;        /* close must not touch the wrapped stream */
  int in_goodbye;        /* close's own close_notify exchange runs */
  int borrowed;          /* the wrapped stream is not ours to close */
  int hs_running;        /* a (deferred) handshake is under way */
  int hs_rc;             /* how the deferred handshake ended */
  scio_event hs_done;    /* set when it ends: a second caller waits */
  double hs_timeout;     /* seconds; 0: none */
  double close_timeout;
  char *hostname;        /* clients: the name verified and cached by */
  unsigned char *der;    /* SCIO_ATTR_PEER_CERT_DER, made on demand */
  int der_len;
} tls_stream;

static const scio_stream_ops tls_ops;

/* ---- moving ciphertext ---------------------------------------------- */

static int mark_broken(tls_stream *t, int rc) {
  if (rc != SCIO_ECLOSED)
    t->broken = 1;
  return rc;
}

/* Send everything in `out`; wlock must be held.  The queue's buffer is
 * swapped out before sending because the other task may append records
 * (and so move the buffer) while this one waits in scio_send. */
static int flush_locked(tls_stream *t) {
  while (t->io.out.len > 0) {
    unsigned char *buf = t->io.out.data;
    size_t len = t->io.out.len, cap = t->io.out.cap;
    t->io.out.data = t->io.spare;
    t->io.out.cap = t->io.spare ? t->io.spare_cap : 0;
    t->io.out.len = 0;
    t->io.spare = NULL;
    int rc = scio_send(t->base.inner, buf, len);
    if (!t->io.out.data) {
      /* Nobody appended meanwhile (the usual case): the buffer goes back
       * to being `out`, and no second one is ever allocated. */
      t->io.out.data = buf;
      t->io.out.cap = cap;
    } else if (!t->io.spare) {
      t->io.spare = buf;
      t->io.spare_cap = cap;
    } else {
      scio__free(buf);
    }
    if (rc < 0)
      return mark_broken(t, rc);
    if (t->base.closed && !t->unwrapping && !t->in_goodbye)
      return SCIO_ECLOSED;
  }
  return 0;
}

static int flush(tls_stream *t) {
  if (t->io.out.len == 0)
    return 0;
  int rc = scio_lock_acquire(&t->wlock);
  if (rc < 0)
    return rc;
  rc = flush_locked(t);
  scio_lock_release(&t->wlock);
  return rc;
}

/* Read more ciphertext from the wrapped stream: 0 (bytes or EOF noted in
 * io.in_eof) or an error.  Always a checkpoint (the wrapped receive). */
static int fill(tls_stream *t) {
  if (t->io.in_room == 0)
    t->io.in_room = IN_ROOM_MIN;
  if (scio__tls_in_reserve(&t->io, t->io.in_room) < 0)
    return scio__seterr(SCIO_ENOMEM, "tls: no memory for the receive "
                                     "buffer");
  scio__tls_queue *q = &t->io.in;
  size_t room = q->cap - q->len;
  ssize_t n = scio_receive(t->base.inner, q->data + q->len, room);
  if (t->base.closed && !t->unwrapping && !t->in_goodbye)
    return scio__seterr(SCIO_ECLOSED, "tls: the stream was closed");
  if (n == SCIO_EOF) {
    t->io.in_eof = 1;
    return 0;
  }
  if (n < 0)
    return (int)n;
  q->len += (size_t)n;
  if ((size_t)n == room && t->io.in_room < IN_ROOM_MAX)
    t->io.in_room *= 2; /* more was waiting: a bulk transfer */
  return 0;
}

/* The error of a failed OpenSSL call `r` (its return value). */
static int ssl_failure(tls_stream *t, int r, const char *what) {
  int e = SSL_get_error(t->ssl, r);
  if (t->io.oom) {
    t->io.oom = 0;
    ERR_clear_error();
    t->broken = 1;
    return scio__seterr(SCIO_ENOMEM, "%s: no memory for TLS records", what);
  }
  t->broken = 1;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
    return scio__tls_seterr(SCIO_EBROKEN, t->ssl, what);
  return scio__tls_seterr(SCIO_ETLS, t->ssl, what);
}

/* ---- the handshake ---------------------------------------------------- */

/* A failed handshake: OpenSSL has usually queued an alert for the peer.
 * Deliver it (best effort: the peer may be gone already), but report the
 * handshake's own error, not the delivery's. */
static int handshake_failure(tls_stream *t, int r) {
  int rc = ssl_failure(t, r, "tls handshake");
  char msg[256];
  snprintf(msg, sizeof msg, "%s", scio_errmsg());
  if (t->io.out.len > 0 && scio_lock_acquire_nowait(&t->wlock) == 0) {
    flush_locked(t);
    scio_lock_release(&t->wlock);
  }
  return scio__seterr(rc, "%s", msg);
}

static int handshake(tls_stream *t) {
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
      return handshake_failure(t, r);
    int rc = flush(t);
    if (rc < 0)
      return rc;
    if (r == 1)
      break;
    if (t->io.in_eof)
      return scio__seterr(SCIO_EBROKEN, "tls handshake: the peer closed the "
                                        "connection");
    if ((rc = fill(t)) < 0)
      return rc;
  }
  t->handshaken = 1;
  return 0;
}

/* The handshake under the handshake_timeout option: SCIO_ETIMEDOUT when it
 * runs out. */
static int handshake_arg(void *t) { return handshake(t); }

static int handshake_timed(tls_stream *t) {
  return scio__tls_handshake_timed(handshake_arg, t, t->hs_timeout,
                                   "tls handshake");
}

/* Deferred handshakes happen at the first receive or send, whichever
 * comes first; the other one waits for it.  A failed handshake breaks the
 * stream: the call that ran it returns its error, later ones
 * SCIO_EBROKEN. */
static int ensure_handshake(tls_stream *t) {
  if (t->handshaken)
    return 0;
  if (t->broken)
    return scio__seterr(SCIO_EBROKEN, "tls: the handshake failed earlier");
  if (t->hs_running) {
    int rc = scio_event_wait(&t->hs_done);
    if (rc < 0)
      return rc;
    return t->handshaken ? 0
                         : scio__seterr(SCIO_EBROKEN, "tls: the handshake "
                                                      "failed");
  }
  t->hs_running = 1;
  int rc = handshake_timed(t);
  t->hs_running = 0;
  t->hs_rc = rc;
  scio_event_set(&t->hs_done);
  if (rc < 0)
    t->broken = 1;
  return rc;
}

/* ---- receive ---------------------------------------------------------- */

/* What the end of the wrapped stream means, when OpenSSL wants more. */
static ssize_t eof_result(tls_stream *t) {
  if (t->ragged_ok)
    return SCIO_EOF;
  t->broken = 1;
  return scio__seterr(SCIO_EBROKEN, "tls receive: the peer closed the "
                                    "connection without close_notify "
                                    "(the data may be truncated)");
}

/* Decrypt what is already buffered, up to max bytes, without waiting:
 * > 0 bytes, 0 (needs more ciphertext), or an error. */
static ssize_t read_buffered(tls_stream *t, unsigned char *buf, size_t max) {
  size_t got = 0;
  /* Once per batch: nothing else runs on this thread until the loop ends,
   * and a successful SSL_read_ex leaves the queue as it found it. */
  ERR_clear_error();
  while (got < max) {
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, buf + got, max - got, &n);
    if (r == 1) {
      got += n;
      continue;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) {
      t->peer_closed = 1;
      break;
    }
    if (e == SSL_ERROR_WANT_READ)
      break;
    if (got > 0)
      break; /* report the error at the next call; deliver what we have */
    return ssl_failure(t, r, "tls receive");
  }
  return (ssize_t)got;
}

static ssize_t tls_receive(scio_stream *s, void *buf, size_t max) {
  tls_stream *t = (tls_stream *)s;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = !t->handshaken;
  if ((rc = ensure_handshake(t)) < 0)
    return rc;
  for (;;) {
    if (t->broken)
      return scio__seterr(SCIO_EBROKEN, "tls receive: the stream is broken");
    if (t->peer_closed)
      return SCIO_EOF;
    ssize_t n = read_buffered(t, buf, max);
    /* A key update or session ticket may have queued an answer. */
    if (n >= 0 && (rc = flush(t)) < 0)
      return rc;
    if (n > 0) {
      if (!yielded)
        scio_cancel_shielded_checkpoint();
      return n;
    }
    if (n < 0)
      return n;
    if (t->peer_closed)
      continue;
    if (t->io.in_eof)
      return eof_result(t);
    if ((rc = fill(t)) < 0)
      return rc;
    yielded = 1;
  }
}

/* ---- send ------------------------------------------------------------ */

static int tls_send(scio_stream *s, const void *buf, size_t len) {
  tls_stream *t = (tls_stream *)s;
  int rc = ensure_handshake(t);
  if (rc < 0)
    return rc;
  if (t->broken)
    return scio__seterr(SCIO_EBROKEN, "tls send: the stream is broken");
  rc = scio_lock_acquire(&t->wlock); /* the checkpoint */
  if (rc < 0)
    return rc;
  const unsigned char *p = buf;
  while (len > 0 && rc == 0) {
    size_t n = len < WRITE_CHUNK ? len : WRITE_CHUNK, w = 0;
    ERR_clear_error();
    int r = SSL_write_ex(t->ssl, p, n, &w);
    if (r != 1) {
      rc = ssl_failure(t, r, "tls send");
      break;
    }
    p += w;
    len -= w;
    rc = flush_locked(t);
  }
  scio_lock_release(&t->wlock);
  return rc;
}

static int tls_send_eof(scio_stream *s) {
  (void)s;
  return scio__seterr(-ENOSYS, "send_eof: TLS has no half-close; close the "
                               "stream or end TLS with scio_tls_unwrap");
}

/* ---- close, free ------------------------------------------------------ */

/* Read and drop records until the peer's close_notify, EOF or an error
 * (with stop_on_data: or until application data arrives, which means the
 * peer is still talking and owes us nothing yet).  Returns 0 once it
 * arrived, or the reason it did not. */
static int await_close_notify(tls_stream *t, size_t *appdata,
                              int stop_on_data) {
  unsigned char scratch[4096];
  for (;;) {
    ssize_t n = read_buffered(t, scratch, sizeof scratch);
    if (n < 0)
      return (int)n;
    *appdata += (size_t)n;
    if (t->peer_closed)
      return 0;
    if (n > 0 && stop_on_data)
      return SCIO_EBROKEN;
    if (n > 0)
      continue;
    if (t->io.in_eof)
      return scio__seterr(SCIO_EBROKEN, "tls: the peer closed the "
                                        "connection without close_notify");
    int rc = fill(t);
    if (rc < 0)
      return rc;
  }
}

/* Send our close_notify: 0 or an error.  wlock must be free or ours. */
static int send_close_notify(tls_stream *t) {
  ERR_clear_error();
  if (SSL_shutdown(t->ssl) < 0) {
    ERR_clear_error();
    return scio__seterr(SCIO_EBROKEN, "tls: could not send close_notify");
  }
  return flush_locked(t);
}

/* The standard-compatible goodbye, bounded by close_timeout and shielded
 * (close runs even in a cancelled task).  Best effort: the connection is
 * closed afterwards whatever happens. */
static void goodbye(tls_stream *t) {
  if (!t->handshaken || t->broken || t->ragged_ok || t->close_timeout < 0 ||
      !scio_task_current())
    return;
  scio_scope cs;
  if (scio_scope_open(&cs, scio_now() + t->close_timeout,
                      SCIO_SCOPE_SHIELD) < 0)
    return;
  /* A sender blocked in a flush holds the lock: then the peer cannot be
   * sent a clean close_notify anyway. */
  t->in_goodbye = 1;
  if (scio_lock_acquire_nowait(&t->wlock) == 0) {
    int rc = send_close_notify(t);
    scio_lock_release(&t->wlock);
    /* A receiver blocked below us owns the wrapped stream's receive side:
     * do not wait for the answer then. */
    size_t ignored = 0;
    if (rc == 0 && !t->peer_closed && !t->base.receiving)
      await_close_notify(t, &ignored, 1);
  }
  t->in_goodbye = 0;
  scio_scope_close(&cs);
}

static int tls_close(scio_stream *s) {
  tls_stream *t = (tls_stream *)s;
  if (t->unwrapping)
    return 0; /* unwrap took the wrapped stream back */
  goodbye(t);
  ERR_clear_error();
  return t->borrowed ? 0 : scio_close(s->inner);
}

static void tls_free(scio_stream *s) {
  tls_stream *t = (tls_stream *)s;
  SSL_free(t->ssl); /* frees the BIO too */
  scio__tls_io_free(&t->io);
  scio_tls_ctx_close(t->ctx);
  scio__free(t->hostname);
  OPENSSL_free(t->der);
  scio__free(t);
}

/* ---- attributes ------------------------------------------------------- */

static int attr_der(tls_stream *t, void *out, size_t len) {
  X509 *x = SSL_get0_peer_certificate(t->ssl);
  if (!x)
    return -ENOENT;
  if (len < sizeof(scio_tls_der))
    return -ENOSPC;
  if (!t->der) {
    int n = i2d_X509(x, &t->der);
    if (n <= 0) {
      t->der = NULL;
      ERR_clear_error();
      return scio__seterr(SCIO_ENOMEM, "tls: no memory for the DER "
                                       "certificate");
    }
    t->der_len = n;
  }
  scio_tls_der d = {t->der, (size_t)t->der_len};
  memcpy(out, &d, sizeof d);
  return 0;
}

static int tls_attr(scio_stream *s, int key, void *out, size_t len) {
  tls_stream *t = (tls_stream *)s;
  switch (key) {
  case SCIO_ATTR_PEER_CERT_DER:
    return attr_der(t, out, len);
  case SCIO_ATTR_SERVER_NAME:
    return scio__tls_put_str(
        SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name)
            ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name)
            : t->hostname,
        out, len);
  case SCIO_ATTR_LAYER:
    return scio__tls_put_str("tls", out, len);
  default:
    return scio__tls_ssl_attr(t->ssl, key, out, len);
  }
}

static const scio_stream_ops tls_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "tls",
    .do_receive = tls_receive,
    .do_send = tls_send,
    .do_send_eof = tls_send_eof,
    .do_close = tls_close,
    .do_free = tls_free,
    .do_attr = tls_attr,
};

/* ---- wrap, unwrap ------------------------------------------------------ */

int scio__tls_new_session_cb(SSL *ssl, SSL_SESSION *sess) {
  tls_stream *t = SSL_get_app_data(ssl);
  if (t && t->hostname)
    scio__tls_session_put(t->ctx, t->hostname, sess);
  return 0; /* OpenSSL keeps its own reference */
}

static int is_ip_literal(const char *h) {
  unsigned char a[16];
  return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* Clients: SNI, the name to verify, a cached session. */
static int set_peer_name(tls_stream *t, const char *host) {
  size_t n = strlen(host);
  if (!(t->hostname = scio__malloc(n + 1)))
    return scio__seterr(SCIO_ENOMEM, "tls wrap: out of memory");
  memcpy(t->hostname, host, n + 1);
  int ok;
  if (is_ip_literal(host)) {
    ok = !t->ctx->verify ||
         X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1;
  } else {
    ok = SSL_set_tlsext_host_name(t->ssl, host) == 1 &&
         (!t->ctx->verify || SSL_set1_host(t->ssl, host) == 1);
  }
  /* The name is a C string, so these only fail for lack of memory. */
  if (!ok)
    return scio__tls_seterr(SCIO_ENOMEM, NULL, "tls wrap: server_hostname");
  if (t->ctx->resume) {
    SSL_SESSION *sess = scio__tls_session_get(t->ctx, host);
    if (sess) {
      SSL_set_session(t->ssl, sess);
      SSL_SESSION_free(sess);
    }
  }
  return 0;
}

static int setup(tls_stream *t, scio_tls_ctx *ctx, const scio_tls_opts *o) {
  t->ctx = ctx;
  scio__tls_ctx_ref(ctx);
  scio_lock_init(&t->wlock, 0);
  t->ragged_ok = o->ragged_eof_ok;
  t->hs_timeout = o->handshake_timeout;
  scio_event_init(&t->hs_done);
  t->close_timeout = o->close_timeout == 0 ? 1.0 : o->close_timeout;
  t->ssl = SSL_new(ctx->ssl_ctx);
  BIO *b = t->ssl ? scio__tls_bio_new(&t->io) : NULL;
  if (!b) {
    ERR_clear_error();
    return scio__seterr(SCIO_ENOMEM, "tls wrap: out of memory");
  }
  SSL_set_bio(t->ssl, b, b); /* takes our one reference, for both ways */
  SSL_set_app_data(t->ssl, t);
  if (ctx->role == SCIO_TLS_SERVER) {
    SSL_set_accept_state(t->ssl);
    return 0;
  }
  SSL_set_connect_state(t->ssl);
  if (o->server_hostname)
    return set_peer_name(t, o->server_hostname);
  if (ctx->verify)
    return scio__seterr(SCIO_EINVAL, "tls wrap: a verifying client needs "
                                     "server_hostname");
  return 0;
}

SCIO_API int scio_tls_wrap(scio_stream *inner, scio_tls_ctx *ctx,
                           const scio_tls_opts *opts, scio_stream **out) {
  if (out)
    *out = NULL;
  if (!inner || !ctx || !out)
    return scio__seterr(SCIO_EINVAL, "tls wrap: NULL argument");
  if (ctx->dtls)
    return scio__seterr(SCIO_EINVAL, "tls wrap: a DTLS context "
                                     "(scio_dtls_ctx_open) cannot wrap a "
                                     "stream");
  if (inner->closed)
    return scio__seterr(SCIO_ECLOSED, "tls wrap: the stream to wrap is "
                                      "closed");
  static const scio_tls_opts defaults;
  tls_stream *t = scio__calloc(1, sizeof *t);
  if (!t)
    return scio__seterr(SCIO_ENOMEM, "tls wrap: out of memory");
  scio_stream_init(&t->base, &tls_ops, inner);
  const scio_tls_opts *o = opts ? opts : &defaults;
  int rc = setup(t, ctx, o);
  if (rc == 0 && !o->defer_handshake)
    rc = handshake_timed(t);
  if (rc < 0) {
    /* The wrapped stream goes back to the caller, as with every layer
     * whose constructor fails; the TLS object alone is released. */
    char msg[256];
    snprintf(msg, sizeof msg, "%s", scio_errmsg());
    t->unwrapping = 1;
    t->base.inner = NULL;
    scio_close(&t->base);
    ERR_clear_error();
    return scio__seterr(rc, "%s", msg);
  }
  *out = &t->base;
  return 0;
}

SCIO_API int scio_tls_handshake(scio_stream *s) {
  if (!s || s->ops != &tls_ops)
    return scio__seterr(SCIO_EINVAL, "tls handshake: not a TLS stream");
  /* Bracketed like a receive (it reads the wrapped stream): a close
   * meanwhile defers the free, a concurrent receiver is SCIO_EBUSY. */
  int rc = scio__stream_enter_receive(s, "tls handshake");
  if (rc < 0)
    return rc;
  tls_stream *t = (tls_stream *)s;
  rc = t->handshaken ? scio_checkpoint() : ensure_handshake(t);
  scio__stream_leave_receive(s);
  return rc;
}

/* ---- serving ------------------------------------------------------------ */

SCIO_API void scio_tls_handler_init(scio_tls_handler *h, scio_tls_ctx *ctx,
                                    const scio_tls_opts *opts,
                                    scio_serve_handler handler, void *arg) {
  memset(h, 0, sizeof *h);
  h->ctx = ctx;
  if (opts)
    h->opts = *opts;
  if (h->opts.handshake_timeout == 0)
    h->opts.handshake_timeout = 10.0;
  h->handler = handler;
  h->arg = arg;
}

/* The handshake runs here, in the connection's own task, under the
 * handshake timeout; serve owns `conn`, so the TLS stream only borrows it
 * and serve closes it after the TLS goodbye. */
SCIO_API int scio_tls_serve_handler(scio_stream *conn, void *arg) {
  scio_tls_handler *h = arg;
  if (!h || !h->ctx || !h->handler)
    return scio__seterr(SCIO_EINVAL, "tls serve: handler not initialised");
  scio_stream *tls;
  int rc = scio_tls_wrap(conn, h->ctx, &h->opts, &tls);
  if (rc < 0)
    return rc;
  ((tls_stream *)tls)->borrowed = 1;
  rc = h->handler(tls, h->arg);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", rc < 0 ? scio_errmsg() : "");
  scio_close(tls);
  return rc < 0 ? scio__seterr(rc, "%s", msg) : 0;
}

/* scio_layer.wrap for TLS: the opener's host name is the default
 * server_hostname. */
static int layer_wrap(const scio_layer *self, const char *host,
                      scio_stream *inner, scio_stream **out) {
  const scio_tls_layer *tl = (const scio_tls_layer *)self;
  scio_tls_opts o = tl->opts;
  if (!o.server_hostname)
    o.server_hostname = host;
  return scio_tls_wrap(inner, tl->ctx, &o, out);
}

SCIO_API void scio_tls_layer_init(scio_tls_layer *layer, scio_tls_ctx *ctx,
                                  const scio_tls_opts *opts) {
  memset(layer, 0, sizeof *layer);
  layer->base.wrap = layer_wrap;
  layer->ctx = ctx;
  if (opts)
    layer->opts = *opts;
}

SCIO_API SSL *scio_tls_ssl(scio_stream *s) {
  return s && s->ops == &tls_ops ? ((tls_stream *)s)->ssl : NULL;
}

/* The shutdown exchange of unwrap; t is not in use by anyone else. */
static int unwrap_exchange(tls_stream *t) {
  if (t->broken)
    return scio__seterr(SCIO_EBROKEN, "tls unwrap: the stream is broken");
  int rc = scio_lock_acquire(&t->wlock);
  if (rc < 0)
    return rc;
  rc = send_close_notify(t);
  scio_lock_release(&t->wlock);
  size_t appdata = 0;
  if (rc == 0 && !t->peer_closed)
    rc = await_close_notify(t, &appdata, 0);
  if (rc == 0 && appdata > 0)
    rc = scio__seterr(SCIO_EBROKEN, "tls unwrap: %zu bytes of application "
                                    "data arrived before the peer's "
                                    "close_notify",
                      appdata);
  return rc;
}

SCIO_API int scio_tls_unwrap(scio_stream *s, scio_stream **inner,
                             void *trailing, size_t cap, size_t *ntrailing) {
  if (inner)
    *inner = NULL;
  if (ntrailing)
    *ntrailing = 0;
  if (!s || s->ops != &tls_ops || !inner || (cap && !trailing))
    return scio__seterr(SCIO_EINVAL, "tls unwrap: not a TLS stream, or a "
                                     "NULL argument");
  tls_stream *t = (tls_stream *)s;
  if (s->closed || s->inflight || s->receiving || s->sending)
    return scio__seterr(s->closed ? SCIO_ECLOSED : SCIO_EBUSY,
                        "tls unwrap: the stream is closed or in use");
  s->inflight++; /* keep it alive across the exchange */
  int rc = unwrap_exchange(t);
  size_t left = t->io.in.len - t->io.in.off;
  if (rc == 0 && left > cap)
    rc = scio__seterr(-ENOSPC, "tls unwrap: %zu trailing bytes do not fit "
                               "in %zu",
                      left, cap);
  s->inflight--;
  if (rc < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", scio_errmsg());
    t->broken = 1;
    scio_close(s);
    return scio__seterr(rc, "%s", msg);
  }
  if (left)
    memcpy(trailing, t->io.in.data + t->io.in.off, left);
  if (ntrailing)
    *ntrailing = left;
  *inner = s->inner;
  t->unwrapping = 1;
  s->inner = NULL;
  scio_close(s);
  return 0;
}
