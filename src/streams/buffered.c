/* The buffered byte stream (include/scio/buffered.h).
 *
 * The buffer is one heap block: buf[start..end) holds the bytes received
 * from the wrapped stream (or fed, or handed back with unreceive) and not
 * yet returned.  Every receive
 * function reads from the wrapped stream into the tail of this block, never
 * into the caller's memory, and copies out only once it can return success.
 * That is how a cancelled or failed receive_exactly/receive_until loses
 * nothing: whatever arrived is already in the buffer.  (The one exception is
 * a plain receive of at least read_size bytes on an empty buffer, which
 * reads straight into the caller's buffer: the wrapped stream's own receive
 * then gives the same guarantee.)
 *
 * receive_until remembers how far it searched (scan_*): a search resumed
 * after more data arrived, or after the call was cancelled and retried with
 * the same delimiter, starts where the last one stopped (less dlen - 1
 * bytes, for a delimiter that straddles the boundary), so reading a long
 * line costs time linear in its length.
 *
 * feed appends.  While a task receives, the tail of the block belongs to
 * its pending read of the wrapped stream, so bytes fed then wait in a side
 * block (fed) and feed wakes the receiver by cancelling the scope that the
 * receiver opened around that read (waker): the wrapped stream loses
 * nothing to a cancellation, and the receiver merges the fed bytes and
 * looks again.
 */
#include <limits.h>
#include <string.h>

#include "core/layer.h"
#include "scio/buffered.h"
#include "stream_internal.h"

#define BUF_DEFAULT_READ_SIZE ((size_t)64 * 1024)
/* Delimiters up to this long are remembered across calls (a copy is needed
 * to know that a later call searches for the same one). */
#define BUF_SCAN_DELIM_MAX 32
#define BUF_MAX_READ_SIZE ((size_t)1 << 30)

typedef struct buffered {
  scio_stream base; /* first: the generic layer casts */
  unsigned char *buf;
  size_t cap, start, end;
  size_t read_size;
  /* The first scan_done buffered bytes were searched for scan_delim: no
   * occurrence starts before scan_done - scan_dlen + 1.  scan_dlen == 0:
   * nothing is remembered. */
  size_t scan_done, scan_dlen;
  unsigned char scan_delim[BUF_SCAN_DELIM_MAX];
  unsigned char eof; /* the wrapped stream returned SCIO_EOF */
  /* Bytes fed while a task was receiving, which may not touch buf (its
   * blocked read of the wrapped stream writes into the tail, and growing
   * would move the block under it).  They come after everything in buf and
   * before anything read later: they are merged into buf before the next
   * read of the wrapped stream, and before any receive looks at buf. */
  unsigned char *fed;
  size_t fed_len, fed_cap;
  /* While a receiver is blocked in the wrapped stream's receive: the scope
   * around that receive, which feed cancels to wake it. */
  scio_scope *waker;
} buffered;

static const scio_stream_ops buffered_ops;

static size_t blen(const buffered *b) { return b->end - b->start; }
/* NULL before the first refill (no pointer arithmetic on NULL). */
static unsigned char *bdata(buffered *b) {
  return b->buf ? b->buf + b->start : NULL;
}

/* ------------------------------------------------------------------------ */
/* The buffer                                                                */

/* Drop n bytes from the front.  The search memory shifts with the data. */
static void consume(buffered *b, size_t n) {
  b->start += n;
  b->scan_done = b->scan_done > n ? b->scan_done - n : 0;
  if (b->start == b->end)
    b->start = b->end = 0; /* free compaction */
  /* Why: after one huge line the block would otherwise stay huge for the
   * life of the stream.  Only an empty buffer is given back. */
  if (b->start == b->end && b->cap / 4 > b->read_size) {
    scio__free(b->buf);
    b->buf = NULL;
    b->cap = 0;
  }
}

static void scan_forget(buffered *b) {
  b->scan_dlen = 0;
  b->scan_done = 0;
}

/* Move the data to a new block of `cap` bytes, leaving `front` free bytes
 * before it. */
static int relocate(buffered *b, size_t cap, size_t front) {
  unsigned char *nb = scio__malloc(cap);
  if (!nb)
    return scio__seterr(SCIO_ENOMEM, "buffered: cannot grow the buffer to "
                                     "%zu bytes",
                        cap);
  size_t n = blen(b);
  if (n)
    memcpy(nb + front, bdata(b), n);
  scio__free(b->buf);
  b->buf = nb;
  b->cap = cap;
  b->start = front;
  b->end = front + n;
  return 0;
}

