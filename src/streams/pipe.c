/* Memory pipes: two byte streams joined back to back in memory.
 *
 * One allocation holds both ends, the two directions and their ring
 * buffers.  Direction i carries bytes from end i to end 1-i.  Each
 * direction has at most one parked receiver and one parked sender (the
 * generic layer refuses a second one with SCIO_EBUSY), described by records
 * on the parked tasks' stacks.
 *
 * Invariants of a direction, which the hand-off code relies on:
 *   - a receiver is parked only while the ring is empty, no sender is
 *     parked and no EOF was sent;
 *   - a sender is parked only while the ring is full (it parks right after
 *     filling it, and every receive that frees space refills the ring from
 *     the parked sender before returning);
 * so at most one of the two is ever parked.
 *
 * Hand-off: whoever completes a transfer copies the bytes on behalf of the
 * parked task and wakes it with the result (internals.md), so a woken task
 * keeps its result even if cancellation arrives before it runs.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "core/layer.h"
#include "scio/pipe.h"

typedef struct pipe_reader {
  scio__task *task;
  unsigned char *buf;
  size_t max;
} pipe_reader;

typedef struct pipe_writer {
  scio__task *task;
  const unsigned char *buf;
  size_t len, done; /* done: bytes accepted so far */
} pipe_writer;

typedef struct pipe_dir {
  unsigned char *ring;
  size_t cap, head, len;
  pipe_reader *reader; /* parked receiver of the receiving end */
  pipe_writer *writer; /* parked sender of the sending end */
  scio__task *ready;   /* parked in wait_send_ready on the sending end */
  unsigned char eof;    /* the sending end sent EOF or was closed */
  unsigned char broken; /* the receiving end was closed */
  unsigned long long accepted, delivered;
} pipe_dir;

typedef struct mpipe mpipe;

typedef struct pipe_end {
  scio_stream base; /* first: the generic layer sees a scio_stream */
  mpipe *pipe;
  int side;
  unsigned char freed;
  size_t last_send_accepted;
} pipe_end;

struct mpipe {
  pipe_end end[2];
  pipe_dir dir[2];
  unsigned char storage[]; /* the two rings */
};

static const scio_stream_ops pipe_ops;

