/* Async files: every blocking system call of a scio_file runs in a worker
 * thread through scio_to_thread, which gives the cancellation rule of
 * <scio/file.h> (never started: SCIO_ECANCELED and no effect; started:
 * waited for, shielded, and its real result returned).
 *
 * One call is one job: a file_op on the caller's stack holds the
 * arguments and, once the worker is done, the result.  scio_to_thread is
 * never asked to abandon, so the op outlives the worker's use of it.
 *
 * The fd must not be closed while a worker uses it (a number reused by
 * another open would be read or written by a stale call), so the file
 * counts its calls in flight and scio_file_close parks, shielded, until
 * the last one has left. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/layer.h"
#include "file_internal.h"
#include "scio/thread.h"

struct scio_file {
  int fd;
  unsigned inflight;  /* calls running in worker threads */
  int closing;        /* scio_file_close has begun */
  scio__task *closer; /* parked in scio_file_close until inflight is 0 */
  char name[];        /* the path, or "fd N", for error details */
};

/* The arguments and result of one call, shared with its worker. */
typedef struct file_op {
  int fd;
  void *buf;
  size_t len;
  int64_t off;
  int whence;
  const char *path;
  int flags;
  mode_t mode;
  struct stat *st; /* open: fstat the new fd into it */
  size_t done;     /* bytes read or written */
  int64_t pos;     /* seek: the new offset */
  int err;         /* errno of the failed system call, 0 */
} file_op;

/* ------------------------------------------------------------------------ */
/* Worker side: plain blocking system calls                                  */

/* An fd handed over non-blocking (a pipe set O_NONBLOCK by someone else)
 * answers EAGAIN: wait in the worker until it is ready. */
static void wait_ready(int fd, short events) {
  struct pollfd p = {.fd = fd, .events = events};
  while (poll(&p, 1, -1) < 0 && errno == EINTR)
    ;
}

/* Workers run with every signal blocked, so a SIGPIPE raised by a write to
 * a pipe without reader stays pending on the worker; take it back so that
 * it is not delivered later, to code that unblocks it. */
static void drop_sigpipe(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  static const struct timespec zero = {0, 0};
  while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
    ;
}

static void *work_open(void *arg) {
  file_op *op = arg;
  op->fd = open(op->path, op->flags | O_CLOEXEC, op->mode);
  if (op->fd < 0) {
    op->err = errno;
    return NULL;
  }
  if (op->st && fstat(op->fd, op->st) < 0) {
    op->err = errno;
    close(op->fd);
    op->fd = -1;
  }
  return NULL;
}

