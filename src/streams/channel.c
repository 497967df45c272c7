/* Memory channels: a FIFO of fixed-size items between tasks of one run.
 *
 * The channel state (struct chan) is shared by every half; each half is a
 * scio_ostream (embedded first, so the ostream view is the half itself).
 *
 * Blocked tasks wait in two FIFO queues of waiter records that live on their
 * own stacks.  Whoever completes an operation completes it *for* the waiter
 * (docs/internals.md, hand-off semantics): a sender copies its item straight
 * into a waiting receiver's buffer, a receiver copies a waiting sender's item
 * out of the sender's buffer, and only then wakes it.  A woken waiter
 * therefore never touches the channel again: its result is in its wake
 * value, which is also why cancellation cannot lose a handed-over item (the
 * core does not abort a task that has been woken).
 *
 * Invariants, outside of pending-cancel receivers (see first_live_receiver):
 *   - receivers wait only while nothing is buffered and no sender waits;
 *   - senders wait only while the buffer holds max_buffer items.
 *
 * Lifetime: open_tx/open_rx count halves not closed (they drive EOF and
 * EBROKEN); refs counts halves not yet freed.  A half's memory is freed by
 * the deferred free of stream.c once no call through the ostream interface
 * is running inside it, and the channel with its last half.  The native
 * calls need no such pin: they touch neither after they switch (chan_op).
 */
#include <stdint.h>
#include <string.h>

#include "core/internal.h"
#include "core/resume.h"
#include "scio/channel.h"

typedef struct chan {
  size_t item_size;
  size_t max_buffer;
  unsigned char *ring;   /* cap item slots, NULL until first needed */
  size_t cap;            /* a power of two (cheap wrap-around), or 0 */
  size_t mask;           /* cap - 1 */
  size_t head;           /* slot of the oldest buffered item */
  size_t count;          /* items buffered */
  size_t keep_slots;     /* ring slots kept when empty (RING_KEEP_BYTES) */
  size_t open_tx, open_rx;
  size_t refs;
  scio__node senders, receivers; /* waiter.link, oldest first */
  size_t nsenders, nreceivers;
} chan;

typedef struct half {
  scio_ostream os; /* first: the ostream view is the half itself */
  chan *ch;
} half;

struct scio_tx {
  half h;
};
struct scio_rx {
  half h;
};

typedef struct waiter {
  scio__node link;
  scio__task *task;
  half *half;       /* the half it waits in: its close wakes it */
  int sending;
  union {
    const void *src; /* a sender's item */
    void *dst;       /* where a receiver wants its item */
  } item;
} waiter;

/* Empty ring storage above this size is freed, so that a burst through an
 * unbounded channel does not pin its memory forever. */
#define RING_KEEP_BYTES ((size_t)64 * 1024)
#define RING_MIN_SLOTS ((size_t)16)

/* The path of a send or receive is inlined into one function (chan_op): a
 * task resumed after a switch returns through every frame of its call
 * chain, and such returns are mispredicted (the return predictor still
 * holds the other task's calls), so call depth costs more than code size. */
#define HOT static inline __attribute__((always_inline))
#define COLD static __attribute__((cold, noinline))

static const scio_ostream_ops tx_ops, rx_ops;

/* ------------------------------------------------------------------------ */
/* Items and the ring                                                        */

/* Common sizes get a fixed-size copy the compiler inlines: the generic
 * memcpy call would dominate a rendezvous of small items.  A pointer or a
 * long, the most common item, is tested first: a jump table costs more. */
HOT void item_copy(void *dst, const void *src, size_t n) {
  if (__builtin_expect(n == 8, 1)) {
    memcpy(dst, src, 8);
    return;
  }
  switch (n) {
  case 1: memcpy(dst, src, 1); break;
  case 2: memcpy(dst, src, 2); break;
  case 4: memcpy(dst, src, 4); break;
  case 8: memcpy(dst, src, 8); break;
  case 16: memcpy(dst, src, 16); break;
  default: memcpy(dst, src, n); break;
  }
}

HOT unsigned char *ring_slot(const chan *ch, size_t i) {
  return ch->ring + ((ch->head + i) & ch->mask) * ch->item_size;
}

/* Double the ring (or make the first one); on failure the old ring and its
 * items are untouched.  Only called while the buffer is below its bound, so
 * cap never exceeds the bound rounded up to a power of two. */
