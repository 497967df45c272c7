/* scio — byte streams and object streams: the interfaces every layer
 * implements (sockets, TLS, buffered, text, stapled, memory pipes, memory
 * channels, files, processes).
 *
 * A stream is an object with a const vtable.  Layers own the stream they
 * wrap: closing the top closes the chain.  Attribute queries walk down the
 * chain: a layer answers its own keys and passes the rest to the stream it
 * wraps, so a TLS stream over TCP answers both SCIO_ATTR_ALPN and
 * SCIO_ATTR_REMOTE_ADDR.
 *
 * Errors, the same for every implementation:
 *   SCIO_EOF        clean end of the stream (receive only);
 *   SCIO_EBROKEN    the peer vanished or reset the connection;
 *   SCIO_ECLOSED    this stream was closed (by you); a task blocked on it
 *                   when it is closed is woken with SCIO_ECLOSED;
 *   SCIO_EBUSY      another task is already receiving (or sending) on this
 *                   stream;
 *   SCIO_ECANCELED  the calling task was cancelled.
 * Cancellation: a cancelled receive loses no bytes (nothing was taken from
 * the stream).  A cancelled send may have sent part of the buffer: the
 * stream is then in an unknown state and the only safe call is scio_close;
 * implementations document if they do better.
 *
 * Every operation except scio_stream_attr and scio_stream_pending is a
 * checkpoint.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 * A stream is owned by whoever opened it (or by the layer wrapped over it)
 * until scio_close releases it.
 *
 * Layer authors: <scio/streamcheck.h> checks a new stream implementation
 * against all of these rules (scio_stream_check_two_way, ...).
 */
#ifndef SCIO_STREAM_H
#define SCIO_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "scio/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Typed attributes                                                          */

/* Each key has one documented C type; `len` must be at least its size
 * (strings: the buffer size, NUL included).  An unknown key is SCIO_ENOENT; a
 * buffer too small is SCIO_ENOSPC. */
enum scio_attr {
  SCIO_ATTR_LOCAL_ADDR = 1,  /* struct sockaddr_storage */
  SCIO_ATTR_REMOTE_ADDR = 2, /* struct sockaddr_storage */
  SCIO_ATTR_FAMILY = 3,      /* int: AF_INET, AF_INET6, AF_UNIX */
  SCIO_ATTR_FD = 4,          /* int: the underlying file descriptor */
  SCIO_ATTR_ALPN = 5,        /* char[]: negotiated ALPN protocol */
  SCIO_ATTR_TLS_VERSION = 6, /* char[]: e.g. "TLSv1.3" */
  SCIO_ATTR_CIPHER = 7,      /* char[]: cipher suite name */
  SCIO_ATTR_PEER_CERT = 8,   /* void *: X509 * of the peer (borrowed) */
  SCIO_ATTR_BUFFERED = 9,    /* size_t: bytes buffered for reading */
  SCIO_ATTR_ENCODING = 10,   /* char[]: a text stream's encoding */
  SCIO_ATTR_LAYER = 11,      /* char[]: the top layer's name */
  SCIO_ATTR_PATH = 12,       /* char[]: the path a file stream was opened by */
  SCIO_ATTR_USER = 1000      /* first key for user-defined layers */
};

/* ------------------------------------------------------------------------ */
/* Byte streams                                                              */

typedef struct scio_stream scio_stream;

/* The vtable of a byte stream.  Every slot may be NULL: receive/send/
 * send_eof/wait_send_ready then fail with SCIO_ENOSYS, attr answers SCIO_ENOENT (and
 * the chain walk goes on), pending counts 0 for this layer (and the walk
 * goes on), close just frees.  Implementations are called through the
 * generic functions below, which handle busy detection and the lifetime of a
 * stream closed while another task is blocked on it.
 *
 * Versions: `size` is the size of the vtable the layer was compiled with,
 * sizeof(scio_stream_ops), and scio_stream_init checks it.  Slots are only
 * ever appended, so a vtable of an older version is a prefix of this one:
 * the slots beyond its `size` are treated as NULL.  A size below
 * SCIO_STREAM_OPS_SIZE_V1 (the first version, through do_attr) is refused;
 * a size above this version's (a layer built against a newer scio) is
 * accepted, and only the slots this version knows are called.
 *   version 1 (0.1)  size .. do_attr
 *   version 2 (0.1)  do_pending, do_wait_send_ready
 *   version 3 (0.1)  do_wait_receive_ready, do_receive_nowait,
 *                    do_send_nowait */
