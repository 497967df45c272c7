/* File streams: byte streams over files (AnyIO's FileReadStream and
 * FileWriteStream).
 *
 * Two kinds behind one layer ("file-read" / "file-write"):
 *   - a regular file (or anything that is not a pipe) is a scio_file, and
 *     each receive or send is one call through the worker pool;
 *   - a FIFO, pipe, socket or terminal never blocks a worker: the layer
 *     wraps the loop-driven pipe stream of src/streams/fdstream.c (inner),
 *     and forwards to it.
 * Either way the layer answers SCIO_ATTR_PATH, so a stream opened by path
 * names it whatever the file turned out to be.
 *
 * A file stream's receive cannot be woken by a close while its worker
 * runs: scio_file_close waits for the worker (shielded), then the receive
 * sees the stream closed and returns SCIO_ECLOSED. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "core/layer.h"
#include "fdstream.h"
#include "scio/file.h"
#include "stream_internal.h"
#include "thread/file_internal.h"

typedef struct file_stream {
  scio_stream base; /* first: the stream head */
  scio_file *file;  /* the worker kind; NULL once closed (or send_eof) */
  char *path;       /* a copy, or NULL when made from an fd */
  unsigned char eof_sent;
} file_stream;

static const scio_stream_ops read_ops, write_ops;

static ssize_t fs_receive(scio_stream *st, void *buf, size_t max) {
  file_stream *s = (file_stream *)st;
  if (s->base.inner)
    return scio_receive(s->base.inner, buf, max);
  size_t got = 0;
  int rc = scio_file_read(s->file, buf, max, &got);
  if (s->base.closed)
    return scio__seterr(SCIO_ECLOSED, "receive: file stream closed while "
                                      "reading");
  if (rc < 0)
    return rc;
  return got ? (ssize_t)got : SCIO_EOF;
}

static int fs_send(scio_stream *st, const void *buf, size_t len) {
  file_stream *s = (file_stream *)st;
  if (s->base.inner)
    return scio_send(s->base.inner, buf, len);
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "send: the file was closed by "
                                      "send_eof");
  if (len == 0)
    return scio_checkpoint();
  return scio_file_write(s->file, buf, len);
}

/* The end of writing is the file's close, whose error says whether the
 * data got out. */
static int fs_send_eof(scio_stream *st) {
  file_stream *s = (file_stream *)st;
  if (s->base.inner)
    return scio_send_eof(s->base.inner);
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio_checkpoint();
  s->eof_sent = 1;
  scio_file *f = s->file;
  s->file = NULL;
  return scio_file_close(f);
}

/* A regular file is always ready: the call is just a checkpoint. */
static int fs_wait_send_ready(scio_stream *st) {
  file_stream *s = (file_stream *)st;
  if (s->base.inner)
    return scio_wait_send_ready(s->base.inner);
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (s->eof_sent)
    return scio__seterr(SCIO_ECLOSED, "wait_send_ready: the file was closed "
                                      "by send_eof");
  return scio_checkpoint();
}

static int fs_wait_receive_ready(scio_stream *st) {
  file_stream *s = (file_stream *)st;
  if (s->base.inner)
    return scio_wait_receive_ready(s->base.inner);
  return scio_checkpoint();
}

static int fs_close(scio_stream *st) {
  file_stream *s = (file_stream *)st;
  if (s->base.inner) {
    /* Wakes a task blocked in the pipe with SCIO_ECLOSED; the pipe's
     * memory stays until that task has left it. */
    scio__stream_close_nowait(s->base.inner);
    return 0;
  }
  scio_file *f = s->file;
  s->file = NULL;
  return scio_file_close(f);
}

static void fs_free(scio_stream *st) {
  file_stream *s = (file_stream *)st;
  scio__free(s->path);
  scio__free(s);
}

static int fs_attr(scio_stream *st, int key, void *out, size_t len) {
  file_stream *s = (file_stream *)st;
  if (key == SCIO_ATTR_PATH && s->path) {
    size_t n = strlen(s->path) + 1;
    if (len < n)
      return -ENOSPC;
    memcpy(out, s->path, n);
    return 0;
  }
  if (key == SCIO_ATTR_FD && s->file) {
    if (len < sizeof(int))
      return -ENOSPC;
    *(int *)out = scio_file_fd(s->file);
    return 0;
  }
  return -ENOENT; /* the pipe stream below answers its fd */
}

static const scio_stream_ops read_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "file-read",
    .do_receive = fs_receive,
    .do_close = fs_close,
    .do_free = fs_free,
    .do_attr = fs_attr,
    .do_wait_receive_ready = fs_wait_receive_ready,
};

static const scio_stream_ops write_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "file-write",
    .do_send = fs_send,
    .do_send_eof = fs_send_eof,
    .do_close = fs_close,
    .do_free = fs_free,
    .do_attr = fs_attr,
    .do_wait_send_ready = fs_wait_send_ready,
};

/* ------------------------------------------------------------------------ */
/* Construction                                                              */

