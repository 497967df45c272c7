/* The generic byte- and object-stream calls: argument checks, busy
 * detection, and deferred freeing.
 *
 * Why deferred: closing a stream wakes the tasks blocked inside it with
 * SCIO_ECLOSED, but those tasks still have frames running inside the
 * implementation.  The memory is freed only when the last call in flight
 * leaves (inflight reaches 0), so a close can never pull a stream out from
 * under a blocked task. */
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "core/layer.h"
#include "scio/stream.h"
#include "stream_internal.h"

/* ------------------------------------------------------------------------ */
/* Vtable versions                                                           */

/* A slot of version 2 or later, or NULL when the layer's vtable is older
 * (its `size` ends before the slot). */
#define STREAM_SLOT(ops, slot)                                                \
  (offsetof(scio_stream_ops, slot) + sizeof((ops)->slot) <= (ops)->size       \
       ? (ops)->slot                                                          \
       : NULL)

/* What a stream whose init was refused answers: every call fails with
 * SCIO_EINVAL (where a missing slot would be -ENOSYS), and close releases
 * nothing, since the layer's own do_free cannot be trusted. */
static const scio_stream_ops invalid_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "invalid (scio_stream_init refused its vtable)",
};

static int invalid_use(const char *what) {
  return scio__seterr(SCIO_EINVAL, "%s: the stream's scio_stream_init failed "
                                   "(bad vtable)",
                      what);
}

SCIO_API int scio_stream_init(scio_stream *s, const scio_stream_ops *ops,
                              scio_stream *inner) {
  if (!s)
    return scio__seterr(SCIO_EINVAL, "stream_init: stream is NULL");
  s->inner = inner;
  s->inflight = 0;
  s->receiving = s->sending = s->closed = s->free_pending = 0;
  s->ops = ops;
  if (ops && ops->size >= SCIO_STREAM_OPS_SIZE_V1)
    return 0;
  s->ops = &invalid_ops;
  s->inner = NULL; /* not ours to close: the layer keeps it on failure */
  if (!ops)
    return scio__seterr(SCIO_EINVAL, "stream_init: ops is NULL");
  return scio__seterr(SCIO_EINVAL, "stream_init: %s: ops->size %zu is below "
                                   "the first version's %zu (set it to "
                                   "sizeof(scio_stream_ops))",
                      ops->name ? ops->name : "stream", ops->size,
                      (size_t)SCIO_STREAM_OPS_SIZE_V1);
}

/* -ENOSYS for a missing slot, or SCIO_EINVAL for a refused stream. */
static int no_slot(scio_stream *s, const char *what, const char *cannot) {
  if (s->ops == &invalid_ops)
    return invalid_use(what);
  return scio__seterr(-ENOSYS, "%s: %s stream %s", what, s->ops->name,
                      cannot);
}

/* The calls below run once or more per message, so their bookkeeping is
 * inline and the error reports are out of line. */
static __attribute__((noinline)) void stream_free_pending(scio_stream *s) {
  if (s->free_pending && s->ops->do_free)
    s->ops->do_free(s);
}

static inline void stream_leave(scio_stream *s) {
  if (__builtin_expect(--s->inflight == 0 && s->free_pending, 0))
    stream_free_pending(s);
}

static __attribute__((noinline, cold)) int stream_unusable(scio_stream *s,
                                                           const char *what) {
  if (!s)
    return scio__seterr(SCIO_EINVAL, "%s: stream is NULL", what);
  return scio__seterr(SCIO_ECLOSED, "%s: %s stream is closed", what,
                      s->ops->name ? s->ops->name : "the");
}

static inline int stream_check(scio_stream *s, const char *what) {
  if (__builtin_expect(!s || s->closed, 0))
    return stream_unusable(s, what);
  return 0;
}

