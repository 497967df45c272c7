/* tests/support/script_stream.h -- a scripted source stream for the Check
 * suites of stream layers (tests/libsciotest.la).
 *
 * The source replays a list of chunks, each available from a given time (a
 * receive before then sleeps until it; under the autojump clock that costs
 * nothing), and records what is sent to it and how often it is closed.  A
 * receive sleeps in a scope of its own, which a close cancels, so a close
 * wakes a receive blocked in the source. */
#ifndef SCIO_TESTS_SUPPORT_SCRIPT_STREAM_H
#define SCIO_TESTS_SUPPORT_SCRIPT_STREAM_H

#include <stddef.h>

#include "scio.h"
#include "scio/stream.h"

/* One step of the script: `len` bytes of `data` that become available at
 * time `at` (a receive before then sleeps until it), or the error `err`.
 * Empty chunks are skipped: a receive never returns 0. */
typedef struct script_chunk {
  double at;
  const char *data;
  size_t len;
  int err;
} script_chunk;

#define CH(s) {0, (s), sizeof(s) - 1, 0}
#define CH_AT(t, s) {(t), (s), sizeof(s) - 1, 0}
#define CH_ERR(e) {0, NULL, 0, (e)}

/* The number of elements of an array (of chunks, or of anything else). */
#define NCH(a) (sizeof(a) / sizeof((a)[0]))

/* What the source saw; owned by the test, so it outlives the source. */
typedef struct script_record {
  int closes, eofs, receives;
  size_t nsent;
  char sent[16384]; /* sending more fails the test */
} script_record;

typedef struct script_source {
  scio_stream base;
  const script_chunk *chunks;
  size_t n, i, off;
  int hang_at_end; /* after the script: block until cancelled or closed */
  script_record *rec;
  scio_scope *nap; /* the scope a receive sleeps in, so close can wake it */
  /* Close this stream (the layer above) just before delivering data: the
   * data is then handed over to a layer that was closed meanwhile. */
  scio_stream *close_on_deliver;
} script_source;

/* A new source replaying the n chunks c (neither is copied: they must
 * outlive it), recording into rec.  Its attribute SCIO_ATTR_USER is the int
 * 42; it has no other.  Out of memory fails the test. */
scio_stream *script_source_new(const script_chunk *c, size_t n,
                               script_record *rec);

/* The source under a layer: script_of(b->inner)->hang_at_end = 1. */
static inline script_source *script_of(scio_stream *s) {
  return (script_source *)s;
}

#endif /* SCIO_TESTS_SUPPORT_SCRIPT_STREAM_H */
