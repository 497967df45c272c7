/* Tests of include/scio/text.h: whole-character receives over every split,
 * strict and replace modes, the UTF-8 validity rules, iconv encodings in
 * both directions, attributes, cancellation, allocation failure.  Every
 * async test runs once per backend (epoll, poll, select).
 *
 * The text stream sits on a scripted source (tests/support/script_stream.h)
 * that replays a list of chunks, each available from a given (autojump)
 * time, and records what is sent to it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scio/buffered.h"
#include "scio/stream.h"
#include "scio/testing.h"
#include "scio/text.h"
#include "support/oom.h"
#include "support/script_stream.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

#define FFFD "\xEF\xBF\xBD"

static scio_stream *text_over(const script_chunk *c, size_t n,
                              script_record *rec, const char *enc, int errors) {
  scio_text_opts o = {0};
  o.encoding = enc;
  o.errors = errors;
  scio_stream *t = NULL;
  int rc = scio_text_open(script_source_new(c, n, rec), &o, &t);
  ck_assert_msg(rc == 0, "text_new: %s (%s)", scio_err_name(rc), scio_errmsg());
  return t;
}

/* An independent check of UTF-8 validity, by code point arithmetic rather
 * than by the byte table the library uses. */
static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    unsigned long cp, min;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07, min = 0x10000;
    else
      return 0;
    if (i + len > n)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

/* Receive with `max` until SCIO_EOF or an error (returned in *last); every
 * piece must be valid UTF-8 on its own: no character is ever split. */
static size_t collect(scio_stream *t, size_t max, char *out, size_t cap,
                      int *last) {
  size_t n = 0;
  for (;;) {
    ck_assert_uint_le(n + max, cap);
    ssize_t r = scio_receive(t, out + n, max);
    if (r < 0) {
      *last = (int)r;
      return n;
    }
    ck_assert_msg(valid_utf8((unsigned char *)out + n, (size_t)r),
                  "a receive returned a split or invalid character");
    n += (size_t)r;
  }
}

/* All of the stream, which must end in SCIO_EOF, equals `want`. */
static void receives_all(scio_stream *t, size_t max, const char *want,
                         size_t wlen) {
  char out[512];
  int last = 0;
  size_t n = collect(t, max, out, sizeof out, &last);
  ck_assert_msg(last == SCIO_EOF, "ended with %s (%s)", scio_err_name(last),
                scio_errmsg());
  ck_assert_uint_eq(n, wlen);
  ck_assert(memcmp(out, want, wlen) == 0);
}

/* `in` cut into three chunks at every pair of points. */
static void every_split(const char *in, size_t n, const char *enc, int errors,
                        size_t max, const char *want, size_t wlen) {
  for (size_t i = 0; i <= n; i++)
    for (size_t j = i; j <= n; j++) {
      script_chunk c[3] = {
          {0, in, i, 0}, {0, in + i, j - i, 0}, {0, in + j, n - j, 0}};
      script_record rec = {0};
      scio_stream *t = text_over(c, 3, &rec, enc, errors);
      receives_all(t, max, want, wlen);
      CK_OK(scio_close(t));
      ck_assert_int_eq(rec.closes, 1);
    }
}

#define S(lit) (lit), sizeof(lit) - 1

/* ------------------------------------------------------------------------ */
/* UTF-8 receive                                                             */

/* 1-, 2-, 3- and 4-byte characters, split at every pair of points, read
 * with the smallest buffer that always works and with a roomy one. */
