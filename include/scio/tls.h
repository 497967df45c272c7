/* scio — TLS over any byte stream (OpenSSL 3).
 *
 *   scio_tls_ctx *ctx;                        one per configuration, shared
 *   scio_tls_ctx_opts co = {0};               client defaults: system trust
 *   scio_tls_ctx_open(&co, &ctx);             store, peer verification
 *   scio_tls_opts o = {.server_hostname = "example.org"};
 *   scio_stream *tls;
 *   rc = scio_tls_wrap(tcp, ctx, &o, &tls);   handshake; tls now owns tcp
 *   scio_send(tls, ...); scio_receive(tls, ...);
 *   scio_close(tls);                          close_notify, then closes tcp
 *   scio_tls_ctx_close(ctx);
 *
 * A TLS stream is a scio_stream like any other (<scio/stream.h>), stacked
 * on any byte stream: a TCP or UNIX socket, a memory pipe, another TLS
 * stream.  It owns the stream it wraps.
 *
 * Contexts.  A scio_tls_ctx holds one OpenSSL SSL_CTX: certificates, trust
 * store, ALPN list, session cache.  Load it once and use it for many
 * connections: loading the system trust store costs far more than a
 * handshake.  It is reference-counted: every TLS stream holds a reference,
 * so scio_tls_ctx_close may be called while streams still use it.  A
 * context may be shared by the runs of several threads once it is built.
 *
 * Defaults are safe.  A client verifies the server's certificate chain
 * against the system trust store (or the CAs given) and checks that it
 * names scio_tls_opts.server_hostname (a DNS name or an IP literal); SNI is
 * sent for DNS names; TLS 1.2 is the lowest version; renegotiation is off.
 *
 * Cancellation.  OpenSSL is driven through a non-blocking BIO of scio's
 * own, so a task can only be cancelled between OpenSSL calls, never inside
 * one: the session is never left half-updated.  What a cancelled call
 * leaves behind:
 *   - scio_receive: nothing is lost; the stream stays usable.  Bytes of a
 *     partial record stay buffered for the next receive.
 *   - scio_send: the data was encrypted and some of it may have reached
 *     the peer; the TLS stream is then *broken*: every later call except
 *     scio_close returns SCIO_EBROKEN (Trio's rule).
 *   - scio_tls_wrap (the handshake): wrap returns SCIO_ECANCELED and the
 *     wrapped stream is the caller's again, to close.
 *   - a receive that had to send (a key-update answer) and was cancelled
 *     while sending: broken, as for scio_send.
 * One task may receive while another sends; the layer serialises its own
 * writes to the wrapped stream, so neither sees SCIO_EBUSY because of the
 * other.  Two concurrent receivers (or senders) get SCIO_EBUSY.
 *
 * End of stream.  With the default (standard-compatible) behaviour, a peer
 * that closes the connection without a close_notify alert is SCIO_EBROKEN
 * (the data may have been truncated by an attacker), and scio_close sends
 * close_notify and waits briefly for the peer's.  With
 * scio_tls_opts.ragged_eof_ok, such an EOF is a plain SCIO_EOF (what many
 * HTTPS servers need).  TLS has no half-close: scio_send_eof is
 * SCIO_ENOSYS; use scio_tls_unwrap to end TLS and keep the connection.
 *
 * Errors, besides those of <scio/stream.h> and of the wrapped stream:
 *   SCIO_ETLS    the handshake or a record failed: certificate verification
 *                (scio_errmsg(): "certificate verify failed: hostname
 *                mismatch"), an alert from the peer, a protocol error.  The
 *                stream is broken.  OpenSSL's error queue is left empty.
 *
 * Attributes (scio_stream_attr), besides those of the wrapped stream:
 *   SCIO_ATTR_ALPN, SCIO_ATTR_TLS_VERSION, SCIO_ATTR_CIPHER (char[]),
 *   SCIO_ATTR_PEER_CERT (X509 *, borrowed: valid while the stream is),
 *   SCIO_ATTR_PEER_CERT_DER (scio_tls_der: a borrowed DER encoding),
 *   SCIO_ATTR_SERVER_NAME (char[]: the name a client asked for, or the SNI
 *   a server saw; SCIO_ENOENT when there was none), SCIO_ATTR_LAYER ("tls").
 *
 * Public headers name no OpenSSL type beyond these forward declarations.
 * The application owns OpenSSL's global set-up (OpenSSL 3 initialises
 * itself).  Available since 0.1.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_TLS_H
#define SCIO_TLS_H

#include <stddef.h>

#include "scio/net.h"
#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ssl_ctx_st; /* SSL_CTX */
struct ssl_st;     /* SSL */

