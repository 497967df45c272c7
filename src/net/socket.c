/* Stream sockets (TCP, UNIX, socket pairs) as byte streams.
 *
 * The hot path makes as few system calls as libevent's callbacks would:
 * every call tries its syscall first and waits only on EAGAIN, and a short
 * read (or partial write) is taken as "the queue is drained" (or "the
 * buffer is full"), so the next call waits for readiness instead of
 * failing a syscall first.  On epoll the wait is a persistent
 * edge-triggered registration (scio__fd_wait): no syscall to wait, none to
 * check for cancellation. */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_internal.h"

int scio__sock_err(int err, const char *what) {
  switch (err) {
  case EPIPE:
  case ECONNRESET:
  case ECONNABORTED:
  case ETIMEDOUT:
  case EHOSTUNREACH:
  case ENETUNREACH:
  case ENETDOWN:
  case ENOTCONN:
    return scio__seterr(SCIO_EBROKEN, "%s: %s", what, strerror(err));
  default:
    return scio__seterr(-err, "%s: %s", what, strerror(err));
  }
}

/* After a failed wait: closed meanwhile, or cancelled (already recorded). */
static int wait_failed(int rc, const char *what) {
  if (rc == SCIO_ECLOSED)
    return scio__seterr(SCIO_ECLOSED, "%s: socket closed while waiting",
                        what);
  return rc;
}

static int closed_meanwhile(const char *what) {
  return scio__seterr(SCIO_ECLOSED, "%s: socket closed while waiting", what);
}

/* recv(2) that also reads TCP_INQ's count of the bytes still queued into
 * *left (unchanged when the kernel sent none). */
static ssize_t recv_inq(int fd, void *buf, size_t max, int *left) {
  struct iovec iov = {.iov_base = buf, .iov_len = max};
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } c;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                     .msg_control = c.b, .msg_controllen = sizeof c.b};
  ssize_t n = recvmsg(fd, &m, 0);
  if (n > 0)
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
      if (h->cmsg_level == IPPROTO_TCP && h->cmsg_type == TCP_CM_INQ &&
          h->cmsg_len >= CMSG_LEN(sizeof(int)))
        memcpy(left, CMSG_DATA(h), sizeof(int));
  return n;
}

/* What wait_readable returns when the bound expired (the task parked). */
#define SOCK_WAIT_EXPIRED SCIO__FD_EXPIRED

/* Wait for the socket to become readable.  After a read that TCP_INQ
 * reported as draining the queue on epoll, waiting for the next edge is
 * almost always right, and saves the read that would fail with EAGAIN: a
 * FIN makes the kernel report one byte left, so an end of stream is read
 * at once.  A reset is the exception: when it arrived together with the
 * data, both were reported by one edge (libevent turns EPOLLHUP/EPOLLERR
 * into plain readiness), the read returned the data and the error is
 * still pending, with no edge to come.  So that wait is bounded
 * (scio__fd_wait_bounded: 50 to 100 ms without an edge), after which the
 * caller reads once more, and EAGAIN (nothing pending) makes the next wait
 * unbounded.  Returns what scio__fd_wait returns, or SOCK_WAIT_EXPIRED
 * when the bound expired. */
static int wait_readable(scio__sock *s) {
  if (!s->rx_unverified)
    return scio__fd_wait(s->fd, SCIO__FD_READ);
  s->rx_unverified = 0;
  return scio__fd_wait_bounded(s->fd, SCIO__FD_READ);
}

/* One read.  TCP_INQ's count comes with a recvmsg and its control
 * message, which costs about 0.2 us more than a recv (measured on
 * loopback, 64 B and 16 KiB alike: 5% of a 64-byte echo round trip): ask
 * for it only when the last read filled its buffer, where bytes may well
 * be left.  A short read tells by itself that the queue was drained. */
static ssize_t sock_read(scio__sock *s, void *buf, size_t max, int *left) {
  if (s->inq && s->rx_full)
    return recv_inq(s->fd, buf, max, left);
  return recv(s->fd, buf, max, 0);
}

/* After a read of n > 0 bytes into max: what is known of the queue.
 * TCP_INQ's count (left, -1 when absent) is exact, FIN included.  Without
 * it: a stream socket's recv copies across queued segments until `max` is
 * reached, so fewer bytes mean the queue is now empty; waiting for
 * readiness next is safe where it cannot miss an end of stream that this
 * read left queued (scio__short_read_drains).  A drain found on an
 * edge-triggered loop is not proof against a reset that came with the
 * bytes, so the next wait there is bounded (wait_readable). */
