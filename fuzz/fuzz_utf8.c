/* libFuzzer target for the UTF-8 decoder (src/streams/utf8.c).
 *
 * Input: byte 0 picks a split point and an output limit, the rest is the
 * text.  The decoder is compared with a reference written here in another
 * way (code point arithmetic and range intersection instead of the byte
 * table), and checked for its own promises:
 *   - strict validation agrees with the reference, and stops exactly where
 *     the reference's first ill-formed sequence starts;
 *   - replace mode gives the reference's output (one U+FFFD per maximal
 *     subpart), which is valid UTF-8, and decoding it again changes nothing;
 *   - decoding in two pieces (the first without FINAL, the unconsumed tail
 *     carried over), or through a small output buffer, gives the same
 *     output as decoding in one go.
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc fuzz/fuzz_utf8.c
 *        src/streams/utf8.c; replay with fuzz/fuzz_replay_main.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streams/utf8.h"

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "fuzz_utf8: check failed: %s (line %d)\n", #cond,       \
              __LINE__);                                                      \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* ---- the reference ---- */

/* The sequence length a lead byte announces by its bit pattern (0: not a
 * lead byte), before any range check. */
static size_t ref_announced(uint8_t b) {
  if (b < 0x80)
    return 1;
  if ((b & 0xE0) == 0xC0)
    return 2;
  if ((b & 0xF0) == 0xE0)
    return 3;
  if ((b & 0xF8) == 0xF0)
    return 4;
  return 0;
}

/* Does some well-formed character's encoding start with s[0..l)?  The
 * prefix fixes the top bits of the code point: it is possible iff the
 * interval of code points it leaves open meets the characters that take
 * exactly k bytes (minus the surrogates). */
