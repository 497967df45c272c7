/* scio — DTLS 1.2 over UDP (OpenSSL), Trio's DTLSEndpoint.
 *
 *   scio_dtls_endpoint *ep;                   one UDP socket, many peers
 *   scio_dtls_endpoint_open("0.0.0.0", 0, NULL, &ep);
 *   scio_tls_ctx *ctx;
 *   scio_tls_ctx_opts co = {.ca_file = "ca.pem"};
 *   scio_dtls_ctx_open(&co, &ctx);            like a TLS context
 *   scio_dtls_opts o = {.server_hostname = "example.org"};
 *   scio_ostream *ch;
 *   scio_dtls_connect(ep, &addr, ctx, &o, &ch);   handshake
 *   scio_datagram d = {.data = "hi", .len = 2};
 *   scio_ostream_send(ch, &d);                one datagram, encrypted
 *   scio_ostream_close(ch);
 *   scio_dtls_endpoint_close(ep);
 *
 * An endpoint owns one UDP socket and demultiplexes the datagrams that
 * arrive on it by the sender's address: each peer has a *channel*, an
 * object stream (<scio/stream.h>) of scio_datagram items (<scio/net.h>),
 * one DTLS record each way per item.  A client makes channels with
 * scio_dtls_connect; a server runs scio_dtls_serve, which answers new
 * peers and runs a handler for each.  One endpoint may do both.
 *
 * Nobody runs in the background: the task that needs a datagram (a
 * receive, a handshake, serve) reads the socket itself and hands what it
 * reads for other channels to their queues, so no task outlives the
 * calls that started it.
 *
 * Datagram semantics stay: a datagram may be lost, duplicated or
 * reordered, and DTLS does not repair that for application data; it
 * authenticates and encrypts each datagram and drops forged or replayed
 * ones.  A channel keeps at most `queue_max` datagrams that arrived and
 * were not yet received; more are dropped and counted
 * (scio_dtls_channel_dropped).
 *
 * The handshake is reliable: lost handshake datagrams are sent again
 * after 1 s (scio_dtls_opts.retransmit_timeout), then 2 s, 4 s, ... up to
 * 60 s between tries (RFC 6347
 * section 4.2.4), on scio's clock (the autojump clock speeds tests up).
 * A server answers a ClientHello with a HelloVerifyRequest carrying a
 * cookie (an HMAC of the client's address under a secret of the
 * endpoint's) and keeps no state for the client before it echoes the
 * cookie, so ClientHellos from spoofed addresses cost one datagram back
 * and no memory.
 *
 * Cancellation.  OpenSSL only ever runs between checkpoints, so a
 * cancelled call never leaves a session half-updated:
 *   - a cancelled receive takes nothing: the datagram stays queued;
 *   - a cancelled send may or may not have sent its datagram (a lost
 *     datagram, which DTLS tolerates); the channel stays usable;
 *   - a cancelled handshake (connect, or a server handler's handshake)
 *     leaves nothing: the channel is released and its peer forgotten.
 *
 * Errors, besides those of <scio/stream.h>:
 *   SCIO_ETLS       the handshake failed (a certificate, an alert, a
 *                   protocol error; detail in scio_errmsg()), or a fatal
 *                   alert arrived later (the channel is then broken);
 *   SCIO_EBROKEN    the channel is broken: a fatal alert earlier, or (on
 *                   a server) the peer restarted and its new handshake
 *                   from the same address replaced this channel;
 *   SCIO_EOF        (receive) the peer sent close_notify;
 *   SCIO_EMSGSIZE   a datagram longer than the channel's cleartext MTU;
 *   SCIO_EINVAL     (send) an empty datagram (DTLS sends none), NULL data;
 *   SCIO_ECLOSED    the channel or its endpoint is closed.
 * OpenSSL's error queue is left empty.
 *
 * Channel attributes (scio_ostream_attr): SCIO_ATTR_REMOTE_ADDR (the
 * peer), SCIO_ATTR_LOCAL_ADDR, SCIO_ATTR_FAMILY, SCIO_ATTR_TLS_VERSION
 * ("DTLSv1.2"), SCIO_ATTR_CIPHER, SCIO_ATTR_ALPN, SCIO_ATTR_PEER_CERT,
 * SCIO_ATTR_LAYER ("dtls").
 *
 * All objects belong to the scio_run (thread) that uses them first.
 * Available since 0.2.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_DTLS_H
#define SCIO_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "scio/net.h"
#include "scio/stream.h"
#include "scio/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scio_dtls_endpoint scio_dtls_endpoint;

/* A transport hook, for tests that simulate loss: called for every
 * datagram the endpoint is about to send (outgoing = 1) or has just
 * received (outgoing = 0), with the peer's address and the bytes on the
 * wire; return nonzero to drop the datagram.  It must not block. */
