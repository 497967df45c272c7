/* scio — memory channels: object streams between tasks of one run (Trio's
 * memory channels, AnyIO's memory object streams).
 *
 *   scio_tx *tx;
 *   scio_rx *rx;
 *   scio_channel_open(sizeof(int), 0, &tx, &rx);   rendezvous channel of ints
 *   ... producer:  scio_tx_send(tx, &v);  ...  scio_tx_close(tx);
 *   ... consumer:  while ((rc = scio_rx_receive(rx, &v)) == 0) use(v);
 *                  rc == SCIO_EOF: every producer is done
 *                  scio_rx_close(rx);
 *
 * Items are fixed-size blobs copied by value: `item_size` bytes are copied
 * from the sender's item into the channel (or straight into a waiting
 * receiver's item) and from there into the receiver's item.  An item may be
 * an int, a struct, or a pointer; a channel never looks inside it, so an
 * item that owns memory (a pointer) is owned by whoever holds the copy.
 *
 * A channel has two *halves*: a send half (scio_tx) and a receive half
 * (scio_rx).  Each half is a heap object owned by its holder and released by
 * closing it.  Other pointer arguments are borrowed: a function uses them
 * during the call only.  Clones (scio_tx_clone, scio_rx_clone) are further
 * halves on the same channel, one per producer or consumer task, each
 * closed on its own; the channel itself is released with its last half.
 *   - Once every send half is closed, receivers drain what is buffered and
 *     then get SCIO_EOF.
 *   - Once every receive half is closed, senders get SCIO_EBROKEN (what was
 *     still buffered is discarded).
 *   - A half that is being closed answers SCIO_ECLOSED, and tasks blocked in
 *     it are woken with SCIO_ECLOSED.  After its close returns, the half is
 *     released and must not be used (as with scio_close).
 * Many tasks may send on one half, or receive on one half, at once: they are
 * served in FIFO order.
 *
 * Buffering: `max_buffer` items may wait in the channel.  0 is a rendezvous:
 * a send completes only when a receiver takes the item.  SCIO_UNBOUNDED
 * never blocks a sender.  Buffer storage is allocated as it fills (up to the
 * bound), so a send may fail with SCIO_ENOMEM; nothing is lost then.
 *
 * Cancellation loses nothing:
 *   - an item handed to a receiver is that receiver's, even if its task is
 *     cancelled in the same scheduling round: it returns 0 with the item and
 *     sees the cancellation at its next checkpoint;
 *   - a send that returns SCIO_ECANCELED did not send: the item is not in
 *     the channel (a sender never leaves half an item behind);
 *   - a sender prefers a waiting receiver whose task is not about to be
 *     cancelled.
 *
 * Object streams: each half is also a scio_ostream (scio_tx_ostream,
 * scio_rx_ostream give the view; it is the same object), so
 * scio_ostream_send / scio_ostream_receive / scio_ostream_close work on it
 * and later layers (stapled object streams) can stack on it.  Closing a half
 * with scio_ostream_close is exactly scio_tx_close / scio_rx_close.
 *
 * Threads: a channel belongs to the run (thread) that uses it; every
 * function here must be called from a task of that run, except
 * scio_channel_open, the clones and the statistics, which only touch memory.
 * SCIO_ATTR_LAYER names the halves "channel-send" and "channel-receive".
 *
 * Available since 0.1.
 */
#ifndef SCIO_CHANNEL_H
#define SCIO_CHANNEL_H

#include <stddef.h>

#include "scio/core.h"
#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* max_buffer for a channel that never blocks a sender. */
#define SCIO_UNBOUNDED ((size_t)-1)

/* The send half and the receive half of a channel (opaque). */
typedef struct scio_tx scio_tx;
typedef struct scio_rx scio_rx;

