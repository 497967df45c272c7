/* scio — memory pipes: two connected in-memory byte streams.
 *
 * scio_memory_pipe_open(&a, &b, opts) gives two scio_stream ends: what is sent on
 * `a` is received on `b` and the other way round.  Each direction has a
 * bounded buffer, like a socket's: a send completes once the pipe has
 * accepted all its bytes, and blocks while the buffer is full (back-
 * pressure); a send larger than the buffer is delivered in pieces as the
 * reader drains it.  A receive returns what is there (at least one byte,
 * at most `max`) without waiting for more.
 *
 * Copies: bytes are copied at most twice, sender -> buffer -> receiver.  A
 * receiver already waiting takes them straight from the sender's buffer
 * (one copy), and so does a receiver that finds a sender blocked on a full
 * buffer.  Because scio_send yields *before* it buffers anything (its
 * checkpoint), two tasks streaming through a pipe settle into the one-copy
 * path: the receiver gets to wait first.
 *
 * Every scio_stream rule of <scio/stream.h> holds; for a memory pipe:
 *
 *   scio_receive   > 0 bytes; SCIO_EOF once the peer sent EOF or was
 *                  closed and every byte it sent before was received;
 *                  SCIO_ECLOSED if this end is closed (also for a task
 *                  blocked in it when it is closed); SCIO_ECANCELED, with
 *                  no byte taken (a receive woken with bytes returns them
 *                  even if cancellation arrives in the same round);
 *                  SCIO_EBUSY (another task is receiving on this end);
 *                  SCIO_EINVAL (buf NULL with max > 0).
 *   scio_send      0 once the pipe accepted every byte; SCIO_EBROKEN if
 *                  the peer end is closed (then nothing more is accepted);
 *                  SCIO_ECLOSED if this end is closed, before or while the
 *                  send waits, or after scio_send_eof on it;
 *                  SCIO_ECANCELED; SCIO_EBUSY; SCIO_EINVAL (buf NULL with
 *                  len > 0).  Sending 0 bytes is a checkpoint that returns 0
 *                  (or one of the errors).
 *                  A send that fails may have been *partly* accepted, and
 *                  the pipe guarantees exactly this: the peer receives a
 *                  prefix of `buf` (possibly empty), the bytes accepted
 *                  before the failure, in order, and nothing of the rest;
 *                  the pipe stays usable (after SCIO_ECANCELED you may send
 *                  the remainder).  How many: scio_errmsg() ("send:
 *                  cancelled after 10 of 25 bytes were accepted") and
 *                  scio_memory_pipe_stats.last_send_accepted.
 *   scio_send_eof  the peer's receive gets SCIO_EOF after draining what was
 *                  sent before.  Idempotent; also 0 when the peer is already
 *                  closed.  A checkpoint (SCIO_ECANCELED: no EOF sent).
 *   scio_close     like a socket's FIN: the peer receives what this end sent
 *                  (even bytes accepted from a send that was still blocked),
 *                  then SCIO_EOF; the peer's send gets SCIO_EBROKEN, and
 *                  bytes the peer sent that this end did not receive are
 *                  dropped.  Tasks blocked in this end's receive or send get
 *                  SCIO_ECLOSED.  Always returns 0 (or SCIO_ECANCELED from
 *                  its checkpoint, the end being released all the same).
 *   attributes     SCIO_ATTR_BUFFERED (size_t: bytes in this end's receive
 *                  buffer, waiting to be received; bytes of a blocked peer
 *                  send that did not fit are not counted) and
 *                  SCIO_ATTR_LAYER ("memory-pipe").  Other keys: SCIO_ENOENT; a
 *                  `len` below the key's size: SCIO_ENOSPC.
 *
 * Lifetime: each end is closed (and released) with scio_close on its own,
 * in any order; the shared memory goes with the second.  Both ends must be
 * used from tasks of one scio_run.
 *
 * Available since 0.1.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_PIPE_H
#define SCIO_PIPE_H

#include <stddef.h>

#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of scio_memory_pipe_open.  All-zero (or a NULL pointer) means
 * defaults. */
typedef struct scio_memory_pipe_opts {
  /* Bytes each direction buffers before a send blocks.  0 means 64 KiB.
   * Both buffers are allocated with the pipe. */
  size_t buffer_size;
} scio_memory_pipe_opts;

#define SCIO_MEMORY_PIPE_DEFAULT_BUFFER ((size_t)64 * 1024)

/* Create a memory pipe: *a and *b receive its two ends, each owned by the
 * caller (release each with scio_close).  Not a checkpoint; may be called
 * outside a run.  Returns 0, or:
 *   SCIO_EINVAL  a or b is NULL, or buffer_size is too large to allocate
 *                two of (size_t overflow);
 *   SCIO_ENOMEM  out of memory (nothing allocated).
 * On error *a and *b (when not NULL) are set to NULL. */
SCIO_API int scio_memory_pipe_open(scio_stream **a, scio_stream **b,
                              const scio_memory_pipe_opts *opts);

/* A snapshot of one end of a memory pipe, for tests and monitoring. */
typedef struct scio_memory_pipe_stats {
  size_t buffer_size;   /* capacity of each direction's buffer */
  size_t buffered_in;   /* bytes waiting to be received on this end */
  size_t buffered_out;  /* bytes sent on this end the peer has not received */
  unsigned receivers_waiting; /* 0 or 1: a task blocked in receive here */
  unsigned senders_waiting;   /* 0 or 1: a task blocked in send here */
  unsigned long long bytes_sent;     /* accepted from sends on this end */
  unsigned long long bytes_received; /* returned by receives on this end */
  /* Bytes of the latest scio_send on this end that the pipe accepted: all
   * of them after a success, the prefix that reached the peer after an
   * error (see scio_send above). */
  size_t last_send_accepted;
} scio_memory_pipe_stats;

/* Fill *out for the end `s`.  Not a checkpoint.  Returns 0, or SCIO_EINVAL
 * (NULL argument, or `s` is not the end of a memory pipe: a layer over a
 * pipe is refused too). */
SCIO_API int scio_memory_pipe_statistics(scio_stream *s,
                                         scio_memory_pipe_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_PIPE_H */
