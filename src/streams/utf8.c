/* A pure UTF-8 validator and decoder; see utf8.h for the rules.
 *
 * Why a hand-written decoder and not mbrtowc or iconv: those depend on the
 * locale, and glibc's accept some sequences (or report them in ways) that
 * differ from table 3-7; a text stream must give the same answer everywhere
 * and must be fuzzable without a loop.  The hot path is ASCII, checked eight
 * bytes at a time. */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* The continuation-byte range allowed right after lead byte `b`, and the
 * sequence length; 0 for a byte that cannot start a character (80..C1 are
 * continuations or overlong leads, F5..FF would exceed U+10FFFF). */
static int lead_info(unsigned char b, unsigned char *lo, unsigned char *hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (b < 0x80)
    return 1;
  if (b < 0xC2)
    return 0;
  if (b < 0xE0)
    return 2;
  if (b < 0xF0) {
    if (b == 0xE0)
      *lo = 0xA0; /* below: overlong (< U+0800) */
    else if (b == 0xED)
      *hi = 0x9F; /* above: surrogates U+D800..U+DFFF */
    return 3;
  }
  if (b < 0xF5) {
    if (b == 0xF0)
      *lo = 0x90; /* below: overlong (< U+10000) */
    else if (b == 0xF4)
      *hi = 0x8F; /* above: > U+10FFFF */
    return 4;
  }
  return 0;
}

int scio__utf8_next(const unsigned char *s, size_t avail) {
  if (avail == 0)
    return 0;
  unsigned char lo, hi;
  int n = lead_info(s[0], &lo, &hi);
  if (n == 0)
    return -1;
  for (int i = 1; i < n; i++) {
    if ((size_t)i >= avail)
      return 0;
    if (s[i] < lo || s[i] > hi)
      return -i; /* the lead and the i-1 good continuations */
    lo = 0x80;   /* only the second byte has a narrowed range */
    hi = 0xBF;
  }
  return n;
}

/* The length of the run of ASCII bytes at the start of s[0..n). */
static size_t ascii_run(const unsigned char *s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    if (w & UINT64_C(0x8080808080808080))
      break;
  }
  while (i < n && s[i] < 0x80)
    i++;
  return i;
}

/* What to do with the sequence at in[0..avail): sets *take (input bytes),
 * *src and *emit (output bytes), or returns the status that stops decoding. */
static int plan_next(const unsigned char *in, size_t avail, unsigned flags,
                     size_t *take, const unsigned char **src, size_t *emit) {
  int k = scio__utf8_next(in, avail);
  if (k > 0) {
    *take = (size_t)k;
    *src = in;
    *emit = (size_t)k;
    return SCIO__UTF8_DONE;
  }
  if (k == 0 && !(flags & SCIO__UTF8_FINAL))
    return SCIO__UTF8_PARTIAL;
  if (!(flags & SCIO__UTF8_REPLACE))
    return SCIO__UTF8_INVALID;
  /* k == 0 here means an incomplete character at the final end: all of
   * what is left is its maximal subpart. */
  *take = k < 0 ? (size_t)-k : avail;
  *src = (const unsigned char *)SCIO__UTF8_REPLACEMENT;
  *emit = SCIO__UTF8_REPLACEMENT_LEN;
  return SCIO__UTF8_DONE;
}

int scio__utf8_decode(const unsigned char *in, size_t inlen,
                      unsigned char *out, size_t outmax, unsigned flags,
                      size_t *consumed, size_t *produced) {
  size_t i = 0, o = 0;
  int st = SCIO__UTF8_DONE;
  while (i < inlen) {
    size_t room = outmax - o;
    size_t run = ascii_run(in + i, inlen - i < room ? inlen - i : room);
    if (run) {
      memcpy(out + o, in + i, run);
      i += run;
      o += run;
      continue;
    }
    size_t take = 0, emit = 0;
    const unsigned char *src = NULL;
    st = plan_next(in + i, inlen - i, flags, &take, &src, &emit);
    if (st != SCIO__UTF8_DONE)
      break;
    if (emit > room) {
      st = SCIO__UTF8_FULL;
      break;
    }
    memcpy(out + o, src, emit);
    o += emit;
    i += take;
  }
  *consumed = i;
  *produced = o;
  return st;
}

int scio__utf8_check(const unsigned char *s, size_t len, unsigned flags,
                     size_t *valid) {
  size_t i = 0;
  int st = SCIO__UTF8_DONE;
  while (i < len) {
    i += ascii_run(s + i, len - i);
    if (i == len)
      break;
    int k = scio__utf8_next(s + i, len - i);
    if (k > 0) {
      i += (size_t)k;
      continue;
    }
    st = (k == 0 && !(flags & SCIO__UTF8_FINAL)) ? SCIO__UTF8_PARTIAL
                                                  : SCIO__UTF8_INVALID;
    break;
  }
  *valid = i;
  return st;
}