/* read or pread (off >= 0), once, past EINTR and EAGAIN. */
static void *work_read(void *arg) {
  file_op *op = arg;
  for (;;) {
    ssize_t n = op->off >= 0 ? pread(op->fd, op->buf, op->len, (off_t)op->off)
                             : read(op->fd, op->buf, op->len);
    if (n >= 0) {
      op->done = (size_t)n;
      return NULL;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      wait_ready(op->fd, POLLIN);
    else if (errno != EINTR) {
      op->err = errno;
      return NULL;
    }
  }
}

/* write or pwrite (off >= 0) of everything, past short writes. */
static void *work_write(void *arg) {
  file_op *op = arg;
  const char *p = op->buf;
  while (op->done < op->len) {
    size_t left = op->len - op->done;
    ssize_t n =
        op->off >= 0
            ? pwrite(op->fd, p + op->done, left, (off_t)(op->off + op->done))
            : write(op->fd, p + op->done, left);
    if (n >= 0) {
      op->done += (size_t)n;
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_ready(op->fd, POLLOUT);
    } else if (errno != EINTR) {
      op->err = errno;
      if (errno == EPIPE)
        drop_sigpipe();
      return NULL;
    }
  }
  return NULL;
}

static void *work_seek(void *arg) {
  file_op *op = arg;
  off_t r = lseek(op->fd, (off_t)op->off, op->whence);
  if (r < 0)
    op->err = errno;
  else
    op->pos = (int64_t)r;
  return NULL;
}

static void *work_sync(void *arg) {
  file_op *op = arg;
  if ((op->whence ? fdatasync(op->fd) : fsync(op->fd)) < 0)
    op->err = errno;
  return NULL;
}

static void *work_truncate(void *arg) {
  file_op *op = arg;
  int r;
  while ((r = ftruncate(op->fd, (off_t)op->off)) < 0 && errno == EINTR)
    ;
  if (r < 0)
    op->err = errno;
  return NULL;
}

/* EINTR from close(2) still closed the fd on Linux: never retry. */
static int close_fd(int fd) {
  if (close(fd) < 0 && errno != EINTR)
    return errno;
  return 0;
}

static void *work_close(void *arg) {
  file_op *op = arg;
  op->err = close_fd(op->fd);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Loop side                                                                 */

/* Short texts for the errors of files (scio_strerror's for the rest). */
static const char *file_errtext(int err) {
  switch (err) {
  case ENOENT:
    return "no such file";
  case EISDIR:
    return "is a directory";
  case ENOTDIR:
    return "a component of the path is not a directory";
  case ESPIPE:
    return "not seekable (a pipe, FIFO or socket)";
  case EBADF:
    return "bad file descriptor (not open for that)";
  default:
    return scio_strerror(-err);
  }
}

static int file_err(const char *what, const char *name, int err) {
  return scio__seterr(-err, "%s %s: %s", what, name, file_errtext(err));
}

static scio_file *file_new(const char *path, int fd) {
  char num[32];
  if (!path) {
    snprintf(num, sizeof num, "fd %d", fd);
    path = num;
  }
  size_t n = strlen(path) + 1;
  scio_file *f = scio__malloc(sizeof *f + n);
  if (!f)
    return NULL;
  f->fd = fd;
  f->inflight = 0;
  f->closing = 0;
  f->closer = NULL;
  memcpy(f->name, path, n);
  return f;
}

static void file_leave(scio_file *f) {
  if (--f->inflight == 0 && f->closer) {
    scio__task *t = f->closer;
    f->closer = NULL;
    scio__task_wake(t, 0);
  }
}

/* Run fn(op) for f in a worker: the checks, the in-flight count and the
 * error detail that every call shares. */
static int file_call(scio_file *f, scio_thread_fn fn, file_op *op,
                     const char *what) {
  if (f->closing)
    return scio__seterr(SCIO_ECLOSED, "%s %s: the file is closed", what,
                        f->name);
  op->fd = f->fd;
  f->inflight++;
  int rc = scio_to_thread(fn, op, NULL, NULL);
  file_leave(f);
  if (rc < 0)
    return rc;
  if (op->err)
    return file_err(what, f->name, op->err);
  return 0;
}

int scio__file_open_stat(const char *path, int flags, mode_t mode,
                         scio_file **out, struct stat *st) {
  if (out)
    *out = NULL;
  if (!path || !out)
    return scio__seterr(SCIO_EINVAL, "open: path or out is NULL");
  /* Allocated first: once the open has run, nothing may fail. */
  scio_file *f = file_new(path, -1);
  if (!f)
    return scio__seterr(SCIO_ENOMEM, "open %s: out of memory", path);
  file_op op = {.fd = -1, .path = path, .flags = flags, .mode = mode,
                .st = st};
  int rc = scio_to_thread(work_open, &op, NULL, NULL);
  if (rc == 0 && op.err)
    rc = file_err("open", path, op.err);
  if (rc < 0) {
    scio__free(f);
    return rc;
  }
  f->fd = op.fd;
  *out = f;
  return 0;
}

SCIO_API int scio_file_open(const char *path, int flags, mode_t mode,
                            scio_file **out) {
  return scio__file_open_stat(path, flags, mode, out, NULL);
}

SCIO_API int scio_file_from_fd(int fd, scio_file **out) {
  if (out)
    *out = NULL;
  if (!out || fd < 0)
    return scio__seterr(SCIO_EINVAL, "file_from_fd: bad argument");
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0)
    return scio__seterr(-errno, "file_from_fd: fd %d: %s", fd,
                        strerror(errno));
  scio_file *f = file_new(NULL, fd);
  if (!f)
    return scio__seterr(SCIO_ENOMEM, "file_from_fd: out of memory");
  fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
  *out = f;
  return 0;
}

static int read_common(scio_file *f, void *buf, size_t max, int64_t off,
                       size_t *got, const char *what) {
  if (got)
    *got = 0;
  if (!f || !got || (!buf && max > 0))
    return scio__seterr(SCIO_EINVAL, "%s: NULL argument", what);
  if (off < -1)
    return scio__seterr(SCIO_EINVAL, "%s %s: negative offset", what,
                        f->name);
  if (max == 0) {
    if (f->closing)
      return scio__seterr(SCIO_ECLOSED, "%s %s: the file is closed", what,
                          f->name);
    return scio_checkpoint();
  }
  if (max > SSIZE_MAX)
    max = SSIZE_MAX;
  file_op op = {.buf = buf, .len = max, .off = off};
  int rc = file_call(f, work_read, &op, what);
  if (rc == 0)
    *got = op.done;
  return rc;
}

SCIO_API int scio_file_read(scio_file *f, void *buf, size_t max,
                            size_t *got) {
  return read_common(f, buf, max, -1, got, "read");
}

SCIO_API int scio_file_pread(scio_file *f, void *buf, size_t max,
                             int64_t offset, size_t *got) {
  return read_common(f, buf, max, offset < 0 ? -2 : offset, got, "pread");
}

static int write_common(scio_file *f, const void *buf, size_t len,
                        int64_t off, const char *what) {
  if (!f || (!buf && len > 0))
    return scio__seterr(SCIO_EINVAL, "%s: NULL argument", what);
  if (off < -1)
    return scio__seterr(SCIO_EINVAL, "%s %s: negative offset", what,
                        f->name);
  file_op op = {.buf = (void *)buf, .len = len, .off = off};
  int rc = file_call(f, work_write, &op, what);
  if (rc < 0 && op.done > 0)
    scio__seterr(rc, "%s %s: %s after %zu of %zu bytes", what, f->name,
                 file_errtext(-rc), op.done, len);
  return rc;
}

SCIO_API int scio_file_write(scio_file *f, const void *buf, size_t len) {
  return write_common(f, buf, len, -1, "write");
}

SCIO_API int scio_file_pwrite(scio_file *f, const void *buf, size_t len,
                              int64_t offset) {
  return write_common(f, buf, len, offset < 0 ? -2 : offset, "pwrite");
}

SCIO_API int scio_file_seek(scio_file *f, int64_t offset, int whence,
                            int64_t *newpos) {
  if (newpos)
    *newpos = 0;
  if (!f)
    return scio__seterr(SCIO_EINVAL, "seek: file is NULL");
  if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
    return scio__seterr(SCIO_EINVAL, "seek %s: bad whence %d", f->name,
                        whence);
  file_op op = {.off = offset, .whence = whence};
  int rc = file_call(f, work_seek, &op, "seek");
  if (rc == 0 && newpos)
    *newpos = op.pos;
  return rc;
}

SCIO_API int scio_file_sync(scio_file *f) {
  if (!f)
    return scio__seterr(SCIO_EINVAL, "sync: file is NULL");
  file_op op = {.whence = 0};
  return file_call(f, work_sync, &op, "sync");
}

SCIO_API int scio_file_datasync(scio_file *f) {
  if (!f)
    return scio__seterr(SCIO_EINVAL, "datasync: file is NULL");
  file_op op = {.whence = 1};
  return file_call(f, work_sync, &op, "datasync");
}

SCIO_API int scio_file_truncate(scio_file *f, int64_t length) {
  if (!f)
    return scio__seterr(SCIO_EINVAL, "truncate: file is NULL");
  if (length < 0)
    return scio__seterr(SCIO_EINVAL, "truncate %s: negative length",
                        f->name);
  file_op op = {.off = length};
  return file_call(f, work_truncate, &op, "truncate");
}

SCIO_API int scio_file_close(scio_file *f) {
  if (!f)
    return 0;
  if (f->closing)
    return scio__seterr(SCIO_ECLOSED, "close %s: already being closed",
                        f->name);
  f->closing = 1;
  if (f->inflight > 0) {
    /* Only tasks have calls in flight, so this is a task too.  No abort
     * function: the wait is shielded (the fd must outlive the calls). */
    f->closer = scio__task_cur();
    scio__park(NULL, NULL, "file close");
  }
  file_op op = {.fd = f->fd};
  int rc = scio_task_current() ? scio_to_thread(work_close, &op, NULL, NULL)
                               : SCIO_EINVAL;
  if (rc < 0) {
    /* The close never ran in a worker (cancelled before it started, no
     * thread, or outside a task): close here, the file is released. */
    op.err = close_fd(f->fd);
    if (rc != SCIO_ECANCELED)
      rc = 0;
  }
  if (rc == 0 && op.err)
    rc = file_err("close", f->name, op.err);
  scio__free(f);
  return rc;
}

SCIO_API int scio_file_fd(const scio_file *f) { return f ? f->fd : -1; }

int scio__file_release(scio_file *f) {
  int fd = f->fd;
  scio__free(f);
  return fd;
}

int scio__file_on_loop(int fd, const struct stat *st) {
  return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) ||
         (S_ISCHR(st->st_mode) && isatty(fd));
}
