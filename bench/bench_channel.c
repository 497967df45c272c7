/* Benchmarks of memory channels.  Prints one line per figure:
 *   bench NAME VALUE UNIT
 * Figures are best-of-5 to reduce noise on a shared machine.
 *
 *   chan_pingpong    two tasks bounce an item over two rendezvous channels
 *                    (ping, pong); nanoseconds per message (one direction).
 *   chan_throughput  one producer, one consumer, a channel buffering 1024
 *                    longs; million items per second.
 *
 * Usage: bench_channel [NAME...]   (no names: all)
 */
#include <scio.h>

#include "bench.h"
#include <scio/channel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEAT 5




/* ---- pingpong ---- */
static const long pingpong_rounds = 1000000;

typedef struct pair {
  scio_tx *ping_tx, *pong_tx;
  scio_rx *ping_rx, *pong_rx;
} pair;

static int pinger(void *arg) {
  pair *p = arg;
  for (long i = 0; i < pingpong_rounds; i++) {
    long v = i;
    bench_check(scio_tx_send(p->ping_tx, &v), "ping send");
    bench_check(scio_rx_receive(p->pong_rx, &v), "pong receive");
    if (v != i)
      bench_check(-1, "pong value");
  }
  return 0;
}

static int ponger(void *arg) {
  pair *p = arg;
  long v;
  for (long i = 0; i < pingpong_rounds; i++) {
    bench_check(scio_rx_receive(p->ping_rx, &v), "ping receive");
    bench_check(scio_tx_send(p->pong_tx, &v), "pong send");
  }
  return 0;
}

static int bench_pingpong(void *arg) {
  double *best = arg;
  for (int r = 0; r < REPEAT; r++) {
    pair p;
    bench_check(scio_channel_open(sizeof(long), 0, &p.ping_tx, &p.ping_rx), "open");
    bench_check(scio_channel_open(sizeof(long), 0, &p.pong_tx, &p.pong_rx), "open");
    scio_nursery n;
    scio_nursery_open(&n);
    bench_check(scio_start_soon(&n, pinger, &p), "spawn");
    bench_check(scio_start_soon(&n, ponger, &p), "spawn");
    double t0 = bench_wall();
    bench_check(scio_nursery_close(&n), "close");
    double ns = (bench_wall() - t0) * 1e9 / (2.0 * (double)pingpong_rounds);
    if (ns < *best)
      *best = ns;
    scio_tx_close(p.ping_tx);
    scio_rx_close(p.ping_rx);
    scio_tx_close(p.pong_tx);
    scio_rx_close(p.pong_rx);
  }
  return 0;
}

/* ---- throughput ---- */
static const long throughput_items = 4000000;

static int producer(void *arg) {
  scio_tx *tx = arg;
  for (long i = 0; i < throughput_items; i++)
    bench_check(scio_tx_send(tx, &i), "send");
  return scio_tx_close(tx);
}

static int consumer(void *arg) {
  scio_rx *rx = arg;
  long v, expect = 0;
  int rc;
  while ((rc = scio_rx_receive(rx, &v)) == 0)
    if (v != expect++)
      bench_check(-1, "item order");
  if (rc != SCIO_EOF || expect != throughput_items)
    bench_check(rc < 0 ? rc : -1, "receive");
  return scio_rx_close(rx);
}

static int bench_throughput(void *arg) {
  double *best = arg;
  for (int r = 0; r < REPEAT; r++) {
    scio_tx *tx;
    scio_rx *rx;
    bench_check(scio_channel_open(sizeof(long), 1024, &tx, &rx), "open");
    scio_nursery n;
    scio_nursery_open(&n);
    bench_check(scio_start_soon(&n, producer, tx), "spawn");
    bench_check(scio_start_soon(&n, consumer, rx), "spawn");
    double t0 = bench_wall();
    bench_check(scio_nursery_close(&n), "close");
    double mips = (double)throughput_items / (bench_wall() - t0) / 1e6;
    if (mips > *best)
      *best = mips;
  }
  return 0;
}


int main(int argc, char **argv) {
  double best;
  if (bench_wanted(argc, argv, "chan_pingpong")) {
    best = 1e30;
    bench_check(scio_run(bench_pingpong, &best, NULL), "run");
    bench_report("chan_pingpong", best, "ns");
  }
  if (bench_wanted(argc, argv, "chan_throughput")) {
    best = 0;
    bench_check(scio_run(bench_throughput, &best, NULL), "run");
    bench_report("chan_throughput", best, "Mitems/s");
  }
  return 0;
}
