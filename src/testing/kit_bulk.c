/* Stream checks: many tiny writes, one large write, a send cancelled while
 * blocked, and the full-duplex transfer.  What each asserts:
 * include/scio/streamcheck.h. */
#include <string.h>

#include "core/internal.h"
#include "kit.h"

#define EQ(what, got, want) scio__kit_eq(k, (what), (got), (want))
#define EITHER(what, got, w1, w2) scio__kit_either(k, (what), (got), (w1), (w2))

#define TINY_COUNT 256
#define DUPLEX_SIZE ((size_t)1 << 20)
#define DUPLEX_CHUNK ((size_t)16384)

typedef struct xfer {
  kit *k;
  scio_stream **st;
  const unsigned char *data;
  size_t n, maxchunk;
  uint64_t seed;
  ssize_t rc;
} xfer;

/* Receive x->n bytes equal to x->data (failures are recorded). */
static int recv_task(void *arg) {
  xfer *x = arg;
  x->rc = scio__kit_recv_expect(x->k, *x->st, x->data, x->n, x->maxchunk,
                                x->seed);
  return 0;
}

/* Send x->data in chunks of random sizes. */
static int send_task(void *arg) {
  xfer *x = arg;
  uint64_t st = x->seed + 13;
  x->rc = 0;
  for (size_t done = 0; done < x->n && x->rc == 0;) {
    size_t c = 1 + (size_t)(scio__kit_rand(&st) % x->maxchunk);
    c = c < x->n - done ? c : x->n - done;
    x->rc = scio_send(*x->st, x->data + done, c);
    done += c;
  }
  if (x->rc < 0)
    scio__kit_eq(x->k, "send (chunked)", x->rc, 0);
  return 0;
}

/* 256 one-byte sends, with empty sends between them. */
int scio__kit_bulk_tiny(kit *k, kpair *p) {
  unsigned char data[TINY_COUNT];
  scio__kit_fill(k, data, sizeof data, 1);
  xfer rx = {k, &p->r, data, sizeof data, 7, 2, 1};
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = scio_start_soon(&n, recv_task, &rx)) == 0)
    for (size_t i = 0; i < sizeof data && !k->failed; i++)
      if (EQ("send of 1 byte", scio_send(p->s, data + i, 1), 0) && i % 4 == 0)
        EQ("send of 0 bytes", scio_send(p->s, "", 0), 0);
  scio_nursery_close(&n);
  return rc;
}

/* While a large send is blocked, a second sender is refused. */
static void refused_while_sending(kit *k, kpair *p) {
  EQ("send during a blocked send", scio_send(p->s, "x", 1), SCIO_EBUSY);
  int rc = scio_send_eof(p->s);
  if (rc != SCIO_ENOSYS)
    EQ("send_eof during a blocked send", rc, SCIO_EBUSY);
  rc = scio_wait_send_ready(p->s);
  if (rc != SCIO_ENOSYS)
    EQ("wait_send_ready during a blocked send", rc, SCIO_EBUSY);
}

int scio__kit_bulk_large(kit *k, kpair *p) {
  unsigned char *data = scio__malloc(k->large);
  if (!data)
    return scio__seterr(SCIO_ENOMEM, "stream check: no memory for %zu bytes",
                        k->large);
  scio__kit_fill(k, data, k->large, 3);
  kop tx;
  kop_send(&tx, k, &p->s, data, k->large);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc == 0) {
    if ((rc = kit_spawn(&n, &tx)) == 0) {
      scio_wait_all_tasks_blocked();
      if (!tx.done)
        refused_while_sending(k, p);
      scio__kit_recv_expect(k, p->r, data, k->large, DUPLEX_CHUNK, 4);
    }
    scio_nursery_close(&n);
  }
  if (rc == 0 && EQ("large send", tx.rc, 0))
    EQ("stream_pending once all was received", scio_stream_pending(p->r), 0);
  scio__free(data);
  return rc;
}