/* Open a channel of items of `item_size` bytes holding up to `max_buffer`
 * items (0: rendezvous; SCIO_UNBOUNDED: no bound).  On success *tx and *rx
 * are its first two halves, owned by the caller (close both).  Not a
 * checkpoint.  Returns 0, or:
 *   SCIO_EINVAL  item_size is 0, or tx or rx is NULL;
 *   SCIO_ENOMEM  out of memory (nothing allocated).
 * On error *tx and *rx (those that are not NULL) are NULL: they are set to
 * NULL before anything is checked. */
SCIO_API int scio_channel_open(size_t item_size, size_t max_buffer,
                               scio_tx **tx, scio_rx **rx);

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */

/* Send one item (item_size bytes copied from `item`): hand it to the first
 * waiting receiver, or buffer it, or wait until a receiver takes it or room
 * frees up.  While it waits, `item` is read in place when the item is taken:
 * keep it unchanged until the call returns.  A checkpoint: it fails with
 * SCIO_ECANCELED first if the task is cancelled, and yields at least once
 * whatever the outcome.  Returns 0 (the item is in the channel or
 * delivered), or:
 *   SCIO_EBROKEN    every receive half is closed (also when that happens
 *                   while waiting): the item was not sent;
 *   SCIO_ECLOSED    tx is closed, or was closed while waiting;
 *   SCIO_ECANCELED  cancelled: the item was not sent;
 *   SCIO_ENOMEM     buffer storage could not grow: the item was not sent;
 *   SCIO_EINVAL     tx or item is NULL, or no task is running. */
SCIO_API int scio_tx_send(scio_tx *tx, const void *item);

/* Send without waiting.  Not a checkpoint.  Returns 0, or SCIO_EWOULDBLOCK
 * (no receiver waiting and the buffer is full; nothing sent), SCIO_EBROKEN,
 * SCIO_ECLOSED, SCIO_ENOMEM, SCIO_EINVAL as scio_tx_send. */
SCIO_API int scio_tx_send_nowait(scio_tx *tx, const void *item);

/* Make another send half of tx's channel, owned by the caller; the channel
 * reports EOF only once it is closed too.  Not a checkpoint.  Returns 0, or
 * SCIO_ECLOSED (tx is closed), SCIO_ENOMEM (nothing changed), SCIO_EINVAL
 * (NULL argument).  On error *out (if out is not NULL) is NULL. */
SCIO_API int scio_tx_clone(scio_tx *tx, scio_tx **out);

/* Close and release tx (the same as scio_ostream_close on its ostream view).
 * Tasks blocked sending on tx are woken with SCIO_ECLOSED; when tx was the
 * last send half, tasks waiting to receive are woken with SCIO_EOF (once
 * the buffer is empty).  tx is released even when this returns an error, and
 * must not be used afterwards; NULL is a no-op returning 0.  A checkpoint
 * (it yields once), but a cancelled close still closes and releases.
 * Returns 0, SCIO_ECANCELED (closed all the same), or SCIO_ECLOSED (already
 * being closed by another task). */
SCIO_API int scio_tx_close(scio_tx *tx);

/* scio_tx_close without the checkpoint (Trio's close() beside aclose()):
 * the same effects at once, for error paths and cleanup that must not
 * care about cancellation.  Not a checkpoint: it neither yields nor fails
 * in a cancelled scope; the woken tasks run later.  tx is released and
 * must not be used afterwards; NULL is a no-op returning 0.  Returns 0, or
 * SCIO_ECLOSED (a scio_tx_close of tx by another task is still in its
 * checkpoint; that close releases it).  Callable outside a task. */
SCIO_API int scio_tx_close_nowait(scio_tx *tx);

/* The object-stream view of tx: the same object, not a new one.  Through it
 * scio_ostream_send is scio_tx_send, scio_ostream_close is scio_tx_close,
 * scio_ostream_receive is SCIO_ENOSYS.  NULL for NULL.  The view is owned
 * by tx (valid until tx is closed).  Not a checkpoint.  Never fails. */