/* Make at least `want` bytes free after the data: slide the data to the
 * front if that is enough, else grow (at least doubling, so that growing a
 * long line costs amortised linear time). */
static int reserve_tail(buffered *b, size_t want) {
  if (b->cap - b->end >= want)
    return 0;
  size_t n = blen(b);
  if (b->cap - n >= want) {
    memmove(b->buf, bdata(b), n);
    b->start = 0;
    b->end = n;
    return 0;
  }
  if (want > (size_t)-1 - n)
    return scio__seterr(SCIO_ENOMEM, "buffered: %zu bytes is too large",
                        want);
  size_t cap = n + want;
  if (b->cap <= ((size_t)-1) / 2 && cap < 2 * b->cap)
    cap = 2 * b->cap;
  return relocate(b, cap, 0);
}

/* Append the bytes fed during a receive to buf (see buffered.fed).  On
 * SCIO_ENOMEM they stay where they are, still in order. */
static int merge_fed(buffered *b) {
  if (!b->fed_len)
    return 0;
  int rc = reserve_tail(b, b->fed_len);
  if (rc < 0)
    return rc;
  memcpy(b->buf + b->end, b->fed, b->fed_len);
  b->end += b->fed_len;
  b->fed_len = 0;
  return 0;
}

/* The wrapped stream's receive, inside a scope that scio_buffered_feed
 * cancels to wake us.  Returns what the receive returned, or 0 when feed
 * woke it (the fed bytes are then waiting in b->fed).  The wrapped stream
 * loses nothing to that cancellation, as to any other. */
static ssize_t inner_receive(buffered *b, void *dst, size_t max) {
  scio_scope cs;
  int rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  if (rc < 0)
    return rc;
  b->waker = &cs;
  ssize_t n = scio_receive(b->base.inner, dst, max);
  b->waker = NULL;
  scio_scope_close(&cs);
  if (n == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs))
    return 0;
  return n;
}

/* One receive of the wrapped stream into the free tail, after reserving
 * `want` bytes of it.  Returns the byte count, SCIO_EOF (remembered), 0 when
 * a feed woke it (what was fed is then in the buffer), or an error.  A
 * checkpoint (the wrapped stream's). */