static void note_read(scio__sock *s, size_t n, size_t max, int left) {
  s->rx_full = n == max;
  s->rx_ready = left > 0;
  if (left == 0 || (left < 0 && n < max && scio__short_read_drains(s->fd))) {
    s->rx_drained = 1;
    s->rx_unverified =
        (unsigned char)scio__loop_edge_triggered(scio__loop_current());
  }
}

static ssize_t sock_receive(scio_stream *st, void *buf, size_t max) {
  scio__sock *s = (scio__sock *)st;
  if (!buf)
    return scio__seterr(SCIO_EINVAL, "receive: buf is NULL");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->rx_err) {
    int e = s->rx_err;
    s->rx_err = 0;
    return scio__sock_err(e, "receive");
  }
  int yielded = 0;
  for (;;) {
    if (s->rx_drained) {
      rc = wait_readable(s);
      if (rc < 0)
        return wait_failed(rc, "receive");
      if (s->base.closed)
        return closed_meanwhile("receive");
      yielded |= rc != SCIO__FD_NOPARK;
      s->rx_drained = 0;
    }
    int left = -1;
    ssize_t n = sock_read(s, buf, max, &left);
    if (n > 0) {
      note_read(s, (size_t)n, max, left);
      scio__yield_once(yielded);
      return n;
    }
    if (n == 0) {
      scio__yield_once(yielded);
      return SCIO_EOF;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->rx_drained = 1;
      continue;
    }
    return scio__sock_err(errno, "receive");
  }
}

/* One read, no wait.  The same bookkeeping as a receive, so a
 * wait_receive_ready or receive that follows knows what this one learnt. */
static ssize_t sock_receive_nowait(scio_stream *st, void *buf, size_t max) {
  scio__sock *s = (scio__sock *)st;
  if (s->rx_err) {
    int e = s->rx_err;
    s->rx_err = 0;
    return scio__sock_err(e, "receive_nowait");
  }
  for (;;) {
    int left = -1;
    ssize_t n = sock_read(s, buf, max, &left);
    if (n > 0) {
      note_read(s, (size_t)n, max, left);
      return n;
    }
    if (n == 0)
      return SCIO_EOF;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->rx_drained = 1;
      s->rx_ready = 0;
      s->rx_unverified = 0; /* EAGAIN proves no reset is pending */
      return SCIO_EWOULDBLOCK;
    }
    return scio__sock_err(errno, "receive_nowait");
  }
}

/* Wait until a receive might not block.  Nothing is read, so the state the
 * receive path keeps decides: a queue known drained waits for the next
 * edge, which is trusted (as the receive trusts it); bytes that TCP_INQ
 * counted are ready at once.  Otherwise (a new socket, a full read without
 * TCP_INQ, a bounded wait that expired: see wait_readable) a one-byte
 * MSG_PEEK settles it, so that an idle connection really sleeps here and
 * does not come back to a receive that blocks. */
static int sock_wait_receive_ready(scio_stream *st) {
  scio__sock *s = (scio__sock *)st;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = 0, verify = !s->rx_drained && !s->rx_ready;
  for (;;) {
    if (verify) {
      char c;
      if (recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
        break; /* bytes or an end of stream */
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        /* Reading a socket's error clears it, peeking too: keep it for
         * the receive to report. */
        s->rx_err = errno;
        break;
      }
      s->rx_drained = 1;
    } else if (!s->rx_drained) {
      break;
    }
    rc = wait_readable(s);
    if (rc < 0)
      return wait_failed(rc, "wait_receive_ready");
    if (s->base.closed)
      return closed_meanwhile("wait_receive_ready");
    yielded |= rc != SCIO__FD_NOPARK;
    s->rx_drained = 0;
    verify = rc == SOCK_WAIT_EXPIRED;
  }
  scio__yield_once(yielded);
  return 0;
}

/* Advance an iovec window past n sent bytes. */
static void iov_advance(struct iovec **iov, int *cnt, size_t n) {
  while (*cnt > 0 && n >= (*iov)->iov_len) {
    n -= (*iov)->iov_len;
    (*iov)++;
    (*cnt)--;
  }
  if (*cnt > 0 && n > 0) {
    (*iov)->iov_base = (char *)(*iov)->iov_base + n;
    (*iov)->iov_len -= n;
  }
}