typedef struct scio_tls_ctx scio_tls_ctx;

/* Attribute keys of TLS streams (beyond enum scio_attr). */
enum scio_tls_attr {
  SCIO_ATTR_PEER_CERT_DER = 20, /* scio_tls_der */
  SCIO_ATTR_SERVER_NAME = 21    /* char[] */
};

/* SCIO_ATTR_PEER_CERT_DER: the peer certificate's DER bytes, borrowed from
 * the stream (valid until it is closed). */
typedef struct scio_tls_der {
  const unsigned char *data;
  size_t len;
} scio_tls_der;

enum scio_tls_role { SCIO_TLS_CLIENT = 0, SCIO_TLS_SERVER = 1 };

/* Protocol versions for min_version / max_version (0: the default). */
enum scio_tls_version { SCIO_TLS_1_2 = 0x0303, SCIO_TLS_1_3 = 0x0304 };

/* Servers: whether to ask clients for a certificate. */
enum scio_tls_client_cert {
  SCIO_TLS_CLIENT_CERT_NONE = 0,     /* do not ask (the default) */
  SCIO_TLS_CLIENT_CERT_OPTIONAL = 1, /* ask; verify one if sent */
  SCIO_TLS_CLIENT_CERT_REQUIRED = 2  /* a client without one fails */
};

/* Options of scio_tls_ctx_open.  All-zero (or NULL) is a client with the
 * safe defaults above.  Strings are copied or loaded during the call. */
typedef struct scio_tls_ctx_opts {
  int role; /* enum scio_tls_role */
  /* Trust anchors for verifying the peer, as a PEM file, an OpenSSL hashed
   * directory, or PEM text in memory (any of them; several add up).  A
   * client given none uses the system store; a server verifying client
   * certificates needs one. */
  const char *ca_file;
  const char *ca_dir;
  const char *ca_pem;
  /* This side's certificate chain (leaf first) and private key, as PEM
   * files or PEM text.  Required for a server; optional client
   * certificate for a client. */
  const char *cert_file;
  const char *key_file;
  const char *cert_pem;
  const char *key_pem;
  /* ALPN protocols, comma-separated in order of preference, e.g.
   * "h2,http/1.1".  A client offers them; a server picks the first of its
   * list that the client offers, and fails the handshake with the
   * no_application_protocol alert when there is none.  NULL: no ALPN. */
  const char *alpn;
  int min_version, max_version; /* enum scio_tls_version; 0: 1.2 and max */
  const char *cipher_list;      /* TLS <= 1.2, OpenSSL syntax; NULL: default */
  const char *ciphersuites;     /* TLS 1.3, OpenSSL syntax; NULL: default */
  int client_cert;              /* servers: enum scio_tls_client_cert */
  /* Clients: do not verify the server at all.  For tests against
   * throw-away servers only: it makes TLS useless against an attacker. */
  int insecure_no_verify;
  /* Session resumption is on by default: a client keeps the last session
   * per server name and offers it again; a server issues session tickets.
   * Set to turn it off. */
  int no_session_resumption;
} scio_tls_ctx_opts;

/* Build a context.  Not a checkpoint (it may read files and, for a client
 * without CAs, the system trust store).  On success *out holds one
 * reference.  Returns 0, or (with *out NULL):
 *   SCIO_EINVAL  bad options (a server without certificate or key, an
 *                unknown role or version, an empty ALPN name);
 *   SCIO_ETLS    OpenSSL refused something: a file that cannot be read or
 *                parsed, a key that does not match the certificate, a
 *                cipher list that selects nothing (detail in scio_errmsg());
 *   SCIO_ENOMEM. */