SCIO_API scio_ostream *scio_tx_ostream(scio_tx *tx);

/* ------------------------------------------------------------------------ */
/* Receiving                                                                 */

/* Receive one item into `item` (item_size bytes): the oldest buffered item,
 * or one handed over by a sender, waiting for it if need be (a sender then
 * writes `item` in place, before this call returns).  A checkpoint:
 * it fails with SCIO_ECANCELED first if the task is cancelled, and yields at
 * least once whatever the outcome.  Returns 0 (`item` filled), or, with
 * `item` untouched:
 *   SCIO_EOF        every send half is closed and nothing is buffered;
 *   SCIO_ECLOSED    rx is closed, or was closed while waiting;
 *   SCIO_ECANCELED  cancelled: nothing was taken from the channel;
 *   SCIO_EINVAL     rx or item is NULL, or no task is running. */
SCIO_API int scio_rx_receive(scio_rx *rx, void *item);

/* Receive without waiting.  Not a checkpoint.  Returns 0, or
 * SCIO_EWOULDBLOCK (nothing buffered and no sender waiting), SCIO_EOF,
 * SCIO_ECLOSED, SCIO_EINVAL as scio_rx_receive. */
SCIO_API int scio_rx_receive_nowait(scio_rx *rx, void *item);

/* Make another receive half of rx's channel, owned by the caller; senders
 * see SCIO_EBROKEN only once it is closed too.  Not a checkpoint.  Returns
 * 0, or SCIO_ECLOSED, SCIO_ENOMEM (nothing changed), SCIO_EINVAL.  On error
 * *out (if out is not NULL) is NULL. */
SCIO_API int scio_rx_clone(scio_rx *rx, scio_rx **out);

/* Close and release rx (the same as scio_ostream_close on its view).  Tasks
 * blocked receiving on rx are woken with SCIO_ECLOSED; when rx was the last
 * receive half, the buffered items are discarded and tasks waiting to send
 * are woken with SCIO_EBROKEN.  Release and results as scio_tx_close: a
 * checkpoint, returning 0, SCIO_ECANCELED (closed all the same) or
 * SCIO_ECLOSED. */
SCIO_API int scio_rx_close(scio_rx *rx);

/* scio_rx_close without the checkpoint, as scio_tx_close_nowait: not a
 * checkpoint; rx is released (NULL is a no-op returning 0).  Returns 0 or
 * SCIO_ECLOSED (a scio_rx_close of rx by another task is still in its
 * checkpoint). */
SCIO_API int scio_rx_close_nowait(scio_rx *rx);

/* The object-stream view of rx (the same object).  scio_ostream_receive is
 * scio_rx_receive, scio_ostream_close is scio_rx_close, scio_ostream_send
 * is SCIO_ENOSYS.  NULL for NULL.  The view is owned by rx (valid until rx
 * is closed).  Not a checkpoint.  Never fails. */
SCIO_API scio_ostream *scio_rx_ostream(scio_rx *rx);

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

typedef struct scio_channel_stats {
  size_t current_buffer_used;   /* items buffered now */
  size_t max_buffer_size;       /* max_buffer given at open (SCIO_UNBOUNDED) */
  size_t open_send_streams;     /* send halves not (being) closed */
  size_t open_receive_streams;  /* receive halves not (being) closed */
  size_t tasks_waiting_send;    /* tasks blocked in a send */
  size_t tasks_waiting_receive; /* tasks blocked in a receive */
} scio_channel_stats;

/* Fill *out with the state of the channel of `half`, the ostream view of
 * either half (scio_tx_ostream(tx) or scio_rx_ostream(rx)); a half being
 * closed still answers.  Not a checkpoint.  Returns 0, or SCIO_EINVAL (NULL
 * argument, or `half` is not a channel half). */
SCIO_API int scio_channel_statistics(const scio_ostream *half,
                                     scio_channel_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_CHANNEL_H */