static size_t iov_total(const struct iovec *iov, int cnt) {
  size_t t = 0;
  for (int i = 0; i < cnt; i++)
    t += iov[i].iov_len;
  return t;
}

/* Send every byte of a window of at most IOV_MAX buffers (modified).
 * *done counts the bytes sent, for the detail of a cancelled send. */
static int send_window(scio__sock *s, struct iovec *iov, int cnt,
                       size_t *done, size_t total, int *yielded) {
  size_t left = iov_total(iov, cnt);
  while (left > 0) {
    if (s->tx_full) {
      int rc = scio__fd_wait(s->fd, SCIO__FD_WRITE);
      if (rc == SCIO_ECANCELED)
        return scio__seterr(rc, "send: cancelled after %zu of %zu bytes",
                            *done, total);
      if (rc < 0)
        return wait_failed(rc, "send");
      if (s->base.closed)
        return closed_meanwhile("send");
      *yielded |= rc != SCIO__FD_NOPARK;
      s->tx_full = 0;
    }
    ssize_t n;
    if (cnt == 1) {
      /* send() skips the kernel's msghdr and iovec import: the common case
       * of one buffer is measurably cheaper (bench/echo.sh). */
      n = send(s->fd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL);
    } else {
      struct msghdr m;
      memset(&m, 0, sizeof m);
      m.msg_iov = iov;
      m.msg_iovlen = (size_t)cnt;
      n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->tx_full = 1;
        continue;
      }
      return scio__sock_err(errno, "send");
    }
    /* A partial write means the socket buffer is full. */
    if ((size_t)n < left)
      s->tx_full = 1;
    left -= (size_t)n;
    *done += (size_t)n;
    iov_advance(&iov, &cnt, (size_t)n);
  }
  return 0;
}

/* One send, no wait. */
static ssize_t sock_send_nowait(scio_stream *st, const void *buf,
                                size_t len) {
  scio__sock *s = (scio__sock *)st;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "send_nowait: the sending side was "
                                      "shut down by send_eof");
  for (;;) {
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
      if ((size_t)n < len)
        s->tx_full = 1;
      else
        s->tx_full = 0;
      return n > 0 ? n : SCIO_EWOULDBLOCK;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->tx_full = 1;
      return SCIO_EWOULDBLOCK;
    }
    return scio__sock_err(errno, "send_nowait");
  }
}

/* Returns once the socket has room (or a send would fail at once: a reset
 * also wakes it, and the send reports it), without sending.  The state the
 * send path keeps is not enough: the fd may have been filled by a write
 * that did not go through this stream, so poll(2) decides, and the write
 * edge is awaited only when it says full. */
static int sock_wait_send_ready(scio_stream *st) {
  scio__sock *s = (scio__sock *)st;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "wait_send_ready: the sending side was "
                                      "shut down by send_eof");
  int yielded = 0;
  for (;;) {
    struct pollfd p = {.fd = s->fd, .events = POLLOUT};
    int n = poll(&p, 1, 0);
    if (n < 0 && errno != EINTR)
      return scio__seterr(-errno, "wait_send_ready: poll: %s",
                          strerror(errno));
    if (n > 0) {
      s->tx_full = 0;
      break;
    }
    if (n < 0)
      continue;
    rc = scio__fd_wait(s->fd, SCIO__FD_WRITE);
    if (rc < 0)
      return wait_failed(rc, "wait_send_ready");
    if (s->base.closed)
      return closed_meanwhile("wait_send_ready");
    yielded |= rc != SCIO__FD_NOPARK;
  }
  scio__yield_once(yielded);
  return 0;
}

enum { WINDOW = 64 };