/* The layer, allocated before anything is opened (so that nothing fails
 * after the open).  path may be NULL. */
static file_stream *fs_new(const char *path) {
  file_stream *s = scio__calloc(1, sizeof *s);
  if (!s)
    return NULL;
  if (path) {
    size_t n = strlen(path) + 1;
    if (!(s->path = scio__malloc(n))) {
      scio__free(s);
      return NULL;
    }
    memcpy(s->path, path, n);
  }
  return s;
}

/* Put the open fd (a scio_file, or a loop-kind fd) into s.  On error the
 * fd and s are the caller's (fd not closed). */
static int fs_attach(file_stream *s, int write, int fd, scio_file *f,
                     const struct stat *st) {
  const scio_stream_ops *ops = write ? &write_ops : &read_ops;
  if (S_ISDIR(st->st_mode))
    return scio__seterr(SCIO_EISDIR, "file stream %s: is a directory",
                        s->path ? s->path : "from fd");
  if (!scio__file_on_loop(fd, st)) {
    int rc = f ? 0 : scio_file_from_fd(fd, &f);
    if (rc < 0)
      return rc;
    s->file = f;
    scio_stream_init(&s->base, ops, NULL);
    return 0;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return scio__seterr(-errno, "file stream: fcntl: %s", strerror(errno));
  scio_stream *pipe;
  int rc = scio__pipe_wrap(fd, write ? SCIO__PIPE_WRITE : SCIO__PIPE_READ,
                           &pipe);
  if (rc < 0)
    return rc;
  if (f)
    scio__file_release(f); /* the pipe stream owns fd now */
  scio_stream_init(&s->base, ops, pipe);
  return 0;
}

static int fs_open(const char *path, int flags, int write,
                   scio_stream **out) {
  const char *what = write ? "file_write_stream_open"
                           : "file_read_stream_open";
  if (out)
    *out = NULL;
  if (!path || !out)
    return scio__seterr(SCIO_EINVAL, "%s: path or out is NULL", what);
  file_stream *s = fs_new(path);
  if (!s)
    return scio__seterr(SCIO_ENOMEM, "%s %s: out of memory", what, path);
  scio_file *f;
  struct stat st;
  int rc = scio__file_open_stat(path, flags, 0666, &f, &st);
  if (rc == 0 && (rc = fs_attach(s, write, scio_file_fd(f), f, &st)) < 0) {
    int err = rc;
    scio_file_close(f); /* an error path: its result is not news */
    rc = err;
  }
  if (rc < 0) {
    fs_free(&s->base);
    return rc;
  }
  *out = &s->base;
  return 0;
}

SCIO_API int scio_file_read_stream_open(const char *path, scio_stream **out) {
  return fs_open(path, O_RDONLY, 0, out);
}

SCIO_API int scio_file_write_stream_open(const char *path, int append,
                                         scio_stream **out) {
  int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  return fs_open(path, flags, 1, out);
}

static int fs_from_fd(int fd, int write, scio_stream **out) {
  const char *what = write ? "file_write_stream_from_fd"
                           : "file_read_stream_from_fd";
  if (out)
    *out = NULL;
  if (!out || fd < 0)
    return scio__seterr(SCIO_EINVAL, "%s: bad argument", what);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return scio__seterr(-errno, "%s: fd %d: %s", what, fd, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return scio__seterr(SCIO_EINVAL, "%s: fd %d is a directory", what, fd);
  file_stream *s = fs_new(NULL);
  if (!s)
    return scio__seterr(SCIO_ENOMEM, "%s: out of memory", what);
  int rc = fs_attach(s, write, fd, NULL, &st);
  if (rc < 0) {
    fs_free(&s->base);
    return rc;
  }
  *out = &s->base;
  return 0;
}

SCIO_API int scio_file_read_stream_from_fd(int fd, scio_stream **out) {
  return fs_from_fd(fd, 0, out);
}

SCIO_API int scio_file_write_stream_from_fd(int fd, scio_stream **out) {
  return fs_from_fd(fd, 1, out);
}

SCIO_API int scio_file_read_stream_seek(scio_stream *st, int64_t offset) {
  if (!st || st->ops != &read_ops)
    return scio__seterr(SCIO_EINVAL, "file_read_stream_seek: not a file "
                                     "read stream");
  if (offset < 0)
    return scio__seterr(SCIO_EINVAL, "file_read_stream_seek: negative "
                                     "offset");
  file_stream *s = (file_stream *)st;
  int rc = scio__stream_enter_receive(st, "file_read_stream_seek");
  if (rc < 0)
    return rc;
  if (s->base.inner) {
    rc = scio_checkpoint_if_cancelled();
    if (rc == 0)
      rc = scio__seterr(SCIO_ESPIPE, "file_read_stream_seek: the stream "
                                     "reads a pipe, FIFO, socket or "
                                     "terminal: not seekable");
  } else {
    rc = scio_file_seek(s->file, offset, SEEK_SET, NULL);
  }
  scio__stream_leave_receive(st);
  return rc;
}