static __attribute__((noinline, cold)) int receive_busy(scio_stream *s,
                                                        const char *what) {
  return scio__seterr(SCIO_EBUSY, "%s: another task is receiving on this "
                                  "%s stream",
                      what, s->ops->name);
}

/* Enter the receive bracket of a stream already checked. */
static inline int enter_receive(scio_stream *s, const char *what) {
  if (__builtin_expect(s->receiving, 0))
    return receive_busy(s, what);
  s->receiving = 1;
  s->inflight++;
  return 0;
}

static inline void leave_receive(scio_stream *s) {
  s->receiving = 0;
  stream_leave(s);
}

int scio__stream_enter_receive(scio_stream *s, const char *what) {
  int rc = stream_check(s, what);
  return rc < 0 ? rc : enter_receive(s, what);
}

void scio__stream_leave_receive(scio_stream *s) { leave_receive(s); }

SCIO_API ssize_t scio_receive(scio_stream *s, void *buf, size_t max) {
  int rc = stream_check(s, "receive");
  if (rc < 0)
    return rc;
  if (!s->ops->do_receive)
    return no_slot(s, "receive", "cannot receive");
  if (!buf && max)
    return scio__seterr(SCIO_EINVAL, "receive: buf is NULL");
  if ((rc = enter_receive(s, "receive")) < 0)
    return rc;
  ssize_t n;
  if (max == 0) {
    rc = scio_checkpoint();
    n = rc < 0 ? rc : 0;
  } else {
    n = s->ops->do_receive(s, buf, max);
  }
  leave_receive(s);
  return n;
}

SCIO_API ssize_t scio_receive_nowait(scio_stream *s, void *buf, size_t max) {
  int rc = stream_check(s, "receive_nowait");
  if (rc < 0)
    return rc;
  ssize_t (*fn)(scio_stream *, void *, size_t) =
      STREAM_SLOT(s->ops, do_receive_nowait);
  if (!fn)
    return no_slot(s, "receive_nowait", "cannot receive without waiting");
  if (!buf && max)
    return scio__seterr(SCIO_EINVAL, "receive_nowait: buf is NULL");
  if ((rc = enter_receive(s, "receive_nowait")) < 0)
    return rc;
  ssize_t n = max ? fn(s, buf, max) : 0;
  leave_receive(s);
  return n;
}

SCIO_API int scio_send(scio_stream *s, const void *buf, size_t len) {
  int rc = stream_check(s, "send");
  if (rc < 0)
    return rc;
  if (!s->ops->do_send)
    return no_slot(s, "send", "cannot send");
  if (!buf && len)
    return scio__seterr(SCIO_EINVAL, "send: buf is NULL");
  if (s->sending)
    return scio__seterr(SCIO_EBUSY, "send: another task is sending on this "
                                    "%s stream",
                        s->ops->name);
  s->sending = 1;
  s->inflight++;
  rc = s->ops->do_send(s, buf, len);
  s->sending = 0;
  stream_leave(s);
  return rc;
}

SCIO_API ssize_t scio_send_nowait(scio_stream *s, const void *buf,
                                  size_t len) {
  int rc = stream_check(s, "send_nowait");
  if (rc < 0)
    return rc;
  ssize_t (*fn)(scio_stream *, const void *, size_t) =
      STREAM_SLOT(s->ops, do_send_nowait);
  if (!fn)
    return no_slot(s, "send_nowait", "cannot send without waiting");
  if (!buf && len)
    return scio__seterr(SCIO_EINVAL, "send_nowait: buf is NULL");
  if (s->sending)
    return scio__seterr(SCIO_EBUSY, "send_nowait: another task is sending "
                                    "on this %s stream",
                        s->ops->name);
  if (len == 0)
    return 0;
  s->sending = 1;
  s->inflight++;
  ssize_t n = fn(s, buf, len);
  s->sending = 0;
  stream_leave(s);
  return n;
}

