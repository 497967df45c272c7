/* The text stream (include/scio/text.h).
 *
 * Receive: bytes from the wrapped stream land in `raw` (part of the same
 * allocation as the struct); each receive decodes from raw[start..end)
 * straight into the caller's buffer, whole characters only.  What is left in
 * raw after a receive (an incomplete character, or text that did not fit)
 * stays there for the next one; raw is refilled only when it holds nothing
 * decodable, so what it keeps across a refill is at most one incomplete
 * character, moved to the front.  Because the undecoded bytes stay in raw
 * until a receive returns their text, a cancelled receive loses nothing, and
 * in strict mode the bad bytes stay put, so every later receive reports the
 * same SCIO_EDECODE.
 *
 * UTF-8 is checked by the pure decoder in utf8.c; other encodings go
 * through iconv, whose output (UTF-8) is whole characters by construction.
 *
 * Send: UTF-8 that is valid and needs no conversion goes to the wrapped
 * stream as is, without a copy.  Anything else (replacement, iconv) goes
 * through two small stack buffers, `clean` (valid UTF-8) and the sink
 * (encoded bytes), sent each time the sink fills, so a send never
 * allocates.
 */
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "core/layer.h"
#include "scio/text.h"
#include "utf8.h"

#define TEXT_DEFAULT_READ_SIZE ((size_t)16 * 1024)
#define TEXT_MAX_READ_SIZE ((size_t)1 << 30)
/* raw must hold an incomplete character plus room to complete it; 64 is
 * far more than any encoding's longest sequence. */
#define TEXT_MIN_READ_SIZE ((size_t)64)
#define TEXT_ENC_MAX 64
#define NO_ICONV ((iconv_t)-1)
#define SINK_SIZE 4096
#define CLEAN_SIZE 1024

typedef struct text {
  scio_stream base; /* first: the generic layer casts */
  int replace;      /* SCIO_TEXT_REPLACE */
  /* NO_ICONV when the encoding is UTF-8.  `probe` converts like `enc` but
   * only to find unencodable characters before a strict send sends
   * anything; a second descriptor, so that its state (e.g. whether the
   * UTF-16 byte order mark was written) is not `enc`'s. */
  iconv_t dec, enc, probe;
  size_t unit; /* input bytes one invalid unit spans (iconv, replace) */
  size_t cap, start, end;
  unsigned long long in_pos; /* bytes decoded so far, for messages */
  unsigned char eof;
  char encoding[TEXT_ENC_MAX];
  unsigned char raw[];
} text;

static const scio_stream_ops text_ops;

/* ------------------------------------------------------------------------ */
/* Receive                                                                   */

/* One receive of the wrapped stream, appended to raw.  Returns the byte
 * count, SCIO_EOF (remembered: the wrapped stream is not asked again) or an
 * error. */
static ssize_t refill(text *t) {
  if (t->eof)
    return SCIO_EOF;
  size_t n = t->end - t->start;
  if (t->start) {
    memmove(t->raw, t->raw + t->start, n);
    t->start = 0;
    t->end = n;
  }
  if (t->end == t->cap)
    return scio__seterr(SCIO_EDECODE, "text: a %zu-byte incomplete sequence "
                                      "in %s",
                        n, t->encoding);
  ssize_t got =
      scio_receive(t->base.inner, t->raw + t->end, t->cap - t->end);
  /* A close while we were blocked has released the wrapped stream. */
  if (t->base.closed)
    return scio__seterr(SCIO_ECLOSED, "text: closed while receiving");
  if (got > 0)
    t->end += (size_t)got;
  else if (got == SCIO_EOF)
    t->eof = 1;
  return got;
}

static void advance(text *t, size_t n) {
  t->start += n;
  t->in_pos += n;
}

/* The status of a decode that produced nothing, as a receive result: 0
 * means "read more". */
static ssize_t utf8_stopped(text *t, int st) {
  if (st == SCIO__UTF8_INVALID) {
    const unsigned char *p = t->raw + t->start;
    int cut = scio__utf8_next(p, t->end - t->start) == 0;
    return scio__seterr(SCIO_EDECODE, "text: invalid UTF-8 at byte %llu "
                                      "(0x%02x)%s",
                        t->in_pos, p[0],
                        cut ? ": a character cut by the end of the stream"
                            : "");
  }
  if (st == SCIO__UTF8_FULL)
    return scio__seterr(-ENOSPC, "text: the next character does not fit in "
                                 "the receive buffer");
  return 0;
}

