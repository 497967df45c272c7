/* Stream checks on clogged pairs (a send on s blocks until r receives),
 * the half-close checks, and the two-way and half-close lists.  What each
 * asserts: include/scio/streamcheck.h. */
#include <stdio.h>
#include <string.h>

#include "kit.h"

#define EQ(what, got, want) scio__kit_eq(k, (what), (got), (want))
#define EITHER(what, got, w1, w2) scio__kit_either(k, (what), (got), (w1), (w2))

/* ------------------------------------------------------------------------ */
/* A send or a wait_send_ready blocked on the clogged end                    */

typedef void (*blocked_fn)(kit *k, kpair *p, kop *o, scio_nursery *n);

static const char *kind_name(int kind) {
  return kind == KOP_SEND ? "send(\"123\")" : "wait_send_ready";
}

/* Block o (a send or a wait on s), then run fn.  A wait the stream does
 * not have (SCIO_ENOSYS) skips fn: the caller sees o->rc. */
static int with_blocked(kit *k, kpair *p, int kind, kop *o, blocked_fn fn) {
  scio__kop_init(o, k, &p->s, kind);
  o->sbuf = "123";
  o->len = 3;
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, o)) == 0) {
    scio_wait_all_tasks_blocked();
    if (!o->done)
      fn(k, p, o, &n);
    else if (o->rc != SCIO_ENOSYS)
      scio__kit_fail(k, "%s on a clogged pair did not block (it returned "
                        "%zd)",
                     kind_name(kind), o->rc);
  }
  scio_nursery_close(&n);
  return rc;
}

static void refuse_wait_and_send(kit *k, kpair *p, kop *o, scio_nursery *n) {
  (void)o;
  EQ("wait_send_ready during a blocked wait_send_ready",
     scio_wait_send_ready(p->s), SCIO_EBUSY);
  EQ("send during a blocked wait_send_ready", scio_send(p->s, "123", 3),
     SCIO_EBUSY);
  scio_nursery_cancel(n);
}

int scio__kit_clogged_busy_wait(kit *k, kpair *p) {
  kop o;
  return with_blocked(k, p, KOP_WAIT, &o, refuse_wait_and_send);
}

static void refuse_send(kit *k, kpair *p, kop *o, scio_nursery *n) {
  (void)o;
  EQ("send during a blocked send", scio_send(p->s, "123", 3), SCIO_EBUSY);
  int rc = scio_wait_send_ready(p->s);
  if (rc != SCIO_ENOSYS)
    EQ("wait_send_ready during a blocked send", rc, SCIO_EBUSY);
  scio_nursery_cancel(n);
}

int scio__kit_clogged_busy_send(kit *k, kpair *p) {
  kop o;
  return with_blocked(k, p, KOP_SEND, &o, refuse_send);
}

static void close_receiver(kit *k, kpair *p, kop *o, scio_nursery *n) {
  (void)o, (void)n;
  EQ("close of the receiving end", scio__kit_close(&p->r), 0);
}

static void close_sender(kit *k, kpair *p, kop *o, scio_nursery *n) {
  (void)o, (void)n;
  EQ("close of the sending end", scio__kit_close(&p->s), 0);
}

/* Closing r lets a blocked wait_send_ready go (0 or SCIO_EBROKEN), and
 * one started afterwards is a checkpoint with the same answer. */
int scio__kit_clogged_close_receiver(kit *k, kpair *p) {
  kop o, again;
  int rc = with_blocked(k, p, KOP_WAIT, &o, close_receiver);
  if (rc < 0 || o.rc == SCIO_ENOSYS || k->failed ||
      !EITHER("wait_send_ready blocked when the peer closed", o.rc, 0,
              SCIO_EBROKEN))
    return rc;
  scio__kop_init(&again, k, &p->s, KOP_WAIT);
  if (EITHER("wait_send_ready after the peer closed", scio__kop_run(&again),
             0, SCIO_EBROKEN))
    scio__kit_yielded(k, "wait_send_ready after the peer closed",
                      again.steps);
  return rc;
}

int scio__kit_clogged_close_receiver_send(kit *k, kpair *p) {
  kop o;
  int rc = with_blocked(k, p, KOP_SEND, &o, close_receiver);
  if (rc == 0 && !k->failed)
    EQ("send blocked when the peer closed", o.rc, SCIO_EBROKEN);
  return rc;
}

int scio__kit_clogged_close_sender(kit *k, kpair *p) {
  kop o;
  int rc = with_blocked(k, p, KOP_SEND, &o, close_sender);
  if (rc == 0 && !k->failed)
    EQ("send blocked when its stream was closed", o.rc, SCIO_ECLOSED);
  return rc;
}

int scio__kit_clogged_close_sender_wait(kit *k, kpair *p) {
  kop o;
  int rc = with_blocked(k, p, KOP_WAIT, &o, close_sender);
  if (rc == 0 && !k->failed && o.rc != SCIO_ENOSYS)
    EQ("wait_send_ready blocked when its stream was closed", o.rc,
       SCIO_ECLOSED);
  return rc;
}

/* wait_send_ready sleeps until the receiver starts receiving. */
typedef struct order {
  scio_stream **r;
  kop *w;
  int started, early; /* early: the wait had returned before this started */
} order;