static int ring_grow(chan *ch) {
  size_t ncap = ch->cap * 2;
  if (ch->cap == 0)
    for (ncap = 1; ncap < RING_MIN_SLOTS && ncap < ch->max_buffer;)
      ncap <<= 1;
  if (ncap <= ch->cap || ncap > (size_t)-1 / ch->item_size)
    return SCIO_ENOMEM;
  unsigned char *p = scio__realloc(ch->ring, ncap * ch->item_size);
  if (!p)
    return SCIO_ENOMEM;
  /* Items that wrapped to the front move to just past the old end, where
   * the doubled mask now looks for them. */
  if (ch->head + ch->count > ch->cap) {
    size_t wrapped = ch->head + ch->count - ch->cap;
    memcpy(p + ch->cap * ch->item_size, p, wrapped * ch->item_size);
  }
  ch->ring = p;
  ch->cap = ncap;
  ch->mask = ncap - 1;
  return 0;
}

static void ring_release(chan *ch) {
  scio__free(ch->ring);
  ch->ring = NULL;
  ch->cap = ch->mask = ch->head = ch->count = 0;
}

/* Append, growing the storage if needed: 0 or SCIO_ENOMEM (nothing added). */
HOT int ring_push(chan *ch, const void *item) {
  if (ch->count == ch->cap) {
    int rc = ring_grow(ch);
    if (rc < 0)
      return rc;
  }
  item_copy(ring_slot(ch, ch->count), item, ch->item_size);
  ch->count++;
  return 0;
}

HOT void ring_pop(chan *ch, void *item) {
  item_copy(item, ring_slot(ch, 0), ch->item_size);
  ch->head = (ch->head + 1) & ch->mask;
  ch->count--;
}

/* Give large empty storage back (called once nothing is buffered). */
HOT void ring_trim(chan *ch) {
  if (ch->cap > ch->keep_slots)
    ring_release(ch);
}

/* ------------------------------------------------------------------------ */
/* Waiters                                                                   */

HOT waiter *first_waiter(scio__node *q) {
  return scio__list_empty(q) ? NULL : scio__container_of(q->next, waiter, link);
}

HOT void unlink_waiter(chan *ch, waiter *w) {
  scio__list_remove(&w->link);
  if (w->sending)
    ch->nsenders--;
  else
    ch->nreceivers--;
}

/* Complete w's operation with `value` (the item was already copied). */
HOT void wake_waiter(chan *ch, waiter *w, int value) {
  unlink_waiter(ch, w);
  scio__task_wake(w->task, value);
}

/* The oldest waiting receiver whose task is not already cancelled.  A
 * cancelled one would get the item and then fail at its very next
 * checkpoint, most likely dropping the item with its work, while a live
 * receiver waits.  It stays queued: its abort unlinks it. */
HOT waiter *first_live_receiver(chan *ch) {
  if (__builtin_expect(ch->nreceivers == 0, 1)) /* one load, the usual case */
    return NULL;
  scio__list_each(n, &ch->receivers) {
    waiter *w = scio__container_of(n, waiter, link);
    if (!scio__task_cancelled(w->task))
      return w;
  }
  return NULL;
}

/* Wake every waiter of queue q (those of half h only, if h is not NULL). */
static void wake_queue(chan *ch, scio__node *q, const half *h, int value) {
  scio__list_each(n, q) {
    waiter *w = scio__container_of(n, waiter, link);
    if (!h || w->half == h)
      wake_waiter(ch, w, value);
  }
}

/* The core calls this when cancellation reaches a blocked task.  The
 * waiter's item was never reserved (hand-offs wake at once), so unlinking
 * it is all: a cancelled send left nothing in the channel, a cancelled
 * receive took nothing out. */
static void abort_wait(scio__task *t, void *ctx) {
  waiter *w = ctx;
  (void)t;
  unlink_waiter(w->half->ch, w);
}

/* ------------------------------------------------------------------------ */
/* Operations that complete at once                                          */

/* 0, SCIO_EWOULDBLOCK, SCIO_EBROKEN or SCIO_ENOMEM; no error detail. */
HOT int send_now(chan *ch, const void *item) {
  if (ch->open_rx == 0)
    return SCIO_EBROKEN;
  waiter *r = first_live_receiver(ch);
  if (r) {
    item_copy(r->item.dst, item, ch->item_size);
    wake_waiter(ch, r, 0);
    return 0;
  }
  if (ch->count < ch->max_buffer)
    return ring_push(ch, item);
  return SCIO_EWOULDBLOCK;
}

/* After a buffered item left: the oldest blocked sender's item takes the
 * freed room, keeping FIFO order (the ring has a free slot: it was full). */
