/* Stapled streams: a send half and a receive half owned as one stream.
 *
 * The generic attribute walk follows a single `inner` pointer, and a
 * stapled stream wraps two streams, so base.inner stays NULL and do_attr
 * walks both halves itself (through the public attr calls, which walk each
 * half's own chain).
 *
 * send_eof on a half without half-close closes that half (Trio's rule): the
 * pointer is then cleared, and the calls that would use it report
 * SCIO_ECLOSED instead.  A call already running inside that half keeps its
 * own pointer; the generic layer keeps the half's memory alive until the
 * call leaves.
 */
#include <string.h>

#include "core/layer.h"
#include "scio/stapled.h"

/* ------------------------------------------------------------------------ */
/* Byte streams                                                              */

typedef struct stapled {
  scio_stream base; /* first: the generic layer sees a scio_stream */
  scio_stream *tx;  /* NULL once closed by send_eof */
  scio_stream *rx;
} stapled;

static stapled *stapled_of(scio_stream *s) { return (stapled *)(void *)s; }

static ssize_t stapled_receive(scio_stream *s, void *buf, size_t max) {
  return scio_receive(stapled_of(s)->rx, buf, max);
}

static int stapled_send(scio_stream *s, const void *buf, size_t len) {
  stapled *st = stapled_of(s);
  if (!st->tx)
    return scio__seterr(SCIO_ECLOSED, "send: the send half of this stapled "
                                      "stream was closed by send_eof");
  return scio_send(st->tx, buf, len);
}

/* Closing the send half in place of its send_eof: a cancellation is
 * checked first, since a close cannot be undone (a call that fails has no
 * effect).  A cancellation that reaches the close's own checkpoint comes
 * after the half was closed: the EOF went out, so that counts as done, and
 * the next checkpoint reports the cancellation.  It was delivered to the
 * close, though: its mark is put back, so that the scope does not catch a
 * cancellation that never left send_eof (scio_scope_cancelled_caught). */
static int close_half(scio_stream *tx, scio_ostream *otx) {
  scio__task *t = scio__task_cur();
  unsigned mark = scio__cancel_mark_save(t);
  int rc = tx ? scio_close(tx) : scio_ostream_close(otx);
  if (rc == SCIO_ECANCELED) {
    scio__cancel_mark_restore(t, mark);
    return 0;
  }
  return rc;
}

static int close_for_eof(scio_stream **half) {
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  scio_stream *tx = *half;
  *half = NULL;
  return close_half(tx, NULL);
}

static int stapled_send_eof(scio_stream *s) {
  stapled *st = stapled_of(s);
  scio_stream *tx = st->tx;
  if (!tx)
    return scio_checkpoint(); /* idempotent, but still a checkpoint */
  if (tx->ops->do_send_eof)
    return scio_send_eof(tx);
  return close_for_eof(&st->tx);
}

static int stapled_close(scio_stream *s) {
  stapled *st = stapled_of(s);
  scio_stream *tx = st->tx, *rx = st->rx;
  st->tx = st->rx = NULL;
  /* scio_close releases even when it fails, so both always go. */
  int rc = tx ? scio_close(tx) : 0;
  int rrc = scio_close(rx);
  return rc < 0 ? rc : rrc;
}

static void stapled_free(scio_stream *s) { scio__free(s); }

/* The receive half answers "bytes buffered for reading" first. */
static int stapled_attr(scio_stream *s, int key, void *out, size_t len) {
  stapled *st = stapled_of(s);
  scio_stream *first = st->tx, *second = st->rx;
  if (key == SCIO_ATTR_BUFFERED) {
    first = st->rx;
    second = st->tx;
  }
  int rc = first ? scio_stream_attr(first, key, out, len) : -ENOENT;
  if (rc == -ENOENT && second)
    rc = scio_stream_attr(second, key, out, len);
  return rc;
}

/* base.inner is NULL, so the generic walk stops here: the receive half's
 * chain holds what a receive would return. */
static ssize_t stapled_pending(scio_stream *s) {
  stapled *st = stapled_of(s);
  return st->rx ? scio_stream_pending(st->rx) : 0;
}

static int stapled_wait_send_ready(scio_stream *s) {
  stapled *st = stapled_of(s);
  if (!st->tx) {
    int rc = scio_checkpoint(); /* still a checkpoint, as send_eof is */
    return rc < 0 ? rc
                  : scio__seterr(SCIO_ECLOSED, "wait_send_ready: the send "
                                               "half of this stapled stream "
                                               "was closed by send_eof");
  }
  return scio_wait_send_ready(st->tx);
}

static int stapled_wait_receive_ready(scio_stream *s) {
  return scio_wait_receive_ready(stapled_of(s)->rx);
}

static ssize_t stapled_receive_nowait(scio_stream *s, void *buf,
                                      size_t max) {
  return scio_receive_nowait(stapled_of(s)->rx, buf, max);
}

