/* Datagram sockets: UDP and UNIX datagram, unconnected (scio_udp) and
 * connected (an object stream of scio_datagram items).
 *
 * No drained-queue shortcut here: each recv takes exactly one datagram, so
 * only EAGAIN says the queue is empty. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_internal.h"

struct scio_udp {
  int fd;
  int family;
  unsigned inflight;
  unsigned char closed, free_pending, receiving, sending;
  char *path; /* a bound UNIX datagram socket's file */
};

typedef struct dgram_stream {
  scio_ostream base;
  int fd;
  int family;
} dgram_stream;

static socklen_t addr_len(const struct sockaddr_storage *ss) {
  switch (ss->ss_family) {
  case AF_INET:
    return sizeof(struct sockaddr_in);
  case AF_INET6:
    return sizeof(struct sockaddr_in6);
  case AF_UNIX: {
    const struct sockaddr_un *u = (const struct sockaddr_un *)ss;
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                       strnlen(u->sun_path, sizeof u->sun_path) + 1);
  }
  default:
    return 0;
  }
}

/* One datagram in; from may be NULL.  *trunc: it was longer than max. */
static ssize_t dg_receive(int fd, const unsigned char *closed, void *buf,
                          size_t max, struct sockaddr_storage *from,
                          int *trunc) {
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = 0;
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    struct iovec v = {buf, max};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &ss;
    m.msg_namelen = sl;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &m, 0);
    if (n >= 0) {
      if (from)
        *from = ss;
      if (trunc)
        *trunc = (m.msg_flags & MSG_TRUNC) != 0;
      scio__yield_once(yielded);
      return n;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return scio__seterr(-errno, "receive datagram: %s", strerror(errno));
    rc = scio__fd_wait(fd, SCIO__FD_READ);
    if (rc < 0 || *closed)
      return scio__seterr(rc < 0 && rc != SCIO_ECLOSED ? rc : SCIO_ECLOSED,
                          "receive datagram: %s",
                          rc == SCIO_ECANCELED ? "cancelled"
                                               : "socket closed while waiting");
    yielded |= rc != SCIO__FD_NOPARK;
  }
}