SCIO_API int scio_tls_ctx_open(const scio_tls_ctx_opts *opts,
                               scio_tls_ctx **out);

/* Wrap an SSL_CTX the application configured itself; the context takes a
 * reference to it (SSL_CTX_up_ref) and does not change its settings.
 * `role` is enum scio_tls_role.  On success *out is owned by the caller
 * (scio_tls_ctx_close); the caller keeps its own reference to ssl_ctx.
 * Not a checkpoint.  Returns 0, SCIO_EINVAL or SCIO_ENOMEM. */
SCIO_API int scio_tls_ctx_open_ssl(struct ssl_ctx_st *ssl_ctx, int role,
                                   scio_tls_ctx **out);

/* Drop the caller's reference; the context is freed with its last stream.
 * NULL is ignored.  Not a checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_tls_ctx_close(scio_tls_ctx *ctx);

/* The SSL_CTX inside (borrowed: owned by ctx, valid while ctx is), for
 * settings scio has no option for; NULL for NULL.  Not a checkpoint.
 * Never fails. */
SCIO_API struct ssl_ctx_st *scio_tls_ctx_ssl_ctx(scio_tls_ctx *ctx);

/* Options of scio_tls_wrap.  All-zero (or NULL) means defaults. */
typedef struct scio_tls_opts {
  /* Clients: the server's name, sent as SNI (for DNS names) and checked
   * against its certificate.  Required for a verifying client.  Servers:
   * ignored. */
  const char *server_hostname;
  /* Accept an EOF without close_notify as a plain SCIO_EOF, and do not
   * send or wait for close_notify on close (standard_compatible = false). */
  int ragged_eof_ok;
  /* How long scio_close waits, shielded, to deliver close_notify and read
   * the peer's.  0 means 1 second; negative: do not wait at all. */
  double close_timeout;
  /* Seconds the handshake may take (0: no limit of its own; the caller's
   * scopes still apply).  Running out is SCIO_ETIMEDOUT. */
  double handshake_timeout;
  /* Return from scio_tls_wrap at once, without I/O (then not a
   * checkpoint), and run the handshake at the first receive or send, or
   * at scio_tls_handshake: for a server that must not handshake in its
   * accept loop (a TLS listener does this).  A failed deferred handshake
   * is returned by the call that ran it; the stream is then broken. */
  int defer_handshake;
} scio_tls_opts;

/* Run the TLS handshake over `inner` and give back a TLS stream that owns
 * it.  A checkpoint: the handshake honours the caller's cancel scopes (use
 * one for a handshake timeout).  On failure *out is NULL and `inner` is
 * still the caller's, to close (the peer may have seen part of a
 * handshake: it is no use for anything else).  Returns 0, or:
 *   SCIO_EINVAL     NULL argument, or a verifying client without
 *                   server_hostname;
 *   SCIO_ECLOSED    `inner` is closed;
 *   SCIO_ETLS       the handshake failed (the peer's certificate, an
 *                   alert, a protocol error; detail in scio_errmsg());
 *   SCIO_EBROKEN    the peer closed the connection during the handshake;
 *   SCIO_ETIMEDOUT  handshake_timeout ran out;
 *   SCIO_ECANCELED, SCIO_ENOMEM, any error of the wrapped stream. */
SCIO_API int scio_tls_wrap(scio_stream *inner, scio_tls_ctx *ctx,
                           const scio_tls_opts *opts, scio_stream **out);

/* Run the handshake of a stream wrapped with defer_handshake now (another
 * task's handshake under way is waited for); a plain checkpoint when it is
 * done already.  Counts as a receive: SCIO_EBUSY while another task
 * receives.  A checkpoint.  Returns 0, SCIO_EINVAL (not a TLS stream),
 * SCIO_ECLOSED, SCIO_EBUSY, or the handshake's errors as for scio_tls_wrap
 * (the stream then stays open but broken: close it). */
SCIO_API int scio_tls_handshake(scio_stream *tls);