typedef struct scio_stream_ops {
  size_t size; /* sizeof(scio_stream_ops) when compiled: the version */
  const char *name;
  /* > 0 bytes received, SCIO_EOF, or an error.  Never 0 for max > 0. */
  ssize_t (*do_receive)(scio_stream *s, void *buf, size_t max);
  /* All of buf, or an error. */
  int (*do_send)(scio_stream *s, const void *buf, size_t len);
  int (*do_send_eof)(scio_stream *s);
  /* Graceful close: release what the layer holds (closing the wrapped
   * stream), wake tasks blocked in this stream with SCIO_ECLOSED.  Must not
   * free `s` itself. */
  int (*do_close)(scio_stream *s);
  /* Free the memory of `s`; called once nothing is running inside it. */
  void (*do_free)(scio_stream *s);
  int (*do_attr)(scio_stream *s, int key, void *out, size_t len);
  /* --- version 2 --- */
  /* Bytes this layer alone holds for reading (>= 0): received from the
   * stream below, or handed over by a peer, and not yet returned.  Not the
   * wrapped stream's (the generic walk adds those).  Must not block. */
  ssize_t (*do_pending)(scio_stream *s);
  /* Block until a send might not block (see scio_wait_send_ready). */
  int (*do_wait_send_ready)(scio_stream *s);
  /* --- version 3 --- */
  /* Block until a receive might not block (see scio_wait_receive_ready):
   * 0 once bytes, an end of stream or an error can be received. */
  int (*do_wait_receive_ready)(scio_stream *s);
  /* Receive what can be had without waiting (see scio_receive_nowait):
   * > 0 bytes, SCIO_EOF, SCIO_EWOULDBLOCK, or an error.  Must not park. */
  ssize_t (*do_receive_nowait)(scio_stream *s, void *buf, size_t max);
  /* Send what can be taken without waiting (see scio_send_nowait): > 0
   * bytes accepted (possibly fewer than len), SCIO_EWOULDBLOCK, or an
   * error.  Must not park. */
  ssize_t (*do_send_nowait)(scio_stream *s, const void *buf, size_t len);
} scio_stream_ops;

/* The size of the first version of scio_stream_ops (through do_attr). */
#define SCIO_STREAM_OPS_SIZE_V1                                               \
  (offsetof(scio_stream_ops, do_attr) + sizeof(((scio_stream_ops *)0)->do_attr))

/* The common head of every byte stream; implementations embed it first. */
struct scio_stream {
  const scio_stream_ops *ops;
  /* The wrapped stream (owned), or NULL.  A layer over several streams (a
   * stapled stream) sets NULL and walks them in its own do_attr. */
  scio_stream *inner;
  unsigned inflight;   /* generic calls running inside the stream */
  unsigned char receiving, sending, closed, free_pending;
};

/* For implementers: initialise the head of `s` (caller storage; nothing is
 * allocated).  The stream keeps `ops` and `inner` by pointer; inner, the
 * wrapped stream, is the layer's from now on (its do_close closes it;
 * here it is only recorded for the attribute and pending walks).  Not a
 * checkpoint; may be called outside a run.  Returns 0,
 * or SCIO_EINVAL when s is NULL, ops is NULL, or ops->size is below
 * SCIO_STREAM_OPS_SIZE_V1 (a vtable that does not say its version, e.g.
 * size left 0).  A stream whose init failed is still safe to call: every
 * call on it returns SCIO_EINVAL, and scio_close releases nothing of it (its
 * do_free is not trusted); the layer should free it and report the error. */
SCIO_API int scio_stream_init(scio_stream *s, const scio_stream_ops *ops,
                              scio_stream *inner);

/* Receive up to `max` bytes into the caller's `buf`: > 0 bytes, SCIO_EOF,
 * or an error above (SCIO_EBROKEN, SCIO_ECLOSED, SCIO_EBUSY,
 * SCIO_ECANCELED), or SCIO_EINVAL (buf NULL with max > 0).  A checkpoint:
 * max == 0 returns 0 after one. */