HOT void refill_from_sender(chan *ch) {
  waiter *s = ch->nsenders ? first_waiter(&ch->senders) : NULL;
  if (s) {
    item_copy(ring_slot(ch, ch->count), s->item.src, ch->item_size);
    ch->count++;
    wake_waiter(ch, s, 0);
  } else if (ch->count == 0 && ch->open_tx == 0) {
    /* Drained after the last sender left: receivers that were passed over
     * while items remained (pending cancels) must not wait forever. */
    wake_queue(ch, &ch->receivers, NULL, SCIO_EOF);
  }
}

/* 0, SCIO_EWOULDBLOCK or SCIO_EOF; no error detail. */
HOT int receive_now(chan *ch, void *item) {
  if (ch->count) {
    ring_pop(ch, item);
    refill_from_sender(ch);
    if (ch->count == 0)
      ring_trim(ch);
    return 0;
  }
  waiter *s = ch->nsenders ? first_waiter(&ch->senders) : NULL;
  if (s) {
    item_copy(item, s->item.src, ch->item_size);
    wake_waiter(ch, s, 0);
    return 0;
  }
  return ch->open_tx == 0 ? SCIO_EOF : SCIO_EWOULDBLOCK;
}

/* ------------------------------------------------------------------------ */
/* Error detail                                                              */

COLD int send_error(int rc, const char *what) {
  switch (rc) {
  case SCIO_EBROKEN:
    return scio__seterr(rc, "%s: every receive half of the channel is "
                            "closed", what);
  case SCIO_ENOMEM:
    return scio__seterr(rc, "%s: cannot grow the channel buffer", what);
  case SCIO_EWOULDBLOCK:
    return scio__seterr(rc, "%s: the channel is full", what);
  case SCIO_ECLOSED:
    return scio__seterr(rc, "%s: this send half was closed", what);
  default:
    return rc;
  }
}

COLD int receive_error(int rc, const char *what) {
  switch (rc) {
  case SCIO_EOF:
    return scio__seterr(rc, "%s: every send half of the channel is closed",
                        what);
  case SCIO_EWOULDBLOCK:
    return scio__seterr(rc, "%s: the channel is empty", what);
  case SCIO_ECLOSED:
    return scio__seterr(rc, "%s: this receive half was closed", what);
  default:
    return rc;
  }
}

/* ------------------------------------------------------------------------ */
/* Blocking operations                                                       */

/* The first half of every checkpoint: fail if cancelled. */
HOT int cancel_pending(scio__task *t) {
  if (__builtin_expect(scio__task_cancelled(t), 0)) {
    scio__deliver_cancel(t);
    return SCIO_ECANCELED;
  }
  return 0;
}

/* Queue the current task t as a sender or a receiver, to be parked until a
 * peer or a close completes the wait; the wake value is the result. */
HOT void wait_in(chan *ch, half *h, scio__task *t, waiter *w, int sending) {
  w->task = t;
  w->half = h;
  w->sending = sending;
  if (sending) {
    scio__list_push_back(&ch->senders, &w->link);
    ch->nsenders++;
  } else {
    scio__list_push_back(&ch->receivers, &w->link);
    ch->nreceivers++;
  }
  scio__park_prepare(t, abort_wait, w,
                     sending ? "channel send" : "channel receive");
}

/* The name a blocking call uses in its error detail, whether it came in
 * natively or through the ostream interface. */
COLD const char *op_name(int sending) {
  return sending ? "channel send" : "channel receive";
}

COLD int op_error(int rc, int sending) {
  const char *what = op_name(sending);
  return sending ? send_error(rc, what) : receive_error(rc, what);
}

HOT int half_check(const half *h, const void *arg, const char *what) {
  if (!h || !arg)
    return scio__seterr(SCIO_EINVAL, "%s: NULL argument", what);
  if (h->os.closed)
    return scio__seterr(SCIO_ECLOSED, "%s: this half is closed", what);
  return 0;
}

/* A blocking send or receive: one function for both, which the public entry
 * points tail-call.  Why: a task resumed by a switch returns through its
 * frames, and each return whose site differs from the one the other task
 * suspended at is mispredicted.  With one shared frame, a producer and a
 * consumer that both yield return through the same sites (measured: a
 * quarter more items per second than with separate send and receive
 * functions).  `item` is only read when sending.
 *
 * Nothing here touches the half or the channel after the switch (a woken
 * waiter's result is in its wake value), so the half need not be pinned:
 * if it is closed and freed meanwhile, this call never notices. */