SCIO_API int scio_send_eof(scio_stream *s) {
  int rc = stream_check(s, "send_eof");
  if (rc < 0)
    return rc;
  if (!s->ops->do_send_eof)
    return no_slot(s, "send_eof", "has no half-close");
  if (s->sending)
    return scio__seterr(SCIO_EBUSY, "send_eof: another task is sending on "
                                    "this %s stream",
                        s->ops->name);
  s->sending = 1;
  s->inflight++;
  rc = s->ops->do_send_eof(s);
  s->sending = 0;
  stream_leave(s);
  return rc;
}

/* Counts as a send: a wait and a send at once would race for the same
 * space (and Trio refuses it too). */
SCIO_API int scio_wait_send_ready(scio_stream *s) {
  int rc = stream_check(s, "wait_send_ready");
  if (rc < 0)
    return rc;
  int (*wait)(scio_stream *) = STREAM_SLOT(s->ops, do_wait_send_ready);
  if (!wait)
    return no_slot(s, "wait_send_ready", "cannot wait for send readiness");
  if (s->sending)
    return scio__seterr(SCIO_EBUSY, "wait_send_ready: another task is "
                                    "sending on this %s stream",
                        s->ops->name);
  s->sending = 1;
  s->inflight++;
  rc = wait(s);
  s->sending = 0;
  stream_leave(s);
  return rc;
}

/* Counts as a receive.  Walks down the chain: the first layer that answers
 * the slot decides; a layer without it may be passed only when it counts its
 * own bytes (do_pending): with bytes it is ready, without them its readiness
 * is the wrapped stream's.  A layer that does neither (TLS, holding records
 * nobody can see) stops the walk: waiting below it could sleep through
 * bytes it already holds.  Each layer passed is entered (inflight), so a
 * close during the wait frees nothing under it. */
/* wait_receive_ready through layers without the slot: each counts its
 * buffered bytes (do_pending), and the walk goes down while none has any.
 * Out of line, so that a stream with its own slot (a socket: the hot case,
 * once per message in a server) parks from a small stack frame, which its
 * task finds cold in the cache when it wakes. */
static __attribute__((noinline)) int wait_ready_walk(scio_stream *s) {
  scio_stream *entered[16];
  int depth = 0, rc;
  scio_stream *l = s;
  for (;;) {
    int (*wait)(scio_stream *) = STREAM_SLOT(l->ops, do_wait_receive_ready);
    if (wait) {
      rc = wait(l);
      break;
    }
    ssize_t (*pending)(scio_stream *) = STREAM_SLOT(l->ops, do_pending);
    ssize_t n = pending ? pending(l) : 0;
    if (!pending || !l->inner || n != 0 || depth == 16 || l->inner->closed) {
      if (n < 0)
        rc = (int)n;
      else if (n > 0)
        rc = scio_checkpoint();
      else if (l->inner && l->inner->closed)
        rc = scio__seterr(SCIO_ECLOSED, "wait_receive_ready: the stream "
                                        "under the %s layer is closed",
                          l->ops->name);
      else
        rc = no_slot(l, "wait_receive_ready",
                     "cannot tell when a receive might not block");
      break;
    }
    l = l->inner;
    l->inflight++;
    entered[depth++] = l;
  }
  while (depth > 0)
    stream_leave(entered[--depth]);
  return rc;
}

SCIO_API int scio_wait_receive_ready(scio_stream *s) {
  int rc = stream_check(s, "wait_receive_ready");
  if (rc < 0 || (rc = enter_receive(s, "wait_receive_ready")) < 0)
    return rc;
  int (*wait)(scio_stream *) = STREAM_SLOT(s->ops, do_wait_receive_ready);
  rc = wait ? wait(s) : wait_ready_walk(s);
  if (rc == 0 && s->closed)
    rc = scio__seterr(SCIO_ECLOSED, "wait_receive_ready: stream closed "
                                    "while waiting");
  leave_receive(s);
  return rc;
}