SCIO_API ssize_t scio_receive(scio_stream *s, void *buf, size_t max);
/* Send all `len` bytes, or fail; SCIO_EINVAL when buf is NULL with len > 0.
 * len == 0 is a checkpoint that sends nothing (the peer sees no EOF). */
SCIO_API int scio_send(scio_stream *s, const void *buf, size_t len);
/* Half-close: the peer's receive sees SCIO_EOF.  A checkpoint.  Returns 0,
 * an error above, or SCIO_ENOSYS where the stream has no such thing. */
SCIO_API int scio_send_eof(scio_stream *s);
/* Close gracefully and release the stream and everything it owns, always,
 * even when it returns an error (which reports how the close went). Tasks
 * blocked on the stream are woken with SCIO_ECLOSED.  `s` must not be used
 * afterwards.  A checkpoint, but a cancelled close still releases. */
SCIO_API int scio_close(scio_stream *s);
/* Query a typed attribute through the chain of layers, copied into the
 * caller's `out` (len bytes).  Not a checkpoint.  Returns 0, or
 * SCIO_ENOENT (no layer of the chain has it), SCIO_ENOSPC (len too small),
 * SCIO_EINVAL (NULL argument), or a layer's error. */
SCIO_API int scio_stream_attr(scio_stream *s, int key, void *out, size_t len);

/* Wait until a send on `s` might not block (Trio's
 * wait_send_all_might_not_block): for a task that wants to send the
 * freshest data once the stream can take it, without holding data while it
 * waits.  It may return early (a send can still block), never late: it
 * returns once the stream could accept at least one byte without waiting,
 * or once a send would fail at once.  It counts as a send for busy
 * detection.  A checkpoint.  Returns 0, or:
 *   SCIO_EBROKEN    the peer is gone (a layer may return 0 instead: the
 *                   next send then reports it);
 *   SCIO_ECLOSED    `s` is closed, before or while waiting, or send_eof was
 *                   called on it;
 *   SCIO_EBUSY      another task is sending, half-closing or waiting here;
 *   SCIO_ECANCELED  cancelled (nothing happened);
 *   SCIO_EINVAL     s is NULL;
 *   SCIO_ENOSYS     the top layer has no do_wait_send_ready slot. */
SCIO_API int scio_wait_send_ready(scio_stream *s);

/* Block until a receive on `s` might complete without waiting: bytes are
 * held by a layer, or the bottom of the chain (a socket, a pipe) has bytes,
 * an end of stream or an error to report.  Nothing is received: the next
 * scio_receive returns it.  This is what lets a server lend a buffer to a
 * connection only while it has something to read (Trio's wait_readable for
 * a whole stream): thousands of idle connections then hold no buffer, and
 * a few buffers reused in turn stay in the cache.  "Might": a layer's
 * bytes can be an incomplete unit (part of a character), and a socket
 * whose readiness went stale can still make the receive wait.
 * A checkpoint.  Counts as a receive: one at a time per stream, and not
 * while a receive is running.  Answered by socket streams, process pipes,
 * memory pipes and stapled streams (their receive half), and through
 * buffered and text streams (their own bytes, else the wrapped stream's
 * readiness).  Returns:
 *   0               a receive might not block;
 *   SCIO_ECLOSED    `s` is closed, before or while waiting;
 *   SCIO_EBUSY      another task is receiving or waiting here;
 *   SCIO_ECANCELED  cancelled (nothing happened);
 *   SCIO_EINVAL     s is NULL;
 *   SCIO_ENOSYS     a layer on the way down neither answers this nor
 *                   counts its buffered bytes (a TLS stream), so its
 *                   readiness cannot be known. */
SCIO_API int scio_wait_receive_ready(scio_stream *s);