static ssize_t fill(buffered *b, size_t want) {
  int rc = merge_fed(b);
  if (rc == 0)
    rc = reserve_tail(b, want);
  if (rc < 0)
    return rc;
  ssize_t n = inner_receive(b, b->buf + b->end, b->cap - b->end);
  /* Why check closed: a close while we were blocked has released the
   * wrapped stream; it must not be touched again. */
  if (b->base.closed)
    return scio__seterr(SCIO_ECLOSED, "buffered: closed while receiving");
  if (n > 0)
    b->end += (size_t)n;
  else if (n == SCIO_EOF)
    b->eof = 1;
  if (n >= 0 || n == SCIO_EOF) {
    /* Fed during the receive: after what it got (which arrived first). */
    rc = merge_fed(b);
    if (rc < 0)
      return rc;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Entering the extra operations                                             */

/* The generic layer (stream.c) does this for scio_receive; receive_exactly
 * and receive_until are receives too, so they take the same receiving flag
 * and in-flight count, which defers the free of a stream closed under them. */
static int enter(scio_stream *s, const char *what, buffered **out) {
  if (!s || s->ops != &buffered_ops)
    return scio__seterr(SCIO_EINVAL, "%s: %s", what,
                        s ? "not a buffered stream" : "stream is NULL");
  int rc = scio__stream_enter_receive(s, what);
  if (rc < 0)
    return rc;
  *out = (buffered *)s;
  /* Bytes fed during an earlier receive that did not merge them. */
  if ((rc = merge_fed(*out)) < 0)
    scio__stream_leave_receive(s);
  return rc;
}

static void leave(scio_stream *s) { scio__stream_leave_receive(s); }

/* Complete a call that never blocked: the checkpoint rule still asks for
 * one yield.  Shielded, because the result is already decided and must not
 * be lost to a cancellation arriving now. */
static void finish(int yielded) {
  if (!yielded)
    scio_cancel_shielded_checkpoint();
}

/* ------------------------------------------------------------------------ */
/* receive_exactly                                                           */

static ssize_t exactly(buffered *b, unsigned char *dst, size_t n) {
  int yielded = 0;
  if (blen(b) < n && !b->eof) {
    /* Room for all of it now, so that no ENOMEM can come after bytes were
     * received: on ENOMEM this call has had no effect. */
    size_t need = n - blen(b);
    int rc = reserve_tail(b, need > b->read_size ? need : b->read_size);
    if (rc < 0)
      return rc;
  }
  while (blen(b) < n) {
    if (b->eof)
      return scio__seterr(SCIO_EINCOMPLETE, "receive_exactly: the stream "
                                            "ended after %zu of %zu bytes",
                          blen(b), n);
    ssize_t got = fill(b, n - blen(b));
    yielded = 1;
    if (got < 0 && got != SCIO_EOF)
      return got;
  }
  memcpy(dst, bdata(b), n);
  consume(b, n);
  finish(yielded);
  return (ssize_t)n;
}

SCIO_API ssize_t scio_receive_exactly(scio_stream *s, void *buf, size_t n) {
  buffered *b = NULL;
  int rc = enter(s, "receive_exactly", &b);
  if (rc < 0)
    return rc;
  ssize_t r;
  if ((!buf && n) || n > (size_t)SSIZE_MAX)
    r = scio__seterr(SCIO_EINVAL, "receive_exactly: %s",
                     n ? "buffer is NULL" : "size too large");
  else if ((r = scio_checkpoint_if_cancelled()) == 0)
    r = n ? exactly(b, buf, n) : scio_checkpoint();
  leave(s);
  return r;
}

/* ------------------------------------------------------------------------ */
/* receive_until                                                             */

/* Where a search for delim may start, given what earlier searches proved. */
static size_t scan_resume(const buffered *b, const unsigned char *delim,
                          size_t dlen) {
  if (b->scan_dlen != dlen || memcmp(b->scan_delim, delim, dlen) != 0)
    return 0;
  return b->scan_done + 1 > dlen ? b->scan_done + 1 - dlen : 0;
}

static void scan_remember(buffered *b, const unsigned char *delim,
                          size_t dlen, size_t searched) {
  if (dlen > BUF_SCAN_DELIM_MAX)
    return;
  memcpy(b->scan_delim, delim, dlen);
  b->scan_dlen = dlen;
  b->scan_done = searched;
}

/* The first occurrence of delim starting at or after `from` and ending
 * within hay[0..avail), or -1. */
static ssize_t search(const unsigned char *hay, size_t avail, size_t from,
                      const unsigned char *delim, size_t dlen) {
  if (avail < from + dlen)
    return -1;
  const unsigned char *p =
      dlen == 1 ? memchr(hay + from, delim[0], avail - from)
                : memmem(hay + from, avail - from, delim, dlen);
  return p ? p - hay : -1;
}

/* Returns 0 with *len set, or an error with nothing consumed. */
static int until(buffered *b, const unsigned char *delim, size_t dlen,
                 unsigned char *dst, size_t max, size_t *len) {
  /* Only the first max + dlen bytes can hold an acceptable delimiter. */
  size_t window = max > (size_t)-1 - dlen ? (size_t)-1 : max + dlen;
  size_t from = scan_resume(b, delim, dlen);
  int yielded = 0;
  for (;;) {
    size_t avail = blen(b) < window ? blen(b) : window;
    ssize_t pos = search(bdata(b), avail, from, delim, dlen);
    if (pos >= 0) {
      memcpy(dst, bdata(b), (size_t)pos);
      *len = (size_t)pos;
      scan_forget(b);
      consume(b, (size_t)pos + dlen);
      finish(yielded);
      return 0;
    }
    scan_remember(b, delim, dlen, avail);
    from = avail + 1 > dlen ? avail + 1 - dlen : 0;
    if (avail == window)
      return scio__seterr(SCIO_EDELIM, "receive_until: no delimiter within "
                                       "%zu bytes",
                          max);
    if (b->eof && blen(b) == 0) {
      finish(yielded);
      return SCIO_EOF; /* a clean end between records */
    }
    if (b->eof)
      return scio__seterr(SCIO_EINCOMPLETE, "receive_until: the stream ended "
                                            "without a delimiter after %zu "
                                            "bytes",
                          blen(b));
    ssize_t got = fill(b, b->read_size);
    yielded = 1;
    if (got < 0 && got != SCIO_EOF)
      return (int)got;
  }
}

SCIO_API int scio_receive_until(scio_stream *s, const void *delim,
                                size_t dlen, void *buf, size_t max,
                                size_t *len) {
  buffered *b = NULL;
  int rc = enter(s, "receive_until", &b);
  if (rc < 0)
    return rc;
  if (!delim || !dlen || (!buf && max) || !len)
    rc = scio__seterr(SCIO_EINVAL, "receive_until: %s",
                      !delim || !dlen ? "empty delimiter"
                                      : "NULL buffer or length");
  else if ((rc = scio_checkpoint_if_cancelled()) == 0)
    rc = until(b, delim, dlen, buf, max, len);
  leave(s);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* feed and unreceive                                                        */

static int check_push(scio_stream *s, const void *data, size_t len,
                      const char *what) {
  if (!s || s->ops != &buffered_ops || (!data && len))
    return scio__seterr(SCIO_EINVAL, "%s: %s", what,
                        s && s->ops == &buffered_ops ? "data is NULL"
                                                     : "not a buffered stream");
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "%s: the stream is closed", what);
  return 0;
}

/* Append to the side block of bytes fed during a receive. */
static int fed_append(buffered *b, const void *data, size_t len) {
  if (b->fed_cap - b->fed_len < len) {
    if (len > (size_t)-1 / 2 - b->fed_len)
      return scio__seterr(SCIO_ENOMEM, "buffered_feed: too large");
    size_t cap = 2 * (b->fed_len + len);
    unsigned char *p = scio__realloc(b->fed, cap);
    if (!p)
      return scio__seterr(SCIO_ENOMEM, "buffered_feed: cannot hold %zu bytes",
                          b->fed_len + len);
    b->fed = p;
    b->fed_cap = cap;
  }
  memcpy(b->fed + b->fed_len, data, len);
  b->fed_len += len;
  return 0;
}

SCIO_API int scio_buffered_feed(scio_stream *s, const void *data,
                                size_t len) {
  int rc = check_push(s, data, len, "buffered_feed");
  if (rc < 0 || len == 0)
    return rc;
  buffered *b = (buffered *)s;
  if (s->receiving || b->fed_len) {
    /* Why aside: see buffered.fed. */
    if ((rc = fed_append(b, data, len)) < 0)
      return rc;
    if (b->waker) {
      scio_scope *w = b->waker;
      b->waker = NULL;
      scio_scope_cancel(w);
    }
    return 0;
  }
  /* Appending leaves what receive_until searched valid. */
  if ((rc = reserve_tail(b, len)) < 0)
    return rc;
  memcpy(b->buf + b->end, data, len);
  b->end += len;
  return 0;
}

SCIO_API int scio_buffered_unreceive(scio_stream *s, const void *data,
                                     size_t len) {
  int rc = check_push(s, data, len, "buffered_unreceive");
  if (rc < 0)
    return rc;
  /* Why refuse: a blocked receive is writing into the buffer's tail, and
   * growing the buffer would move it under that write. */
  if (s->receiving)
    return scio__seterr(SCIO_EBUSY, "buffered_unreceive: a task is "
                                    "receiving on this stream");
  buffered *b = (buffered *)s;
  if (len == 0)
    return 0;
  if (b->start < len) {
    if (len > (size_t)-1 - blen(b) - b->read_size)
      return scio__seterr(SCIO_ENOMEM, "buffered_unreceive: too large");
    /* Leave read_size of tail so the next refill need not move it again. */
    rc = relocate(b, len + blen(b) + b->read_size, len);
    if (rc < 0)
      return rc;
  }
  b->start -= len;
  memcpy(bdata(b), data, len);
  scan_forget(b);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The stream operations                                                     */

static ssize_t buffered_receive(scio_stream *s, void *dst, size_t max) {
  buffered *b = (buffered *)s;
  int rc = scio_checkpoint_if_cancelled();
  if (rc == 0)
    rc = merge_fed(b);
  if (rc < 0)
    return rc;
  int yielded = 0;
  while (blen(b) == 0 && !b->eof) {
    ssize_t n;
    yielded = 1;
    if (max >= b->read_size) {
      /* Nothing to merge with: skip the copy. */
      n = inner_receive(b, dst, max);
      if (s->closed)
        return scio__seterr(SCIO_ECLOSED, "buffered: closed while receiving");
      if (n == SCIO_EOF)
        b->eof = 1;
      if (n > 0 || (n < 0 && n != SCIO_EOF) || (n == SCIO_EOF && !b->fed_len))
        return n;
      /* Woken by a feed, or fed just before EOF. */
      if ((rc = merge_fed(b)) < 0)
        return rc;
      continue;
    }
    n = fill(b, b->read_size);
    if (n < 0 && n != SCIO_EOF)
      return n;
  }
  if (blen(b) == 0) {
    finish(yielded);
    return SCIO_EOF;
  }
  size_t n = blen(b) < max ? blen(b) : max;
  memcpy(dst, bdata(b), n);
  consume(b, n);
  finish(yielded);
  return (ssize_t)n;
}

/* The buffer's bytes, else one no-wait receive of the wrapped stream:
 * straight into dst when it is large, else into the buffer (so small
 * receives still batch). */
static ssize_t buffered_receive_nowait(scio_stream *s, void *dst,
                                       size_t max) {
  buffered *b = (buffered *)s;
  int rc = merge_fed(b);
  if (rc < 0)
    return rc;
  if (blen(b) == 0 && !b->eof) {
    ssize_t n;
    if (max >= b->read_size) {
      n = scio_receive_nowait(s->inner, dst, max);
      if (n == SCIO_EOF)
        b->eof = 1;
      return n;
    }
    if ((rc = reserve_tail(b, b->read_size)) < 0)
      return rc;
    n = scio_receive_nowait(s->inner, b->buf + b->end, b->cap - b->end);
    if (n == SCIO_EOF)
      b->eof = 1;
    else if (n < 0)
      return n;
    else
      b->end += (size_t)n;
  }
  if (blen(b) == 0)
    return SCIO_EOF;
  size_t n = blen(b) < max ? blen(b) : max;
  memcpy(dst, bdata(b), n);
  consume(b, n);
  return (ssize_t)n;
}

static int buffered_send(scio_stream *s, const void *buf, size_t len) {
  return scio_send(s->inner, buf, len);
}

static ssize_t buffered_send_nowait(scio_stream *s, const void *buf,
                                    size_t len) {
  return scio_send_nowait(s->inner, buf, len);
}

static int buffered_send_eof(scio_stream *s) {
  return scio_send_eof(s->inner);
}

/* The buffer is freed in do_free, not here: a task woken by this close may
 * still be inside fill() and touch it on its way out. */
static int buffered_close(scio_stream *s) { return scio_close(s->inner); }

static void buffered_free(scio_stream *s) {
  buffered *b = (buffered *)s;
  scio__free(b->buf);
  scio__free(b->fed);
  scio__free(b);
}

static int buffered_attr(scio_stream *s, int key, void *out, size_t len) {
  if (key != SCIO_ATTR_BUFFERED)
    return -ENOENT; /* the generic walk asks the wrapped stream */
  if (len < sizeof(size_t))
    return -ENOSPC;
  size_t n = blen((buffered *)s) + ((buffered *)s)->fed_len;
  memcpy(out, &n, sizeof n);
  return 0;
}

static ssize_t buffered_pending(scio_stream *s) {
  size_t n = blen((buffered *)s);
  return n > SSIZE_MAX ? SSIZE_MAX : (ssize_t)n;
}

/* Sends pass through unbuffered, so the wrapped stream decides. */
static int buffered_wait_send_ready(scio_stream *s) {
  int rc = scio_wait_send_ready(s->inner);
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "buffered: closed while waiting");
  return rc;
}

static const scio_stream_ops buffered_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "buffered",
    .do_receive = buffered_receive,
    .do_send = buffered_send,
    .do_send_eof = buffered_send_eof,
    .do_close = buffered_close,
    .do_free = buffered_free,
    .do_attr = buffered_attr,
    .do_pending = buffered_pending,
    .do_wait_send_ready = buffered_wait_send_ready,
    .do_receive_nowait = buffered_receive_nowait,
    .do_send_nowait = buffered_send_nowait,
};

SCIO_API int scio_buffered_open(scio_stream *inner,
                               const scio_buffered_opts *opts,
                               scio_stream **out) {
  if (out)
    *out = NULL;
  if (!inner || !out)
    return scio__seterr(SCIO_EINVAL, "buffered_open: NULL argument");
  if (inner->closed)
    return scio__seterr(SCIO_ECLOSED, "buffered_open: the stream to wrap is "
                                      "closed");
  /* Why a bound: size arithmetic on the buffer adds read_size to lengths. */
  if (opts && opts->read_size > BUF_MAX_READ_SIZE)
    return scio__seterr(SCIO_EINVAL, "buffered_open: read_size %zu is too "
                                     "large",
                        opts->read_size);
  buffered *b = scio__calloc(1, sizeof *b);
  if (!b)
    return scio__seterr(SCIO_ENOMEM, "buffered_open: no memory");
  scio_stream_init(&b->base, &buffered_ops, inner);
  b->read_size =
      opts && opts->read_size ? opts->read_size : BUF_DEFAULT_READ_SIZE;
  *out = &b->base;
  return 0;
}
