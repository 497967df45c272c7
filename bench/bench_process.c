/* Benchmarks of processes and OS pipe streams.  Prints one line per figure:
 *   bench NAME VALUE UNIT
 *
 *   process_run          µs per scio_run_process of /bin/true (stdin
 *                        /dev/null, stdout and stderr captured through
 *                        pipes, exit watched by pidfd on the loop);
 *   process_run_cpu      CPU µs (user + system, parent only) of the same;
 *   spawn_waitpid        µs per posix_spawn of /bin/true (no pipes) +
 *                        blocking waitpid, the bare minimum, same run;
 *   spawn_waitpid_cpu    CPU µs of the parent for that;
 *   process_run_vs_spawn_waitpid  the ratio of the two;
 *   os_pipe_throughput   GB/s through scio_pipe_stream_open between two
 *                        tasks, 64 KiB sends and receives;
 *   os_pipe_vs_plain     that divided by the GB/s of the same bytes through
 *                        a non-blocking pipe in one thread with no event
 *                        loop (write until full, read until empty), same
 *                        run.
 * Best of 5 each.  Usage: bench_process [NAME...]
 */
#include <fcntl.h>
#include <scio.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

#define NPROC 200
#define CHUNK ((size_t)64 * 1024)
#define TOTAL ((size_t)256 << 20)

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double last_cpu_us;

static double run_once(void *arg) {
  (void)arg;
  const char *argv[] = {"/bin/true", NULL};
  double c0 = cpu_now(), t0 = bench_wall();
  for (int i = 0; i < NPROC; i++) {
    scio_process_result r;
    bench_check(scio_run_process(argv, NULL, &r), "run_process");
    scio_process_result_free(&r);
  }
  double us = (bench_wall() - t0) / NPROC * 1e6;
  double cpu = (cpu_now() - c0) / NPROC * 1e6;
  if (last_cpu_us == 0 || cpu < last_cpu_us)
    last_cpu_us = cpu;
  return us;
}

static double base_cpu_us;

static double spawn_once(void *arg) {
  (void)arg;
  char *argv[] = {"/bin/true", NULL};
  double c0 = cpu_now(), t0 = bench_wall();
  for (int i = 0; i < NPROC; i++) {
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
      exit(1);
    int st;
    waitpid(pid, &st, 0);
  }
  double cpu = (cpu_now() - c0) / NPROC * 1e6;
  if (base_cpu_us == 0 || cpu < base_cpu_us)
    base_cpu_us = cpu;
  return (bench_wall() - t0) / NPROC * 1e6;
}

static unsigned char src[CHUNK], dst[CHUNK];

static int sender(void *arg) {
  for (size_t sent = 0; sent < TOTAL; sent += CHUNK)
    bench_check(scio_send(arg, src, CHUNK), "send");
  return (int)bench_check(scio_send_eof(arg), "send_eof");
}

static int receiver(void *arg) {
  size_t got = 0;
  for (;;) {
    ssize_t n = scio_receive(arg, dst, CHUNK);
    if (n == SCIO_EOF)
      break;
    got += (size_t)bench_check(n, "receive");
  }
  if (got != TOTAL)
    exit(1);
  return 0;
}

static double pipe_once(void *arg) {
  (void)arg;
  scio_stream *r, *w;
  bench_check(scio_pipe_stream_open(&r, &w), "pipe_stream_open");
  scio_nursery n;
  scio_nursery_open(&n);
  double t0 = bench_wall();
  bench_check(scio_start_soon(&n, receiver, r), "spawn");
  bench_check(scio_start_soon(&n, sender, w), "spawn");
  bench_check(scio_nursery_close(&n), "nursery");
  double secs = bench_wall() - t0;
  scio_close(r);
  scio_close(w);
  return (double)TOTAL / secs / 1e9;
}

/* The same bytes through one non-blocking pipe in one thread, with no
 * loop: write until the pipe is full, read until it is empty. */
static double plain_once(void *arg) {
  (void)arg;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK) < 0)
    exit(1);
  double t0 = bench_wall();
  size_t sent = 0, got = 0, off = 0;
  while (got < TOTAL) {
    while (sent < TOTAL) {
      ssize_t n = write(fds[1], src + off, CHUNK - off);
      if (n <= 0)
        break;
      sent += (size_t)n;
      off = (off + (size_t)n) % CHUNK;
    }
    ssize_t n;
    while ((n = read(fds[0], dst, CHUNK)) > 0)
      got += (size_t)n;
  }
  double secs = bench_wall() - t0;
  close(fds[0]);
  close(fds[1]);
  return (double)TOTAL / secs / 1e9;
}

int main(int argc, char **argv) {
  if (bench_wanted(argc, argv, "process_run")) {
    double run = bench_run_best(run_once, NULL, BENCH_LOWEST);
    double base = bench_best(spawn_once, NULL, BENCH_LOWEST);
    bench_report("process_run", run, "us");
    bench_report("process_run_cpu", last_cpu_us, "us");
    bench_report("spawn_waitpid", base, "us");
    bench_report("spawn_waitpid_cpu", base_cpu_us, "us");
    bench_report("process_run_vs_spawn_waitpid", run / base, "ratio");
  }
  if (bench_wanted(argc, argv, "os_pipe_throughput")) {
    double gbs = bench_run_best(pipe_once, NULL, BENCH_HIGHEST);
    double base = bench_best(plain_once, NULL, BENCH_HIGHEST);
    bench_report("os_pipe_throughput", gbs, "GB/s");
    bench_report("os_pipe_vs_plain", gbs / base, "ratio");
  }
  return 0;
}