static int drain_task(void *arg) {
  order *o = arg;
  unsigned char buf[16384];
  o->started = 1;
  o->early = o->w->done;
  while (scio_receive(*o->r, buf, sizeof buf) > 0)
    ;
  return 0;
}

/* Start the receiver, let the wait return, and stop the receiver. */
static void start_drain(order *o, scio_nursery *n) {
  if (scio_start_soon(n, drain_task, o) < 0)
    scio_nursery_cancel(n);
  while (!o->w->done && scio_checkpoint() == 0)
    ;
  scio_nursery_cancel(n);
}

int scio__kit_clogged_wait(kit *k, kpair *p) {
  kop w;
  scio__kop_init(&w, k, &p->s, KOP_WAIT);
  order o = {&p->r, &w, 0, 0};
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &w)) == 0) {
    scio_wait_all_tasks_blocked();
    if (!w.done)
      start_drain(&o, &n);
    else if (w.rc != SCIO_ENOSYS)
      scio__kit_fail(k, "wait_send_ready on a clogged pair returned %zd "
                        "before anything was received",
                     w.rc);
  }
  scio_nursery_close(&n);
  if (rc == 0 && !k->failed && w.rc != SCIO_ENOSYS &&
      EQ("wait_send_ready once the receiver started", w.rc, 0) &&
      scio__kit_yielded(k, "wait_send_ready", w.steps) &&
      (!o.started || o.early))
    scio__kit_fail(k, "wait_send_ready returned before the receiver "
                      "started");
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Half-close                                                                */

typedef struct eof_sender {
  kit *k;
  scio_stream **tx;
  ssize_t send_rc;
  kop eof;
} eof_sender;

static int send_x_then_eof(void *arg) {
  eof_sender *e = arg;
  e->send_rc = scio_send(*e->tx, "x", 1);
  scio__kop_init(&e->eof, e->k, e->tx, KOP_SEND_EOF);
  scio__kop_run(&e->eof);
  return 0;
}

/* "x" then EOF from *tx to *rx; afterwards *tx refuses sends and accepts
 * send_eof again. */
static int eof_direction(kit *k, scio_stream **tx, scio_stream **rx) {
  unsigned char buf[10];
  eof_sender e = {k, tx, 1, {0}};
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = scio_start_soon(&n, send_x_then_eof, &e)) == 0) {
    scio_wait_all_tasks_blocked();
    if (EQ("receive", scio_receive(*rx, buf, sizeof buf), 1) &&
        EQ("byte received", buf[0], 'x'))
      for (int i = 0; i < 3 && !k->failed; i++)
        EQ("receive after send_eof", scio_receive(*rx, buf, sizeof buf),
           SCIO_EOF);
  }
  scio_nursery_close(&n);
  if (rc < 0 || !EQ("send(\"x\")", e.send_rc, 0) ||
      !EQ("send_eof", e.eof.rc, 0) ||
      !scio__kit_yielded(k, "send_eof", e.eof.steps) ||
      !EQ("send after send_eof", scio_send(*tx, "y", 1), SCIO_ECLOSED))
    return rc;
  kop again;
  scio__kop_init(&again, k, tx, KOP_SEND_EOF);
  if (EQ("send_eof again", scio__kop_run(&again), 0))
    scio__kit_yielded(k, "send_eof again", again.steps);
  return 0;
}

int scio__kit_send_eof(kit *k, kpair *p) {
  scio_scope cs;
  int rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  if (rc < 0)
    return rc;
  scio_scope_cancel(&cs);
  EQ("send_eof in a cancelled scope", scio_send_eof(p->s), SCIO_ECANCELED);
  scio_scope_close(&cs);
  if (!k->failed)
    rc = eof_direction(k, &p->s, &p->r);
  if (rc == 0 && !k->failed)
    rc = eof_direction(k, &p->r, &p->s);
  return rc;
}

static void refuse_eof(kit *k, kpair *p, kop *o, scio_nursery *n) {
  char what[64];
  snprintf(what, sizeof what, "send_eof during a blocked %s",
           kind_name(o->kind));
  EQ(what, scio_send_eof(p->s), SCIO_EBUSY);
  scio_nursery_cancel(n);
}

int scio__kit_clogged_eof_send(kit *k, kpair *p) {
  kop o;
  return with_blocked(k, p, KOP_SEND, &o, refuse_eof);
}

int scio__kit_clogged_eof_wait(kit *k, kpair *p) {
  kop o;
  return with_blocked(k, p, KOP_WAIT, &o, refuse_eof);
}

int scio__kit_duplex(kit *k, kpair *p);
int scio__kit_close_while_receiving(kit *k, kpair *p);

const kit_check scio__kit_two_way[] = {
    {"duplex", scio__kit_duplex, 0},
    {"close_while_receiving", scio__kit_close_while_receiving, 0},
};
const size_t scio__kit_two_way_n =
    sizeof scio__kit_two_way / sizeof scio__kit_two_way[0];

const kit_check scio__kit_half_close[] = {
    {"send_eof", scio__kit_send_eof, 0},
    {"clogged_eof_send", scio__kit_clogged_eof_send, 1},
    {"clogged_eof_wait", scio__kit_clogged_eof_wait, 1},
};
const size_t scio__kit_half_close_n =
    sizeof scio__kit_half_close / sizeof scio__kit_half_close[0];