static int dg_send(int fd, const unsigned char *closed, const void *buf,
                   size_t len, const struct sockaddr_storage *to) {
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = 0;
  for (;;) {
    ssize_t n = to ? sendto(fd, buf, len, MSG_NOSIGNAL,
                            (const struct sockaddr *)to, addr_len(to))
                   : send(fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
      scio__yield_once(yielded);
      return 0;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
      return scio__seterr(-errno, "send datagram: %s", strerror(errno));
    rc = scio__fd_wait(fd, SCIO__FD_WRITE);
    if (rc < 0 || *closed)
      return scio__seterr(rc < 0 && rc != SCIO_ECLOSED ? rc : SCIO_ECLOSED,
                          "send datagram: %s",
                          rc == SCIO_ECANCELED ? "cancelled"
                                               : "socket closed while waiting");
    yielded |= rc != SCIO__FD_NOPARK;
  }
}

/* ---- unconnected ---- */

static int udp_new(int fd, int family, scio_udp **out) {
  scio_udp *u = scio__calloc(1, sizeof *u);
  if (!u)
    return scio__seterr(SCIO_ENOMEM, "udp: out of memory");
  u->fd = fd;
  u->family = family;
  *out = u;
  return 0;
}

static int bind_new(const struct sockaddr_storage *ss, int reuse_port,
                    const char *what) {
  int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return scio__seterr(-errno, "%s: socket: %s", what, strerror(errno));
  int one = 1;
  if ((reuse_port &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      bind(fd, (const struct sockaddr *)ss, addr_len(ss)) < 0) {
    int e = errno;
    close(fd);
    char a[128];
    scio_sockaddr_format(ss, a, sizeof a);
    return scio__seterr(-e, "%s: bind %s: %s", what, a, strerror(e));
  }
  return fd;
}

SCIO_API int scio_udp_open(const char *host, uint16_t port,
                           const scio_udp_opts *opts, scio_udp **out) {
  if (out)
    *out = NULL;
  scio_udp_opts o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!out || (o.family && o.family != AF_INET && o.family != AF_INET6))
    return scio__seterr(SCIO_EINVAL, "udp_open: bad argument");
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  const char *h = host ? host : o.family == AF_INET6 ? "::" : "0.0.0.0";
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = o.family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  int g = getaddrinfo(h, NULL, &hints, &res);
  if (g != 0)
    return g == EAI_MEMORY
               ? scio__seterr(SCIO_ENOMEM, "udp_open: out of memory")
               : scio__seterr(SCIO_EINVAL, "udp_open %s: %s", h,
                              g == EAI_NONAME ? "not an IP literal (resolve names with scio_getaddrinfo first)"
                                              : gai_strerror(g));
  memcpy(&ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (ss.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
  else
    ((struct sockaddr_in *)&ss)->sin_port = htons(port);
  int fd = bind_new(&ss, o.reuse_port, "udp_open");
  if (fd < 0)
    return fd;
  int rc = udp_new(fd, ss.ss_family, out);
  if (rc < 0)
    close(fd);
  return rc;
}

SCIO_API int scio_unix_datagram_open(const char *path, scio_udp **out) {
  if (out)
    *out = NULL;
  if (!out)
    return scio__seterr(SCIO_EINVAL, "unix_datagram_open: out is NULL");
  char *copy = NULL;
  int fd;
  if (path) {
    struct sockaddr_un sun;
    socklen_t len;
    int rc = scio__unix_addr(path, &sun, &len, "unix_datagram_open");
    if (rc < 0)
      return rc;
    if (!(copy = scio__malloc(strlen(path) + 1)))
      return scio__seterr(SCIO_ENOMEM, "unix_datagram_open: out of memory");
    strcpy(copy, path);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, &sun, sizeof sun);
    fd = bind_new(&ss, 0, "unix_datagram_open");
  } else {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      fd = scio__seterr(-errno, "unix_datagram_open: %s", strerror(errno));
  }
  if (fd < 0) {
    scio__free(copy);
    return fd;
  }
  int rc = udp_new(fd, AF_UNIX, out);
  if (rc < 0) {
    close(fd);
    if (copy)
      unlink(copy);
    scio__free(copy);
    return rc;
  }
  (*out)->path = copy;
  return 0;
}

static int udp_enter(scio_udp *u, unsigned char *flag, const char *what) {
  if (!u)
    return scio__seterr(SCIO_EINVAL, "%s: NULL socket", what);
  if (u->closed)
    return scio__seterr(SCIO_ECLOSED, "%s: socket is closed", what);
  if (*flag)
    return scio__seterr(SCIO_EBUSY, "%s: another task is using this "
                                    "direction of the socket", what);
  *flag = 1;
  u->inflight++;
  return 0;
}

static void udp_leave(scio_udp *u, unsigned char *flag) {
  *flag = 0;
  if (--u->inflight == 0 && u->free_pending)
    scio__free(u);
}

SCIO_API ssize_t scio_udp_receive_from(scio_udp *u, void *buf, size_t max,
                                       struct sockaddr_storage *from) {
  if (!buf && max > 0)
    return scio__seterr(SCIO_EINVAL, "udp_receive_from: buf is NULL");
  int rc = udp_enter(u, u ? &u->receiving : NULL, "udp_receive_from");
  if (rc < 0)
    return rc;
  ssize_t n = dg_receive(u->fd, &u->closed, buf, max, from, NULL);
  udp_leave(u, &u->receiving);
  return n;
}

SCIO_API int scio_udp_send_to(scio_udp *u, const void *buf, size_t len,
                              const struct sockaddr_storage *to) {
  if ((!buf && len > 0) || !to || addr_len(to) == 0)
    return scio__seterr(SCIO_EINVAL, "udp_send_to: bad argument");
  int rc = udp_enter(u, u ? &u->sending : NULL, "udp_send_to");
  if (rc < 0)
    return rc;
  rc = dg_send(u->fd, &u->closed, buf, len, to);
  udp_leave(u, &u->sending);
  return rc;
}

SCIO_API int scio_udp_local_addr(scio_udp *u, struct sockaddr_storage *out) {
  if (!u || !out || u->closed)
    return scio__seterr(SCIO_EINVAL, "udp_local_addr: bad argument");
  memset(out, 0, sizeof *out);
  socklen_t sl = sizeof *out;
  if (getsockname(u->fd, (struct sockaddr *)out, &sl) < 0)
    return scio__seterr(-errno, "udp_local_addr: %s", strerror(errno));
  return 0;
}

SCIO_API int scio_udp_close(scio_udp *u) {
  if (!u || u->closed)
    return 0;
  u->closed = 1;
  scio__fd_close(u->fd);
  u->fd = -1;
  if (u->path) {
    unlink(u->path);
    scio__free(u->path);
    u->path = NULL;
  }
  /* A task still inside (woken with SCIO_ECLOSED) frees it on leaving. */
  u->free_pending = 1;
  if (u->inflight == 0)
    scio__free(u);
  return 0;
}

/* ---- connected: an object stream ---- */

static int ds_send(scio_ostream *s, const void *item) {
  dgram_stream *d = (dgram_stream *)s;
  const scio_datagram *dg = item;
  if (!dg->data && dg->len > 0)
    return scio__seterr(SCIO_EINVAL, "datagram send: data is NULL");
  return dg_send(d->fd, &d->base.closed, dg->data, dg->len, NULL);
}

static int ds_receive(scio_ostream *s, void *item) {
  dgram_stream *d = (dgram_stream *)s;
  scio_datagram *dg = item;
  if (!dg->data && dg->cap > 0)
    return scio__seterr(SCIO_EINVAL, "datagram receive: data is NULL");
  int trunc = 0;
  ssize_t n = dg_receive(d->fd, &d->base.closed, dg->data, dg->cap, NULL,
                         &trunc);
  if (n < 0)
    return (int)n;
  dg->len = (size_t)n;
  dg->truncated = trunc;
  return 0;
}

static int ds_close(scio_ostream *s) {
  dgram_stream *d = (dgram_stream *)s;
  if (d->fd >= 0) {
    int fd = d->fd;
    d->fd = -1;
    scio__fd_close(fd);
  }
  return 0;
}

static void ds_free(scio_ostream *s) { scio__free(s); }

static int ds_attr(scio_ostream *s, int key, void *out, size_t len) {
  dgram_stream *d = (dgram_stream *)s;
  if (key == SCIO_ATTR_FD || key == SCIO_ATTR_FAMILY) {
    if (len < sizeof(int))
      return -ENOSPC;
    *(int *)out = key == SCIO_ATTR_FD ? d->fd : d->family;
    return 0;
  }
  if (key != SCIO_ATTR_LOCAL_ADDR && key != SCIO_ATTR_REMOTE_ADDR)
    return -ENOENT;
  if (len < sizeof(struct sockaddr_storage))
    return -ENOSPC;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl = sizeof ss;
  int rc = key == SCIO_ATTR_LOCAL_ADDR
               ? getsockname(d->fd, (struct sockaddr *)&ss, &sl)
               : getpeername(d->fd, (struct sockaddr *)&ss, &sl);
  if (rc < 0)
    return scio__seterr(-errno, "ostream_attr: %s", strerror(errno));
  ss.ss_family = (sa_family_t)d->family;
  memcpy(out, &ss, sizeof ss);
  return 0;
}

static const scio_ostream_ops dgram_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "datagram",
    .do_send = ds_send,
    .do_receive = ds_receive,
    .do_close = ds_close,
    .do_free = ds_free,
    .do_attr = ds_attr,
};

static int ds_wrap(int fd, int family, scio_ostream **out) {
  dgram_stream *d = scio__calloc(1, sizeof *d);
  if (!d)
    return scio__seterr(SCIO_ENOMEM, "datagram stream: out of memory");
  scio_ostream_init(&d->base, &dgram_ops, NULL, sizeof(scio_datagram));
  d->fd = fd;
  d->family = family;
  *out = &d->base;
  return 0;
}

SCIO_API int scio_datagram_connect(const struct sockaddr_storage *remote,
                                   const struct sockaddr_storage *local,
                                   scio_ostream **out) {
  if (out)
    *out = NULL;
  if (!remote || !out || addr_len(remote) == 0 ||
      (local && local->ss_family != remote->ss_family))
    return scio__seterr(SCIO_EINVAL, "datagram_connect: bad argument");
  int fd = local ? bind_new(local, 0, "datagram_connect")
                 : socket(remote->ss_family,
                          SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return local ? fd
                 : scio__seterr(-errno, "datagram_connect: socket: %s",
                                strerror(errno));
  int rc = 0;
  if (connect(fd, (const struct sockaddr *)remote, addr_len(remote)) < 0) {
    char a[128];
    scio_sockaddr_format(remote, a, sizeof a);
    rc = scio__seterr(-errno, "datagram_connect %s: %s", a, strerror(errno));
  }
  if (rc == 0)
    rc = ds_wrap(fd, remote->ss_family, out);
  if (rc < 0)
    close(fd);
  return rc;
}

SCIO_API int scio_datagram_pair_open(scio_ostream **a, scio_ostream **b) {
  if (a)
    *a = NULL;
  if (b)
    *b = NULL;
  if (!a || !b)
    return scio__seterr(SCIO_EINVAL, "datagram_pair_open: NULL argument");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
      0)
    return scio__seterr(-errno, "datagram_pair_open: %s", strerror(errno));
  int rc = ds_wrap(sv[0], AF_UNIX, a);
  if (rc == 0 && (rc = ds_wrap(sv[1], AF_UNIX, b)) < 0) {
    scio__free(*a);
    *a = NULL;
  }
  if (rc < 0) {
    close(sv[0]);
    close(sv[1]);
  }
  return rc;
}