static ssize_t decode_utf8(text *t, unsigned char *dst, size_t max) {
  unsigned flags = (t->replace ? SCIO__UTF8_REPLACE : 0u) |
                   (t->eof ? SCIO__UTF8_FINAL : 0u);
  size_t c, p;
  int st = scio__utf8_decode(t->raw + t->start, t->end - t->start, dst, max,
                             flags, &c, &p);
  advance(t, c);
  return p ? (ssize_t)p : utf8_stopped(t, st);
}

/* In replace mode, stand U+FFFD in for `skip` input bytes, if it fits. */
static int replace_unit(char **in, size_t *inleft, char **out,
                        size_t *outleft, size_t skip) {
  if (*outleft < SCIO__UTF8_REPLACEMENT_LEN)
    return E2BIG;
  memcpy(*out, SCIO__UTF8_REPLACEMENT, SCIO__UTF8_REPLACEMENT_LEN);
  *out += SCIO__UTF8_REPLACEMENT_LEN;
  *outleft -= SCIO__UTF8_REPLACEMENT_LEN;
  if (skip > *inleft)
    skip = *inleft;
  *in += skip;
  *inleft -= skip;
  return 0;
}

/* Run the decoding iconv as far as it goes; returns the errno that stopped
 * it (0: all input consumed). */
static int iconv_run(text *t, char **in, size_t *inleft, char **out,
                     size_t *outleft) {
  while (*inleft) {
    if (iconv(t->dec, in, inleft, out, outleft) != (size_t)-1)
      return 0;
    int err = errno;
    if (!t->replace || (err != EILSEQ && !(err == EINVAL && t->eof)))
      return err;
    /* An incomplete sequence at the end of the stream is one bad unit:
     * all of it. */
    err = replace_unit(in, inleft, out, outleft,
                       err == EILSEQ ? t->unit : *inleft);
    if (err)
      return err;
  }
  return 0;
}

static ssize_t decode_iconv(text *t, unsigned char *dst, size_t max) {
  char *in = (char *)t->raw + t->start, *out = (char *)dst;
  size_t inleft = t->end - t->start, outleft = max;
  int err = iconv_run(t, &in, &inleft, &out, &outleft);
  advance(t, (size_t)(in - ((char *)t->raw + t->start)));
  if (max - outleft)
    return (ssize_t)(max - outleft);
  if (err == E2BIG)
    return scio__seterr(-ENOSPC, "text: the next character does not fit in "
                                 "the receive buffer");
  if (err == EILSEQ || (err == EINVAL && t->eof))
    return scio__seterr(SCIO_EDECODE, "text: invalid %s at byte %llu%s",
                        t->encoding, t->in_pos,
                        err == EINVAL ? " (incomplete at the end)" : "");
  if (err && err != EINVAL)
    return scio__seterr(-err, "text: iconv from %s failed", t->encoding);
  return 0; /* incomplete: read more (or all consumed, e.g. a BOM) */
}

/* Decode what raw holds: > 0 bytes produced, SCIO_EOF, 0 (read more), or
 * an error. */
static ssize_t decode_some(text *t, unsigned char *dst, size_t max) {
  if (t->start == t->end)
    return t->eof ? SCIO_EOF : 0;
  return t->dec == NO_ICONV ? decode_utf8(t, dst, max)
                            : decode_iconv(t, dst, max);
}

static ssize_t text_receive(scio_stream *s, void *buf, size_t max) {
  text *t = (text *)s;
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  int yielded = 0;
  for (;;) {
    ssize_t n = decode_some(t, buf, max);
    if (n != 0) {
      /* The checkpoint rule: yield once even if nothing blocked. */
      if (!yielded)
        scio_cancel_shielded_checkpoint();
      return n;
    }
    ssize_t got = refill(t);
    yielded = 1;
    if (got < 0 && got != SCIO_EOF)
      return got;
  }
}

/* ------------------------------------------------------------------------ */
/* Send                                                                      */