static __attribute__((noinline)) scio__rs chan_op(half *h, void *item,
                                                  int sending) {
  int rc;
  if (__builtin_expect(!h || !item || h->os.closed, 0))
    return scio__rs_make(half_check(h, item, op_name(sending)), 0);
  scio__task *t = scio__task_cur();
  if (!t)
    return scio__rs_make(
        scio__seterr(SCIO_EINVAL, "%s: not inside a task", op_name(sending)),
        0);
  if ((rc = cancel_pending(t)) < 0)
    return scio__rs_make(rc, 0);
  chan *ch = h->ch;
  rc = sending ? send_now(ch, item) : receive_now(ch, item);
  /* Done at once or not, the task leaves through the same switch: a task
   * resumed there returns through the frames of the task that switched
   * away, and the return predictor guesses right only where those are the
   * same code. */
  waiter w;
  int blocked = rc == SCIO_EWOULDBLOCK;
  if (blocked) {
    w.item.dst = item;
    wait_in(ch, h, t, &w, sending);
  } else {
    /* Done: the result waits in the wake value, as a woken waiter's does,
     * so that both ways out of the switch below are the same code. */
    t->wake_value = rc;
  }
  /* Done or not, let the others run. */
  int switched = scio__schedule_inline(t, !blocked);
  rc = t->wake_value;
  if (__builtin_expect(rc != 0, 0))
    rc = op_error(scio__park_finish(t), sending);
  return scio__rs_make(rc, switched);
}

/* ------------------------------------------------------------------------ */
/* Halves                                                                    */

static void chan_free(chan *ch) {
  if (ch->nsenders || ch->nreceivers)
    scio__panic("channel freed with %zu senders and %zu receivers waiting",
                ch->nsenders, ch->nreceivers);
  scio__free(ch->ring);
  scio__free(ch);
}

static int half_new(chan *ch, const scio_ostream_ops *ops, half **out) {
  half *h = scio__malloc(sizeof *h);
  if (!h)
    return scio__seterr(SCIO_ENOMEM, "channel: out of memory for a half");
  scio_ostream_init(&h->os, ops, NULL, ch->item_size);
  h->ch = ch;
  ch->refs++;
  if (ops == &tx_ops)
    ch->open_tx++;
  else
    ch->open_rx++;
  *out = h;
  return 0;
}

/* do_free: called by stream.c (or half_leave) once nothing runs inside. */
static void half_free(scio_ostream *s) {
  half *h = (half *)s;
  chan *ch = h->ch;
  scio__free(h);
  if (--ch->refs == 0)
    chan_free(ch);
}


/* do_close of a send half: its own waiters learn it is closed; the last
 * send half ends the stream for receivers once the buffer is drained. */
static int tx_do_close(scio_ostream *s) {
  half *h = (half *)s;
  chan *ch = h->ch;
  wake_queue(ch, &ch->senders, h, SCIO_ECLOSED);
  if (--ch->open_tx == 0 && ch->count == 0)
    wake_queue(ch, &ch->receivers, NULL, SCIO_EOF);
  return 0;
}

/* do_close of a receive half: with the last one gone nobody can ever read
 * the buffer, so it is dropped and senders learn the channel is broken. */
static int rx_do_close(scio_ostream *s) {
  half *h = (half *)s;
  chan *ch = h->ch;
  wake_queue(ch, &ch->receivers, h, SCIO_ECLOSED);
  if (--ch->open_rx == 0) {
    ring_release(ch);
    wake_queue(ch, &ch->senders, NULL, SCIO_EBROKEN);
  }
  return 0;
}

/* Through stream.c, which has checked and pinned the half already; the
 * second check and pin are harmless. */
static int tx_do_send(scio_ostream *s, const void *item) {
  return (int)chan_op((half *)s, (void *)(uintptr_t)item, 1).rc;
}

static int rx_do_receive(scio_ostream *s, void *item) {
  return (int)chan_op((half *)s, item, 0).rc;
}

static const scio_ostream_ops tx_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "channel-send",
    .do_send = tx_do_send,
    .do_close = tx_do_close,
    .do_free = half_free,
};

static const scio_ostream_ops rx_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "channel-receive",
    .do_receive = rx_do_receive,
    .do_close = rx_do_close,
    .do_free = half_free,
};

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

