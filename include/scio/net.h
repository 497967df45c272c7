/* scio — sockets: TCP and UNIX stream sockets as byte streams, listeners
 * and serve, UDP and UNIX datagram sockets, fd passing.
 *
 * A socket stream is a scio_stream (<scio/stream.h>) over a non-blocking
 * socket.  Every call tries its system call first and waits for readiness
 * only when the kernel says EAGAIN; checking for cancellation costs no
 * system call.  A short read on a stream socket means its receive queue
 * was drained, so the next receive waits for readiness before reading.
 *
 * Socket streams behave like memory pipes (<scio/pipe.h>), with the
 * kernel's buffers in place of the pipe's:
 *
 *   scio_receive   > 0 bytes; SCIO_EOF once the peer shut down its sending
 *                  side (or closed) and everything before was received;
 *                  SCIO_EBROKEN when the peer reset the connection (detail:
 *                  "receive: connection reset by peer"); SCIO_ECLOSED if
 *                  this stream is closed (also for a task blocked in it
 *                  when another task closes it); SCIO_ECANCELED, with no
 *                  byte taken; SCIO_EBUSY (another task is receiving).
 *                  A checkpoint: it yields once even when bytes were there.
 *   scio_send      0 once the kernel accepted every byte (partial writes
 *                  are continued, waiting for room as needed); SCIO_EBROKEN
 *                  when the peer is gone (EPIPE, ECONNRESET: no SIGPIPE is
 *                  ever raised, sends use MSG_NOSIGNAL); SCIO_ECLOSED (also
 *                  after scio_send_eof); SCIO_ECANCELED (a prefix of the
 *                  buffer may have been sent: scio_errmsg() says how many
 *                  bytes, "send: cancelled after 4096 of 65536 bytes";
 *                  the peer gets exactly that prefix and the stream stays
 *                  usable, as a memory pipe does); SCIO_EBUSY.  A
 *                  checkpoint.
 *   scio_send_eof  shutdown(SHUT_WR): the peer receives SCIO_EOF after the
 *                  bytes sent before.  Idempotent; 0 also when the peer is
 *                  already gone.  A checkpoint.
 *   scio_close     closes the socket (the kernel sends what it still
 *                  buffers, then FIN; unread received bytes make it a
 *                  reset, as with any socket).  Tasks blocked in this
 *                  stream get SCIO_ECLOSED.  Always releases.
 *   attributes     SCIO_ATTR_FD (int), SCIO_ATTR_FAMILY (int), and
 *                  SCIO_ATTR_LOCAL_ADDR / SCIO_ATTR_REMOTE_ADDR (struct
 *                  sockaddr_storage; an unconnected UNIX end has family
 *                  AF_UNIX and an empty path), SCIO_ATTR_LAYER ("tcp",
 *                  "unix" or "socket").  The fd stays owned by the stream.
 *
 * All objects here belong to the scio_run (thread) that uses them first.
 *
 * Available since 0.2.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_NET_H
#define SCIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "scio/core.h"
#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Socket streams                                                            */

/* Flags of scio_socket_stream_from_fd (and scio_tcp_listen_opts). */
enum scio_socket_flags {
  /* Leave Nagle's algorithm on: TCP sockets get TCP_NODELAY by default. */
  SCIO_SOCKET_KEEP_NAGLE = 1u << 0
};

/* Wrap the connected stream socket `fd` (TCP, UNIX or any SOCK_STREAM
 * socket) as a byte stream.  The fd is made non-blocking and
 * close-on-exec; a TCP socket gets TCP_NODELAY unless `flags` has
 * SCIO_SOCKET_KEEP_NAGLE.  On success the stream owns fd and closes it in
 * scio_close: do not close it yourself.  On error nothing changed and the
 * caller still owns fd.  Not a checkpoint.  Returns 0, or:
 *   SCIO_EINVAL  out is NULL, fd < 0, fd is not a socket (detail says),
 *                is not a stream socket, or flags are unknown;
 *   SCIO_ENOMEM  out of memory;
 *   -errno       fcntl/setsockopt failed (e.g. SCIO_EBADF).
 * *out is NULL on error. */
SCIO_API int scio_socket_stream_from_fd(int fd, unsigned flags,
                                        scio_stream **out);