SCIO_TEST(multibyte_characters_never_split) {
  static const char in[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"
                           "b\xC2\x80\xF4\x8F\xBF\xBF\xEF\xBF\xBF";
  every_split(S(in), NULL, SCIO_TEXT_STRICT, 4, S(in));
  every_split(S(in), NULL, SCIO_TEXT_STRICT, 64, S(in));
  every_split(S(in), "utf8", SCIO_TEXT_REPLACE, 5, S(in));
  return 0;
}

/* One byte per chunk: each multi-byte character is reassembled. */
SCIO_TEST(byte_per_chunk_reassembles) {
  static const char in[] = "\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9z";
  script_chunk c[sizeof in - 1];
  for (size_t i = 0; i < sizeof in - 1; i++)
    c[i] = (script_chunk){0, in + i, 1, 0};
  script_record rec = {0};
  scio_stream *t = text_over(c, NCH(c), &rec, NULL, SCIO_TEXT_STRICT);
  char out[8];
  ck_assert_int_eq(scio_receive(t, out, sizeof out), 4);
  ck_assert_int_eq(scio_receive(t, out, sizeof out), 3);
  ck_assert_int_eq(scio_receive(t, out, sizeof out), 2);
  ck_assert_int_eq(scio_receive(t, out, sizeof out), 1);
  ck_assert_int_eq(scio_receive(t, out, sizeof out), SCIO_EOF);
  CK_OK(scio_close(t));
  return 0;
}

/* The boundaries of table 3-7 that are valid. */
SCIO_TEST(boundary_characters_are_valid) {
  static const char in[] = "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF"
                           "\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80"
                           "\xF4\x8F\xBF\xBF";
  script_chunk c[] = {{0, in, sizeof in - 1, 0}};
  script_record rec = {0};
  scio_stream *t = text_over(c, 1, &rec, NULL, SCIO_TEXT_STRICT);
  receives_all(t, 64, S(in));
  CK_OK(scio_close(t));
  return 0;
}

static const struct bad {
  const char *in;
  size_t len;
  const char *replaced; /* with SCIO_TEXT_REPLACE */
} bad_inputs[] = {
    {S("\xC0\x80"), FFFD FFFD},                 /* overlong NUL */
    {S("\xC1\xBF"), FFFD FFFD},                 /* overlong 2-byte */
    {S("\xE0\x80\x80"), FFFD FFFD FFFD},        /* overlong 3-byte */
    {S("\xE0\x9F\xBF"), FFFD FFFD FFFD},        /* overlong U+07FF */
    {S("\xF0\x80\x80\x80"), FFFD FFFD FFFD FFFD}, /* overlong 4-byte */
    {S("\xF0\x8F\xBF\xBF"), FFFD FFFD FFFD FFFD}, /* overlong U+FFFF */
    {S("\xED\xA0\x80"), FFFD FFFD FFFD},        /* U+D800 */
    {S("\xED\xBF\xBF"), FFFD FFFD FFFD},        /* U+DFFF */
    {S("\xF4\x90\x80\x80"), FFFD FFFD FFFD FFFD}, /* U+110000 */
    {S("\xF5\x80\x80\x80"), FFFD FFFD FFFD FFFD}, /* lead beyond F4 */
    {S("\xFF"), FFFD},
    {S("\x80"), FFFD},                          /* stray continuation */
    {S("\xBF\x80"), FFFD FFFD},
    {S("\xE2\x82" "z"), FFFD "z"},              /* cut short, maximal part */
    {S("\xF0\x9F\x98" "z"), FFFD "z"},
    {S("\xC3\xC3\xA9"), FFFD "\xC3\xA9"},       /* lead after lead */
    /* Unicode 3.9, table 3-8: each maximal subpart is one U+FFFD. */
    {S("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
     "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d"},
};

/* Strict: the valid text before the bad bytes comes first, then
 * SCIO_EDECODE, again and again. */
SCIO_TEST(strict_rejects_ill_formed_utf8) {
  for (size_t k = 0; k < NCH(bad_inputs); k++) {
    script_chunk c[] = {
        CH("ok"), {0, bad_inputs[k].in, bad_inputs[k].len, 0}, CH("tail")};
    script_record rec = {0};
    scio_stream *t = text_over(c, NCH(c), &rec, NULL, SCIO_TEXT_STRICT);
    char out[128];
    int last = 0;
    size_t n = collect(t, 64, out, sizeof out, &last);
    ck_assert_msg(last == SCIO_EDECODE, "case %zu: %s", k,
                  scio_err_name(last));
    ck_assert_ptr_nonnull(strstr(scio_errmsg(), "invalid UTF-8"));
    /* A valid prefix of the bad bytes, if any, may have been returned. */
    ck_assert_uint_ge(n, 2);
    ck_assert(memcmp(out, "ok", 2) == 0);
    ck_assert_int_eq(scio_receive(t, out, sizeof out), SCIO_EDECODE);
    CK_OK(scio_close(t));
  }
  return 0;
}

/* Replace: the documented U+FFFD count, whatever the split. */
SCIO_TEST(replace_maximal_subparts_any_split) {
  for (size_t k = 0; k < NCH(bad_inputs); k++) {
    char in[64], want[128];
    int n = snprintf(in, sizeof in, "<%.*s>", (int)bad_inputs[k].len,
                     bad_inputs[k].in);
    int w = snprintf(want, sizeof want, "<%s>", bad_inputs[k].replaced);
    every_split(in, (size_t)n, NULL, SCIO_TEXT_REPLACE, 16, want, (size_t)w);
  }
  return 0;
}

SCIO_TEST(incomplete_character_at_eof) {
  static const char *const cuts[] = {"ab\xC3", "ab\xE2\x82", "ab\xF0\x9F\x98",
                                     "ab\xF4"};
  for (size_t k = 0; k < NCH(cuts); k++) {
    script_chunk c[] = {{0, cuts[k], strlen(cuts[k]), 0}};
    script_record rec = {0};
    scio_stream *t = text_over(c, 1, &rec, NULL, SCIO_TEXT_STRICT);
    char out[16];
    int last = 0;
    ck_assert_uint_eq(collect(t, 8, out, sizeof out, &last), 2);
    ck_assert_int_eq(last, SCIO_EDECODE);
    CK_OK(scio_close(t));
    t = text_over(c, 1, &rec, NULL, SCIO_TEXT_REPLACE);
    receives_all(t, 8, S("ab" FFFD));
    CK_OK(scio_close(t));
  }
  return 0;
}

/* max smaller than the next character: -ENOSPC, nothing consumed. */
SCIO_TEST(max_smaller_than_a_character) {
  script_chunk c[] = {CH("a\xE2\x82\xAC\xF0\x9F\x98\x80\xFF")};
  script_record rec = {0};
  scio_stream *t = text_over(c, 1, &rec, NULL, SCIO_TEXT_REPLACE);
  char out[8];
  ck_assert_int_eq(scio_receive(t, out, 2), 1); /* "a" fits, "€" not */
  ck_assert_int_eq(scio_receive(t, out, 2), -ENOSPC);
  ck_assert_int_eq(scio_receive(t, out, 1), -ENOSPC);
  ck_assert_int_eq(scio_receive(t, out, 3), 3);
  ck_assert(memcmp(out, "\xE2\x82\xAC", 3) == 0);
  ck_assert_int_eq(scio_receive(t, out, 3), -ENOSPC);
  ck_assert_int_eq(scio_receive(t, out, 4), 4);
  ck_assert_int_eq(scio_receive(t, out, 2), -ENOSPC); /* U+FFFD needs 3 */
  ck_assert_int_eq(scio_receive(t, out, 3), 3);
  ck_assert(memcmp(out, FFFD, 3) == 0);
  ck_assert_int_eq(scio_receive(t, out, 1), SCIO_EOF);
  CK_OK(scio_close(t));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Send                                                                      */

SCIO_TEST(send_strict_validates_utf8) {
  script_record rec = {0};
  scio_stream *t = text_over(NULL, 0, &rec, NULL, SCIO_TEXT_STRICT);
  CK_OK(scio_send(t, S("h\xC3\xA9 \xF0\x9F\x98\x80")));
  ck_assert_uint_eq(rec.nsent, 8);
  for (size_t k = 0; k < NCH(bad_inputs); k++) {
    ck_assert_int_eq(scio_send(t, bad_inputs[k].in, bad_inputs[k].len),
                     SCIO_EDECODE);
    ck_assert_int_eq(scio_send(t, S("fine, then \xC3")), SCIO_EDECODE);
  }
  ck_assert_uint_eq(rec.nsent, 8); /* nothing more was sent */
  CK_OK(scio_send(t, "", 0));
  CK_OK(scio_send(t, NULL, 0));
  CK_OK(scio_send_eof(t));
  ck_assert_int_eq(rec.eofs, 1);
  CK_OK(scio_close(t));
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

SCIO_TEST(send_replace_substitutes_fffd) {
  script_record rec = {0};
  scio_stream *t = text_over(NULL, 0, &rec, NULL, SCIO_TEXT_REPLACE);
  for (size_t k = 0; k < NCH(bad_inputs); k++) {
    rec.nsent = 0;
    CK_OK(scio_send(t, bad_inputs[k].in, bad_inputs[k].len));
    ck_assert_uint_eq(rec.nsent, strlen(bad_inputs[k].replaced));
    ck_assert(memcmp(rec.sent, bad_inputs[k].replaced, rec.nsent) == 0);
  }
  /* Larger than the internal pieces: 3000 bad bytes become 9000. */
  char in[3000];
  memset(in, 0xFF, sizeof in);
  rec.nsent = 0;
  CK_OK(scio_send(t, in, sizeof in));
  ck_assert_uint_eq(rec.nsent, 9000);
  for (size_t i = 0; i < 9000; i += 3)
    ck_assert(memcmp(rec.sent + i, FFFD, 3) == 0);
  CK_OK(scio_close(t));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* iconv encodings                                                           */

SCIO_TEST(latin1_both_directions) {
  static const char in[] = "caf\xE9 \xA3 \xFF";
  every_split(S(in), "ISO-8859-1", SCIO_TEXT_STRICT, 4,
              S("caf\xC3\xA9 \xC2\xA3 \xC3\xBF"));
  script_record rec = {0};
  scio_stream *t = text_over(NULL, 0, &rec, "ISO-8859-1", SCIO_TEXT_STRICT);
  CK_OK(scio_send(t, S("caf\xC3\xA9")));
  ck_assert_uint_eq(rec.nsent, 4);
  ck_assert(memcmp(rec.sent, "caf\xE9", 4) == 0);
  /* The euro sign is not in Latin-1: strict sends nothing at all. */
  ck_assert_int_eq(scio_send(t, S("ok \xE2\x82\xAC")), SCIO_EDECODE);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "U+20AC"));
  ck_assert_int_eq(scio_send(t, S("ok \xFF")), SCIO_EDECODE);
  ck_assert_uint_eq(rec.nsent, 4);
  CK_OK(scio_close(t));

  rec.nsent = 0;
  t = text_over(NULL, 0, &rec, "iso-8859-1", SCIO_TEXT_REPLACE);
  CK_OK(scio_send(t, S("a\xE2\x82\xAC" "b\xFF" "c")));
  ck_assert_uint_eq(rec.nsent, 5);
  ck_assert(memcmp(rec.sent, "a?b?c", 5) == 0);
  CK_OK(scio_close(t));
  return 0;
}

SCIO_TEST(utf16le_both_directions) {
  /* "hi€😀": the emoji is a surrogate pair, split anywhere. */
  static const char in[] = "h\0i\0\xAC\x20\x3D\xD8\x00\xDE";
  static const char want[] = "hi\xE2\x82\xAC\xF0\x9F\x98\x80";
  every_split(S(in), "UTF-16LE", SCIO_TEXT_STRICT, 4, S(want));
  script_record rec = {0};
  scio_stream *t = text_over(NULL, 0, &rec, "UTF-16LE", SCIO_TEXT_STRICT);
  CK_OK(scio_send(t, S(want)));
  ck_assert_uint_eq(rec.nsent, sizeof in - 1);
  ck_assert(memcmp(rec.sent, in, sizeof in - 1) == 0);
  /* Long text goes through the pieces: 5000 characters, 10000 bytes. */
  char big[5000];
  memset(big, 'x', sizeof big);
  rec.nsent = 0;
  CK_OK(scio_send(t, big, sizeof big));
  ck_assert_uint_eq(rec.nsent, 10000);
  ck_assert(rec.sent[9998] == 'x' && rec.sent[9999] == 0);
  CK_OK(scio_close(t));
  return 0;
}

SCIO_TEST(utf16le_invalid_input) {
  /* A lone high surrogate, then "a"; an odd byte at the end. */
  script_chunk c[] = {CH("\x00\xD8"
                         "a\0"
                         "b")};
  script_record rec = {0};
  scio_stream *t = text_over(c, 1, &rec, "UTF-16LE", SCIO_TEXT_REPLACE);
  receives_all(t, 16, S(FFFD "a" FFFD));
  CK_OK(scio_close(t));
  t = text_over(c, 1, &rec, "UTF-16LE", SCIO_TEXT_STRICT);
  char out[16];
  ck_assert_int_eq(scio_receive(t, out, sizeof out), SCIO_EDECODE);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "UTF-16LE"));
  ck_assert_int_eq(scio_receive(t, out, sizeof out), SCIO_EDECODE);
  CK_OK(scio_close(t));
  script_chunk odd[] = {CH("a\0b")};
  t = text_over(odd, 1, &rec, "UTF-16LE", SCIO_TEXT_STRICT);
  int last = 0;
  ck_assert_uint_eq(collect(t, 8, out, sizeof out, &last), 1);
  ck_assert_int_eq(last, SCIO_EDECODE);
  CK_OK(scio_close(t));
  return 0;
}

/* "UTF-16" writes its byte order mark once, not once per send. */
SCIO_TEST(utf16_bom_written_once) {
  script_record rec = {0};
  scio_stream *t = text_over(NULL, 0, &rec, "UTF-16", SCIO_TEXT_STRICT);
  CK_OK(scio_send(t, "a", 1));
  CK_OK(scio_send(t, "b", 1));
  CK_OK(scio_send_eof(t));
  ck_assert_uint_eq(rec.nsent, 6);
  ck_assert_int_eq(rec.eofs, 1);
  CK_OK(scio_close(t));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Construction, attributes, stacking                                        */

SCIO_TEST(constructor_arguments) {
  script_record rec = {0};
  scio_stream *src = script_source_new(NULL, 0, &rec), *t = NULL;
  scio_text_opts o = {0};
  o.encoding = "NO-SUCH-ENCODING-XYZ";
  ck_assert_int_eq(scio_text_open(src, &o, &t), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "NO-SUCH-ENCODING-XYZ"));
  o.encoding = "UTF-8-but-this-name-is-far-too-long-to-be-any-real-encoding-s";
  ck_assert_int_eq(scio_text_open(src, &o, &t), SCIO_EINVAL);
  o.encoding = NULL;
  o.errors = 7;
  ck_assert_int_eq(scio_text_open(src, &o, &t), SCIO_EINVAL);
  o.errors = 0;
  o.read_size = (size_t)1 << 40;
  ck_assert_int_eq(scio_text_open(src, &o, &t), SCIO_EINVAL);
  ck_assert_int_eq(scio_text_open(NULL, NULL, &t), SCIO_EINVAL);
  ck_assert_int_eq(scio_text_open(src, NULL, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(t);
  ck_assert_int_eq(rec.closes, 0);
  /* Nothing was taken: the source is still ours. */
  o.read_size = 1; /* raised to the minimum */
  CK_OK(scio_text_open(src, &o, &t));
  CK_OK(scio_close(t));
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

SCIO_TEST(attributes_walk_the_layers) {
  script_record rec = {0};
  scio_stream *t = text_over(NULL, 0, &rec, NULL, SCIO_TEXT_STRICT);
  char name[16];
  CK_OK(scio_stream_attr(t, SCIO_ATTR_ENCODING, name, sizeof name));
  ck_assert_str_eq(name, "UTF-8");
  CK_OK(scio_stream_attr(t, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "text");
  int v = 0;
  CK_OK(scio_stream_attr(t, SCIO_ATTR_USER, &v, sizeof v));
  ck_assert_int_eq(v, 42);
  ck_assert_int_eq(scio_stream_attr(t, SCIO_ATTR_ENCODING, name, 5),
                   -ENOSPC);
  ck_assert_int_eq(scio_stream_attr(t, SCIO_ATTR_FD, &v, sizeof v), -ENOENT);
  CK_OK(scio_close(t));
  t = text_over(NULL, 0, &rec, "latin1", SCIO_TEXT_STRICT);
  CK_OK(scio_stream_attr(t, SCIO_ATTR_ENCODING, name, sizeof name));
  ck_assert_str_eq(name, "latin1");
  CK_OK(scio_close(t));
  ck_assert_int_eq(rec.closes, 2);
  return 0;
}

/* Lines of text: a buffered stream over a text stream over Latin-1 bytes,
 * split at every point. */
SCIO_TEST(buffered_lines_over_text) {
  static const char in[] = "h\xE9llo\nw\xF6rld\n";
  const size_t n = sizeof in - 1;
  for (size_t i = 0; i <= n; i++) {
    script_chunk c[2] = {{0, in, i, 0}, {0, in + i, n - i, 0}};
    script_record rec = {0};
    scio_stream *t = text_over(c, 2, &rec, "ISO-8859-1", SCIO_TEXT_STRICT);
    scio_stream *b = NULL;
    CK_OK(scio_buffered_open(t, NULL, &b));
    char line[16];
    size_t len;
    CK_OK(scio_receive_until(b, "\n", 1, line, sizeof line, &len));
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(line, "h\xC3\xA9llo", 6) == 0);
    CK_OK(scio_receive_until(b, "\n", 1, line, sizeof line, &len));
    ck_assert(len == 6 && memcmp(line, "w\xC3\xB6rld", 6) == 0);
    CK_OK(scio_stream_attr(b, SCIO_ATTR_ENCODING, line, sizeof line));
    ck_assert_str_eq(line, "ISO-8859-1");
    CK_OK(scio_close(b));
    ck_assert_int_eq(rec.closes, 1);
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Cancellation and checkpoints                                              */

/* Half a character, then a cancelled wait for the rest: the half is kept
 * and the later receive returns the whole character. */
SCIO_TEST_AUTOJUMP(cancel_mid_character_loses_nothing) {
  script_chunk c[] = {CH("\xF0\x9F"), CH_AT(10, "\x98\x80!")};
  script_record rec = {0};
  scio_stream *t = text_over(c, NCH(c), &rec, NULL, SCIO_TEXT_STRICT);
  char out[8];
  scio_scope cs;
  scio_move_on_after(&cs, 5);
  ck_assert_int_eq(scio_receive(t, out, sizeof out), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_int_eq(scio_receive(t, out, sizeof out), 5);
  ck_assert(memcmp(out, "\xF0\x9F\x98\x80!", 5) == 0);
  ck_assert_double_eq(scio_now(), 10);
  ck_assert_int_eq(scio_receive(t, out, sizeof out), SCIO_EOF);
  CK_OK(scio_close(t));
  return 0;
}

static long spins;

static int spinner(void *arg) {
  (void)arg;
  for (;;) {
    spins++;
    int rc = scio_checkpoint();
    if (rc < 0)
      return rc;
  }
}

SCIO_TEST(receive_from_held_text_is_a_checkpoint) {
  script_chunk c[] = {CH("abcdef")};
  script_record rec = {0};
  scio_stream *t = text_over(c, 1, &rec, NULL, SCIO_TEXT_STRICT);
  scio_nursery n;
  scio_nursery_open(&n);
  CK_OK(scio_start_soon(&n, spinner, NULL));
  char out[4];
  ck_assert_int_eq(scio_receive(t, out, 2), 2);
  long before = spins;
  ck_assert_int_eq(scio_receive(t, out, 2), 2); /* from raw, no refill */
  ck_assert_int_gt(spins, before);
  scio_scope cs;
  scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_receive(t, out, 2), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_int_eq(scio_receive(t, out, 4), 2);
  ck_assert(memcmp(out, "ef", 2) == 0);
  scio_nursery_cancel(&n);
  scio_nursery_close(&n);
  CK_OK(scio_close(t));
  return 0;
}

typedef struct blocked_reader {
  scio_stream *t;
  int rc;
} blocked_reader;

static int read_blocking(void *arg) {
  blocked_reader *r = arg;
  char out[16];
  r->rc = (int)scio_receive(r->t, out, sizeof out);
  return 0;
}

SCIO_TEST(close_wakes_blocked_receive) {
  script_chunk c[] = {CH("\xE2\x82")};
  script_record rec = {0};
  scio_stream *t = text_over(c, 1, &rec, NULL, SCIO_TEXT_STRICT);
  script_of(t->inner)->hang_at_end = 1;
  blocked_reader r = {t, 1};
  scio_nursery n;
  scio_nursery_open(&n);
  CK_OK(scio_start_soon(&n, read_blocking, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(t));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(rec.closes, 1);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Allocation failure (tests/support/oom.h): fail allocation N, once and
 * from N on, until a run does not reach N.  SCIO_ENOMEM only, no leak, and
 * the inner stream is not taken on failure. */

static int oom_text_body(void *arg) {
  const char *enc = arg;
  script_record rec = {0};
  script_chunk c[] = {CH("caf\xC3"), CH("\xA9\n")};
  scio_stream *src = script_source_new(c, NCH(c), &rec), *t = NULL, *b = NULL;
  scio_text_opts o = {0};
  o.encoding = enc;
  scio_oom_arm(1);
  int rc = scio_text_open(src, &o, &t);
  if (rc == 0)
    rc = scio_buffered_open(t, NULL, &b);
  scio_oom_arm(0);
  if (rc < 0) {
    /* Whichever constructor failed took nothing: close what we hold. */
    ck_assert_int_eq(rc, SCIO_ENOMEM);
    ck_assert_int_eq(rec.closes, 0);
    scio_close(t ? t : src);
    ck_assert_int_eq(rec.closes, 1);
    return rc;
  }
  char line[16];
  size_t len;
  scio_oom_arm(1);
  rc = scio_receive_until(b, "\n", 1, line, sizeof line, &len);
  scio_oom_arm(0);
  if (rc < 0) {
    ck_assert_int_eq(rc, SCIO_ENOMEM);
    CK_OK(scio_receive_until(b, "\n", 1, line, sizeof line, &len));
  }
  /* "caf\xC3\xA9" is "café" in UTF-8, "cafÃ©" (7 bytes) read as Latin-1. */
  ck_assert_uint_eq(len, enc && strcmp(enc, "ISO-8859-1") == 0 ? 7 : 5);
  CK_OK(scio_close(b));
  ck_assert_int_eq(rec.closes, 1);
  return rc;
}

static void oom_loop(int backend, const char *enc) {
  scio_oom_install(0);
  scio_oom_run r = {.fn = oom_text_body, .arg = (void *)enc};
  r.opts.backend = scio_test_backend(backend);
  scio_oom_opts opts = {.self_armed = 1, .max_points = 1000};
  scio_oom_loop(scio_oom_run_op, &r, enc ? enc : "UTF-8", &opts);
  scio_oom_uninstall();
}

START_TEST(allocation_failure_loop) {
  oom_loop(_i, NULL);
  oom_loop(_i, "ISO-8859-1");
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *text_suite(void) {
  Suite *s = suite_create("text");
  TCase *tc = scio_tcase_new("utf8", 30);
  scio_tcase_add(tc, multibyte_characters_never_split);
  scio_tcase_add(tc, byte_per_chunk_reassembles);
  scio_tcase_add(tc, boundary_characters_are_valid);
  scio_tcase_add(tc, strict_rejects_ill_formed_utf8);
  scio_tcase_add(tc, replace_maximal_subparts_any_split);
  scio_tcase_add(tc, incomplete_character_at_eof);
  scio_tcase_add(tc, max_smaller_than_a_character);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("send", 10);
  scio_tcase_add(tc, send_strict_validates_utf8);
  scio_tcase_add(tc, send_replace_substitutes_fffd);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("iconv", 30);
  scio_tcase_add(tc, latin1_both_directions);
  scio_tcase_add(tc, utf16le_both_directions);
  scio_tcase_add(tc, utf16le_invalid_input);
  scio_tcase_add(tc, utf16_bom_written_once);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("stream", 10);
  scio_tcase_add(tc, constructor_arguments);
  scio_tcase_add(tc, attributes_walk_the_layers);
  scio_tcase_add(tc, buffered_lines_over_text);
  scio_tcase_add(tc, cancel_mid_character_loses_nothing);
  scio_tcase_add(tc, receive_from_held_text_is_a_checkpoint);
  scio_tcase_add(tc, close_wakes_blocked_receive);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("oom", 60);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return scio_test_main(text_suite()); }
