/* Passing fds over UNIX stream sockets (SCM_RIGHTS).
 *
 * Received fds are close-on-exec from the start (MSG_CMSG_CLOEXEC), so a
 * fork+exec in another thread never inherits them.  A truncated control
 * message (more fds than the caller made room for) is an error, and every
 * fd that did arrive is closed: the kernel drops those that did not fit,
 * so nothing leaks either way. */
#include <string.h>
#include <sys/socket.h>

#include "net_internal.h"
#include "streams/stream_internal.h"

enum { MAX_FDS = 253 }; /* SCM_MAX_FD */

static int check_unix(scio_stream *s, const char *what) {
  if (!s || !scio__is_sock(s) || ((scio__sock *)s)->family != AF_UNIX)
    return scio__seterr(SCIO_EINVAL, "%s: not a UNIX socket stream", what);
  return 0;
}

static int send_fds(scio__sock *s, const void *buf, size_t len,
                    const int *fds, int nfds) {
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "send_fds: after send_eof");
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } cm;
  memset(&cm, 0, sizeof cm);
  struct iovec v = {(void *)buf, len};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  m.msg_control = cm.buf;
  m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  int yielded = 0;
  for (;;) {
    ssize_t n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
    if (n >= 0) {
      scio__yield_once(yielded);
      if ((size_t)n == len)
        return 0;
      /* The fds went with the first bytes; the rest is plain data. */
      return scio__sock_send_all(s, (const char *)buf + n, len - (size_t)n);
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return scio__sock_err(errno, "send_fds");
    rc = scio__fd_wait(s->fd, SCIO__FD_WRITE);
    if (rc < 0)
      return rc == SCIO_ECLOSED
                 ? scio__seterr(rc, "send_fds: socket closed while waiting")
                 : rc;
    if (s->base.closed)
      return scio__seterr(SCIO_ECLOSED, "send_fds: socket closed");
    yielded |= rc != SCIO__FD_NOPARK;
  }
}

SCIO_API int scio_unix_send_fds(scio_stream *s, const void *buf, size_t len,
                                const int *fds, int nfds) {
  int rc = check_unix(s, "send_fds");
  if (rc < 0)
    return rc;
  if (!buf || len == 0 || !fds || nfds < 1 || nfds > MAX_FDS)
    return scio__seterr(SCIO_EINVAL, "send_fds: bad argument");
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "send_fds: stream is closed");
  if (s->sending)
    return scio__seterr(SCIO_EBUSY, "send_fds: another task is sending");
  s->sending = 1;
  s->inflight++;
  rc = send_fds((scio__sock *)s, buf, len, fds, nfds);
  s->sending = 0;
  if (--s->inflight == 0 && s->free_pending && s->ops->do_free)
    s->ops->do_free(s);
  return rc;
}

/* Collect the fds of every SCM_RIGHTS message; close them all on
 * truncation. */
static int collect(struct msghdr *m, int *fds, int maxfds, int *nfds) {
  int k = 0, over = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int *p = (int *)CMSG_DATA(c);
    for (int i = 0; i < cnt; i++) {
      int fd;
      memcpy(&fd, p + i, sizeof fd);
      if (k < maxfds)
        fds[k++] = fd;
      else
        close(fd), over = 1;
    }
  }
  if (over || (m->msg_flags & MSG_CTRUNC)) {
    for (int i = 0; i < k; i++)
      close(fds[i]);
    *nfds = 0;
    return scio__seterr(-EMSGSIZE, "receive_fds: more fds arrived than fit "
                                   "(%d); all of them were closed", maxfds);
  }
  *nfds = k;
  return 0;
}

static ssize_t receive_fds(scio__sock *s, void *buf, size_t max, int *fds,
                           int maxfds, int *nfds) {
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } cm;
  int yielded = 0;
  for (;;) {
    struct iovec v = {buf, max};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = cm.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)maxfds);
    ssize_t n = recvmsg(s->fd, &m, MSG_CMSG_CLOEXEC);
    if (n >= 0) {
      if ((rc = collect(&m, fds, maxfds, nfds)) < 0)
        return rc;
      scio__yield_once(yielded);
      return n > 0 ? n : SCIO_EOF;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return scio__sock_err(errno, "receive_fds");
    rc = scio__fd_wait(s->fd, SCIO__FD_READ);
    if (rc < 0)
      return rc == SCIO_ECLOSED
                 ? scio__seterr(rc, "receive_fds: socket closed while "
                                    "waiting")
                 : rc;
    if (s->base.closed)
      return scio__seterr(SCIO_ECLOSED, "receive_fds: socket closed");
    yielded |= rc != SCIO__FD_NOPARK;
  }
}

SCIO_API ssize_t scio_unix_receive_fds(scio_stream *s, void *buf, size_t max,
                                       int *fds, int maxfds, int *nfds) {
  if (nfds)
    *nfds = 0;
  int rc = check_unix(s, "receive_fds");
  if (rc < 0)
    return rc;
  if (!buf || max == 0 || !fds || !nfds || maxfds < 1 || maxfds > MAX_FDS)
    return scio__seterr(SCIO_EINVAL, "receive_fds: bad argument");
  if ((rc = scio__stream_enter_receive(s, "receive_fds")) < 0)
    return rc;
  ssize_t n = receive_fds((scio__sock *)s, buf, max, fds, maxfds, nfds);
  scio__stream_leave_receive(s);
  return n;
}