static int ref_prefix_ok(const uint8_t *s, size_t l) {
  size_t k = ref_announced(s[0]);
  if (k == 0 || l > k)
    return 0;
  if (k == 1)
    return 1;
  static const uint8_t lead_bits[5] = {0, 0, 5, 4, 3};
  uint32_t cp = s[0] & ((1u << lead_bits[k]) - 1);
  for (size_t i = 1; i < l; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  unsigned free_bits = 6 * (unsigned)(k - l);
  uint32_t lo = cp << free_bits, hi = lo | ((1u << free_bits) - 1);
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  static const uint32_t max[5] = {0, 0, 0x7FF, 0xFFFF, 0x10FFFF};
  if (lo < min[k])
    lo = min[k];
  if (hi > max[k])
    hi = max[k];
  if (lo > hi)
    return 0;
  /* Only surrogates left? */
  return !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* At s[0..n): > 0 length of a whole valid character; else minus the
 * length of the maximal subpart to replace (at least 1). */
static long ref_step(const uint8_t *s, size_t n) {
  size_t k = ref_announced(s[0]);
  size_t l = 0;
  while (l < n && l < 4 && ref_prefix_ok(s, l + 1))
    l++;
  if (k && l == k)
    return (long)k;
  return -(long)(l ? l : 1);
}

static int ref_valid(const uint8_t *s, size_t n, size_t *valid) {
  size_t i = 0;
  while (i < n) {
    long r = ref_step(s + i, n - i);
    if (r < 0)
      break;
    i += (size_t)r;
  }
  if (valid)
    *valid = i;
  return i == n;
}

/* Replace mode, FINAL: out must hold 3 * n bytes. */
static size_t ref_replace(const uint8_t *s, size_t n, uint8_t *out) {
  size_t i = 0, o = 0;
  while (i < n) {
    long r = ref_step(s + i, n - i);
    if (r > 0) {
      memcpy(out + o, s + i, (size_t)r);
      o += (size_t)r;
      i += (size_t)r;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i += (size_t)-r;
    }
  }
  return o;
}

/* ---- decoding the ways the text stream does ---- */

/* In two pieces: the first without FINAL; what it leaves is carried over. */
static size_t decode_split(const uint8_t *s, size_t n, size_t cut,
                           unsigned mode, uint8_t *out, size_t cap) {
  size_t c, p, o = 0;
  int st = scio__utf8_decode(s, cut, out, cap, mode, &c, &p);
  CHECK(st == SCIO__UTF8_DONE || st == SCIO__UTF8_PARTIAL ||
        st == SCIO__UTF8_INVALID);
  CHECK(st != SCIO__UTF8_PARTIAL || cut - c < SCIO__UTF8_MAX_CHAR);
  o += p;
  if (st == SCIO__UTF8_INVALID)
    return o;
  scio__utf8_decode(s + c, n - c, out + o, cap - o, mode | SCIO__UTF8_FINAL,
                    &c, &p);
  return o + p;
}

/* Through an output buffer of `lim` bytes (>= 4, so it always progresses);
 * every piece is whole characters. */
static size_t decode_small(const uint8_t *s, size_t n, size_t lim,
                           uint8_t *out) {
  size_t i = 0, o = 0;
  while (i < n) {
    size_t c, p;
    int st = scio__utf8_decode(s + i, n - i, out + o, lim,
                               SCIO__UTF8_REPLACE | SCIO__UTF8_FINAL, &c, &p);
    CHECK(st == SCIO__UTF8_DONE || st == SCIO__UTF8_FULL);
    CHECK(p > 0 && p <= lim);
    CHECK(ref_valid(out + o, p, NULL));
    i += c;
    o += p;
  }
  return o;
}

static void check_strict(const uint8_t *s, size_t n, uint8_t *out) {
  size_t valid, rvalid, c, p;
  int ok = ref_valid(s, n, &rvalid);
  int st = scio__utf8_check(s, n, SCIO__UTF8_FINAL, &valid);
  CHECK((st == SCIO__UTF8_DONE) == ok);
  CHECK(st == SCIO__UTF8_DONE || st == SCIO__UTF8_INVALID);
  CHECK(valid == rvalid);
  st = scio__utf8_decode(s, n, out, n, SCIO__UTF8_FINAL, &c, &p);
  CHECK((st == SCIO__UTF8_DONE) == ok);
  CHECK(c == rvalid && p == rvalid);
  CHECK(memcmp(out, s, p) == 0);
  /* Without FINAL, a cut character at the end is PARTIAL, not invalid. */
  st = scio__utf8_check(s, n, 0, &valid);
  if (st == SCIO__UTF8_PARTIAL)
    CHECK(valid == rvalid && n - valid < SCIO__UTF8_MAX_CHAR && !ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096)
    return 0;
  uint8_t ctl = data[0];
  const uint8_t *s = data + 1;
  size_t n = size - 1, cap = 3 * n + 16;
  uint8_t *ref = malloc(cap), *out = malloc(cap), *again = malloc(cap);
  CHECK(ref && out && again);

  check_strict(s, n, out);

  size_t rlen = ref_replace(s, n, ref), c, p;
  int st = scio__utf8_decode(s, n, out, cap,
                             SCIO__UTF8_REPLACE | SCIO__UTF8_FINAL, &c, &p);
  CHECK(st == SCIO__UTF8_DONE && c == n);
  CHECK(p == rlen && memcmp(out, ref, p) == 0);
  CHECK(ref_valid(out, p, NULL));
  if (ref_valid(s, n, NULL))
    CHECK(p == n && memcmp(out, s, n) == 0);

  /* Idempotent: the output is valid, so decoding it again copies it. */
  size_t c2, p2;
  scio__utf8_decode(out, p, again, cap, SCIO__UTF8_REPLACE | SCIO__UTF8_FINAL,
                    &c2, &p2);
  CHECK(c2 == p && p2 == p && memcmp(again, out, p) == 0);

  /* Split anywhere: the same output, in replace and in strict mode. */
  size_t cut = n ? ctl % (n + 1) : 0;
  size_t q = decode_split(s, n, cut, SCIO__UTF8_REPLACE, again, cap);
  CHECK(q == rlen && memcmp(again, ref, q) == 0);
  size_t rvalid;
  ref_valid(s, n, &rvalid);
  q = decode_split(s, n, cut, 0, again, cap);
  CHECK(q == rvalid && memcmp(again, s, q) == 0);

  /* A small output buffer: 4..11 bytes. */
  q = decode_small(s, n, 4 + (ctl >> 5), again);
  CHECK(q == rlen && memcmp(again, ref, q) == 0);

  free(ref);
  free(out);
  free(again);
  return 0;
}
