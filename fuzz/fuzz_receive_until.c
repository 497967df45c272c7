/* libFuzzer target for the buffered stream (src/streams/buffered.c).
 *
 * Input: a 6-byte header, the delimiter, then the data:
 *   [0] delimiter length - 1 (mod 8)   [1] max (low byte)
 *   [2] bits 0-2: read_size choice; bit 3: max * 16; bit 4: chunks arrive
 *       over (virtual) time and some calls are cancelled by a deadline
 *   [3..5] seed of the generator that cuts the data into chunks and picks
 *       the operations.
 * A scripted source serves the data in those chunks; a buffered stream over
 * it is driven with a mix of receive_until (mostly), receive_exactly, plain
 * receive and feed (pushing bytes already returned back).  After every call
 * the target checks, against the input, that:
 *   - a returned line is exactly the input up to the first delimiter, which
 *     starts within max bytes, and is consumed with it;
 *   - SCIO_EDELIM means max + dlen bytes are there with no delimiter in
 *     them, SCIO_EINCOMPLETE means the input ended without one after
 *     some bytes, SCIO_EOF that it ended with nothing left;
 *   - a cancelled or failed call consumed nothing;
 * and at the end that the returned pieces and delimiters put together are
 * the whole input: nothing lost, duplicated or reordered.
 * Runs under scio_run with the autojump clock (one loop per input). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scio.h"
#include "scio/buffered.h"
#include "scio/stream.h"

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "fuzz_receive_until: check failed: %s (line %d)\n",     \
              #cond, __LINE__);                                               \
      abort();                                                                \
    }                                                                         \
  } while (0)

typedef struct rng {
  uint32_t s;
} rng;

static uint32_t next(rng *r) {
  r->s = r->s * 1103515245u + 12345u;
  return r->s >> 8;
}

/* ---- the scripted source ---- */

typedef struct source {
  scio_stream base;
  const uint8_t *data;
  size_t len, pos;
  size_t pending;     /* size of the next chunk, 0: not drawn yet */
  double pending_at;  /* when it arrives */
  unsigned max_chunk; /* chunk sizes are 1..max_chunk */
  int timed;
  rng r;
} source;

/* The next chunk is drawn once and kept, so that a receive cancelled while
 * waiting for it finds the same chunk at the same time when retried. */
static ssize_t src_receive(scio_stream *s, void *buf, size_t max) {
  source *src = (source *)s;
  if (src->pos == src->len) {
    int rc = scio_checkpoint();
    return rc < 0 ? rc : SCIO_EOF;
  }
  if (!src->pending) {
    src->pending = 1 + next(&src->r) % src->max_chunk;
    if (src->pending > src->len - src->pos)
      src->pending = src->len - src->pos;
    src->pending_at = scio_now() + (src->timed ? next(&src->r) % 3 : 0);
  }
  int rc = scio_sleep_until(src->pending_at);
  if (rc < 0)
    return rc;
  size_t k = src->pending < max ? src->pending : max;
  memcpy(buf, src->data + src->pos, k);
  src->pos += k;
  src->pending -= k;
  return (ssize_t)k;
}

static void src_free(scio_stream *s) { free(s); }

static const scio_stream_ops source_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "fuzz-source",
    .do_receive = src_receive,
    .do_free = src_free,
};

/* ---- the model: what has been returned so far ---- */

typedef struct fuzz {
  const uint8_t *data, *delim;
  size_t len, dlen, max, read_size;
  int timed;
  uint32_t seed;
  scio_stream *b;
  size_t done; /* the input before this point has been returned */
  rng r;
  uint8_t *piece;
} fuzz;

static long naive_find(const uint8_t *s, size_t n, const uint8_t *d,
                       size_t dlen) {
  for (size_t p = 0; p + dlen <= n; p++)
    if (memcmp(s + p, d, dlen) == 0)
      return (long)p;
  return -1;
}

static void check_until(fuzz *f, int rc, size_t len) {
  const uint8_t *rem = f->data + f->done;
  size_t remlen = f->len - f->done;
  long first = naive_find(rem, remlen, f->delim, f->dlen);
  if (rc == 0) {
    CHECK(len <= f->max && first == (long)len);
    CHECK(memcmp(f->piece, rem, len) == 0);
    f->done += len + f->dlen;
  } else if (rc == SCIO_EDELIM) {
    CHECK(remlen >= f->max + f->dlen);
    CHECK(naive_find(rem, f->max + f->dlen, f->delim, f->dlen) < 0);
  } else if (rc == SCIO_EINCOMPLETE) {
    CHECK(remlen > 0 && remlen < f->max + f->dlen && first < 0);
  } else if (rc == SCIO_EOF) {
    CHECK(remlen == 0);
  } else {
    CHECK(rc == SCIO_ECANCELED);
  }
}