/* Two connected UNIX stream sockets (socketpair), each a byte stream owned
 * by the caller.  Not a checkpoint.  Returns 0, SCIO_EINVAL (NULL
 * argument), SCIO_ENOMEM, SCIO_EMFILE or another -errno of socketpair;
 * *a and *b are NULL on error. */
SCIO_API int scio_socket_pair_open(scio_stream **a, scio_stream **b);

/* Connect to the UNIX stream socket at `path` (a file system path; at most
 * sizeof sun_path - 1 bytes).  A checkpoint: it yields once even when the
 * connection is made at once; while the listener's backlog is full it
 * retries every few milliseconds (the kernel offers no readiness event for
 * that).  Returns 0, or:
 *   SCIO_EINVAL     NULL argument, empty or too long path;
 *   SCIO_ECONNREFUSED   nobody listens on the path (a stale socket file);
 *   SCIO_ENOENT     no such file;  SCIO_EACCES etc. from connect;
 *   SCIO_ECANCELED; SCIO_ENOMEM; SCIO_EMFILE.
 * On success *out is a socket stream owned by the caller (scio_close);
 * *out is NULL on error. */
SCIO_API int scio_connect_unix(const char *path, scio_stream **out);

/* Send the buffers of iov, in order, as one stream of bytes: all of them,
 * or an error, as scio_send.  On a socket stream this is writev(2)
 * (sendmsg with MSG_NOSIGNAL): a header and a body go out in one system
 * call.  On any other stream it sends each buffer with scio_send.  iovcnt
 * may exceed IOV_MAX (sent in batches).  A checkpoint.  Returns 0 or the
 * errors of scio_send; SCIO_EINVAL for a NULL stream, a NULL iov with
 * iovcnt > 0 or iovcnt < 0. */
SCIO_API int scio_socket_send_vec(scio_stream *s, const struct iovec *iov,
                                  int iovcnt);

/* Format a socket address for people: "192.0.2.1:80", "[2001:db8::1]:443",
 * "unix:/run/x.sock", "unix:(unnamed)".  Returns the length written (the
 * output is always NUL-terminated and truncated to fit), or SCIO_EINVAL
 * (NULL argument, len 0, unknown family: then "?" is written when it fits).
 * Not a checkpoint. */
