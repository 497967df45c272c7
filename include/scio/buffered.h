/* scio — the buffered byte stream: a layer that keeps a receive buffer over
 * any byte stream and adds exact-size and delimited reads (AnyIO's
 * BufferedByteReceiveStream, with a send side that passes through).
 *
 *   scio_stream *b;
 *   if (scio_buffered_open(sock, NULL, &b) < 0) ...   // b now owns sock
 *   char line[1024];
 *   size_t n;
 *   rc = scio_receive_until(b, "\r\n", 2, line, sizeof line, &n);
 *
 * A buffered stream is a scio_stream like any other: scio_receive (which
 * serves buffered bytes first), scio_send / scio_send_eof (passed through to
 * the wrapped stream), scio_stream_attr (SCIO_ATTR_BUFFERED is answered here,
 * every other key by the layers below), scio_close (closes the wrapped
 * stream too).  It can wrap, and be wrapped by, any other layer.
 *
 * Nothing is lost: bytes the wrapped stream delivered stay in the buffer
 * until a call returns them.  A receive_exactly or receive_until that fails
 * (cancelled, SCIO_EINCOMPLETE, SCIO_EDELIM, SCIO_ENOMEM, an error of the
 * wrapped stream) leaves every byte it had received in the buffer, where the
 * next receive call finds it.  Only SCIO_ECLOSED (the stream was closed
 * under a blocked call) gives up the buffer.
 *
 * Errors common to the calls below, besides those of <scio/stream.h>:
 *   SCIO_EINVAL     a NULL argument, or `s` is not a buffered stream;
 *   SCIO_EBUSY      another task is receiving on this stream;
 *   SCIO_ECLOSED    the stream is closed, or was closed while the call was
 *                   blocked;
 *   SCIO_ECANCELED  an enclosing cancel scope was cancelled;
 *   SCIO_ENOMEM     the buffer could not grow;
 *   any error of the wrapped stream's receive (e.g. SCIO_EBROKEN).
 * Every receive function is a checkpoint: it checks cancellation first and
 * yields at least once, even when the buffer can answer at once.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_BUFFERED_H
#define SCIO_BUFFERED_H

#include <stddef.h>
#include <sys/types.h>

#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of scio_buffered_open.  All-zero (or NULL) means defaults. */
typedef struct scio_buffered_opts {
  /* The least free space offered to the wrapped stream's receive each time
   * the buffer is refilled, in bytes.  0 means 65536 (64 KiB).  The buffer
   * grows beyond it when a receive_exactly or receive_until needs more. A
   * plain scio_receive with at least this much room reads straight into the
   * caller's buffer when nothing is buffered. */
  size_t read_size;
} scio_buffered_opts;

/* Wrap `inner` in a buffered stream; *out gets it.  Not a checkpoint.
 * On success the new stream owns `inner` (closing it closes `inner`).
 * Returns 0, or:
 *   SCIO_EINVAL   inner or out is NULL, or read_size is above 1 GiB;
 *   SCIO_ECLOSED  inner is already closed;
 *   SCIO_ENOMEM   no memory.
 * On error nothing is taken: `inner` still belongs to the caller, and *out
 * is NULL (it is set to NULL before anything is checked).  The buffer itself is allocated at the first refill. */
SCIO_API int scio_buffered_open(scio_stream *inner,
                               const scio_buffered_opts *opts,
                               scio_stream **out);

/* Receive exactly `n` bytes into buf: returns n, or an error.  n == 0
 * returns 0 after a checkpoint.  A checkpoint.  Errors (besides the common
 * ones):
 *   SCIO_EINCOMPLETE  the stream ended before n bytes; the bytes that did
 *                     arrive stay buffered (scio_receive returns them, then
 *                     SCIO_EOF);
 *   SCIO_EINVAL       buf is NULL with n > 0, or n > SSIZE_MAX;
 *   SCIO_ENOMEM       the buffer cannot hold n bytes (checked before
 *                     anything is received: the call had no effect).
 * Cancelled or failed, the call consumed nothing. */
SCIO_API ssize_t scio_receive_exactly(scio_stream *s, void *buf, size_t n);

/* Receive up to a delimiter: copy the bytes before the first occurrence of
 * delim[0..dlen) into buf, set *len to their count (0..max), and consume
 * them and the delimiter (which is not copied).  A delimiter split between
 * two receives of the wrapped stream is found.  Returns 0, or an error:
 *   SCIO_EDELIM       more than `max` bytes arrived before any delimiter:
 *                     precisely, max + dlen bytes are buffered and the
 *                     delimiter does not start within the first max + 1 of
 *                     them.  A line of exactly max bytes is always accepted,
 *                     however the data was split.  Nothing is consumed;
 *   SCIO_EOF          the stream ended cleanly with nothing buffered: the
 *                     end between two records, so a line loop stops on it
 *                     (`while ((rc = scio_receive_until(...)) == 0) ...;
 *                     if (rc != SCIO_EOF) error`);
 *   SCIO_EINCOMPLETE  the stream ended without a delimiter (within the
 *                     limit) after some bytes: a truncated last record; the
 *                     data stays buffered (scio_receive returns it, then
 *                     SCIO_EOF);
 *   SCIO_EINVAL       delim is NULL, dlen is 0, buf is NULL with max > 0, or
 *                     len is NULL.
 * On every error nothing is consumed and *len is untouched.  A checkpoint.
 * Cost: linear in the bytes searched; a call resumed after a cancellation
 * with the same delimiter does not search again what was searched. */
SCIO_API int scio_receive_until(scio_stream *s, const void *delim,
                                size_t dlen, void *buf, size_t max,
                                size_t *len);

/* Append data[0..len) to the buffer, as AnyIO's feed_data does: receive
 * calls return it after the bytes already buffered and before anything the
 * wrapped stream delivers later, even after the wrapped stream ended.  Two
 * feeds are read in the order they were made.  The bytes are copied.  A
 * task blocked in a receive on s is woken to look at them (its pending
 * receive of the wrapped stream is withdrawn, losing nothing); bytes that
 * receive had already been handed come first.  Not a checkpoint.  Returns 0
 * (also for len == 0), or:
 *   SCIO_EINVAL   s is not a buffered stream, or data is NULL with len > 0;
 *   SCIO_ECLOSED  s is closed;
 *   SCIO_ENOMEM   no memory; nothing was fed. */
SCIO_API int scio_buffered_feed(scio_stream *s, const void *data, size_t len);

/* Push data[0..len) back to the front of the buffer: the next receive
 * returns these bytes first (before any already buffered), even after the
 * wrapped stream ended.  For a protocol parser that read past the end of
 * its message and hands the rest back.  The bytes are copied.  Not a
 * checkpoint.  Returns 0 (also for len == 0), or:
 *   SCIO_EINVAL   s is not a buffered stream, or data is NULL with len > 0;
 *   SCIO_ECLOSED  s is closed;
 *   SCIO_EBUSY    a task is receiving on s (its call may be writing into
 *                 the buffer);
 *   SCIO_ENOMEM   the buffer could not grow; nothing was pushed. */
SCIO_API int scio_buffered_unreceive(scio_stream *s, const void *data,
                                     size_t len);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_BUFFERED_H */