/* What r receives after a send was cancelled while blocked and s closed: a
 * prefix of the send's bytes, then SCIO_EOF or SCIO_EBROKEN. */
static void expect_prefix(kit *k, kpair *p, const unsigned char *data,
                          ssize_t send_rc) {
  unsigned char buf[DUPLEX_CHUNK];
  size_t total = 0;
  ssize_t m;
  while ((m = scio_receive(p->r, buf, sizeof buf)) > 0) {
    if ((size_t)m > k->large - total ||
        memcmp(buf, data + total, (size_t)m) != 0) {
      scio__kit_fail(k, "after a cancelled send, bytes %zu..%zu received "
                        "are not the send's next bytes",
                     total, total + (size_t)m);
      return;
    }
    total += (size_t)m;
  }
  if (EITHER("receive after the cancelled send and close", m, SCIO_EOF,
             SCIO_EBROKEN) &&
      send_rc == 0)
    EQ("bytes received of a send that completed", (ssize_t)total,
       (ssize_t)k->large);
}

int scio__kit_bulk_cancel_send(kit *k, kpair *p) {
  unsigned char *data = scio__malloc(k->large);
  if (!data)
    return scio__seterr(SCIO_ENOMEM, "stream check: no memory for %zu bytes",
                        k->large);
  scio__kit_fill(k, data, k->large, 5);
  kop tx;
  kop_send(&tx, k, &p->s, data, k->large);
  tx.own_scope = 1;
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc == 0) {
    if ((rc = kit_spawn(&n, &tx)) == 0) {
      scio_wait_all_tasks_blocked();
      scio_scope_cancel(&tx.scope); /* too late if it is done: nothing */
    }
    scio_nursery_close(&n);
  }
  if (rc == 0 && EITHER("send cancelled while blocked", tx.rc,
                        SCIO_ECANCELED, 0) &&
      EQ("close after a cancelled send", scio__kit_close(&p->s), 0))
    expect_prefix(k, p, data, tx.rc);
  scio__free(data);
  return rc;
}

/* 1 MiB each way at once, random chunks, four tasks. */
int scio__kit_duplex(kit *k, kpair *p) {
  unsigned char *d = scio__malloc(2 * DUPLEX_SIZE);
  if (!d)
    return scio__seterr(SCIO_ENOMEM, "stream check: no memory");
  scio__kit_fill(k, d, DUPLEX_SIZE, 11);
  scio__kit_fill(k, d + DUPLEX_SIZE, DUPLEX_SIZE, 12);
  xfer x[4] = {
      {k, &p->s, d, DUPLEX_SIZE, DUPLEX_CHUNK, 0, 1},
      {k, &p->r, d + DUPLEX_SIZE, DUPLEX_SIZE, DUPLEX_CHUNK, 1, 1},
      {k, &p->s, d + DUPLEX_SIZE, DUPLEX_SIZE, DUPLEX_CHUNK, 2, 1},
      {k, &p->r, d, DUPLEX_SIZE, DUPLEX_CHUNK, 3, 1},
  };
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc == 0) {
    for (int i = 0; i < 4 && rc == 0; i++)
      rc = scio_start_soon(&n, i < 2 ? send_task : recv_task, &x[i]);
    scio_nursery_close(&n);
  }
  scio__free(d);
  return rc;
}

/* A receive blocked on one end while the other end closes: SCIO_EOF. */
int scio__kit_close_while_receiving(kit *k, kpair *p) {
  unsigned char buf[10];
  kop rx, cl;
  kop_recv(&rx, k, &p->r, buf, sizeof buf);
  scio__kop_init(&cl, k, &p->s, KOP_CLOSE);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &rx)) == 0)
    rc = kit_spawn(&n, &cl);
  scio_nursery_close(&n);
  if (rc == 0 && EQ("close", cl.rc, 0) &&
      EQ("receive while the peer closed", rx.rc, SCIO_EOF))
    EQ("close of the other end", scio__kit_close(&p->r), 0);
  return rc;
}