/* Each layer counts its own buffer; a layer over several streams (stapled)
 * has no `inner` and asks its halves itself. */
SCIO_API ssize_t scio_stream_pending(scio_stream *s) {
  ssize_t rc = stream_check(s, "stream_pending");
  if (rc < 0)
    return rc;
  if (s->ops == &invalid_ops)
    return invalid_use("stream_pending");
  ssize_t total = 0;
  for (; s; s = s->inner) {
    ssize_t (*pending)(scio_stream *) = STREAM_SLOT(s->ops, do_pending);
    ssize_t n = pending ? pending(s) : 0;
    if (n < 0)
      return n;
    total = n > SSIZE_MAX - total ? SSIZE_MAX : total + n;
  }
  return total;
}

SCIO_API int scio_close(scio_stream *s) {
  if (!s)
    return 0;
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "close: stream already closed");
  s->closed = 1;
  s->inflight++;
  int rc = s->ops->do_close ? s->ops->do_close(s) : 0;
  /* A checkpoint like every close; the stream is released either way.
   * Outside a run (cleanup after scio_run returned) there is nothing to
   * yield to. */
  int crc = scio_task_current() ? scio_checkpoint() : 0;
  s->free_pending = 1;
  stream_leave(s);
  return rc < 0 ? rc : crc;
}

void scio__stream_close_nowait(scio_stream *s) {
  if (!s || s->closed)
    return;
  s->closed = 1;
  s->inflight++;
  if (s->ops->do_close)
    s->ops->do_close(s);
  s->free_pending = 1;
  stream_leave(s);
}

SCIO_API int scio_stream_attr(scio_stream *s, int key, void *out, size_t len) {
  if (!s || !out)
    return scio__seterr(SCIO_EINVAL, "stream_attr: NULL argument");
  if (key == SCIO_ATTR_LAYER) {
    const char *name = s->ops->name ? s->ops->name : "";
    if (strlen(name) + 1 > len)
      return -ENOSPC;
    memcpy(out, name, strlen(name) + 1);
    return 0;
  }
  for (; s; s = s->inner) {
    if (!s->ops->do_attr)
      continue;
    int rc = s->ops->do_attr(s, key, out, len);
    if (rc != -ENOENT)
      return rc;
  }
  return -ENOENT;
}

SCIO_API int scio_stream_fd(scio_stream *s, int *fd) {
  return scio_stream_attr(s, SCIO_ATTR_FD, fd, sizeof *fd);
}

SCIO_API int scio_stream_family(scio_stream *s, int *family) {
  return scio_stream_attr(s, SCIO_ATTR_FAMILY, family, sizeof *family);
}

SCIO_API int scio_stream_local_addr(scio_stream *s,
                                    struct sockaddr_storage *addr) {
  return scio_stream_attr(s, SCIO_ATTR_LOCAL_ADDR, addr, sizeof *addr);
}

SCIO_API int scio_stream_remote_addr(scio_stream *s,
                                     struct sockaddr_storage *addr) {
  return scio_stream_attr(s, SCIO_ATTR_REMOTE_ADDR, addr, sizeof *addr);
}

SCIO_API int scio_stream_layer(scio_stream *s, char *name, size_t len) {
  return scio_stream_attr(s, SCIO_ATTR_LAYER, name, len);
}

/* ------------------------------------------------------------------------ */
/* Object streams                                                            */

static const scio_ostream_ops invalid_oops = {
    .size = sizeof(scio_ostream_ops),
    .name = "invalid (scio_ostream_init refused its vtable)",
};

