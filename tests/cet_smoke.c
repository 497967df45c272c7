/* A plain program for tests/cet.sh: the blocking calls that are routed
 * through the resume trampoline elsewhere (scio_checkpoint, scio_tx_send,
 * scio_rx_receive) and the switch itself, run against a libscio built with
 * -fcf-protection, where they are plain C.  Public API only; no Check.
 * Exits 0 and prints "cet_smoke: ok" when every result is as expected. */
#include <scio.h>
#include <stdio.h>

#define ROUNDS 1000

static int failed;

static void expect(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "cet_smoke: %s (errmsg: %s)\n", what, scio_errmsg());
    failed = 1;
  }
}

static int producer(void *arg) {
  scio_tx *tx = arg;
  for (int i = 0; i < ROUNDS; i++)
    if (scio_tx_send(tx, &i) != 0)
      return -1;
  return scio_tx_close(tx);
}

/* Receive at two depths, so that tasks resume at different call sites. */
static __attribute__((noinline)) int receive_deep(scio_rx *rx, int *v,
                                                  int depth) {
  return depth ? receive_deep(rx, v, depth - 1) : scio_rx_receive(rx, v);
}

static int consumer(void *arg) {
  scio_rx *rx = arg;
  long sum = 0;
  int v, rc;
  for (int i = 0; (rc = receive_deep(rx, &v, i & 3)) == 0; i++) {
    sum += v;
    if (scio_checkpoint() != 0)
      return -1;
  }
  expect(rc == SCIO_EOF, "receive after the sender closed");
  expect(sum == (long)ROUNDS * (ROUNDS - 1) / 2, "items lost or changed");
  return scio_rx_close(rx);
}

static int yielder(void *arg) {
  long *count = arg;
  for (int i = 0; i < ROUNDS; i++) {
    if (scio_checkpoint() != 0)
      return -1;
    ++*count;
  }
  return 0;
}

static int body(void *arg) {
  (void)arg;
  scio_tx *tx;
  scio_rx *rx;
  expect(scio_channel_open(sizeof(int), 0, &tx, &rx) == 0, "channel_open");
  long a = 0, b = 0;
  scio_nursery n;
  expect(scio_nursery_open(&n) == 0, "nursery_open");
  expect(scio_start_soon(&n, producer, tx) == 0, "start producer");
  expect(scio_start_soon(&n, consumer, rx) == 0, "start consumer");
  expect(scio_start_soon(&n, yielder, &a) == 0, "start yielder");
  expect(scio_start_soon(&n, yielder, &b) == 0, "start yielder");
  expect(scio_nursery_close(&n) == 0, "nursery_close");
  expect(a == ROUNDS && b == ROUNDS, "yielders did not finish");
  /* A cancelled checkpoint comes back as SCIO_ECANCELED. */
  scio_scope cs;
  expect(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0) == 0, "scope_open");
  scio_scope_cancel(&cs);
  expect(scio_checkpoint() == SCIO_ECANCELED, "cancelled checkpoint");
  scio_scope_close(&cs);
  return 0;
}

int main(void) {
  int rc = scio_run(body, NULL, NULL);
  expect(rc == 0, "scio_run");
  if (failed)
    return 1;
  printf("cet_smoke: ok\n");
  return 0;
}
