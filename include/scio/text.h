/* scio — the text stream: a layer that turns a byte stream into a stream of
 * UTF-8 text.
 *
 *   scio_text_opts o = {0};
 *   o.encoding = "ISO-8859-1";              // NULL: the bytes are UTF-8
 *   o.errors = SCIO_TEXT_REPLACE;
 *   scio_stream *t;
 *   if (scio_text_open(sock, &o, &t) < 0) ...  // t now owns sock
 *
 * Receiving on a text stream returns UTF-8, decoded from the wrapped
 * stream's encoding, and only whole characters: a character whose bytes
 * arrive in two pieces is held back until it is complete, so every buffer
 * scio_receive returns is valid UTF-8 on its own.  Sending takes UTF-8 and
 * writes it to the wrapped stream in its encoding.  Other encodings go
 * through iconv(3) (whatever names the C library's iconv accepts, e.g.
 * "ISO-8859-1", "UTF-16LE", "CP1252").
 *
 * UTF-8 is validated strictly (Unicode table 3-7): overlong forms,
 * surrogates (U+D800..U+DFFF), code points above U+10FFFF and stray
 * continuation bytes are invalid, whatever the encoding setting.
 *
 * Error modes (scio_text_opts.errors):
 *   SCIO_TEXT_STRICT   receive: invalid input (or an incomplete character
 *                      at the end of the stream) is SCIO_EDECODE; the valid
 *                      text before it is returned first, by an earlier
 *                      receive.  The bad bytes are not skipped: every later
 *                      receive fails the same way (strict text cannot
 *                      resynchronise; close the stream).
 *                      send: a buffer that is not valid UTF-8 (each send
 *                      must hold whole characters), or that holds a
 *                      character the encoding cannot represent, is
 *                      SCIO_EDECODE and nothing is sent.
 *   SCIO_TEXT_REPLACE  receive: each maximal ill-formed subsequence (as
 *                      Unicode, WHATWG and Python define it) becomes one
 *                      U+FFFD, so the result does not depend on how the
 *                      bytes were split; with iconv, one invalid unit of
 *                      the encoding (1 byte, 2 for UTF-16/UCS-2, 4 for
 *                      UTF-32/UCS-4) becomes one U+FFFD.
 *                      send: invalid UTF-8 is sent as U+FFFD (encoded);
 *                      characters the encoding cannot represent become '?'.
 *
 * Other calls: scio_send_eof passes through, after returning a stateful
 * encoding (e.g. ISO-2022-JP) to its initial shift state; scio_close passes
 * through (closing the text stream closes the wrapped one); scio_stream_attr answers
 * SCIO_ATTR_ENCODING (the encoding's name as given, or "UTF-8") and passes
 * every other key down the chain.  Cancellation loses nothing: a receive
 * that is cancelled keeps the bytes it read, and a character held back
 * because it was incomplete is returned whole by a later receive.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_TEXT_H
#define SCIO_TEXT_H

#include <stddef.h>

#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

enum scio_text_errors {
  SCIO_TEXT_STRICT = 0, /* invalid input is SCIO_EDECODE (the default) */
  SCIO_TEXT_REPLACE = 1 /* invalid input becomes U+FFFD */
};

/* Options of scio_text_open.  All-zero (or NULL) means defaults. */
typedef struct scio_text_opts {
  /* The wrapped stream's encoding: NULL, "UTF-8" or "UTF8" (any case) for
   * UTF-8 (no conversion), else an iconv name, at most 63 bytes. */
  const char *encoding;
  int errors; /* enum scio_text_errors */
  /* Bytes asked of the wrapped stream per receive: 0 means 16384; less
   * than 64 means 64. */
  size_t read_size;
} scio_text_opts;

/* Wrap `inner` in a text stream; *out gets it.  Not a checkpoint.
 * On success the new stream owns `inner`.  Returns 0, or:
 *   SCIO_EINVAL   inner or out is NULL, errors is not one of
 *                 enum scio_text_errors, read_size is above 1 GiB, or the
 *                 encoding is unknown to iconv or too long (scio_errmsg()
 *                 says which);
 *   SCIO_ECLOSED  inner is already closed;
 *   SCIO_ENOMEM   no memory.
 * On error nothing is taken: `inner` still belongs to the caller, and *out
 * (when out is not NULL) is NULL: it is set before anything is checked.
 *
 * On the returned stream:
 * scio_receive(t, buf, max) returns > 0 bytes of whole UTF-8 characters,
 *   SCIO_EOF, or an error: SCIO_EDECODE (strict mode, above); SCIO_ENOSPC when
 *   max is smaller than the next character (at most 4 bytes; 3 for U+FFFD),
 *   with nothing consumed: call again with max >= 4, which always suffices;
 *   and the errors of <scio/stream.h>.  A checkpoint.
 * scio_send(t, buf, len) sends buf (UTF-8) in the stream's encoding: 0,
 *   SCIO_EDECODE (strict mode, above; nothing was sent), or the wrapped
 *   stream's error.  With an encoding other than UTF-8, or with invalid
 *   input in replace mode, the text is converted and sent in pieces of a
 *   few KiB; a send cancelled after its first piece has sent part of the
 *   text.  A checkpoint. */
SCIO_API int scio_text_open(scio_stream *inner, const scio_text_opts *opts,
                           scio_stream **out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_TEXT_H */
