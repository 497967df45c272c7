/* Pipe, FIFO and terminal fds as byte streams (Trio's FdStream).
 *
 * Each call tries its syscall first and waits for readiness only on
 * EAGAIN, through the fd contract (scio__fd_wait / scio__fd_close), as the
 * socket streams do.  A pipe has no MSG_NOSIGNAL: a write to a pipe without
 * reader raises SIGPIPE, whose default kills the process, so every write
 * runs with SIGPIPE blocked in the calling thread and a SIGPIPE it raised
 * is taken back before the mask is restored (write_quiet). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/layer.h"
#include "fdstream.h"
#include "scio/process.h"

typedef struct pipe_stream {
  scio_stream base; /* first: the stream head */
  int fd;           /* -1 once closed (or after send_eof) */
  int dir;          /* SCIO__PIPE_READ | SCIO__PIPE_WRITE */
  unsigned char rx_drained, tx_full, eof_sent;
} pipe_stream;

/* After a failed wait: closed meanwhile, or cancelled (already recorded). */
static int wait_failed(int rc, const char *what) {
  if (rc == SCIO_ECLOSED)
    return scio__seterr(SCIO_ECLOSED, "%s: pipe closed while waiting", what);
  return rc;
}

static void yield_once(int yielded) {
  if (!yielded)
    scio_cancel_shielded_checkpoint();
}

static int pipe_err(int err, const char *what) {
  if (err == EPIPE || err == ECONNRESET)
    return scio__seterr(SCIO_EBROKEN, "%s: the pipe's reader is gone", what);
  return scio__seterr(-err, "%s: %s", what, strerror(err));
}

static ssize_t pipe_receive(scio_stream *st, void *buf, size_t max) {
  pipe_stream *s = (pipe_stream *)st;
  if (!buf)
    return scio__seterr(SCIO_EINVAL, "receive: buf is NULL");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = 0;
  for (;;) {
    if (s->rx_drained) {
      rc = scio__fd_wait(s->fd, SCIO__FD_READ);
      if (rc < 0)
        return wait_failed(rc, "receive");
      if (s->base.closed)
        return scio__seterr(SCIO_ECLOSED, "receive: pipe closed while "
                                          "waiting");
      yielded |= rc != SCIO__FD_NOPARK;
      s->rx_drained = 0;
    }
    ssize_t n = read(s->fd, buf, max);
    if (n > 0) {
      yield_once(yielded);
      return n;
    }
    if (n == 0) {
      yield_once(yielded);
      return SCIO_EOF;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->rx_drained = 1;
      continue;
    }
    /* A terminal whose session ended reads EIO: that is its end. */
    if (errno == EIO) {
      yield_once(yielded);
      return SCIO_EOF;
    }
    return pipe_err(errno, "receive");
  }
}

/* One read, no wait. */
static ssize_t pipe_receive_nowait(scio_stream *st, void *buf, size_t max) {
  pipe_stream *s = (pipe_stream *)st;
  for (;;) {
    ssize_t n = read(s->fd, buf, max);
    if (n > 0)
      return n;
    if (n == 0)
      return SCIO_EOF;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->rx_drained = 1;
      return SCIO_EWOULDBLOCK;
    }
    if (errno == EIO) /* a terminal whose session ended: its end */
      return SCIO_EOF;
    return pipe_err(errno, "receive_nowait");
  }
}

/* Returns once a read would not block (bytes, end of file or an error),
 * without reading: poll(2) settles what an edge left open. */
static int pipe_wait_receive_ready(scio_stream *st) {
  pipe_stream *s = (pipe_stream *)st;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = 0;
  for (;;) {
    if (!s->rx_drained) {
      struct pollfd p = {.fd = s->fd, .events = POLLIN};
      int n = poll(&p, 1, 0);
      if (n < 0 && errno != EINTR)
        return scio__seterr(-errno, "wait_receive_ready: poll: %s",
                            strerror(errno));
      if (n > 0) {
        yield_once(yielded);
        return 0;
      }
      if (n == 0)
        s->rx_drained = 1;
      continue;
    }
    rc = scio__fd_wait(s->fd, SCIO__FD_READ);
    if (rc < 0)
      return wait_failed(rc, "wait_receive_ready");
    if (s->base.closed)
      return scio__seterr(SCIO_ECLOSED, "wait_receive_ready: pipe closed "
                                        "while waiting");
    yielded |= rc != SCIO__FD_NOPARK;
    s->rx_drained = 0;
  }
}