/* Receive up to `max` bytes into `buf` only if that needs no waiting
 * (Tokio's try_read; the stream form of scio_rx_receive_nowait): bytes a
 * layer holds, or what one read of the socket or pipe below returns.
 * Never parks.  Not a checkpoint: no cancellation is delivered and no
 * other task runs, so a loop of these must reach a checkpoint elsewhere.
 * Its use is the pair with scio_wait_receive_ready: wait (the checkpoint)
 * holding no buffer, then borrow a buffer only for this call, which then
 * costs no second trip through the scheduler.  Counts as a receive (busy
 * detection).  `buf` is the caller's; nothing is kept.  Returns:
 *   > 0               bytes received;
 *   0                 only when max is 0;
 *   SCIO_EOF          end of stream;
 *   SCIO_EWOULDBLOCK  nothing can be received now (no error detail is set:
 *                     this is the expected answer of a stale readiness);
 *   SCIO_EBROKEN      the connection was reset (sockets);
 *   SCIO_ECLOSED      `s` is closed;
 *   SCIO_EBUSY        another task is receiving or waiting here;
 *   SCIO_EINVAL       s is NULL, or buf is NULL with max > 0;
 *   SCIO_ENOSYS       the top layer has no do_receive_nowait slot (TLS and
 *                     text streams);
 *   or another error of the layer's receive.
 * Answered by socket streams, process pipes, memory pipes, stapled streams
 * (their receive half) and buffered streams (their bytes first). */
SCIO_API ssize_t scio_receive_nowait(scio_stream *s, void *buf, size_t max);

/* Send as much of buf[0..len) as the stream takes without waiting
 * (Tokio's try_write): possibly less than len.  Never parks.  Not a
 * checkpoint.  With scio_receive_nowait it lets a buffer lent for one
 * message go back at once: a scio_send that completes at once still
 * yields (the checkpoint rule), holding the buffer while other tasks run.
 * Send the rest, if any, with scio_send (typically from a copy, so the
 * lent buffer can be returned).  Counts as a send (busy detection).
 * Returns:
 *   > 0               bytes accepted, from the front of buf;
 *   0                 only when len is 0;
 *   SCIO_EWOULDBLOCK  the stream takes nothing now (no error detail set);
 *   SCIO_EBROKEN      the peer is gone (reset, or its reading side closed);
 *   SCIO_ECLOSED      `s` is closed, or send_eof was called on it;
 *   SCIO_EBUSY        another task is sending or waiting here;
 *   SCIO_EINVAL       s is NULL, or buf is NULL with len > 0;
 *   SCIO_ENOSYS       the top layer has no do_send_nowait slot (TLS and
 *                     text streams);
 *   or another error of the layer's send.
 * Answered by socket streams, process pipes, memory pipes, stapled streams
 * (their send half) and buffered streams (the wrapped stream's). */
SCIO_API ssize_t scio_send_nowait(scio_stream *s, const void *buf,
                                  size_t len);

/* Bytes held for reading in memory by the layers of `s` (curl's "data
 * pending"): received from below and not yet returned, summed over the
 * chain (each layer counts its own buffer, in its own units: a text layer
 * counts undecoded bytes).  Bytes still in a kernel socket buffer are not
 * counted: a poll on the fd shows those.  So 0 means a receive waits for
 * the fd (or the peer) unless the fd is readable; > 0 means a receive may
 * complete without the fd becoming readable (it can still wait when those
 * bytes are an incomplete unit: part of a TLS record or of a character).
 * Not a checkpoint.  Returns >= 0, or SCIO_EINVAL (s is NULL), SCIO_ECLOSED
 * (s is closed), or a layer's error.  Answered by: memory pipes (bytes sent
 * to this end, buffered or held by a blocked sender, not yet received),
 * buffered and text streams (their buffers, plus the wrapped stream's),
 * stapled streams (the receive half's chain). */
SCIO_API ssize_t scio_stream_pending(scio_stream *s);

struct sockaddr_storage;
/* Convenience getters over scio_stream_attr, into the caller's storage:
 * 0, SCIO_ENOENT when no layer of the chain has the attribute, or
 * SCIO_EINVAL.  Not checkpoints.  The fd stays owned by the stream. */
SCIO_API int scio_stream_fd(scio_stream *s, int *fd);
SCIO_API int scio_stream_family(scio_stream *s, int *family);
SCIO_API int scio_stream_local_addr(scio_stream *s,
                                    struct sockaddr_storage *addr);