/* Send cnt buffers through a modifiable window of at most WINDOW. */
static __attribute__((noinline)) int
send_windows(scio__sock *s, const struct iovec *iov, int cnt, size_t *done,
             size_t total, int *yielded) {
  struct iovec win[WINDOW];
  for (int i = 0; i < cnt; i += WINDOW) {
    int k = cnt - i < WINDOW ? cnt - i : WINDOW;
    memcpy(win, iov + i, (size_t)k * sizeof *win);
    int rc = send_window(s, win, k, done, total, yielded);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int sock_send_iov(scio__sock *s, const struct iovec *iov, int cnt) {
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "send: the sending side was shut "
                                      "down by send_eof");
  size_t done = 0, total = iov_total(iov, cnt);
  int yielded = 0;
  if (cnt == 1) {
    /* One buffer needs no window: the 1 KiB array below would spread the
     * frames of every send over more cold stack lines (1000 connections:
     * a cache miss each). */
    struct iovec one = *iov;
    if ((rc = send_window(s, &one, 1, &done, total, &yielded)) < 0)
      return rc;
  } else if ((rc = send_windows(s, iov, cnt, &done, total, &yielded)) < 0) {
    return rc;
  }
  scio__yield_once(yielded);
  return 0;
}

int scio__sock_send_all(scio__sock *s, const void *buf, size_t len) {
  struct iovec v = {(void *)buf, len};
  return sock_send_iov(s, &v, len ? 1 : 0);
}

static int sock_send(scio_stream *st, const void *buf, size_t len) {
  if (!buf && len > 0)
    return scio__seterr(SCIO_EINVAL, "send: buf is NULL");
  struct iovec v = {(void *)buf, len};
  return sock_send_iov((scio__sock *)st, &v, len ? 1 : 0);
}

static int sock_send_eof(scio_stream *st) {
  scio__sock *s = (scio__sock *)st;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  /* ENOTCONN: the peer is already gone, so it will see no more bytes
   * either; that is what send_eof promises. */
  if (!s->eof_sent && shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
    return scio__sock_err(errno, "send_eof");
  s->eof_sent = 1;
  scio_cancel_shielded_checkpoint();
  return 0;
}

static int sock_close(scio_stream *st) {
  scio__sock *s = (scio__sock *)st;
  if (s->fd >= 0) {
    int fd = s->fd;
    s->fd = -1;
    /* Wakes a task blocked in receive or send with SCIO_ECLOSED. */
    scio__fd_close(fd);
  }
  return 0;
}

static void sock_free(scio_stream *st) { scio__free(st); }

static int addr_attr(scio__sock *s, int key, void *out, size_t len) {
  if (len < sizeof(struct sockaddr_storage))
    return -ENOSPC;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl = sizeof ss;
  int rc = key == SCIO_ATTR_LOCAL_ADDR
               ? getsockname(s->fd, (struct sockaddr *)&ss, &sl)
               : getpeername(s->fd, (struct sockaddr *)&ss, &sl);
  if (rc < 0)
    return scio__seterr(-errno, "stream_attr: %s: %s",
                        key == SCIO_ATTR_LOCAL_ADDR ? "getsockname"
                                                    : "getpeername",
                        strerror(errno));
  /* An unnamed UNIX socket reports only the family. */
  ss.ss_family = (sa_family_t)s->family;
  memcpy(out, &ss, sizeof ss);
  return 0;
}

static int sock_attr(scio_stream *st, int key, void *out, size_t len) {
  scio__sock *s = (scio__sock *)st;
  switch (key) {
  case SCIO_ATTR_FD:
  case SCIO_ATTR_FAMILY:
    if (len < sizeof(int))
      return -ENOSPC;
    *(int *)out = key == SCIO_ATTR_FD ? s->fd : s->family;
    return 0;
  case SCIO_ATTR_LOCAL_ADDR:
  case SCIO_ATTR_REMOTE_ADDR:
    return addr_attr(s, key, out, len);
  default:
    return -ENOENT;
  }
}

#define SOCK_OPS(ident, label)                                                \
  static const scio_stream_ops ident = {                                      \
      .size = sizeof(scio_stream_ops),                                        \
      .name = label,                                                          \
      .do_receive = sock_receive,                                             \
      .do_send = sock_send,                                                   \
      .do_send_eof = sock_send_eof,                                           \
      .do_close = sock_close,                                                 \
      .do_free = sock_free,                                                   \
      .do_attr = sock_attr,                                                   \
      .do_wait_receive_ready = sock_wait_receive_ready,                       \
      .do_receive_nowait = sock_receive_nowait,                               \
      .do_send_nowait = sock_send_nowait,                                     \
      .do_wait_send_ready = sock_wait_send_ready,                             \
  }
SOCK_OPS(tcp_ops, "tcp");
SOCK_OPS(unix_ops, "unix");
SOCK_OPS(other_ops, "socket");

int scio__is_sock(const scio_stream *s) {
  return s->ops == &tcp_ops || s->ops == &unix_ops || s->ops == &other_ops;
}

int scio__sock_wrap(int fd, int family, unsigned flags, scio_stream **out) {
  *out = NULL;
  scio__sock *s = scio__calloc(1, sizeof *s);
  if (!s)
    return scio__seterr(SCIO_ENOMEM, "socket stream: out of memory");
  int inet = family == AF_INET || family == AF_INET6;
  if (inet && (flags & SCIO__SOCK_OPTS_SET)) {
    s->inq = 1;
  } else if (inet && !(flags & SCIO_SOCKET_KEEP_NAGLE)) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
      int e = errno;
      scio__free(s);
      return scio__seterr(-e, "socket stream: TCP_NODELAY: %s", strerror(e));
    }
  }
  if (inet && !(flags & SCIO__SOCK_OPTS_SET)) {
    /* Without it (a kernel before 4.18) reads fall back to recv(2). */
    int one = 1;
    s->inq = setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one) == 0;
  }
  scio_stream_init(&s->base,
                   inet ? &tcp_ops
                        : family == AF_UNIX ? &unix_ops : &other_ops,
                   NULL);
  s->fd = fd;
  s->family = family;
  *out = &s->base;
  return 0;
}