SCIO_API int scio_sockaddr_format(const struct sockaddr_storage *addr,
                                  char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Listeners                                                                 */

/* A listener: one or more listening sockets (IPv4 and IPv6 for a NULL
 * host) behind one object.  Created by scio_tcp_listen or
 * scio_unix_listen, released by scio_listener_close. */
typedef struct scio_listener scio_listener;

/* Options of scio_tcp_listen and scio_unix_listen; all-zero (or NULL)
 * means defaults. */
typedef struct scio_listen_opts {
  int backlog;          /* listen(2) backlog; 0 means SOMAXCONN */
  int reuse_port;       /* TCP: set SO_REUSEPORT (several processes or
                           listeners share the port; the kernel balances) */
  /* TCP with a NULL host: restrict to AF_INET or AF_INET6; 0 = both. */
  int family;
  unsigned stream_flags; /* enum scio_socket_flags for accepted streams */
} scio_listen_opts;
typedef scio_listen_opts scio_tcp_listen_opts;

/* Listen on TCP `port` of every address of `host`:
 *   NULL          every interface, IPv4 (0.0.0.0) and IPv6 (::, with
 *                 IPV6_V6ONLY so the two sockets do not clash); a system
 *                 without IPv6 gets the IPv4 socket only;
 *   an IP literal "127.0.0.1", "::1", "0.0.0.0" (one socket);
 *   a host name   every address scio_getaddrinfo gives for it ("localhost":
 *                 127.0.0.1 and ::1); only inside a task, where the call
 *                 is then a checkpoint (SCIO_EINVAL outside one), and
 *                 with the resolver's errors (SCIO_ENOTFOUND, ...).
 * SO_REUSEADDR is always set (a restarted server can bind again at once).
 * Port 0 picks a free port; with several sockets all of them get the same
 * port.  Read it back with scio_listener_addrs / scio_listener_port.
 * Not a checkpoint for NULL or a literal (it never blocks then), which may
 * be called outside a run.  Returns 0, or:
 *   SCIO_EINVAL      NULL out, bad options, a name outside a task;
 *   SCIO_EADDRINUSE  something else listens on the port;
 *   SCIO_EACCES      a privileged port; SCIO_EADDRNOTAVAIL not a local address;
 *   SCIO_ENOMEM; SCIO_EMFILE.
 * On success *out is owned by the caller (scio_listener_close); opts is
 * copied.  *out is NULL on error, and no socket stays open. */
SCIO_API int scio_tcp_listen(const char *host, uint16_t port,
                             const scio_listen_opts *opts,
                             scio_listener **out);

/* Listen on the UNIX stream socket file `path`.  A socket file left over
 * by a dead server (connecting to it is refused) is removed and bound
 * again; a live one is SCIO_EADDRINUSE (finding out is one connection to
 * it, which the live server sees open and close at once), and any other
 * existing file is left alone (SCIO_EADDRINUSE).  The file is removed by
 * scio_listener_close (only if it is still the one this listener made).
 * Not a checkpoint.  Returns 0, or SCIO_EINVAL (NULL argument, empty or
 * too long path), SCIO_EADDRINUSE, SCIO_EACCES, SCIO_ENOENT (no such
 * directory), SCIO_ENOMEM, SCIO_EMFILE.  On success *out is owned by the
 * caller (scio_listener_close); *out is NULL on error. */
SCIO_API int scio_unix_listen(const char *path, const scio_listen_opts *opts,
                              scio_listener **out);

/* Accept one connection as a socket stream, owned by the caller (the fd is
 * non-blocking and close-on-exec; TCP gets TCP_NODELAY unless the
 * listener's stream_flags say otherwise).  Waits until a connection
 * arrives on any of the listener's sockets; the sockets take turns, so one
 * busy socket cannot starve the others.  Connections that are aborted
 * before they are accepted (ECONNABORTED, EPROTO) are skipped, as Trio
 * does.  A checkpoint.  Returns 0, or:
 *   SCIO_ECLOSED    the listener is closed (also for a task blocked here
 *                   when another task closes it);
 *   SCIO_EBUSY      another task is accepting on this listener, or serving
 *                   it;
 *   SCIO_ECANCELED;
 *   SCIO_EMFILE, SCIO_ENFILE, SCIO_ENOBUFS, SCIO_ENOMEM: out of resources (the
 *                   connection stays queued; retry later, as serve does);
 *   SCIO_EINVAL     NULL argument.
 * *out is NULL on error. */
SCIO_API int scio_listener_accept(scio_listener *l, scio_stream **out);

/* Close every socket of the listener (and remove a UNIX listener's file),
 * wake a task blocked in scio_listener_accept (or serve) with SCIO_ECLOSED,
 * and release the listener: `l` must not be used afterwards (serve, which
 * may be blocked in it, notices by itself).  Not a checkpoint, so it can
 * run in cleanup code of a cancelled task.  Returns 0 (NULL is a no-op);
 * never fails. */
SCIO_API int scio_listener_close(scio_listener *l);

/* The bound addresses, one per socket: fills up to `max` of them into
 * `addrs` and returns how many there are (call with max 0 to count), or
 * SCIO_EINVAL (NULL listener, or NULL addrs with max > 0).  Not a
 * checkpoint. */
SCIO_API int scio_listener_addrs(scio_listener *l,
                                 struct sockaddr_storage *addrs, size_t max);
/* The TCP port of the listener's first socket (all of them share it when
 * port 0 was asked for), or SCIO_EINVAL (NULL, or a UNIX listener).  Not a
 * checkpoint. */
SCIO_API int scio_listener_port(scio_listener *l);
/* The listener's sockets, one fd per bound address in the order of
 * scio_listener_addrs: fills up to `max` of them into `fds` and returns how
 * many there are (call with max 0 to count), or SCIO_EINVAL (NULL listener,
 * or NULL fds with max > 0).  For socket options scio has no field for
 * (SO_INCOMING_CPU, a BPF reuseport program, TCP_DEFER_ACCEPT, ...).  The
 * fds stay owned by the listener: do not close them, make them blocking,
 * or use them after scio_listener_close.  A TCP listening socket carries
 * TCP_NODELAY (unless stream_flags keep Nagle) and TCP_INQ for the sockets
 * it accepts, which inherit them: do not clear either.  Not a checkpoint. */
SCIO_API int scio_listener_fds(scio_listener *l, int *fds, size_t max);

/* ------------------------------------------------------------------------ */
/* Serve                                                                     */

/* A connection handler.  `conn` belongs to serve: it is closed when the
 * handler returns, so the handler must NOT close it (it may send_eof, and
 * may wrap it in layers only if it closes nothing).  Return 0, or an error
 * code, which goes to the error hook. */
typedef int (*scio_serve_handler)(scio_stream *conn, void *arg);

/* The error hook.  For a failing handler: `peer` is the connection's
 * remote address, `code` its result and `detail` the handler task's
 * scio_errmsg() at return.  For an accept failure that makes serve back
 * off (out of fds, buffers or memory): `peer` is NULL; it is reported
 * once per episode (until an accept succeeds again).  Called from the
 * handler's task (or serve's); it must not block. */
typedef void (*scio_serve_error_fn)(void *ctx,
                                    const struct sockaddr_storage *peer,
                                    int code, const char *detail);

typedef struct scio_serve_opts {
  /* NULL: one line on stderr per report, e.g.
   *   scio serve: [::1]:40212: ECONNRESET: receive: connection reset by peer
   *   scio serve: accept: EMFILE: too many open files; backing off */
  scio_serve_error_fn on_error;
  void *error_ctx;
  /* Back-off after an accept failure for lack of resources: the first
   * pause, doubled after each further failure up to the maximum.
   * 0 means 0.1 s and 1.0 s. */
  double backoff_initial, backoff_max;
} scio_serve_opts;

/* Accept connections on `l` forever and run handler(conn, arg) for each as
 * a task: in `nursery` if given (serve then returns as soon as it stops
 * accepting, and the handlers keep running there), otherwise in a nursery
 * serve opens and closes (it then returns only after the last handler).
 * Each connection is closed when its handler returns.  A handler that
 * fails is reported through the error hook and never stops the server or
 * its siblings (its task returns 0 to the nursery).  Running out of fds
 * (SCIO_EMFILE, SCIO_ENFILE), buffers (-ENOBUFS) or memory makes serve pause
 * (opts: backoff) instead of spinning or failing; it goes on when
 * resources are back.
 *
 * Stopping:
 *   - cancel an enclosing scope (or the nursery): serve stops accepting
 *     and returns SCIO_ECANCELED; handlers in serve's own nursery are
 *     cancelled with it (their next checkpoint returns SCIO_ECANCELED);
 *   - graceful shutdown: close the listener from another task
 *     (scio_listener_close): serve stops accepting at once, lets the
 *     running handlers finish (its own nursery) and returns 0.  For a
 *     shutdown with a grace period, run serve inside a scope, close the
 *     listener, then give that scope a deadline (scio_scope_set_deadline):
 *     handlers still running at the deadline are cancelled.
 * A listener of several sockets (IPv4 and IPv6) gets one accept task per
 * socket ("serve-accept" in scio_dump_tasks), in a nursery of serve's own,
 * so that each waits on its socket alone.  While serve runs, accepting on
 * l from another task is SCIO_EBUSY, and the other way round.
 * Must run inside a task.  A checkpoint.  Returns 0 (listener closed),
 * SCIO_ECANCELED, SCIO_EBUSY (another task is accepting on l or serving
 * it), SCIO_ENOMEM, an accept error other than those serve pauses for, or
 * SCIO_EINVAL (NULL l or handler, bad options, outside a task). */
SCIO_API int scio_listener_serve(scio_listener *l, scio_serve_handler handler,
                                 void *arg, scio_nursery *nursery,
                                 const scio_serve_opts *opts);

/* ------------------------------------------------------------------------ */
/* Datagrams: UDP and UNIX datagram sockets                                  */

/* An unconnected datagram socket (UDP or UNIX datagram): receive_from
 * tells who sent, send_to says where to.  Released by scio_udp_close. */
typedef struct scio_udp scio_udp;

typedef struct scio_udp_opts {
  int reuse_port; /* SO_REUSEPORT */
  /* With a NULL host: AF_INET (0.0.0.0, the default) or AF_INET6 (::,
   * which also receives IPv4 unless the system says otherwise). */
  int family;
} scio_udp_opts;

/* A UDP socket bound to `port` (0: a free one) of `host`: an IP literal,
 * or NULL for every interface (a host name is SCIO_EINVAL: resolve it
 * with scio_getaddrinfo first).  Not a checkpoint.  Returns 0, or
 * SCIO_EINVAL, SCIO_EADDRINUSE, SCIO_EADDRNOTAVAIL, SCIO_ENOMEM,
 * SCIO_EMFILE.  On success *out is owned by the caller (scio_udp_close);
 * *out is NULL on error. */
SCIO_API int scio_udp_open(const char *host, uint16_t port,
                           const scio_udp_opts *opts, scio_udp **out);
/* A UNIX datagram socket bound to `path` (NULL: unbound, it can only
 * send).  An existing file at path is SCIO_EADDRINUSE.  The file is
 * removed by scio_udp_close.  Not a checkpoint.  Errors as scio_udp_open
 * (SCIO_EINVAL, SCIO_EADDRINUSE, SCIO_ENOMEM, SCIO_EMFILE); *out is owned
 * by the caller. */
SCIO_API int scio_unix_datagram_open(const char *path, scio_udp **out);

/* Receive one datagram: its length (0 for an empty one), with the
 * sender's address in *from (may be NULL).  A datagram longer than `max`
 * is truncated to max bytes and the rest is lost (as recvfrom does): pass
 * 65536 to be safe.  A checkpoint.  Returns the length, or SCIO_ECLOSED
 * (also when closed while waiting), SCIO_EBUSY (another receiver),
 * SCIO_ECANCELED (nothing taken), SCIO_EINVAL (NULL u, NULL buf with
 * max > 0), or another -errno. */
SCIO_API ssize_t scio_udp_receive_from(scio_udp *u, void *buf, size_t max,
                                       struct sockaddr_storage *from);
/* Send one datagram of `len` bytes to `to`.  A checkpoint.  Returns 0, or
 * SCIO_ECLOSED, SCIO_EBUSY, SCIO_ECANCELED (nothing sent), SCIO_EINVAL,
 * SCIO_EMSGSIZE (too long for one datagram), SCIO_ECONNREFUSED (an earlier
 * datagram was refused, ICMP), or another -errno. */
SCIO_API int scio_udp_send_to(scio_udp *u, const void *buf, size_t len,
                              const struct sockaddr_storage *to);
/* The bound address (the port picked for port 0), into the caller's *out.
 * Not a checkpoint.  Returns 0, SCIO_EINVAL (NULL argument, or u is
 * closed) or another -errno of getsockname. */
SCIO_API int scio_udp_local_addr(scio_udp *u, struct sockaddr_storage *out);
/* Close (wakes blocked tasks with SCIO_ECLOSED) and release.  Not a
 * checkpoint.  Returns 0; NULL is a no-op.  Never fails. */
SCIO_API int scio_udp_close(scio_udp *u);

/* One datagram, the item of a connected datagram object stream.  The item
 * is a descriptor (copied by value), so every datagram keeps its own
 * length and no fixed maximum is baked into the stream:
 *   send:    data/len name the bytes to send (cap is ignored);
 *   receive: data/cap name the caller's buffer; len gets the datagram's
 *            length and truncated is 1 when it was longer than cap (the
 *            rest is lost). */
typedef struct scio_datagram {
  void *data;
  size_t len;
  size_t cap;
  int truncated;
} scio_datagram;

/* A datagram socket connected to `remote` (AF_INET, AF_INET6 or AF_UNIX),
 * bound first to `local` when not NULL, as an object stream of
 * scio_datagram items (AnyIO's ConnectedUDPSocket):
 *   scio_ostream_send     sends item->data/len as one datagram: 0, or the
 *                         errors of scio_udp_send_to;
 *   scio_ostream_receive  receives one datagram from the peer (others
 *                         are filtered by the kernel): 0, or the errors
 *                         of scio_udp_receive_from; SCIO_ECONNREFUSED when the
 *                         peer's port is closed (ICMP);
 *   scio_ostream_close    closes the socket (blocked tasks: SCIO_ECLOSED);
 *   attributes            SCIO_ATTR_FD, SCIO_ATTR_FAMILY,
 *                         SCIO_ATTR_LOCAL_ADDR, SCIO_ATTR_REMOTE_ADDR.
 * Both calls are checkpoints.  Not a checkpoint itself (connect on a
 * datagram socket does not block).  Returns 0, or SCIO_EINVAL (NULL
 * remote or out, an unknown family), SCIO_ENOMEM, SCIO_EMFILE or
 * another -errno of socket/bind/connect.  *out is NULL on error. */
SCIO_API int scio_datagram_connect(const struct sockaddr_storage *remote,
                                   const struct sockaddr_storage *local,
                                   scio_ostream **out);
/* Two connected UNIX datagram sockets (socketpair SOCK_DGRAM) as
 * scio_datagram object streams, each owned by the caller
 * (scio_ostream_close).  Not a checkpoint.  Errors as
 * scio_socket_pair_open: SCIO_EINVAL (NULL argument), SCIO_ENOMEM,
 * SCIO_EMFILE or another -errno of socketpair; *a and *b are NULL on
 * error. */
SCIO_API int scio_datagram_pair_open(scio_ostream **a, scio_ostream **b);

/* ------------------------------------------------------------------------ */
/* Passing fds over UNIX stream sockets                                      */

/* Send `len` bytes (at least 1: the kernel carries fds only with data)
 * together with the nfds descriptors in fds (1 .. 253; SCM_RIGHTS).  The
 * caller keeps its fds (the receiver gets duplicates).  s must be a UNIX
 * socket stream (scio_socket_pair_open, scio_connect_unix, accepted from
 * scio_unix_listen).  A checkpoint.  Returns 0, or the errors of
 * scio_send, or SCIO_EINVAL (not a UNIX socket stream, len 0, nfds out of
 * range, NULL pointers).  The fds go with the first part of the bytes
 * that the kernel accepts. */
SCIO_API int scio_unix_send_fds(scio_stream *s, const void *buf, size_t len,
                                const int *fds, int nfds);
/* Receive bytes as scio_receive, and the fds that came with them into
 * fds[0 .. *nfds) (close-on-exec, owned by the caller; *nfds is 0 when none
 * came).  Returns > 0 bytes, SCIO_EOF, or the errors of scio_receive, or:
 *   SCIO_EMSGSIZE  more fds arrived than maxfds (the control message was
 *              truncated): every fd that did arrive is closed, the bytes
 *              of that message are dropped, nothing leaks;
 *   SCIO_EINVAL  not a UNIX socket stream, NULL pointers, maxfds < 1 or
 *              > 253.
 * A checkpoint. */
SCIO_API ssize_t scio_unix_receive_fds(scio_stream *s, void *buf, size_t max,
                                       int *fds, int maxfds, int *nfds);

/* ------------------------------------------------------------------------ */
/* Name resolution (c-ares) and happy-eyeballs connect                       */


/* Which DNS servers to ask, and how patiently.  All-zero: the system's
 * configuration (/etc/resolv.conf; c-ares defaults where it says nothing).
 * /etc/hosts is always consulted first. */
typedef struct scio_dns_opts {
  /* Comma-separated servers, each "host" or "host:port", IPv6 as
   * "[2001:db8::53]:5353": e.g. "127.0.0.1:5353,[::1]:53".  NULL: the
   * system's servers. */
  const char *servers;
  /* Seconds to wait for an answer to one try (c-ares doubles it on later
   * rounds); 0: the system's (5 s).  Negative or NaN is SCIO_EINVAL. */
  double timeout;
  /* How many rounds of tries over the servers; 0: the system's (4). */
  int tries;
} scio_dns_opts;

/* One address of a lookup's result. */
typedef struct scio_addrinfo {
  struct scio_addrinfo *next;
  int family;             /* AF_INET or AF_INET6 */
  int socktype;           /* from the options (0 if none was asked for) */
  int protocol;           /* from the options */
  int ttl;                /* seconds the DNS answer may be cached; 0 for
                             /etc/hosts and numeric hosts */
  socklen_t addrlen;
  struct sockaddr *addr;  /* points into this node */
  char *canonname;        /* first node only, with SCIO_AI_CANONNAME */
} scio_addrinfo;

enum scio_ai_flags {
  SCIO_AI_CANONNAME = 1u << 0,   /* fill the first node's canonname */
  SCIO_AI_NUMERICHOST = 1u << 1, /* host must be a numeric address */
  SCIO_AI_NUMERICSERV = 1u << 2, /* service must be a port number */
  SCIO_AI_NOSORT = 1u << 3       /* keep the servers' order (no RFC 6724
                                    sorting) */
};

typedef struct scio_addrinfo_opts {
  int family;    /* AF_UNSPEC (0: both, waiting for both), AF_INET, AF_INET6 */
  int socktype;  /* e.g. SOCK_STREAM; 0: any */
  int protocol;  /* e.g. IPPROTO_TCP; 0: any */
  unsigned flags; /* enum scio_ai_flags */
  scio_dns_opts dns;
} scio_addrinfo_opts;

/* Resolve `host` (a name, or a numeric IPv4/IPv6 address) and `service`
 * (a port number or a name from /etc/services; NULL: port 0) to a list of
 * addresses, /etc/hosts first, then DNS.  opts may be NULL (defaults).
 * On success *out is a list of at least one node, owned by the caller and
 * freed with scio_freeaddrinfo(); on error *out is NULL.  A checkpoint: it
 * yields at least once; a cancelled lookup frees everything it had started
 * before it returns.  Returns 0 or:
 *   SCIO_EINVAL     host NULL or empty, out NULL, bad options, bad server
 *                   list, unknown service, misformed name;
 *   SCIO_ENOTFOUND, SCIO_EDNS, SCIO_ECANCELED, SCIO_ENOMEM (see above). */
SCIO_API int scio_getaddrinfo(const char *host, const char *service,
                              const scio_addrinfo_opts *opts,
                              scio_addrinfo **out);

/* Free a list from scio_getaddrinfo (NULL is allowed): the caller's
 * ownership ends here.  Not a checkpoint; may be called outside a run.
 * Returns nothing; never fails. */
SCIO_API void scio_freeaddrinfo(scio_addrinfo *ai);

enum scio_ni_flags {
  SCIO_NI_NUMERICHOST = 1u << 0, /* the numeric form of the address */
  SCIO_NI_NUMERICSERV = 1u << 1, /* the port number, not a service name */
  SCIO_NI_NAMEREQD = 1u << 2,    /* SCIO_ENOTFOUND if there is no name */
  SCIO_NI_NOFQDN = 1u << 3,      /* only the first label of local names */
  SCIO_NI_DGRAM = 1u << 4        /* service names of UDP, not TCP */
};

typedef struct scio_nameinfo_opts {
  unsigned flags; /* enum scio_ni_flags */
  scio_dns_opts dns;
} scio_nameinfo_opts;

/* The name of an address (reverse DNS; /etc/hosts first) and of its port.
 * Pass host = NULL (or hostlen 0) to skip the name, serv = NULL to skip the
 * service.  Without SCIO_NI_NAMEREQD an address without a name gives its
 * numeric form.  Results are NUL-terminated and truncated to the buffers.
 * A checkpoint; a cancelled lookup frees everything before it returns.
 * Returns 0 or SCIO_EINVAL (bad address or arguments), SCIO_ENOTFOUND,
 * SCIO_EDNS, SCIO_ECANCELED, SCIO_ENOMEM. */
SCIO_API int scio_getnameinfo(const struct sockaddr *addr, socklen_t addrlen,
                              const scio_nameinfo_opts *opts, char *host,
                              size_t hostlen, char *serv, size_t servlen);

/* ------------------------------------------------------------------------ */
/* Happy eyeballs                                                            */

/* What a connect reports to its observer (scio_connect_opts.on_event), in
 * order of time. */
enum scio_connect_event_kind {
  SCIO_CONNECT_RESOLVED = 1, /* one family's lookup ended: count addresses,
                                or error (count 0) */
  SCIO_CONNECT_ATTEMPT,      /* an attempt to addr starts */
  SCIO_CONNECT_SLOW,         /* the attempt to addr has not finished within
                                the delay: the next one starts beside it */
  SCIO_CONNECT_FAILED,       /* the attempt to addr failed with error */
  SCIO_CONNECT_CONNECTED,    /* the attempt to addr won */
  SCIO_CONNECT_ABANDONED     /* the attempt to addr lost: closed */
};

typedef struct scio_connect_event {
  int kind;                    /* enum scio_connect_event_kind */
  int family;                  /* AF_INET6 or AF_INET */
  const struct sockaddr *addr; /* NULL for SCIO_CONNECT_RESOLVED */
  socklen_t addrlen;
  const char *addr_text;       /* "[2001:db8::2]:8000", "192.0.2.2:8000";
                                  "" for SCIO_CONNECT_RESOLVED */
  int error;                   /* FAILED, RESOLVED: 0 or a negative code */
  const char *error_text;      /* FAILED, RESOLVED: "connection refused" */
  int count;                   /* RESOLVED: addresses received */
  double elapsed;              /* seconds since the connect started */
} scio_connect_event;

/* An observer of a connect's progress.  It runs in one of the connect's
 * tasks: it must not block (no checkpoints); the pointers in ev are valid
 * during the call only. */
typedef void (*scio_connect_event_cb)(void *arg, const scio_connect_event *ev);

/* A layer that scio_connect_tcp (and other openers) put over the stream
 * they made.  wrap takes `inner` only when it succeeds: on failure the
 * caller still owns it.  `host` is the name the caller connected to (for
 * TLS: the name to verify).  Embed it first in a struct of your own to
 * carry settings, as scio_tls_layer does. */
typedef struct scio_layer {
  int (*wrap)(const struct scio_layer *self, const char *host,
              scio_stream *inner, scio_stream **out);
} scio_layer;

typedef struct scio_connect_opts {
  /* Bind every attempt to this local IP address (numeric; the port is
   * chosen at connect time).  Only addresses of its family are tried.
   * NULL: the kernel chooses. */
  const char *local_address;
  /* Seconds an attempt gets before the next one starts beside it (RFC 8305
   * "Connection Attempt Delay"); an attempt that fails starts the next at
   * once.  0: the default, 0.25 s.  INFINITY: one attempt at a time.
   * Negative or NaN is SCIO_EINVAL. */
  double happy_eyeballs_delay;
  scio_dns_opts dns;
  scio_connect_event_cb on_event; /* may be NULL */
  void *on_event_arg;
  /* Flags for the socket stream (as scio_socket_stream_from_fd); 0: the
   * defaults, TCP_NODELAY on. */
  unsigned stream_flags;
  /* A layer to put over the connected stream before it is returned, e.g.
   * TLS (scio_tls_layer_init in <scio/tls.h>), with the host name given
   * to scio_connect_tcp.  NULL: the plain socket stream. */
  const struct scio_layer *layer;
} scio_connect_opts;

/* Connect to host:port over TCP with happy eyeballs (RFC 8305): the AAAA
 * and A lookups run in parallel; connecting starts as soon as the first
 * usable answer arrives (IPv6 preferred: when A arrives first, AAAA gets
 * 50 ms more); addresses alternate between the families, IPv6 first;
 * each attempt gets happy_eyeballs_delay before the next one starts beside
 * it, and a failed attempt starts the next at once.  The first attempt to
 * connect wins and every other socket is closed.  A numeric host (IPv4,
 * IPv6, "[IPv6]") skips DNS.  opts may be NULL.
 * On success *out is a socket stream owned by the caller; on error NULL and
 * every socket opened is closed.  A checkpoint.  Returns 0 or:
 *   SCIO_EINVAL      host NULL/empty, out NULL, bad options;
 *   SCIO_ENOTFOUND, SCIO_EDNS  no address could be had (the lookups'
 *                    reasons are in scio_errmsg());
 *   the error of the attempt that failed last, when every attempt failed
 *   (SCIO_ENOMEM if any failed for want of memory), e.g.
 *   SCIO_ECONNREFUSED, SCIO_ETIMEDOUT, SCIO_ENETUNREACH; scio_errmsg() lists every
 *   attempt: "connect both.test:8000: 2 attempts failed: [2001:db8::2]:8000
 *   timed out; 192.0.2.2:8000 connection refused";
 *   SCIO_ECANCELED   cancelled; every socket opened so far is closed;
 *   SCIO_ENOMEM. */
SCIO_API int scio_connect_tcp(const char *host, uint16_t port,
                              const scio_connect_opts *opts,
                              scio_stream **out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_NET_H */
