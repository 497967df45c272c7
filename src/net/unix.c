/* UNIX stream sockets: connect, and listeners on a socket file. */
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"

int scio__unix_addr(const char *path, struct sockaddr_un *sun,
                    socklen_t *len, const char *what) {
  if (!path || !path[0])
    return scio__seterr(SCIO_EINVAL, "%s: empty path", what);
  size_t n = strlen(path);
  if (n >= sizeof sun->sun_path)
    return scio__seterr(SCIO_EINVAL, "%s %s: path longer than %zu bytes",
                        what, path, sizeof sun->sun_path - 1);
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, path, n + 1);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

/* connect(2) on a non-blocking UNIX socket completes or fails at once,
 * except when the listener's backlog is full (EAGAIN): nothing signals
 * when room appears, so retry after a short sleep. */
static int connect_retry(int fd, const struct sockaddr_un *sun, socklen_t len,
                         const char *path, int *yielded) {
  double pause = 0.001;
  for (;;) {
    if (connect(fd, (const struct sockaddr *)sun, len) == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return scio__seterr(-errno, "connect_unix %s: %s", path,
                          strerror(errno));
    int rc = scio_sleep(pause);
    if (rc < 0)
      return rc;
    *yielded = 1;
    pause = pause < 0.05 ? pause * 2 : pause;
  }
}

SCIO_API int scio_connect_unix(const char *path, scio_stream **out) {
  if (out)
    *out = NULL;
  if (!out)
    return scio__seterr(SCIO_EINVAL, "connect_unix: out is NULL");
  struct sockaddr_un sun;
  socklen_t len;
  int rc = scio__unix_addr(path, &sun, &len, "connect_unix");
  if (rc < 0)
    return rc;
  if ((rc = scio_checkpoint_if_cancelled()) < 0)
    return rc;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return scio__seterr(-errno, "connect_unix: socket: %s", strerror(errno));
  int yielded = 0;
  rc = connect_retry(fd, &sun, len, path, &yielded);
  if (rc == 0)
    rc = scio__sock_wrap(fd, AF_UNIX, 0, out);
  if (rc < 0) {
    scio__fd_close(fd);
    return rc;
  }
  scio__yield_once(yielded);
  return 0;
}

/* Is somebody listening at the socket file? -ECONNREFUSED means it is
 * stale (its server died without removing it). */
static int probe(const struct sockaddr_un *sun, socklen_t len) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int rc = connect(fd, (const struct sockaddr *)sun, len) == 0 ? 0 : -errno;
  close(fd);
  return rc == -EAGAIN ? 0 : rc; /* a full backlog is a live server */
}

static int bind_unix(const struct sockaddr_un *sun, socklen_t len,
                     const scio_listen_opts *o, const char *path) {
  int fd = scio__listen_socket((const struct sockaddr *)sun, len, o,
                               "unix_listen");
  if (fd != SCIO_EADDRINUSE)
    return fd;
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
    return scio__seterr(SCIO_EADDRINUSE, "unix_listen %s: a file that is "
                                         "not a socket exists there", path);
  int p = probe(sun, len);
  if (p != -ECONNREFUSED)
    return scio__seterr(SCIO_EADDRINUSE, "unix_listen %s: %s", path,
                        p == 0 ? "a server is listening there"
                               : strerror(-p));
  unlink(path); /* stale: its server is gone */
  return scio__listen_socket((const struct sockaddr *)sun, len, o,
                             "unix_listen");
}

SCIO_API int scio_unix_listen(const char *path, const scio_listen_opts *opts,
                              scio_listener **out) {
  if (out)
    *out = NULL;
  scio_listen_opts o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!out || o.backlog < 0)
    return scio__seterr(SCIO_EINVAL, "unix_listen: bad argument");
  struct sockaddr_un sun;
  socklen_t len;
  int rc = scio__unix_addr(path, &sun, &len, "unix_listen");
  if (rc < 0)
    return rc;
  scio_listener *l = scio__listener_new(1);
  char *copy = scio__malloc(strlen(path) + 1);
  if (!l || !copy) {
    if (l)
      scio__listener_discard(l);
    scio__free(copy);
    return scio__seterr(SCIO_ENOMEM, "unix_listen: out of memory");
  }
  strcpy(copy, path);
  int fd = bind_unix(&sun, len, &o, path);
  struct stat st;
  if (fd >= 0 && lstat(path, &st) < 0) {
    rc = scio__seterr(-errno, "unix_listen %s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    fd = rc;
  }
  if (fd < 0) {
    scio__free(copy);
    scio__listener_discard(l);
    return fd;
  }
  l->socks[0].fd = fd;
  l->socks[0].family = AF_UNIX;
  l->path = copy;
  l->dev = st.st_dev;
  l->ino = st.st_ino;
  *out = l;
  return 0;
}