SCIO_API int scio_channel_open(size_t item_size, size_t max_buffer,
                               scio_tx **tx, scio_rx **rx) {
  if (tx)
    *tx = NULL;
  if (rx)
    *rx = NULL;
  if (!tx || !rx)
    return scio__seterr(SCIO_EINVAL, "channel_open: NULL argument");
  if (item_size == 0)
    return scio__seterr(SCIO_EINVAL, "channel_open: item_size is 0");
  chan *ch = scio__calloc(1, sizeof *ch);
  if (!ch)
    return scio__seterr(SCIO_ENOMEM, "channel_open: out of memory");
  ch->item_size = item_size;
  ch->max_buffer = max_buffer;
  ch->keep_slots = RING_KEEP_BYTES / item_size;
  scio__list_init(&ch->senders);
  scio__list_init(&ch->receivers);
  half *t = NULL, *r = NULL;
  int rc = half_new(ch, &tx_ops, &t);
  if (rc < 0) {
    scio__free(ch);
    return rc;
  }
  rc = half_new(ch, &rx_ops, &r);
  if (rc < 0) {
    scio__free(t);
    scio__free(ch);
    return rc;
  }
  *tx = (scio_tx *)t;
  *rx = (scio_rx *)r;
  return 0;
}

SCIO__BLOCKING(scio_tx_send, (scio_tx *tx, const void *item),
               chan_op((half *)tx, (void *)(uintptr_t)item, 1))

SCIO_API int scio_tx_send_nowait(scio_tx *tx, const void *item) {
  half *h = (half *)tx;
  int rc = half_check(h, item, "tx_send_nowait");
  if (rc < 0)
    return rc;
  rc = send_now(h->ch, item);
  return __builtin_expect(rc == 0, 1) ? 0 : send_error(rc, "tx_send_nowait");
}

SCIO__BLOCKING(scio_rx_receive, (scio_rx *rx, void *item),
               chan_op((half *)rx, item, 0))

SCIO_API int scio_rx_receive_nowait(scio_rx *rx, void *item) {
  half *h = (half *)rx;
  int rc = half_check(h, item, "rx_receive_nowait");
  if (rc < 0)
    return rc;
  rc = receive_now(h->ch, item);
  return __builtin_expect(rc == 0, 1) ? 0
                                      : receive_error(rc, "rx_receive_nowait");
}

static int clone_half(half *h, half **out, const char *what) {
  if (out)
    *out = NULL;
  int rc = half_check(h, out, what);
  if (rc < 0)
    return rc;
  return half_new(h->ch, h->os.ops, out);
}

SCIO_API int scio_tx_clone(scio_tx *tx, scio_tx **out) {
  return clone_half((half *)tx, (half **)out, "tx_clone");
}

SCIO_API int scio_rx_clone(scio_rx *rx, scio_rx **out) {
  return clone_half((half *)rx, (half **)out, "rx_clone");
}

SCIO_API int scio_tx_close(scio_tx *tx) {
  return scio_ostream_close(scio_tx_ostream(tx));
}

SCIO_API int scio_rx_close(scio_rx *rx) {
  return scio_ostream_close(scio_rx_ostream(rx));
}

/* scio_ostream_close without its checkpoint: the same protocol (closed
 * first, pinned by inflight while do_close wakes the waiters, freed by
 * whoever leaves last), so a half whose aclose is still in its checkpoint
 * is not freed under it. */
static int close_nowait(half *h, const char *what) {
  if (!h)
    return 0;
  scio_ostream *s = &h->os;
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "%s: already being closed", what);
  s->closed = 1;
  s->inflight++;
  int rc = s->ops->do_close(s);
  s->free_pending = 1;
  if (--s->inflight == 0)
    s->ops->do_free(s);
  return rc;
}

SCIO_API int scio_tx_close_nowait(scio_tx *tx) {
  return close_nowait((half *)tx, "tx_close_nowait");
}

SCIO_API int scio_rx_close_nowait(scio_rx *rx) {
  return close_nowait((half *)rx, "rx_close_nowait");
}

SCIO_API scio_ostream *scio_tx_ostream(scio_tx *tx) {
  return tx ? &tx->h.os : NULL;
}

SCIO_API scio_ostream *scio_rx_ostream(scio_rx *rx) {
  return rx ? &rx->h.os : NULL;
}

SCIO_API int scio_channel_statistics(const scio_ostream *s,
                                     scio_channel_stats *out) {
  if (!s || !out)
    return scio__seterr(SCIO_EINVAL, "channel_statistics: NULL argument");
  if (s->ops != &tx_ops && s->ops != &rx_ops)
    return scio__seterr(SCIO_EINVAL, "channel_statistics: a %s is not a "
                                     "channel half",
                        s->ops && s->ops->name ? s->ops->name : "stream");
  const chan *ch = ((const half *)s)->ch;
  out->current_buffer_used = ch->count;
  out->max_buffer_size = ch->max_buffer;
  out->open_send_streams = ch->open_tx;
  out->open_receive_streams = ch->open_rx;
  out->tasks_waiting_send = ch->nsenders;
  out->tasks_waiting_receive = ch->nreceivers;
  return 0;
}