static pipe_end *end_of(scio_stream *s) { return (pipe_end *)(void *)s; }
static pipe_dir *dir_out(pipe_end *e) { return &e->pipe->dir[e->side]; }
static pipe_dir *dir_in(pipe_end *e) { return &e->pipe->dir[1 - e->side]; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------------ */
/* Ring buffer                                                               */

static size_t ring_put(pipe_dir *d, const unsigned char *src, size_t len) {
  size_t n = min_size(len, d->cap - d->len);
  if (n == 0)
    return 0;
  size_t tail = d->head + d->len;
  if (tail >= d->cap)
    tail -= d->cap;
  size_t first = min_size(n, d->cap - tail);
  memcpy(d->ring + tail, src, first);
  memcpy(d->ring, src + first, n - first);
  d->len += n;
  return n;
}

static size_t ring_get(pipe_dir *d, unsigned char *dst, size_t max) {
  size_t n = min_size(max, d->len);
  if (n == 0)
    return 0;
  size_t first = min_size(n, d->cap - d->head);
  memcpy(dst, d->ring + d->head, first);
  memcpy(dst + first, d->ring, n - first);
  d->head += n;
  if (d->head >= d->cap)
    d->head -= d->cap;
  d->len -= n;
  /* An empty ring restarts at 0 so the next fill is one contiguous copy. */
  if (d->len == 0)
    d->head = 0;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Transfers                                                                 */

/* A send might not block any more (space, a parked receiver) or would
 * fail at once (closed, broken): let a wait_send_ready go. */
static void ready_wake(pipe_dir *d, int value) {
  if (d->ready) {
    scio__task_wake(d->ready, value);
    d->ready = NULL;
  }
}

/* Copy from the parked sender's buffer straight into dst. */
static size_t writer_pull(pipe_dir *d, unsigned char *dst, size_t max) {
  pipe_writer *w = d->writer;
  size_t n = min_size(max, w->len - w->done);
  if (n == 0)
    return 0;
  memcpy(dst, w->buf + w->done, n);
  w->done += n;
  d->accepted += n;
  return n;
}

/* Move what fits of the parked sender's remainder into the ring; wake the
 * sender once all of its bytes are accepted. */
static void writer_refill(pipe_dir *d) {
  pipe_writer *w = d->writer;
  size_t n = ring_put(d, w->buf + w->done, w->len - w->done);
  w->done += n;
  d->accepted += n;
  if (w->done == w->len) {
    d->writer = NULL;
    scio__task_wake(w->task, 0);
  }
}

/* Receive side: take up to max bytes, oldest first (the ring, then the
 * parked sender's buffer), and let the parked sender refill the ring. */
static size_t dir_take(pipe_dir *d, unsigned char *dst, size_t max) {
  size_t n = ring_get(d, dst, max);
  if (d->writer) {
    n += writer_pull(d, dst + n, max - n);
    writer_refill(d);
  } else if (n) {
    ready_wake(d, 0);
  }
  d->delivered += n;
  return n;
}

/* Send side: give the parked receiver what it can take (straight into its
 * buffer, waking it), then buffer what fits.  Returns the bytes accepted. */
static size_t dir_give(pipe_dir *d, const unsigned char *src, size_t len) {
  if (len == 0)
    return 0; /* src may be NULL then */
  size_t n = 0;
  pipe_reader *r = d->reader;
  if (r) {
    n = min_size(len, r->max);
    memcpy(r->buf, src, n);
    d->reader = NULL;
    d->delivered += n;
    scio__task_wake(r->task, (int)n);
  }
  n += ring_put(d, src + n, len - n);
  d->accepted += n;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Receive                                                                   */

static void reader_abort(scio__task *t, void *ctx) {
  (void)t;
  pipe_dir *d = ctx;
  d->reader = NULL;
}

/* Park until a sender hands bytes over (the wake value is their count),
 * EOF, or close. */
static ssize_t receive_wait(pipe_dir *d, unsigned char *buf, size_t max) {
  /* A parked receiver's count travels as the int wake value. */
  pipe_reader r = {scio__task_cur(), buf, min_size(max, INT_MAX)};
  d->reader = &r;
  ready_wake(d, 0); /* a send now goes straight to this receiver */
  int rc = scio__park(reader_abort, d, "memory pipe receive");
  if (rc == SCIO_ECLOSED)
    return scio__seterr(rc, "receive: memory pipe closed while receiving");
  return rc;
}

static ssize_t pipe_receive(scio_stream *s, void *buf, size_t max) {
  pipe_dir *d = dir_in(end_of(s));
  if (!buf)
    return scio__seterr(SCIO_EINVAL, "receive: buf is NULL");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  size_t n = dir_take(d, buf, min_size(max, SSIZE_MAX));
  if (n == 0 && !d->eof)
    return receive_wait(d, buf, max);
  scio_cancel_shielded_checkpoint();
  return n > 0 ? (ssize_t)n : SCIO_EOF;
}

static ssize_t pipe_receive_nowait(scio_stream *s, void *buf, size_t max) {
  pipe_dir *d = dir_in(end_of(s));
  size_t n = dir_take(d, buf, min_size(max, SSIZE_MAX));
  if (n > 0)
    return (ssize_t)n;
  return d->eof ? SCIO_EOF : SCIO_EWOULDBLOCK;
}

/* Ready when bytes are buffered or held by a parked sender, or at EOF;
 * otherwise park as a receiver that takes nothing: a sender then wakes it
 * (with 0) and buffers its bytes for the receive that follows. */
static int pipe_wait_receive_ready(scio_stream *s) {
  pipe_dir *d = dir_in(end_of(s));
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  if (d->len || d->writer || d->eof) {
    scio_cancel_shielded_checkpoint();
    return 0;
  }
  unsigned char none;
  pipe_reader r = {scio__task_cur(), &none, 0};
  d->reader = &r;
  ready_wake(d, 0);
  rc = scio__park(reader_abort, d, "memory pipe wait_receive_ready");
  if (rc == SCIO_ECLOSED)
    return scio__seterr(rc, "wait_receive_ready: memory pipe closed while "
                            "waiting");
  return rc == SCIO_EOF ? 0 : rc;
}

/* ------------------------------------------------------------------------ */
/* Send                                                                      */

static void writer_abort(scio__task *t, void *ctx) {
  (void)t;
  pipe_dir *d = ctx;
  d->writer = NULL; /* what it accepted stays: a prefix of the send */
}

static int send_state(pipe_end *e, const pipe_dir *d) {
  if (e->base.closed)
    return scio__seterr(SCIO_ECLOSED, "send: memory pipe end is closed");
  if (d->broken)
    return scio__seterr(SCIO_EBROKEN, "send: the peer of this memory pipe "
                                      "is closed");
  if (d->eof)
    return scio__seterr(SCIO_ECLOSED, "send: after send_eof");
  return 0;
}

static const char *send_fail_why(int rc) {
  switch (rc) {
  case SCIO_ECANCELED:
    return "cancelled";
  case SCIO_EBROKEN:
    return "the peer closed the pipe";
  case SCIO_ECLOSED:
    return "this end was closed";
  default:
    return scio_strerror(rc);
  }
}

static int send_failed(int rc, size_t done, size_t len) {
  return scio__seterr(rc, "send: %s after %zu of %zu bytes were accepted",
                      send_fail_why(rc), done, len);
}

/* Park until every byte is accepted; readers pull from `buf` directly. */
static int send_wait(pipe_end *e, pipe_dir *d, const unsigned char *buf,
                     size_t len, size_t done) {
  pipe_writer w = {scio__task_cur(), buf, len, done};
  d->writer = &w;
  int rc = scio__park(writer_abort, d, "memory pipe send");
  e->last_send_accepted = w.done;
  if (rc == 0)
    return 0;
  return send_failed(rc, w.done, len);
}

/* Why the checkpoint comes first when no receiver waits: with the usual
 * "complete, then yield", two tasks streaming through a pipe settle into a
 * rhythm where the receiver is always runnable, never parked, when the
 * sender sends, so every byte is copied into the ring and out again.
 * Yielding first lets such a receiver drain the ring and park, and the
 * bytes then go straight into its buffer: one copy instead of two. */
static int send_checkpoint(pipe_end *e, pipe_dir *d) {
  int rc = scio_checkpoint();
  if (rc < 0)
    return rc;
  return send_state(e, d); /* the peer may have closed meanwhile */
}

/* What a parked receiver and the ring take now.  Also sets
 * last_send_accepted, as a send does. */
static ssize_t pipe_send_nowait(scio_stream *s, const void *buf,
                                size_t len) {
  pipe_end *e = end_of(s);
  pipe_dir *d = dir_out(e);
  e->last_send_accepted = 0;
  int rc = send_state(e, d);
  if (rc < 0)
    return rc;
  size_t n = dir_give(d, buf, len);
  e->last_send_accepted = n;
  return n ? (ssize_t)n : SCIO_EWOULDBLOCK;
}

static int pipe_send(scio_stream *s, const void *buf, size_t len) {
  pipe_end *e = end_of(s);
  pipe_dir *d = dir_out(e);
  e->last_send_accepted = 0;
  if (!buf && len)
    return scio__seterr(SCIO_EINVAL, "send: buf is NULL");
  int rc = scio_checkpoint_if_cancelled();
  if (rc == 0)
    rc = send_state(e, d);
  int yielded = rc == 0 && !d->reader;
  if (yielded)
    rc = send_checkpoint(e, d);
  if (rc == SCIO_ECANCELED)
    return send_failed(rc, 0, len);
  if (rc < 0)
    return rc;
  size_t done = dir_give(d, buf, len);
  if (done < len)
    return send_wait(e, d, buf, len, done);
  e->last_send_accepted = len;
  if (!yielded)
    scio_cancel_shielded_checkpoint();
  return 0;
}

static int pipe_send_eof(scio_stream *s) {
  pipe_dir *d = dir_out(end_of(s));
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  d->eof = 1;
  if (d->reader) { /* parked, so the ring is empty: EOF is due now */
    scio__task_wake(d->reader->task, SCIO_EOF);
    d->reader = NULL;
  }
  scio_cancel_shielded_checkpoint();
  return 0;
}

/* ------------------------------------------------------------------------ */
/* wait_send_ready                                                           */

static void ready_abort(scio__task *t, void *ctx) {
  (void)t;
  pipe_dir *d = ctx;
  d->ready = NULL;
}

/* A send blocks only on a full ring with no receiver parked; otherwise, or
 * when it would fail at once, this returns after its checkpoint. */
static int pipe_wait_send_ready(scio_stream *s) {
  pipe_end *e = end_of(s);
  pipe_dir *d = dir_out(e);
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  rc = send_state(e, d);
  if (rc == 0 && d->len == d->cap && !d->reader) {
    d->ready = scio__task_cur();
    rc = scio__park(ready_abort, d, "memory pipe wait_send_ready");
    /* Woken by a close: send_state names which one. */
    return rc == SCIO_ECLOSED || rc == SCIO_EBROKEN ? send_state(e, d) : rc;
  }
  scio_cancel_shielded_checkpoint();
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Close, free, attributes                                                   */

/* Our sending direction: the peer reads what is buffered, then EOF. */
static void close_out(pipe_dir *d) {
  d->eof = 1;
  ready_wake(d, SCIO_ECLOSED);
  if (d->writer) {
    scio__task_wake(d->writer->task, SCIO_ECLOSED);
    d->writer = NULL;
  }
  if (d->reader) {
    scio__task_wake(d->reader->task, SCIO_EOF);
    d->reader = NULL;
  }
}

/* Our receiving direction: nobody will read it any more. */
static void close_in(pipe_dir *d) {
  d->broken = 1;
  d->len = d->head = 0;
  ready_wake(d, SCIO_EBROKEN);
  if (d->reader) {
    scio__task_wake(d->reader->task, SCIO_ECLOSED);
    d->reader = NULL;
  }
  if (d->writer) {
    scio__task_wake(d->writer->task, SCIO_EBROKEN);
    d->writer = NULL;
  }
}

static int pipe_close(scio_stream *s) {
  pipe_end *e = end_of(s);
  close_out(dir_out(e));
  close_in(dir_in(e));
  return 0;
}

/* The ends share one block: it goes when the second end is freed. */
static void pipe_free(scio_stream *s) {
  pipe_end *e = end_of(s);
  mpipe *p = e->pipe;
  e->freed = 1;
  if (p->end[1 - e->side].freed)
    scio__free(p);
}

static int pipe_attr(scio_stream *s, int key, void *out, size_t len) {
  if (key != SCIO_ATTR_BUFFERED)
    return -ENOENT;
  size_t n = dir_in(end_of(s))->len;
  if (len < sizeof n)
    return -ENOSPC;
  memcpy(out, &n, sizeof n);
  return 0;
}

/* What a receive returns without waiting: the ring, then the rest of a
 * blocked sender's buffer. */
static ssize_t pipe_pending(scio_stream *s) {
  const pipe_dir *d = dir_in(end_of(s));
  size_t n = d->len + (d->writer ? d->writer->len - d->writer->done : 0);
  return n > SSIZE_MAX ? SSIZE_MAX : (ssize_t)n;
}

static const scio_stream_ops pipe_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "memory-pipe",
    .do_receive = pipe_receive,
    .do_send = pipe_send,
    .do_send_eof = pipe_send_eof,
    .do_close = pipe_close,
    .do_free = pipe_free,
    .do_attr = pipe_attr,
    .do_pending = pipe_pending,
    .do_wait_send_ready = pipe_wait_send_ready,
    .do_wait_receive_ready = pipe_wait_receive_ready,
    .do_receive_nowait = pipe_receive_nowait,
    .do_send_nowait = pipe_send_nowait,
};

/* ------------------------------------------------------------------------ */
/* Public                                                                    */

static void dir_init(pipe_dir *d, unsigned char *ring, size_t cap) {
  memset(d, 0, sizeof *d);
  d->ring = ring;
  d->cap = cap;
}

static void end_init(mpipe *p, int side) {
  pipe_end *e = &p->end[side];
  scio_stream_init(&e->base, &pipe_ops, NULL);
  e->pipe = p;
  e->side = side;
  e->freed = 0;
  e->last_send_accepted = 0;
}

SCIO_API int scio_memory_pipe_open(scio_stream **a, scio_stream **b,
                              const scio_memory_pipe_opts *opts) {
  if (a)
    *a = NULL;
  if (b)
    *b = NULL;
  if (!a || !b)
    return scio__seterr(SCIO_EINVAL, "memory_pipe_open: NULL end pointer");
  size_t cap = opts && opts->buffer_size ? opts->buffer_size
                                         : SCIO_MEMORY_PIPE_DEFAULT_BUFFER;
  if (cap > (SIZE_MAX - sizeof(mpipe)) / 2)
    return scio__seterr(SCIO_EINVAL, "memory_pipe_open: buffer_size %zu is too "
                                     "large",
                        cap);
  mpipe *p = scio__malloc(sizeof *p + 2 * cap);
  if (!p)
    return scio__seterr(SCIO_ENOMEM, "memory_pipe_open: no memory for 2 x %zu "
                                     "bytes of buffer",
                        cap);
  for (int i = 0; i < 2; i++) {
    dir_init(&p->dir[i], p->storage + (size_t)i * cap, cap);
    end_init(p, i);
  }
  *a = &p->end[0].base;
  *b = &p->end[1].base;
  return 0;
}

SCIO_API int scio_memory_pipe_statistics(scio_stream *s,
                                         scio_memory_pipe_stats *out) {
  if (!s || !out || s->ops != &pipe_ops)
    return scio__seterr(SCIO_EINVAL, "memory_pipe_statistics: not a memory "
                                     "pipe end");
  pipe_end *e = end_of(s);
  const pipe_dir *in = dir_in(e), *o = dir_out(e);
  memset(out, 0, sizeof *out);
  out->buffer_size = o->cap;
  out->buffered_in = in->len;
  out->buffered_out = o->len;
  out->receivers_waiting = in->reader != NULL;
  out->senders_waiting = o->writer != NULL;
  out->bytes_sent = o->accepted;
  out->bytes_received = in->delivered;
  out->last_send_accepted = e->last_send_accepted;
  return 0;
}