/* write(2) that raises no SIGPIPE in the process.  A SIGPIPE caused by a
 * write is directed at the writing thread, so blocking it in this thread
 * keeps it pending here, where sigtimedwait takes it back.  If the caller
 * already blocked SIGPIPE and one was pending before the write, it is the
 * caller's and is left alone. */
static ssize_t write_quiet(int fd, const void *buf, size_t len) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int was_pending = 0;
  if (sigismember(&old, SIGPIPE)) {
    sigset_t pending;
    was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
  }
  ssize_t n = write(fd, buf, len);
  int e = errno;
  if (n < 0 && e == EPIPE && !was_pending) {
    static const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return n;
}

static int pipe_send(scio_stream *st, const void *buf, size_t len) {
  pipe_stream *s = (pipe_stream *)st;
  if (!buf && len > 0)
    return scio__seterr(SCIO_EINVAL, "send: buf is NULL");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "send: the pipe was closed by "
                                      "send_eof");
  size_t done = 0;
  int yielded = 0;
  while (done < len) {
    if (s->tx_full) {
      rc = scio__fd_wait(s->fd, SCIO__FD_WRITE);
      if (rc == SCIO_ECANCELED)
        return scio__seterr(rc, "send: cancelled after %zu of %zu bytes",
                            done, len);
      if (rc < 0)
        return wait_failed(rc, "send");
      if (s->base.closed)
        return scio__seterr(SCIO_ECLOSED, "send: pipe closed while waiting");
      yielded |= rc != SCIO__FD_NOPARK;
      s->tx_full = 0;
    }
    ssize_t n = write_quiet(s->fd, (const char *)buf + done, len - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->tx_full = 1;
        continue;
      }
      return pipe_err(errno, "send");
    }
    /* A partial write means the pipe buffer is full. */
    if ((size_t)n < len - done)
      s->tx_full = 1;
    done += (size_t)n;
  }
  yield_once(yielded);
  return 0;
}

/* One write, no wait. */
static ssize_t pipe_send_nowait(scio_stream *st, const void *buf,
                                size_t len) {
  pipe_stream *s = (pipe_stream *)st;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "send_nowait: the pipe was closed by "
                                      "send_eof");
  for (;;) {
    ssize_t n = write_quiet(s->fd, buf, len);
    if (n > 0) {
      s->tx_full = (size_t)n < len;
      return n;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
      s->tx_full = 1;
      return SCIO_EWOULDBLOCK;
    }
    return pipe_err(errno, "send_nowait");
  }
}

/* A pipe has no half-close: the writer's end of the stream is its close,
 * which is what the reader sees as EOF.  The stream stays open (attributes,
 * close) with no fd. */
static int pipe_send_eof(scio_stream *st) {
  pipe_stream *s = (pipe_stream *)st;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (!s->eof_sent && s->fd >= 0) {
    int fd = s->fd;
    s->fd = -1;
    scio__fd_close(fd);
  }
  s->eof_sent = 1;
  scio_cancel_shielded_checkpoint();
  return 0;
}

/* Returns once the pipe has room (or a write would fail at once: no
 * reader), without writing. */
static int pipe_wait_send_ready(scio_stream *st) {
  pipe_stream *s = (pipe_stream *)st;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "wait_send_ready: the pipe was closed "
                                      "by send_eof");
  int yielded = 0;
  for (;;) {
    struct pollfd p = {.fd = s->fd, .events = POLLOUT};
    int n = poll(&p, 1, 0);
    if (n < 0 && errno != EINTR)
      return scio__seterr(-errno, "wait_send_ready: poll: %s",
                          strerror(errno));
    if (n > 0) {
      yield_once(yielded);
      return 0;
    }
    rc = scio__fd_wait(s->fd, SCIO__FD_WRITE);
    if (rc < 0)
      return wait_failed(rc, "wait_send_ready");
    if (s->base.closed)
      return scio__seterr(SCIO_ECLOSED, "wait_send_ready: pipe closed while "
                                        "waiting");
    yielded |= rc != SCIO__FD_NOPARK;
  }
}

static int pipe_close(scio_stream *st) {
  pipe_stream *s = (pipe_stream *)st;
  if (s->fd >= 0) {
    int fd = s->fd;
    s->fd = -1;
    /* Wakes a task blocked in receive or send with SCIO_ECLOSED. */
    scio__fd_close(fd);
  }
  return 0;
}