static ssize_t stapled_send_nowait(scio_stream *s, const void *buf,
                                   size_t len) {
  return scio_send_nowait(stapled_of(s)->tx, buf, len);
}

static const scio_stream_ops stapled_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "stapled",
    .do_receive = stapled_receive,
    .do_send = stapled_send,
    .do_send_eof = stapled_send_eof,
    .do_close = stapled_close,
    .do_free = stapled_free,
    .do_attr = stapled_attr,
    .do_pending = stapled_pending,
    .do_wait_send_ready = stapled_wait_send_ready,
    .do_wait_receive_ready = stapled_wait_receive_ready,
    .do_receive_nowait = stapled_receive_nowait,
    .do_send_nowait = stapled_send_nowait,
};

SCIO_API int scio_stapled_open(scio_stream *send_half,
                              scio_stream *receive_half, scio_stream **out) {
  if (out)
    *out = NULL;
  if (!send_half || !receive_half || !out)
    return scio__seterr(SCIO_EINVAL, "stapled_open: NULL argument");
  if (send_half == receive_half)
    return scio__seterr(SCIO_EINVAL, "stapled_open: the same stream as both "
                                     "halves");
  stapled *st = scio__malloc(sizeof *st);
  if (!st)
    return scio__seterr(SCIO_ENOMEM, "stapled_open: out of memory");
  scio_stream_init(&st->base, &stapled_ops, NULL);
  st->tx = send_half;
  st->rx = receive_half;
  *out = &st->base;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Object streams                                                            */

typedef struct ostapled {
  scio_ostream base; /* first: the generic layer sees a scio_ostream */
  scio_ostream *tx;  /* NULL once closed by send_eof */
  scio_ostream *rx;
} ostapled;

static ostapled *ostapled_of(scio_ostream *s) {
  return (ostapled *)(void *)s;
}

static int ostapled_send(scio_ostream *s, const void *item) {
  ostapled *st = ostapled_of(s);
  if (!st->tx)
    return scio__seterr(SCIO_ECLOSED, "ostream_send: the send half of this "
                                      "stapled stream was closed by send_eof");
  return scio_ostream_send(st->tx, item);
}

static int ostapled_receive(scio_ostream *s, void *item) {
  return scio_ostream_receive(ostapled_of(s)->rx, item);
}

static int ostapled_send_eof(scio_ostream *s) {
  ostapled *st = ostapled_of(s);
  scio_ostream *tx = st->tx;
  if (!tx)
    return scio_checkpoint();
  if (tx->ops->do_send_eof)
    return scio_ostream_send_eof(tx);
  /* As close_for_eof above. */
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  st->tx = NULL;
  return close_half(NULL, tx);
}

static int ostapled_close(scio_ostream *s) {
  ostapled *st = ostapled_of(s);
  scio_ostream *tx = st->tx, *rx = st->rx;
  st->tx = st->rx = NULL;
  int rc = tx ? scio_ostream_close(tx) : 0;
  int rrc = scio_ostream_close(rx);
  return rc < 0 ? rc : rrc;
}

static void ostapled_free(scio_ostream *s) { scio__free(s); }

static int ostapled_attr(scio_ostream *s, int key, void *out, size_t len) {
  ostapled *st = ostapled_of(s);
  scio_ostream *first = st->tx, *second = st->rx;
  if (key == SCIO_ATTR_BUFFERED) {
    first = st->rx;
    second = st->tx;
  }
  int rc = first ? scio_ostream_attr(first, key, out, len) : -ENOENT;
  if (rc == -ENOENT && second)
    rc = scio_ostream_attr(second, key, out, len);
  return rc;
}

static const scio_ostream_ops ostapled_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "stapled-object",
    .do_send = ostapled_send,
    .do_receive = ostapled_receive,
    .do_send_eof = ostapled_send_eof,
    .do_close = ostapled_close,
    .do_free = ostapled_free,
    .do_attr = ostapled_attr,
};

SCIO_API int scio_stapled_object_open(scio_ostream *send_half,
                                     scio_ostream *receive_half,
                                     scio_ostream **out) {
  if (out)
    *out = NULL;
  if (!send_half || !receive_half || !out)
    return scio__seterr(SCIO_EINVAL, "stapled_object_open: NULL argument");
  if (send_half == receive_half)
    return scio__seterr(SCIO_EINVAL, "stapled_object_open: the same stream "
                                     "as both halves");
  if (send_half->item_size != receive_half->item_size)
    return scio__seterr(SCIO_EINVAL, "stapled_object_open: item sizes differ "
                                     "(%zu to send, %zu to receive)",
                        send_half->item_size, receive_half->item_size);
  ostapled *st = scio__malloc(sizeof *st);
  if (!st)
    return scio__seterr(SCIO_ENOMEM, "stapled_object_open: out of memory");
  scio_ostream_init(&st->base, &ostapled_ops, NULL, send_half->item_size);
  st->tx = send_half;
  st->rx = receive_half;
  *out = &st->base;
  return 0;
}
