/* Private: a pure UTF-8 validator and decoder (no allocation, no state, no
 * scio calls), used by the text stream and fuzzed by fuzz/fuzz_utf8.c.
 *
 * Well-formed UTF-8 is exactly the byte sequences of Unicode's table 3-7:
 *   U+0000..U+007F     00..7F
 *   U+0080..U+07FF     C2..DF 80..BF
 *   U+0800..U+0FFF     E0     A0..BF 80..BF
 *   U+1000..U+CFFF     E1..EC 80..BF 80..BF
 *   U+D000..U+D7FF     ED     80..9F 80..BF
 *   U+E000..U+FFFF     EE..EF 80..BF 80..BF
 *   U+10000..U+3FFFF   F0     90..BF 80..BF 80..BF
 *   U+40000..U+FFFFF   F1..F3 80..BF 80..BF 80..BF
 *   U+100000..U+10FFFF F4     80..8F 80..BF 80..BF
 * so overlong forms, surrogates (U+D800..U+DFFF), code points above U+10FFFF
 * and stray continuation bytes are all ill-formed.
 *
 * Replacement follows the Unicode "maximal subpart" practice (the one
 * WHATWG, Python and ICU use): each maximal subpart of an ill-formed sequence
 * (the longest prefix of a well-formed sequence, or one byte if there is
 * none) becomes one U+FFFD.  The result therefore does not depend on how the
 * input was split into chunks.
 */
#ifndef SCIO_STREAMS_UTF8_H
#define SCIO_STREAMS_UTF8_H

#include <stddef.h>

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define SCIO__UTF8_REPLACEMENT "\xEF\xBF\xBD"
#define SCIO__UTF8_REPLACEMENT_LEN 3

/* The longest UTF-8 character, in bytes. */
#define SCIO__UTF8_MAX_CHAR 4

enum scio__utf8_status {
  SCIO__UTF8_DONE = 0,    /* all the input was consumed */
  SCIO__UTF8_PARTIAL = 1, /* stopped before an incomplete but so far
                             well-formed character at the end of the input
                             (only without SCIO__UTF8_FINAL) */
  SCIO__UTF8_INVALID = 2, /* strict: stopped before an ill-formed sequence */
  SCIO__UTF8_FULL = 3     /* the next character does not fit in the output */
};

enum scio__utf8_flags {
  /* Replace ill-formed sequences by U+FFFD instead of stopping. */
  SCIO__UTF8_REPLACE = 1u << 0,
  /* The input ends here: an incomplete character at its end is ill-formed
   * (replaced, or INVALID) instead of PARTIAL. */
  SCIO__UTF8_FINAL = 1u << 1
};

/* Classify the sequence that starts at s[0] (avail >= 0 bytes available):
 *   > 0  the length (1..4) of a well-formed character;
 *   < 0  minus the length (1..3) of a maximal subpart of an ill-formed
 *        sequence, to be skipped (and replaced) as one unit;
 *   0    avail is 0, or s[0..avail) is a well-formed but incomplete prefix
 *        of a character (all of it is the maximal subpart at end of input). */
int scio__utf8_next(const unsigned char *s, size_t avail);

/* Decode (validate and copy, or replace) in[0..inlen) into out[0..outmax),
 * writing whole characters only.  *consumed and *produced get the bytes read
 * and written (both may be 0).  Returns an enum scio__utf8_status saying why
 * it stopped.  `out` may be NULL only when outmax is 0. */
int scio__utf8_decode(const unsigned char *in, size_t inlen,
                      unsigned char *out, size_t outmax, unsigned flags,
                      size_t *consumed, size_t *produced);

/* Validate s[0..len) without copying: returns SCIO__UTF8_DONE (all valid),
 * SCIO__UTF8_PARTIAL (valid, but the last character is cut; never with
 * SCIO__UTF8_FINAL) or SCIO__UTF8_INVALID; *valid gets the length of the
 * longest valid prefix made of whole characters.  SCIO__UTF8_REPLACE is
 * ignored. */
int scio__utf8_check(const unsigned char *s, size_t len, unsigned flags,
                     size_t *valid);

#endif /* SCIO_STREAMS_UTF8_H */
