/* scio — stapled streams: one bidirectional stream made of a send half and
 * a receive half (Trio's StapledStream, AnyIO's StapledByteStream and
 * StapledObjectStream).  Typical use: a subprocess's stdin and stdout as
 * one stream, or the send end of one channel with the receive end of
 * another.
 *
 * The stapled stream owns both halves from a successful construction on:
 *   send            -> the send half;
 *   receive         -> the receive half;
 *   send_eof        -> the send half's send_eof when it has one, else the
 *                      send half is closed (and released) at that point,
 *                      unless the call fails with SCIO_ECANCELED first
 *                      (then the half stays open);
 *                      afterwards send returns SCIO_ECLOSED at once and
 *                      send_eof is a checkpoint that returns 0
 *                      (idempotent);
 *   close           -> closes both halves (the send half first), always
 *                      releasing both, even when one close fails; returns
 *                      the first error (see scio_close);
 *   attributes      -> asked of the send half's chain, then of the receive
 *                      half's, except SCIO_ATTR_BUFFERED ("bytes buffered
 *                      for reading", a property of the receiving side),
 *                      which asks the receive half first.  SCIO_ATTR_LAYER
 *                      is "stapled" / "stapled-object".
 * Every call returns what the half returns (errors included) and is a
 * checkpoint exactly when the half's call is.  Busy detection (SCIO_EBUSY)
 * applies to the byte stapled stream as to every byte stream; a send and a
 * receive may run at once in two tasks.
 *
 * Available since 0.1.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_STAPLED_H
#define SCIO_STAPLED_H

#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Staple two byte streams.  On success *out owns both halves; release
 * everything with scio_close(*out).  Not a checkpoint.  Returns 0, or:
 *   SCIO_EINVAL  a NULL argument, or send_half == receive_half (one stream
 *                cannot be owned twice);
 *   SCIO_ENOMEM  out of memory.
 * On error the halves are NOT taken: they stay the caller's, untouched,
 * and *out (when not NULL) is set to NULL. */
SCIO_API int scio_stapled_open(scio_stream *send_half,
                              scio_stream *receive_half, scio_stream **out);

/* Staple two object streams of the same item size (the stapled stream has
 * that item size).  Same ownership rules and errors as scio_stapled_open,
 * plus SCIO_EINVAL when the item sizes differ: on success *out owns both
 * halves.  Not a checkpoint. */
SCIO_API int scio_stapled_object_open(scio_ostream *send_half,
                                     scio_ostream *receive_half,
                                     scio_ostream **out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_STAPLED_H */
