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
#include <time.h>

#define REPEAT 5
#define CHUNK ((size_t)64 * 1024)

static size_t total_bytes = (size_t)256 << 20;

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const char *name, double value, const char *unit) {
  printf("bench %s %.3f %s\n", name, value, unit);
  fflush(stdout);
}

static long check(long rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "bench: %s: %s (%s)\n", what, scio_strerror((int)rc),
            scio_errmsg());
    exit(1);
  }
  return rc;
}

/* ---- pipe: a sender and a receiver task ---- */

static unsigned char src[CHUNK], dst[CHUNK];

static int sender(void *arg) {
  scio_stream *a = arg;
  for (size_t sent = 0; sent < total_bytes; sent += CHUNK)
    check(scio_send(a, src, CHUNK), "send");
  return (int)check(scio_send_eof(a), "send_eof");
}

static int receiver(void *arg) {
  scio_stream *b = arg;
  size_t got = 0;
  for (;;) {
    ssize_t n = scio_receive(b, dst, CHUNK);
    if (n == SCIO_EOF)
      break;
    got += (size_t)check(n, "receive");
  }
  if (got != total_bytes) {
    fprintf(stderr, "bench: received %zu of %zu bytes\n", got, total_bytes);
    exit(1);
  }
  return 0;
}

static double pipe_once(void) {
  scio_stream *a, *b;
  check(scio_memory_pipe(&a, &b, NULL), "memory_pipe");
  scio_nursery n;
  scio_nursery_open(&n);
  double t0 = wall();
  check(scio_start_soon(&n, receiver, b), "spawn");
  check(scio_start_soon(&n, sender, a), "spawn");
  check(scio_nursery_close(&n), "nursery");
  double secs = wall() - t0;
  scio_close(a);
  scio_close(b);
  return (double)total_bytes / secs / 1e9;
}

static int bench_pipe(void *arg) {
  double *best = arg;
  for (int r = 0; r < REPEAT; r++) {
    double gbs = pipe_once();
    if (gbs > *best)
      *best = gbs;
  }
  return 0;
}

/* ---- baseline: memcpy of the same chunks ---- */

static double memcpy_best(void) {
  double best = 0;
  for (int r = 0; r < REPEAT; r++) {
    double t0 = wall();
    for (size_t done = 0; done < total_bytes; done += CHUNK) {
      memcpy(dst, src, CHUNK);
      /* Keep the copies: the compiler may not fold or drop them. */
      __asm__ __volatile__("" : : "r"(dst) : "memory");
    }
    double gbs = (double)total_bytes / (wall() - t0) / 1e9;
    if (gbs > best)
      best = gbs;
  }
  return best;
}

int main(void) {
  const char *mb = getenv("SCIO_BENCH_PIPE_MB");
  if (mb && atol(mb) > 0)
    total_bytes = (size_t)atol(mb) << 20;
  total_bytes -= total_bytes % CHUNK;
  memset(src, 0xa5, sizeof src);
  double pipe_gbs = 0;
  check(scio_run(bench_pipe, &pipe_gbs, NULL), "run");
  double mem_gbs = memcpy_best();
  report("pipe_throughput", pipe_gbs, "GB/s");
  report("pipe_vs_memcpy", pipe_gbs / mem_gbs, "ratio");
  return 0;
}