static void pipe_free(scio_stream *st) { scio__free(st); }

static int pipe_attr(scio_stream *st, int key, void *out, size_t len) {
  pipe_stream *s = (pipe_stream *)st;
  if (key != SCIO_ATTR_FD || s->fd < 0)
    return -ENOENT;
  if (len < sizeof(int))
    return -ENOSPC;
  *(int *)out = s->fd;
  return 0;
}

static const scio_stream_ops read_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "pipe-read",
    .do_receive = pipe_receive,
    .do_close = pipe_close,
    .do_free = pipe_free,
    .do_attr = pipe_attr,
    .do_wait_receive_ready = pipe_wait_receive_ready,
    .do_receive_nowait = pipe_receive_nowait,
};

static const scio_stream_ops write_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "pipe-write",
    .do_send = pipe_send,
    .do_send_nowait = pipe_send_nowait,
    .do_send_eof = pipe_send_eof,
    .do_close = pipe_close,
    .do_free = pipe_free,
    .do_attr = pipe_attr,
    .do_wait_send_ready = pipe_wait_send_ready,
};

/* A read-write fd (a terminal, a FIFO opened O_RDWR): send_eof would close
 * the receive side too, so it has none. */
static const scio_stream_ops both_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "pipe",
    .do_receive = pipe_receive,
    .do_send = pipe_send,
    .do_send_nowait = pipe_send_nowait,
    .do_close = pipe_close,
    .do_free = pipe_free,
    .do_attr = pipe_attr,
    .do_wait_send_ready = pipe_wait_send_ready,
    .do_wait_receive_ready = pipe_wait_receive_ready,
    .do_receive_nowait = pipe_receive_nowait,
};

int scio__pipe_wrap(int fd, int dir, scio_stream **out) {
  *out = NULL;
  pipe_stream *s = scio__calloc(1, sizeof *s);
  if (!s)
    return scio__seterr(SCIO_ENOMEM, "pipe stream: out of memory");
  const scio_stream_ops *ops = dir == SCIO__PIPE_READ    ? &read_ops
                               : dir == SCIO__PIPE_WRITE ? &write_ops
                                                         : &both_ops;
  scio_stream_init(&s->base, ops, NULL);
  s->fd = fd;
  s->dir = dir;
  *out = &s->base;
  return 0;
}

static int fd_direction(int fd, int *dir) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return scio__seterr(-errno, "pipe_stream_from_fd: fd %d: %s", fd,
                        strerror(errno));
  if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
    return scio__seterr(SCIO_EINVAL, "pipe_stream_from_fd: fd %d is not a "
                                     "pipe, FIFO or terminal", fd);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    return scio__seterr(-errno, "pipe_stream_from_fd: fcntl: %s",
                        strerror(errno));
  int acc = fl & O_ACCMODE;
  *dir = acc == O_RDONLY   ? SCIO__PIPE_READ
         : acc == O_WRONLY ? SCIO__PIPE_WRITE
                           : SCIO__PIPE_READ | SCIO__PIPE_WRITE;
  if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return scio__seterr(-errno, "pipe_stream_from_fd: fcntl: %s",
                        strerror(errno));
  return 0;
}

SCIO_API int scio_pipe_stream_from_fd(int fd, unsigned flags,
                                      scio_stream **out) {
  if (out)
    *out = NULL;
  if (!out || fd < 0 || flags)
    return scio__seterr(SCIO_EINVAL, "pipe_stream_from_fd: bad argument");
  int dir = 0, rc = fd_direction(fd, &dir);
  if (rc < 0)
    return rc;
  return scio__pipe_wrap(fd, dir, out);
}

SCIO_API int scio_pipe_stream_open(scio_stream **r, scio_stream **w) {
  if (r)
    *r = NULL;
  if (w)
    *w = NULL;
  if (!r || !w)
    return scio__seterr(SCIO_EINVAL, "pipe_stream_open: NULL argument");
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
    return scio__seterr(-errno, "pipe_stream_open: %s", strerror(errno));
  int rc = scio__pipe_wrap(fds[0], SCIO__PIPE_READ, r);
  if (rc == 0 && (rc = scio__pipe_wrap(fds[1], SCIO__PIPE_WRITE, w)) < 0) {
    scio__free(*r);
    *r = NULL;
  }
  if (rc < 0) {
    close(fds[0]);
    close(fds[1]);
  }
  return rc;
}
