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
 * Every operation except scio_stream_attr is a checkpoint.
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
 * (strings: the buffer size, NUL included).  An unknown key is -ENOENT; a
 * buffer too small is -ENOSPC. */
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
  SCIO_ATTR_USER = 1000      /* first key for user-defined layers */
};

/* ------------------------------------------------------------------------ */
/* Byte streams                                                              */

typedef struct scio_stream scio_stream;

/* The vtable of a byte stream.  Every slot may be NULL: receive/send/
 * send_eof then fail with -ENOSYS, attr answers -ENOENT (and the chain walk
 * goes on), close just frees.  Implementations are called through the
 * generic functions below, which handle busy detection and the lifetime of a
 * stream closed while another task is blocked on it. */
typedef struct scio_stream_ops {
  size_t size; /* sizeof(scio_stream_ops): versions the vtable */
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
} scio_stream_ops;

/* The common head of every byte stream; implementations embed it first. */
struct scio_stream {
  const scio_stream_ops *ops;
  /* The wrapped stream (owned), or NULL.  A layer over several streams (a
   * stapled stream) sets NULL and walks them in its own do_attr. */
  scio_stream *inner;
  unsigned inflight;   /* generic calls running inside the stream */
  unsigned char receiving, sending, closed, free_pending;
};

/* For implementers: initialise the head. */
SCIO_API void scio_stream_init(scio_stream *s, const scio_stream_ops *ops,
                               scio_stream *inner);

/* Receive up to `max` bytes: > 0 bytes, SCIO_EOF, or an error above.
 * max == 0 returns 0 (after a checkpoint). */
SCIO_API ssize_t scio_receive(scio_stream *s, void *buf, size_t max);
/* Send all `len` bytes, or fail. */
SCIO_API int scio_send(scio_stream *s, const void *buf, size_t len);
/* Half-close: the peer's receive sees SCIO_EOF.  -ENOSYS where the stream
 * has no such thing. */
SCIO_API int scio_send_eof(scio_stream *s);
/* Close gracefully and release the stream and everything it owns, always,
 * even when it returns an error (which reports how the close went). Tasks
 * blocked on the stream are woken with SCIO_ECLOSED.  `s` must not be used
 * afterwards.  A checkpoint, but a cancelled close still releases. */
SCIO_API int scio_close(scio_stream *s);
/* Query a typed attribute through the chain of layers.  Not a checkpoint. */
SCIO_API int scio_stream_attr(scio_stream *s, int key, void *out, size_t len);

/* Convenience getters over scio_stream_attr: 0, -ENOENT when no layer of
 * the chain has the attribute, or -EINVAL. */
struct sockaddr_storage;
SCIO_API int scio_stream_fd(scio_stream *s, int *fd);
SCIO_API int scio_stream_family(scio_stream *s, int *family);
SCIO_API int scio_stream_local_addr(scio_stream *s,
                                    struct sockaddr_storage *addr);
SCIO_API int scio_stream_remote_addr(scio_stream *s,
                                     struct sockaddr_storage *addr);
/* The top layer's name, e.g. "buffered" (len: the buffer size). */
SCIO_API int scio_stream_layer(scio_stream *s, char *name, size_t len);

/* ------------------------------------------------------------------------ */
/* Object streams                                                            */

typedef struct scio_ostream scio_ostream;

/* The vtable of an object stream: items of a fixed size, copied by value. */
typedef struct scio_ostream_ops {
  size_t size; /* sizeof(scio_ostream_ops) */
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

SCIO_API void scio_ostream_init(scio_ostream *s, const scio_ostream_ops *ops,
                                scio_ostream *inner, size_t item_size);
/* Send one item (item_size bytes copied from `item`): 0 or an error
 * (SCIO_EBROKEN: no receiver left; SCIO_ECLOSED; SCIO_ECANCELED). */
SCIO_API int scio_ostream_send(scio_ostream *s, const void *item);
/* Receive one item into `item`: 0, SCIO_EOF (no sender left and nothing
 * buffered), or an error. */
SCIO_API int scio_ostream_receive(scio_ostream *s, void *item);
SCIO_API int scio_ostream_send_eof(scio_ostream *s);
/* Close and release, always (see scio_close). */
SCIO_API int scio_ostream_close(scio_ostream *s);
SCIO_API int scio_ostream_attr(scio_ostream *s, int key, void *out,
                               size_t len);
SCIO_API size_t scio_ostream_item_size(const scio_ostream *s);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_STREAM_H */