/* Where converted bytes go: sent to `to` each time the buffer fills, or
 * thrown away when `to` is NULL (a dry run). */
typedef struct sink {
  scio_stream *to;
  size_t n;
  unsigned char buf[SINK_SIZE];
} sink;

static int sink_flush(text *t, sink *k) {
  int rc = 0;
  if (k->to && k->n) {
    rc = scio_send(k->to, k->buf, k->n);
    if (rc == 0 && t->base.closed)
      rc = scio__seterr(SCIO_ECLOSED, "text: closed while sending");
  }
  k->n = 0;
  return rc;
}

static int sink_put(text *t, sink *k, const unsigned char *p, size_t n) {
  while (n) {
    size_t room = SINK_SIZE - k->n, c = n < room ? n : room;
    memcpy(k->buf + k->n, p, c);
    k->n += c;
    p += c;
    n -= c;
    if (k->n == SINK_SIZE) {
      int rc = sink_flush(t, k);
      if (rc < 0)
        return rc;
    }
  }
  return 0;
}

/* The code point of the valid UTF-8 character at s (k bytes), for messages. */
static unsigned long code_point(const unsigned char *s, int k) {
  static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  unsigned long cp = s[0] & lead_mask[k];
  for (int i = 1; i < k; i++)
    cp = (cp << 6) | (s[i] & 0x3F);
  return cp;
}

/* A character `cd` cannot encode, at in[0..inleft): '?' in replace mode
 * (itself encoded), else SCIO_EDECODE. */
static int unencodable(text *t, iconv_t cd, sink *k, char **in,
                       size_t *inleft) {
  int len = scio__utf8_next((unsigned char *)*in, *inleft);
  if (len <= 0) /* not reached: the input was made valid before */
    len = 1;
  if (!t->replace)
    return scio__seterr(SCIO_EDECODE, "text: U+%04lX cannot be encoded in %s",
                        code_point((unsigned char *)*in, len), t->encoding);
  *in += len;
  *inleft -= (size_t)len;
  char q[1] = {'?'}, *qp = q, *out = (char *)k->buf + k->n;
  size_t qleft = 1, outleft = SINK_SIZE - k->n;
  if (outleft < 16) { /* room for any encoding of '?' */
    int rc = sink_flush(t, k);
    if (rc < 0)
      return rc;
    out = (char *)k->buf;
    outleft = SINK_SIZE;
  }
  if (iconv(cd, &qp, &qleft, &out, &outleft) == (size_t)-1)
    return scio__seterr(SCIO_EDECODE, "text: %s cannot encode '?' either",
                        t->encoding);
  k->n = SINK_SIZE - outleft;
  return 0;
}

