/* Benchmarks of memory pipes.  Prints one line per figure:
 *   bench NAME VALUE UNIT
 *
 *   pipe_throughput  GB/s (1e9 bytes) through a memory pipe (default 64 KiB
 *                    buffer) between two tasks, 64 KiB sends and receives;
 *   pipe_vs_memcpy   that figure divided by the GB/s of plain memcpy of the
 *                    same bytes in the same chunks, measured in the same
 *                    run (1.0: the pipe costs nothing beyond one copy).
 * Both are best-of-5 to reduce noise on a shared machine.
 *
 * Usage: bench_pipe   (SCIO_BENCH_PIPE_MB=N overrides the 256 MiB moved
 * per repetition)
 */
#include <scio.h>
#include <scio/pipe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CHUNK ((size_t)64 * 1024)

static size_t total_bytes = (size_t)256 << 20;

/* ---- pipe: a sender and a receiver task ---- */

static unsigned char src[CHUNK], dst[CHUNK];

static int sender(void *arg) {
  scio_stream *a = arg;
  for (size_t sent = 0; sent < total_bytes; sent += CHUNK)
    bench_check(scio_send(a, src, CHUNK), "send");
  return (int)bench_check(scio_send_eof(a), "send_eof");
}

static int receiver(void *arg) {
  scio_stream *b = arg;
  size_t got = 0;
  for (;;) {
    ssize_t n = scio_receive(b, dst, CHUNK);
    if (n == SCIO_EOF)
      break;
    got += (size_t)bench_check(n, "receive");
  }
  if (got != total_bytes) {
    fprintf(stderr, "bench: received %zu of %zu bytes\n", got, total_bytes);
    exit(1);
  }
  return 0;
}

static double pipe_once(void *arg) {
  (void)arg;
  scio_stream *a, *b;
  bench_check(scio_memory_pipe_open(&a, &b, NULL), "memory_pipe");
  scio_nursery n;
  scio_nursery_open(&n);
  double t0 = bench_wall();
  bench_check(scio_start_soon(&n, receiver, b), "spawn");
  bench_check(scio_start_soon(&n, sender, a), "spawn");
  bench_check(scio_nursery_close(&n), "nursery");
  double secs = bench_wall() - t0;
  scio_close(a);
  scio_close(b);
  return (double)total_bytes / secs / 1e9;
}

/* ---- baseline: memcpy of the same chunks ---- */

static double memcpy_once(void *arg) {
  (void)arg;
  double t0 = bench_wall();
  for (size_t done = 0; done < total_bytes; done += CHUNK) {
    memcpy(dst, src, CHUNK);
    /* Keep the copies: the compiler may not fold or drop them. */
    __asm__ __volatile__("" : : "r"(dst) : "memory");
  }
  return (double)total_bytes / (bench_wall() - t0) / 1e9;
}

int main(void) {
  const char *mb = getenv("SCIO_BENCH_PIPE_MB");
  if (mb && atol(mb) > 0)
    total_bytes = (size_t)atol(mb) << 20;
  total_bytes -= total_bytes % CHUNK;
  memset(src, 0xa5, sizeof src);
  double pipe_gbs = bench_run_best(pipe_once, NULL, BENCH_HIGHEST);
  double mem_gbs = bench_best(memcpy_once, NULL, BENCH_HIGHEST);
  bench_report("pipe_throughput", pipe_gbs, "GB/s");
  bench_report("pipe_vs_memcpy", pipe_gbs / mem_gbs, "ratio");
  return 0;
}