SCIO_API int scio_socket_stream_from_fd(int fd, unsigned flags,
                                        scio_stream **out) {
  if (out)
    *out = NULL;
  if (!out || fd < 0 || (flags & ~(unsigned)SCIO_SOCKET_KEEP_NAGLE))
    return scio__seterr(SCIO_EINVAL, "socket_stream_from_fd: bad argument");
  int type, family;
  socklen_t sl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0) {
    if (errno == ENOTSOCK)
      return scio__seterr(SCIO_EINVAL, "socket_stream_from_fd: fd %d is "
                                       "not a socket", fd);
    return scio__seterr(-errno, "socket_stream_from_fd: fd %d: %s", fd,
                        strerror(errno));
  }
  if (type != SOCK_STREAM)
    return scio__seterr(SCIO_EINVAL, "socket_stream_from_fd: fd %d is not "
                                     "a stream socket", fd);
  sl = sizeof family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &sl) < 0)
    return scio__seterr(-errno, "socket_stream_from_fd: SO_DOMAIN: %s",
                        strerror(errno));
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return scio__seterr(-errno, "socket_stream_from_fd: fcntl: %s",
                        strerror(errno));
  return scio__sock_wrap(fd, family, flags, out);
}

SCIO_API int scio_socket_pair_open(scio_stream **a, scio_stream **b) {
  if (a)
    *a = NULL;
  if (b)
    *b = NULL;
  if (!a || !b)
    return scio__seterr(SCIO_EINVAL, "socket_pair_open: NULL argument");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                 sv) < 0)
    return scio__seterr(-errno, "socket_pair_open: %s", strerror(errno));
  int rc = scio__sock_wrap(sv[0], AF_UNIX, 0, a);
  if (rc == 0 && (rc = scio__sock_wrap(sv[1], AF_UNIX, 0, b)) < 0) {
    scio__free(*a);
    *a = NULL;
  }
  if (rc < 0) {
    close(sv[0]);
    close(sv[1]);
  }
  return rc;
}

/* The generic stream bracket (stream.c's is private to it): busy check on
 * the send side and the in-flight count that defers the free. */
static void leave_send(scio_stream *s) {
  s->sending = 0;
  if (--s->inflight == 0 && s->free_pending && s->ops->do_free)
    s->ops->do_free(s);
}

SCIO_API int scio_socket_send_vec(scio_stream *s, const struct iovec *iov,
                                  int iovcnt) {
  if (!s || iovcnt < 0 || (!iov && iovcnt > 0))
    return scio__seterr(SCIO_EINVAL, "send_vec: bad argument");
  if (!scio__is_sock(s)) {
    if (iovcnt == 0)
      return scio_send(s, NULL, 0);
    for (int i = 0; i < iovcnt; i++) {
      int rc = scio_send(s, iov[i].iov_base, iov[i].iov_len);
      if (rc < 0)
        return rc;
    }
    return 0;
  }
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "send_vec: %s stream is closed",
                        s->ops->name);
  if (s->sending)
    return scio__seterr(SCIO_EBUSY, "send_vec: another task is sending on "
                                    "this %s stream", s->ops->name);
  s->sending = 1;
  s->inflight++;
  int rc = sock_send_iov((scio__sock *)s, iov, iovcnt);
  leave_send(s);
  return rc;
}