/* Encode clean (valid) UTF-8 with cd into the sink. */
static int encode(text *t, iconv_t cd, sink *k, const unsigned char *p,
                  size_t n) {
  char *in = (char *)p;
  size_t inleft = n;
  while (inleft) {
    char *out = (char *)k->buf + k->n;
    size_t outleft = SINK_SIZE - k->n;
    size_t r = iconv(cd, &in, &inleft, &out, &outleft);
    int err = r == (size_t)-1 ? errno : 0;
    k->n = SINK_SIZE - outleft;
    int rc = 0;
    if (err == E2BIG && k->n == 0) /* not reached: any character fits */
      rc = scio__seterr(SCIO_EDECODE, "text: iconv to %s makes no progress",
                        t->encoding);
    else if (err == E2BIG)
      rc = sink_flush(t, k);
    else if (err == EILSEQ)
      rc = unencodable(t, cd, k, &in, &inleft);
    else if (err)
      rc = scio__seterr(-err, "text: iconv to %s failed", t->encoding);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Return a stateful encoding (e.g. ISO-2022-JP) to its initial shift state
 * and send the bytes that takes.  Only at the end of the text (send_eof):
 * glibc's reset also forgets that a UTF-16/UTF-32 byte order mark was
 * written, so resetting after every send would repeat the mark. */
static int encode_finish(text *t, iconv_t cd, scio_stream *to) {
  sink k;
  k.to = to;
  char *out = (char *)k.buf;
  size_t outleft = SINK_SIZE;
  iconv(cd, NULL, NULL, &out, &outleft);
  k.n = SINK_SIZE - outleft;
  return sink_flush(t, &k);
}

/* Make buf valid UTF-8 (replacing what is not), encode it with cd unless
 * cd is NO_ICONV, and pass it to `to` (NULL: a dry run). */
static int convert(text *t, iconv_t cd, scio_stream *to,
                   const unsigned char *buf, size_t len) {
  sink k;
  k.to = to;
  k.n = 0;
  unsigned char clean[CLEAN_SIZE];
  size_t i = 0;
  int rc = 0;
  while (i < len && rc == 0) {
    size_t c, p;
    scio__utf8_decode(buf + i, len - i, clean, sizeof clean,
                      SCIO__UTF8_REPLACE | SCIO__UTF8_FINAL, &c, &p);
    i += c;
    rc = cd == NO_ICONV ? sink_put(t, &k, clean, p)
                        : encode(t, cd, &k, clean, p);
  }
  if (rc == 0)
    rc = sink_flush(t, &k);
  if (rc < 0 && cd != NO_ICONV)
    iconv(cd, NULL, NULL, NULL, NULL); /* drop a half-done shift state */
  return rc;
}

static int text_send(scio_stream *s, const void *buf, size_t len) {
  text *t = (text *)s;
  if (len == 0) /* nothing to check or convert; still a checkpoint */
    return scio_send(s->inner, buf, 0);
  size_t valid;
  int st = scio__utf8_check(buf, len, SCIO__UTF8_FINAL, &valid);
  if (st != SCIO__UTF8_DONE && !t->replace)
    return scio__seterr(SCIO_EDECODE, "text: send: invalid UTF-8 at byte %zu",
                        valid);
  if (t->enc == NO_ICONV)
    return st == SCIO__UTF8_DONE ? scio_send(s->inner, buf, len)
                                 : convert(t, NO_ICONV, s->inner, buf, len);
  if (!t->replace) {
    /* Find unencodable characters before anything is sent. */
    int rc = convert(t, t->probe, NULL, buf, len);
    iconv(t->probe, NULL, NULL, NULL, NULL);
    if (rc < 0)
      return rc;
  }
  return convert(t, t->enc, s->inner, buf, len);
}

/* ------------------------------------------------------------------------ */
/* The stream operations                                                     */

static int text_send_eof(scio_stream *s) {
  text *t = (text *)s;
  if (t->enc != NO_ICONV) {
    int rc = encode_finish(t, t->enc, s->inner);
    if (rc < 0)
      return rc;
  }
  return scio_send_eof(s->inner);
}

/* raw is freed with the struct, in do_free: a task woken by this close may
 * still be on its way out of refill(). */
static int text_close(scio_stream *s) { return scio_close(s->inner); }

static void close_iconv(text *t) {
  if (t->dec != NO_ICONV)
    iconv_close(t->dec);
  if (t->enc != NO_ICONV)
    iconv_close(t->enc);
  if (t->probe != NO_ICONV)
    iconv_close(t->probe);
}

static void text_free(scio_stream *s) {
  close_iconv((text *)s);
  scio__free(s);
}

static int text_attr(scio_stream *s, int key, void *out, size_t len) {
  if (key != SCIO_ATTR_ENCODING)
    return -ENOENT; /* the generic walk asks the wrapped stream */
  text *t = (text *)s;
  size_t n = strlen(t->encoding) + 1;
  if (len < n)
    return -ENOSPC;
  memcpy(out, t->encoding, n);
  return 0;
}

/* Undecoded bytes (an incomplete character counts: see
 * scio_stream_pending). */
static ssize_t text_pending(scio_stream *s) {
  text *t = (text *)s;
  return (ssize_t)(t->end - t->start); /* at most cap, itself <= 1 GiB */
}

/* A send converts and passes everything on before it returns: nothing of
 * it waits here, so the wrapped stream decides. */
static int text_wait_send_ready(scio_stream *s) {
  int rc = scio_wait_send_ready(s->inner);
  if (s->closed)
    return scio__seterr(SCIO_ECLOSED, "text: closed while waiting");
  return rc;
}

static const scio_stream_ops text_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "text",
    .do_receive = text_receive,
    .do_send = text_send,
    .do_send_eof = text_send_eof,
    .do_close = text_close,
    .do_free = text_free,
    .do_attr = text_attr,
    .do_pending = text_pending,
    .do_wait_send_ready = text_wait_send_ready,
};

/* ------------------------------------------------------------------------ */
/* Construction                                                              */

static int is_utf8(const char *enc) {
  return strcasecmp(enc, "UTF-8") == 0 || strcasecmp(enc, "UTF8") == 0;
}

/* How many input bytes one invalid unit spans: skipping a single byte of a
 * UTF-16 or UTF-32 stream would misalign every character after it. */
static size_t unit_of(const char *enc) {
  static const char *const two[] = {"UTF-16", "UTF16", "UCS-2", "UCS2",
                                    "UNICODE"};
  static const char *const four[] = {"UTF-32", "UTF32", "UCS-4", "UCS4"};
  for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
    if (strncasecmp(enc, two[i], strlen(two[i])) == 0)
      return 2;
  for (size_t i = 0; i < sizeof four / sizeof four[0]; i++)
    if (strncasecmp(enc, four[i], strlen(four[i])) == 0)
      return 4;
  return 1;
}

static int open_one(iconv_t *cd, const char *to, const char *from,
                    const char *enc) {
  *cd = iconv_open(to, from);
  if (*cd != NO_ICONV)
    return 0;
  if (errno == EINVAL)
    return scio__seterr(SCIO_EINVAL, "text_open: unknown encoding \"%s\"",
                        enc);
  return scio__seterr(errno == ENOMEM ? SCIO_ENOMEM : -errno,
                      "text_open: iconv_open(%s): %s", enc, strerror(errno));
}

static int open_iconv(text *t, const char *enc) {
  int rc = open_one(&t->dec, "UTF-8", enc, enc);
  if (rc == 0)
    rc = open_one(&t->enc, enc, "UTF-8", enc);
  if (rc == 0)
    rc = open_one(&t->probe, enc, "UTF-8", enc);
  if (rc < 0)
    close_iconv(t);
  t->unit = unit_of(enc);
  return rc;
}

static int check_opts(scio_stream *inner, const scio_text_opts *opts,
                      scio_stream **out) {
  if (!inner || !out)
    return scio__seterr(SCIO_EINVAL, "text_open: NULL argument");
  if (inner->closed)
    return scio__seterr(SCIO_ECLOSED, "text_open: the stream to wrap is "
                                      "closed");
  if (!opts)
    return 0;
  if (opts->errors != SCIO_TEXT_STRICT && opts->errors != SCIO_TEXT_REPLACE)
    return scio__seterr(SCIO_EINVAL, "text_open: unknown errors mode %d",
                        opts->errors);
  if (opts->read_size > TEXT_MAX_READ_SIZE)
    return scio__seterr(SCIO_EINVAL, "text_open: read_size %zu is too large",
                        opts->read_size);
  if (opts->encoding && strlen(opts->encoding) >= TEXT_ENC_MAX)
    return scio__seterr(SCIO_EINVAL, "text_open: encoding name too long");
  return 0;
}

SCIO_API int scio_text_open(scio_stream *inner, const scio_text_opts *opts,
                           scio_stream **out) {
  if (out)
    *out = NULL;
  int rc = check_opts(inner, opts, out);
  if (rc < 0)
    return rc;
  size_t cap = opts && opts->read_size ? opts->read_size
                                       : TEXT_DEFAULT_READ_SIZE;
  if (cap < TEXT_MIN_READ_SIZE)
    cap = TEXT_MIN_READ_SIZE;
  const char *enc = opts && opts->encoding ? opts->encoding : "UTF-8";
  text *t = scio__malloc(sizeof *t + cap);
  if (!t)
    return scio__seterr(SCIO_ENOMEM, "text_open: no memory");
  memset(t, 0, sizeof *t);
  t->dec = t->enc = t->probe = NO_ICONV;
  t->unit = 1;
  if (!is_utf8(enc) && (rc = open_iconv(t, enc)) < 0) {
    scio__free(t);
    return rc;
  }
  scio_stream_init(&t->base, &text_ops, inner);
  t->replace = opts && opts->errors == SCIO_TEXT_REPLACE;
  t->cap = cap;
  strcpy(t->encoding, enc);
  *out = &t->base;
  return 0;
}