/* receive_until, in a scope with a deadline sometimes (timed mode). */
static int op_until(fuzz *f) {
  scio_scope cs;
  int scoped = f->timed && next(&f->r) % 3 == 0;
  if (scoped)
    scio_move_on_after(&cs, 0.5 + next(&f->r) % 3);
  size_t len = (size_t)-1;
  int rc = scio_receive_until(f->b, f->delim, f->dlen, f->piece, f->max,
                              &len);
  if (scoped)
    scio_scope_close(&cs);
  CHECK(rc != SCIO_ECANCELED || scoped);
  check_until(f, rc, len);
  return rc;
}

static void op_exactly(fuzz *f) {
  size_t n = next(&f->r) % 8, remlen = f->len - f->done;
  ssize_t r = scio_receive_exactly(f->b, f->piece, n);
  if (n > remlen) {
    CHECK(r == SCIO_EINCOMPLETE);
    return;
  }
  CHECK(r == (ssize_t)n && memcmp(f->piece, f->data + f->done, n) == 0);
  f->done += n;
}

static int op_receive(fuzz *f, size_t max) {
  ssize_t r = scio_receive(f->b, f->piece, max);
  if (r == SCIO_EOF) {
    CHECK(f->done == f->len);
    return 1;
  }
  CHECK(r > 0 && (size_t)r <= max && (size_t)r <= f->len - f->done);
  CHECK(memcmp(f->piece, f->data + f->done, (size_t)r) == 0);
  f->done += (size_t)r;
  return 0;
}

/* Push the last few returned bytes back; the model steps back with them. */
static void op_feed(fuzz *f) {
  size_t n = next(&f->r) % 6;
  if (n > f->done)
    n = f->done;
  CHECK(scio_buffered_unreceive(f->b, f->data + f->done - n, n) == 0);
  f->done -= n;
}

static int drive(fuzz *f) {
  int must_progress = 0;
  for (size_t iter = 0; iter < 4 * f->len + 64; iter++) {
    unsigned op = next(&f->r) % 10;
    if (must_progress || op == 9) {
      if (op_receive(f, 1 + next(&f->r) % 16))
        return 0;
      must_progress = 0;
    } else if (op == 8) {
      op_exactly(f);
    } else if (op == 7) {
      op_feed(f);
    } else {
      int rc = op_until(f);
      must_progress =
          rc == SCIO_EDELIM || rc == SCIO_EINCOMPLETE || rc == SCIO_EOF;
    }
  }
  /* Whatever is left comes out whole. */
  while (!op_receive(f, 64))
    ;
  return 0;
}

static const size_t read_sizes[8] = {0, 1, 2, 3, 7, 16, 64, 4096};

static int body(void *arg) {
  fuzz *f = arg;
  source *src = calloc(1, sizeof *src);
  CHECK(src);
  scio_stream_init(&src->base, &source_ops, NULL);
  src->data = f->data;
  src->len = f->len;
  src->timed = f->timed;
  src->max_chunk = 1 + f->seed % 40;
  src->r.s = f->seed ^ 0x9e3779b9u;
  scio_buffered_opts o = {f->read_size};
  CHECK(scio_buffered_open(&src->base, &o, &f->b) == 0);
  f->piece = malloc(f->max + 64);
  CHECK(f->piece);
  f->r.s = f->seed;
  drive(f);
  CHECK(f->done == f->len);
  free(f->piece);
  CHECK(scio_close(f->b) == 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 6)
    return 0;
  fuzz f;
  memset(&f, 0, sizeof f);
  f.dlen = 1 + data[0] % 8;
  if (size < 6 + f.dlen || size > 6 + f.dlen + 8192)
    return 0;
  f.max = data[1] * ((data[2] & 8) ? 16u : 1u);
  f.read_size = read_sizes[data[2] & 7];
  f.timed = (data[2] & 16) != 0;
  f.seed = (uint32_t)data[3] | (uint32_t)data[4] << 8 |
           (uint32_t)data[5] << 16;
  f.delim = data + 6;
  f.data = data + 6 + f.dlen;
  f.len = size - 6 - f.dlen;
  scio_run_opts o;
  memset(&o, 0, sizeof o);
  o.clock = SCIO_CLOCK_AUTOJUMP;
  int rc = scio_run(body, &f, &o);
  CHECK(rc == 0);
  return 0;
}