SCIO_API int scio_stream_remote_addr(scio_stream *s,
                                     struct sockaddr_storage *addr);
/* The top layer's name, e.g. "buffered", copied into the caller's `name`
 * (len: the buffer size).  Not a checkpoint.  Returns 0, SCIO_ENOSPC
 * (too small) or SCIO_EINVAL. */
SCIO_API int scio_stream_layer(scio_stream *s, char *name, size_t len);

/* ------------------------------------------------------------------------ */
/* Object streams                                                            */

typedef struct scio_ostream scio_ostream;

/* The vtable of an object stream: items of a fixed size, copied by value. */
typedef struct scio_ostream_ops {
  size_t size; /* sizeof(scio_ostream_ops) when compiled: the version */
  const char *name;
  int (*do_send)(scio_ostream *s, const void *item);
  int (*do_receive)(scio_ostream *s, void *item);
  /* For a stapled object stream: close the send half. */
  int (*do_send_eof)(scio_ostream *s);
  int (*do_close)(scio_ostream *s);
  void (*do_free)(scio_ostream *s);
  int (*do_attr)(scio_ostream *s, int key, void *out, size_t len);
} scio_ostream_ops;

struct scio_ostream {
  const scio_ostream_ops *ops;
  scio_ostream *inner;
  size_t item_size;
  unsigned inflight;
  unsigned char closed, free_pending;
};

/* The size of the first version of scio_ostream_ops (through do_attr).
 * The same rules as scio_stream_ops: appended slots only, a smaller size is
 * refused, a larger one accepted. */
#define SCIO_OSTREAM_OPS_SIZE_V1                                              \
  (offsetof(scio_ostream_ops, do_attr) +                                      \
   sizeof(((scio_ostream_ops *)0)->do_attr))

/* For implementers: initialise the head of `s` (caller storage), which
 * keeps `ops` and `inner` by pointer, inner being the layer's to close, as
 * for scio_stream_init.  Not a checkpoint.  Returns 0, or SCIO_EINVAL
 * (s or ops NULL, or ops->size below SCIO_OSTREAM_OPS_SIZE_V1); a failed
 * stream answers every call with SCIO_EINVAL, as for scio_stream_init. */
SCIO_API int scio_ostream_init(scio_ostream *s, const scio_ostream_ops *ops,
                               scio_ostream *inner, size_t item_size);
/* Send one item (item_size bytes copied from `item`): 0 or an error
 * (SCIO_EBROKEN: no receiver left; SCIO_ECLOSED; SCIO_ECANCELED;
 * SCIO_EINVAL: NULL argument).  A checkpoint. */
SCIO_API int scio_ostream_send(scio_ostream *s, const void *item);
/* Receive one item into `item`: 0, SCIO_EOF (no sender left and nothing
 * buffered), or an error (SCIO_ECLOSED, SCIO_ECANCELED, SCIO_EINVAL).  A
 * checkpoint. */
SCIO_API int scio_ostream_receive(scio_ostream *s, void *item);
/* Half-close the sending side (a stapled object stream closes its send
 * half): the receiver sees SCIO_EOF once the items before are received.  A
 * checkpoint.  Returns 0, SCIO_ECLOSED, SCIO_EINVAL, or SCIO_ENOSYS (the
 * stream has no half-close). */
SCIO_API int scio_ostream_send_eof(scio_ostream *s);
/* Close and release the stream and what it owns, always (see scio_close);
 * NULL is a no-op returning 0.  A checkpoint inside a task.  Returns 0,
 * SCIO_ECLOSED (already closed), SCIO_ECANCELED (released all the same),
 * or the layer's close error. */
SCIO_API int scio_ostream_close(scio_ostream *s);
/* Query a typed attribute through the chain, as scio_stream_attr: copied
 * into the caller's `out`.  Not a checkpoint.  Returns 0, SCIO_ENOENT,
 * SCIO_ENOSPC, SCIO_EINVAL, or a layer's error. */
SCIO_API int scio_ostream_attr(scio_ostream *s, int key, void *out,
                               size_t len);
/* The size of one item in bytes (0 for NULL).  Not a checkpoint.  Never
 * fails. */
SCIO_API size_t scio_ostream_item_size(const scio_ostream *s);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_STREAM_H */