typedef int (*scio_dtls_filter_fn)(void *arg, int outgoing,
                                   const struct sockaddr_storage *peer,
                                   const void *data, size_t len);

/* Options of scio_dtls_endpoint_open.  All-zero (or NULL): defaults. */
typedef struct scio_dtls_endpoint_opts {
  /* With a NULL host: AF_INET (0.0.0.0, the default) or AF_INET6 (::). */
  int family;
  int reuse_port; /* SO_REUSEPORT */
  /* Datagrams kept per channel until received; 0 means 64. */
  size_t queue_max;
  scio_dtls_filter_fn filter; /* NULL: none */
  void *filter_arg;
} scio_dtls_endpoint_opts;

/* Open an endpoint on a new UDP socket bound to `port` (0: a free one) of
 * `host` (an IP literal, or NULL for every interface; see scio_udp_open).
 * Not a checkpoint.  On success the caller owns *out (close it with
 * scio_dtls_endpoint_close).  Returns 0, or (with *out NULL) SCIO_EINVAL
 * (NULL out, bad options, a host name), SCIO_EADDRINUSE,
 * SCIO_EADDRNOTAVAIL, SCIO_EMFILE, SCIO_ENOMEM. */
SCIO_API int scio_dtls_endpoint_open(const char *host, uint16_t port,
                                     const scio_dtls_endpoint_opts *opts,
                                     scio_dtls_endpoint **out);

/* Open an endpoint on a UDP socket the caller made (scio_udp_open); the
 * endpoint owns it from then on, even when this fails (it is then
 * closed), and nobody else may use it.  opts->family and reuse_port are
 * ignored.  Not a checkpoint.  Returns 0, or (with *out NULL) SCIO_EINVAL
 * (NULL udp or out, a UNIX datagram socket) or SCIO_ENOMEM. */
SCIO_API int scio_dtls_endpoint_open_udp(scio_udp *udp,
                                         const scio_dtls_endpoint_opts *opts,
                                         scio_dtls_endpoint **out);

/* Close the endpoint and its socket.  Tasks blocked on it (receives,
 * handshakes, serve) get SCIO_ECLOSED; serve then returns 0.  Channels
 * stay to be closed by their owners (every call on them but close then
 * fails with SCIO_ECLOSED); the memory goes with the last of them.  NULL
 * is ignored; the handle is released, so a second close is a misuse.  Not
 * a checkpoint.  Never fails (returns 0). */
SCIO_API int scio_dtls_endpoint_close(scio_dtls_endpoint *ep);

/* The address the socket is bound to (the port picked for port 0), in
 * *out (the caller's).  Not a checkpoint.  Returns 0, SCIO_EINVAL (NULL
 * argument), SCIO_ECLOSED (ep is closed). */
SCIO_API int scio_dtls_endpoint_local_addr(scio_dtls_endpoint *ep,
                                           struct sockaddr_storage *out);

/* Counters of an endpoint, since it was opened. */
typedef struct scio_dtls_statistics {
  uint64_t received;          /* datagrams read from the socket */
  uint64_t sent;              /* datagrams handed to the socket */
  uint64_t dropped;           /* received, but dropped: no channel and no
                                 serve for the sender, a full channel
                                 queue, the filter, no memory */
  uint64_t garbage;           /* from unknown peers, not a ClientHello */
  uint64_t hello_verify_sent; /* cookies sent to unknown peers */
  size_t channels;            /* open channels */
} scio_dtls_statistics;

/* Copy the endpoint's counters to *out (the caller's).  Not a checkpoint.
 * Returns 0 or SCIO_EINVAL (NULL argument). */
SCIO_API int scio_dtls_endpoint_statistics(scio_dtls_endpoint *ep,
                                           scio_dtls_statistics *out);

/* Build a DTLS 1.2 context: the options, defaults and errors of
 * scio_tls_ctx_open (<scio/tls.h>), except that min_version and
 * max_version may only be 0 or SCIO_TLS_1_2 (DTLS 1.2), ciphersuites is
 * ignored (TLS 1.3 only) and clients do not resume sessions.  A server
 * context answers ClientHellos with cookies.  Close it with
 * scio_tls_ctx_close: the caller owns *out.  A DTLS context is refused by scio_tls_wrap and a
 * TLS context by the calls below.  Not a checkpoint.  Returns 0, or (with
 * *out NULL) SCIO_EINVAL, SCIO_ETLS, SCIO_ENOMEM. */
SCIO_API int scio_dtls_ctx_open(const scio_tls_ctx_opts *opts,
                                scio_tls_ctx **out);

/* A handler of scio_dtls_serve: runs in its own task with a channel whose
 * handshake is done.  The channel belongs to serve (it is closed when the
 * handler returns): the handler must not close it.  Return 0 or an error
 * code for the error hook. */
