/* Private: what the files of src/net share. */
#ifndef SCIO_NET_INTERNAL_H
#define SCIO_NET_INTERNAL_H

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/layer.h"
#include "scio/net.h"

/* May a receive wait for readiness right after a short read (without
 * first reading to EAGAIN)?  Only if the wait cannot miss an end of
 * stream: a short TCP read can consume the peer's FIN together with the
 * last bytes (tcp_recvmsg eats a FIN that follows the data), after which
 * the socket stays readable but an edge-triggered registration never
 * fires again, so a wait would hang forever.  Level-triggered backends
 * report the EOF as readable, so there the shortcut is safe.  On epoll the
 * registration watches EPOLLRDHUP too (scio__fd_eof_seen): a FIN that came
 * with the bytes was reported with them, and one that was not has its
 * edge still to come, so the shortcut is safe unless the FIN was seen. */
static inline int scio__short_read_drains(int fd) {
  scio__loop *l = scio__loop_current();
  if (!scio__loop_edge_triggered(l))
    return 1;
  return scio__loop_sees_eof(l) && !scio__fd_eof_seen(fd);
}

/* The default error hook of the serve loops (serve.c, tls/dtls_serve.c):
 * one line on stderr, "WHO: PEER: ERROR_NAME: DETAIL", with NOPEER in
 * place of an address when there is none. */
void scio__serve_report_line(const char *who, const char *nopeer,
                             const struct sockaddr_storage *peer, int code,
                             const char *detail);

/* A stream socket wrapped as a byte stream (socket.c). */
typedef struct scio__sock {
  scio_stream base;      /* first: the stream head */
  int fd;                /* -1 once closed */
  int family;
  /* The last read came back short (or EAGAIN): the receive queue is empty,
   * so the next receive waits for readiness before it reads. */
  unsigned char rx_drained;
  /* The last write was partial (or EAGAIN): the send buffer is full. */
  unsigned char tx_full;
  /* TCP_INQ is on: each read also reports how many bytes it left queued
   * (0 means drained, and the kernel says 1 once a FIN is queued), so even
   * a read that filled the buffer knows whether to wait next. */
  unsigned char inq;
  /* The queue was last found drained by TCP_INQ on an edge-triggered loop,
   * not by EAGAIN: the next wait is bounded (socket.c, wait_readable). */
  unsigned char rx_unverified;
  /* The last read left bytes queued (TCP_INQ > 0): a receive completes at
   * once (socket.c, sock_wait_receive_ready). */
  unsigned char rx_ready;
  /* The last read filled the caller's buffer: the next one asks TCP_INQ
   * how much it leaves (socket.c, sock_read). */
  unsigned char rx_full;
  /* An error that wait_receive_ready's peek took from the socket (which
   * clears it): the next receive reports it. */
  int rx_err;
  unsigned char eof_sent;
} scio__sock;

/* Wrap fd (already non-blocking and close-on-exec, a stream socket of
 * `family`); TCP gets TCP_NODELAY unless flags say otherwise, and TCP_INQ.
 * With SCIO__SOCK_OPTS_SET in flags both are known to be in effect already
 * (inherited from a listener that has them), and no syscall is made.  On
 * error the caller keeps fd. */
int scio__sock_wrap(int fd, int family, unsigned flags, scio_stream **out);
#define SCIO__SOCK_OPTS_SET (1u << 30)
/* Send all of buf on s (the caller holds the stream's send bracket). */
int scio__sock_send_all(scio__sock *s, const void *buf, size_t len);
/* Is s a socket stream of this file? */
int scio__is_sock(const scio_stream *s);

/* Map a send/receive errno: peer-gone errors are SCIO_EBROKEN; the detail
 * names `what` and the system's text. */
int scio__sock_err(int err, const char *what);

/* Fill a sockaddr_un for path: 0 or SCIO_EINVAL. */
struct sockaddr_un;
int scio__unix_addr(const char *path, struct sockaddr_un *sun,
                    socklen_t *len, const char *what);

/* Yield once unless the call already did (the checkpoint rule). */
static inline void scio__yield_once(int yielded) {
  if (!yielded)
    scio_cancel_shielded_checkpoint();
}

#endif
