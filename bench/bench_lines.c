/* Benchmark of the buffered stream: scio_receive_until over 100-byte lines.
 * Prints (best of BENCH_REPEAT runs each; the target for `lines' is >= 20):
 *   bench lines VALUE Mlines/s       over an in-bench source stream
 *   bench lines_pipe VALUE Mlines/s  over a memory pipe, fed by a task
 *
 * `lines' reads from a source stream defined here, which hands out 64 KiB
 * chunks of pre-made lines with one memcpy, so it measures the buffered
 * layer alone (search, copy, checkpoint).  `lines_pipe' puts a memory pipe
 * and a sending task (64 KiB sends) in between: the figure a program
 * reading lines from another task would see.
 *
 * Usage: bench_lines [LINES]   (default 10000000 per run)
 */
#include <scio.h>
#include <scio/buffered.h>
#include <scio/pipe.h>
#include <scio/stream.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define LINE 100
#define CHUNK 65536
/* 100 chunks of 64 KiB hold exactly 65536 lines, so the data wraps around
 * on a line boundary. */
#define DATA_SIZE ((size_t)CHUNK * LINE)

/* ---- the source: endless 64 KiB chunks of lines ---- */

typedef struct lines_source {
  scio_stream base;
  const char *data;
  size_t pos;
} lines_source;

static ssize_t src_receive(scio_stream *s, void *buf, size_t max) {
  lines_source *src = (lines_source *)s;
  int rc = scio_checkpoint(); /* a receive is a checkpoint, as any stream's */
  if (rc < 0)
    return rc;
  size_t n = max < CHUNK ? max : CHUNK;
  if (n > DATA_SIZE - src->pos)
    n = DATA_SIZE - src->pos;
  memcpy(buf, src->data + src->pos, n);
  src->pos = (src->pos + n) % DATA_SIZE;
  return (ssize_t)n;
}

static void src_free(scio_stream *s) { free(s); }

static const scio_stream_ops lines_source_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "bench-lines",
    .do_receive = src_receive,
    .do_free = src_free,
};

/* ---- the benchmark ---- */

typedef struct run {
  const char *data;
  long lines;
  double seconds;
  scio_fn body; /* the benchmark: bench_body or bench_pipe_body */
} run;

/* The timed part: read r->lines lines from b with scio_receive_until, into
 * r->seconds; then check that every line was whole. */
static void read_lines(scio_stream *b, run *r) {
  char line[256];
  size_t len, total = 0;
  double t0 = bench_wall();
  for (long i = 0; i < r->lines; i++) {
    bench_check(scio_receive_until(b, "\n", 1, line, sizeof line, &len),
                "receive_until");
    total += len;
  }
  r->seconds = bench_wall() - t0;
  if (total != (size_t)r->lines * (LINE - 1)) {
    fprintf(stderr, "bench_lines: wrong line lengths\n");
    exit(1);
  }
}

static int bench_body(void *arg) {
  run *r = arg;
  lines_source *src = calloc(1, sizeof *src);
  if (!src)
    return SCIO_ENOMEM;
  scio_stream_init(&src->base, &lines_source_ops, NULL);
  src->data = r->data;
  scio_stream *b;
  scio_buffered_opts o = {CHUNK};
  bench_check(scio_buffered_open(&src->base, &o, &b), "buffered_new");
  read_lines(b, r);
  return scio_close(b);
}

/* ---- the same over a memory pipe ---- */

typedef struct pipe_run {
  run *r;
  scio_stream *tx;
} pipe_run;

static int pipe_sender(void *arg) {
  pipe_run *p = arg;
  size_t left = (size_t)p->r->lines * LINE, pos = 0;
  while (left) {
    size_t n = left < CHUNK ? left : CHUNK;
    bench_check(scio_send(p->tx, p->r->data + pos, n), "pipe send");
    pos = (pos + n) % DATA_SIZE;
    left -= n;
  }
  return scio_close(p->tx);
}

static int bench_pipe_body(void *arg) {
  run *r = arg;
  pipe_run p = {r, NULL};
  scio_stream *rx, *b;
  bench_check(scio_memory_pipe_open(&p.tx, &rx, NULL), "memory_pipe");
  bench_check(scio_buffered_open(rx, NULL, &b), "buffered_new");
  scio_nursery n;
  scio_nursery_open(&n);
  bench_check(scio_start_soon(&n, pipe_sender, &p), "start_soon");
  read_lines(b, r);
  bench_check(scio_nursery_close(&n), "nursery_close");
  return scio_close(b);
}

/* One run of r->body (a scio_run of its own), in million lines per
 * second. */
static double rate_once(void *arg) {
  run *r = arg;
  bench_check(scio_run(r->body, r, NULL), "run");
  return (double)r->lines / r->seconds / 1e6;
}

/* Best of BENCH_REPEAT runs of body. */
static double best_rate(scio_fn body, run *r) {
  r->body = body;
  return bench_best(rate_once, r, BENCH_HIGHEST);
}

static char *make_lines(void) {
  char *d = malloc(DATA_SIZE);
  if (!d)
    exit(1);
  for (size_t i = 0; i < DATA_SIZE; i += LINE) {
    for (size_t k = 0; k < LINE - 1; k++)
      d[i + k] = (char)('a' + (i / LINE + k) % 26);
    d[i + LINE - 1] = '\n';
  }
  return d;
}

int main(int argc, char **argv) {
  run r = {make_lines(), argc > 1 ? atol(argv[1]) : 10000000L, 0, NULL};
  if (r.lines <= 0)
    r.lines = 10000000L;
  bench_report("lines", best_rate(bench_body, &r), "Mlines/s");
  bench_report("lines_pipe", best_rate(bench_pipe_body, &r), "Mlines/s");
  free((char *)r.data);
  return 0;
}