SCIO_API int scio_ostream_init(scio_ostream *s, const scio_ostream_ops *ops,
                               scio_ostream *inner, size_t item_size) {
  if (!s)
    return scio__seterr(SCIO_EINVAL, "ostream_init: stream is NULL");
  s->ops = ops;
  s->inner = inner;
  s->item_size = item_size;
  s->inflight = 0;
  s->closed = s->free_pending = 0;
  if (ops && ops->size >= SCIO_OSTREAM_OPS_SIZE_V1)
    return 0;
  s->ops = &invalid_oops;
  s->inner = NULL;
  if (!ops)
    return scio__seterr(SCIO_EINVAL, "ostream_init: ops is NULL");
  return scio__seterr(SCIO_EINVAL, "ostream_init: %s: ops->size %zu is below "
                                   "the first version's %zu (set it to "
                                   "sizeof(scio_ostream_ops))",
                      ops->name ? ops->name : "object stream", ops->size,
                      (size_t)SCIO_OSTREAM_OPS_SIZE_V1);
}

static int ono_slot(scio_ostream *s, const char *what, const char *cannot) {
  if (s->ops == &invalid_oops)
    return invalid_use(what);
  return scio__seterr(-ENOSYS, "%s: %s %s", what, s->ops->name, cannot);
}

static void ostream_leave(scio_ostream *s) {
  if (--s->inflight == 0 && s->free_pending && s->ops->do_free)
    s->ops->do_free(s);
}

static int ostream_check(scio_ostream *s, const void *item, const char *what) {
  if (!s || !item)
    return scio__seterr(SCIO_EINVAL, "%s: NULL argument", what);
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "%s: %s is closed", what,
                        s->ops->name ? s->ops->name : "object stream");
  return 0;
}

SCIO_API int scio_ostream_send(scio_ostream *s, const void *item) {
  int rc = ostream_check(s, item, "ostream_send");
  if (rc < 0)
    return rc;
  if (!s->ops->do_send)
    return ono_slot(s, "ostream_send", "cannot send");
  s->inflight++;
  rc = s->ops->do_send(s, item);
  ostream_leave(s);
  return rc;
}

SCIO_API int scio_ostream_receive(scio_ostream *s, void *item) {
  int rc = ostream_check(s, item, "ostream_receive");
  if (rc < 0)
    return rc;
  if (!s->ops->do_receive)
    return ono_slot(s, "ostream_receive", "cannot receive");
  s->inflight++;
  rc = s->ops->do_receive(s, item);
  ostream_leave(s);
  return rc;
}

SCIO_API int scio_ostream_send_eof(scio_ostream *s) {
  int rc = ostream_check(s, s, "ostream_send_eof");
  if (rc < 0)
    return rc;
  if (!s->ops->do_send_eof)
    return ono_slot(s, "ostream_send_eof", "has no half-close");
  s->inflight++;
  rc = s->ops->do_send_eof(s);
  ostream_leave(s);
  return rc;
}

SCIO_API int scio_ostream_close(scio_ostream *s) {
  if (!s)
    return 0;
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "ostream_close: already closed");
  s->closed = 1;
  s->inflight++;
  int rc = s->ops->do_close ? s->ops->do_close(s) : 0;
  int crc = scio_task_current() ? scio_checkpoint() : 0;
  s->free_pending = 1;
  ostream_leave(s);
  return rc < 0 ? rc : crc;
}

SCIO_API int scio_ostream_attr(scio_ostream *s, int key, void *out,
                               size_t len) {
  if (!s || !out)
    return scio__seterr(SCIO_EINVAL, "ostream_attr: NULL argument");
  if (key == SCIO_ATTR_LAYER) {
    const char *name = s->ops->name ? s->ops->name : "";
    if (strlen(name) + 1 > len)
      return -ENOSPC;
    memcpy(out, name, strlen(name) + 1);
    return 0;
  }
  for (; s; s = s->inner) {
    if (!s->ops->do_attr)
      continue;
    int rc = s->ops->do_attr(s, key, out, len);
    if (rc != -ENOENT)
      return rc;
  }
  return -ENOENT;
}

SCIO_API size_t scio_ostream_item_size(const scio_ostream *s) {
  return s ? s->item_size : 0;
}