/* End TLS on `tls` and keep the connection: send close_notify, wait for
 * the peer's, then release the TLS stream and hand back the stream it
 * wrapped in *inner.  Bytes that arrived after the peer's close_notify
 * belong to whatever protocol follows: up to `cap` of them are copied to
 * `trailing` and their count stored in *ntrailing (which may be NULL when
 * cap is 0).  A checkpoint.  No other call may be running on `tls`.
 * Returns 0, or (with `tls` closed, the wrapped stream too, and *inner
 * NULL):
 *   SCIO_EINVAL    NULL argument or `tls` is not a TLS stream;
 *   SCIO_EBUSY     another task is inside a call on `tls`;
 *   SCIO_ENOSPC    more trailing bytes arrived than `cap`;
 *   SCIO_EBROKEN, SCIO_ETLS, SCIO_ECANCELED, errors of the wrapped stream. */
SCIO_API int scio_tls_unwrap(scio_stream *tls, scio_stream **inner,
                             void *trailing, size_t cap, size_t *ntrailing);

/* TLS as a layer that openers put over their streams: scio_connect_tcp
 * (scio_connect_opts.layer) returns a TLS stream whose server_hostname
 * defaults to the host connected to.
 *
 *   scio_tls_layer tl;
 *   scio_tls_layer_init(&tl, ctx, NULL);
 *   scio_connect_opts co = {.layer = &tl.base};
 *   rc = scio_connect_tcp("example.org", 443, &co, &tls_stream);
 *
 * Below: scio_tls_layer_init. */
typedef struct scio_tls_layer {
  scio_layer base; /* first */
  scio_tls_ctx *ctx;
  scio_tls_opts opts;
} scio_tls_layer;

/* Set up the caller's `layer` (storage it owns) for the TLS layer above;
 * opts NULL means defaults.  The layer keeps pointers to ctx and to the
 * strings of opts (opts itself is copied): they must outlive its uses.
 * Not a checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_tls_layer_init(scio_tls_layer *layer, scio_tls_ctx *ctx,
                                  const scio_tls_opts *opts);

/* TLS servers: a serve handler that runs the handshake in each
 * connection's task (bounded by opts.handshake_timeout, 10 s when 0) and
 * then calls the user's handler with the TLS stream, over any listener:
 *
 *   scio_tls_handler th;
 *   scio_tls_handler_init(&th, server_ctx, NULL, echo, NULL);
 *   scio_listener_serve(listener, scio_tls_serve_handler, &th, NULL, NULL);
 *
 * A failed or timed-out handshake is the connection's error: it goes to
 * serve's error hook ("tls handshake: ...") and never stops serve.  The
 * user's handler must not close the TLS stream (serve owns the
 * connection): when it returns, close_notify is exchanged and the
 * connection closed.  Below: scio_tls_handler_init. */
typedef struct scio_tls_handler {
  scio_tls_ctx *ctx;
  scio_tls_opts opts;
  scio_serve_handler handler;
  void *arg;
} scio_tls_handler;

/* Set up the caller's `h` for scio_tls_serve_handler (above): the server
 * context, options (NULL: defaults; copied, their strings kept by
 * pointer), and the user's handler with its arg.  `h` and ctx must
 * outlive serve.  Not a checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_tls_handler_init(scio_tls_handler *h, scio_tls_ctx *ctx,
                                    const scio_tls_opts *opts,
                                    scio_serve_handler handler, void *arg);

/* The scio_serve_handler that does the above; `arg` is the
 * scio_tls_handler, borrowed.  Serve calls it in each connection's task,
 * which owns conn.  A checkpoint (the handshake, then the user's handler,
 * then close_notify).  Returns the handshake's error (SCIO_ETLS,
 * SCIO_ETIMEDOUT, SCIO_EBROKEN, SCIO_ECANCELED, ... as scio_tls_wrap),
 * SCIO_EINVAL (arg NULL or not initialised), or the user handler's
 * result. */
SCIO_API int scio_tls_serve_handler(scio_stream *conn, void *arg);

/* The SSL object of a TLS stream (borrowed: owned by the stream, valid
 * until it is closed), or NULL for another stream.  Not a checkpoint.
 * Never fails. */
SCIO_API struct ssl_st *scio_tls_ssl(scio_stream *tls);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_TLS_H */