typedef int (*scio_dtls_handler)(scio_ostream *channel, void *arg);

/* Options of scio_dtls_connect and scio_dtls_serve.  All-zero (or NULL):
 * defaults. */
typedef struct scio_dtls_opts {
  /* Clients: the server's name, sent as SNI (DNS names) and checked
   * against its certificate (as scio_tls_opts.server_hostname). */
  const char *server_hostname;
  /* Seconds a handshake may take: SCIO_ETIMEDOUT after that.  0 means no
   * limit of its own for connect, 10 s for serve's handshakes. */
  double handshake_timeout;
  /* The first retransmission timeout of the handshake, in seconds; 0
   * means 1 s (it doubles after each try, up to 60 s). */
  double retransmit_timeout;
  /* The largest UDP payload the path carries.  0 means 1472 (IPv4) or
   * 1452 (IPv6): an Ethernet MTU.  Handshake messages are fragmented to
   * fit; application datagrams must fit in the channel's cleartext MTU
   * (scio_dtls_channel_cleartext_mtu). */
  size_t mtu;
  /* serve: the error hook for failed handshakes and handlers, as
   * scio_serve_opts.on_error (NULL: a line on stderr). */
  scio_serve_error_fn on_error;
  void *error_ctx;
} scio_dtls_opts;

/* Open a channel to the server at `addr` (of the endpoint's family) and
 * run the DTLS handshake, retransmitting lost handshake datagrams.  A
 * checkpoint.  On success the caller owns *out, an object stream of
 * scio_datagram items (close it with scio_ostream_close: it sends
 * close_notify, best effort).  `addr` and `opts` are read during the
 * call; `ctx` (a client context of scio_dtls_ctx_open) gets a reference.
 * Returns 0, or (with *out NULL, nothing left behind):
 *   SCIO_EINVAL      NULL argument, not a DTLS client context, a
 *                    verifying client without server_hostname, a bad mtu;
 *   SCIO_EADDRINUSE  the endpoint has a channel to `addr` already;
 *   SCIO_ETLS        the handshake failed (detail in scio_errmsg());
 *   SCIO_ETIMEDOUT   handshake_timeout ran out;
 *   SCIO_ECLOSED     the endpoint is (or was meanwhile) closed;
 *   SCIO_ECANCELED, SCIO_ENOMEM, errors of scio_udp_send_to. */
SCIO_API int scio_dtls_connect(scio_dtls_endpoint *ep,
                               const struct sockaddr_storage *addr,
                               scio_tls_ctx *ctx, const scio_dtls_opts *opts,
                               scio_ostream **out);

/* Serve DTLS clients on `ep` until it is closed: answer ClientHellos with
 * cookies, and for each client that returns its cookie start a task (in
 * `nursery` if given, else in a nursery of serve's own, which serve waits
 * for before returning) that runs the handshake (bounded by
 * handshake_timeout), then handler(channel, arg), then closes the
 * channel.  A failed handshake or handler goes to the error hook and
 * never stops serve (a handler cancelled, or ended by the endpoint's
 * close, is not reported).  A client that starts a new handshake from the
 * address of an existing channel (it restarted) gets a new channel once
 * it has returned its cookie; the old one is then broken.  A channel's
 * datagrams, handshake retransmissions of the peer included, are only
 * acted on while a task receives on it, so a handler that only sends
 * should receive in a second task.  One serve per endpoint at a time.  `ctx` is a DTLS
 * server context; ctx, handler, arg and opts must outlive serve.  Must
 * run inside a task.  A checkpoint.  Returns 0 (the endpoint was closed),
 * SCIO_ECANCELED, SCIO_EBUSY (another serve runs on ep), SCIO_EINVAL
 * (NULL argument, not a DTLS server context, a bad mtu), SCIO_ENOMEM. */
SCIO_API int scio_dtls_serve(scio_dtls_endpoint *ep, scio_tls_ctx *ctx,
                             scio_dtls_handler handler, void *arg,
                             scio_nursery *nursery,
                             const scio_dtls_opts *opts);

/* The largest datagram a channel can send: the cleartext that fits in one
 * record within the MTU.  `ch` is borrowed.  Not a checkpoint.  Never
 * fails: returns it, or 0 when ch is NULL or not a DTLS channel. */
SCIO_API size_t scio_dtls_channel_cleartext_mtu(scio_ostream *ch);

/* How many datagrams for this channel were dropped because its queue was
 * full (or memory ran out).  `ch` is borrowed.  Not a checkpoint.  Never
 * fails: returns the count, or 0 when ch is NULL or not a DTLS channel. */
SCIO_API uint64_t scio_dtls_channel_dropped(scio_ostream *ch);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_DTLS_H */
