/* Stream checks: closing, by either end, while the other end is busy or
 * blocked, and calls on a stream whose close is in flight.  What each
 * asserts: include/scio/streamcheck.h. */
#include <stdio.h>
#include <string.h>

#include "kit.h"

#define EQ(what, got, want) scio__kit_eq(k, (what), (got), (want))
#define EITHER(what, got, w1, w2) scio__kit_either(k, (what), (got), (w1), (w2))

/* A stream that accepts this much without ever reporting EBROKEN after its
 * peer closed has not noticed. */
#define KIT_MAX_SENDS ((unsigned long)1 << 20)

typedef struct send_loop {
  scio_stream *s;
  ssize_t rc;
  unsigned long sends;
} send_loop;

/* Send 100 bytes at a time until a send fails. */
static int send_until_error(void *arg) {
  send_loop *l = arg;
  unsigned char chunk[100];
  memset(chunk, 'x', sizeof chunk);
  for (l->sends = 0; l->sends < KIT_MAX_SENDS; l->sends++)
    if ((l->rc = scio_send(l->s, chunk, sizeof chunk)) != 0)
      break;
  return 0;
}

static void close_cancelled(kit *k, scio_stream **end, const char *what) {
  scio_scope cs;
  if (scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0) < 0)
    return;
  scio_scope_cancel(&cs);
  int rc = scio__kit_close(end);
  scio_scope_close(&cs);
  EITHER(what, rc, 0, SCIO_ECANCELED);
}

static void expect_broken(kit *k, const send_loop *l) {
  if (l->rc == 0)
    scio__kit_fail(k, "%lu sends of 100 bytes succeeded after the receiving "
                      "end was closed (expected EBROKEN)",
                   l->sends);
  else if (EQ("send after the receiving end was closed", l->rc,
              SCIO_EBROKEN))
    EQ("send again (the stream stays broken)",
       scio_send(l->s, "xyz", 3), SCIO_EBROKEN);
}

/* r closes while s sends in a loop: the sender sees SCIO_EBROKEN. */
int scio__kit_close_receiver(kit *k, kpair *p) {
  send_loop l = {p->s, 0, 0};
  kop cl;
  scio__kop_init(&cl, k, &p->r, KOP_CLOSE);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = scio_start_soon(&n, send_until_error, &l)) == 0)
    rc = kit_spawn(&n, &cl);
  scio_nursery_close(&n);
  if (rc == 0 && EQ("close of the receiving end", cl.rc, 0))
    expect_broken(k, &l);
  return rc;
}

/* Trio's aclose_forcefully on r (a cancelled close still closes). */
int scio__kit_close_receiver_cancelled(kit *k, kpair *p) {
  close_cancelled(k, &p->r, "close of the receiving end in a cancelled scope");
  send_loop l = {p->s, 0, 0};
  if (!k->failed) {
    send_until_error(&l);
    expect_broken(k, &l);
  }
  return 0;
}

/* After s is gone, r gets SCIO_EOF or SCIO_EBROKEN, never data, and
 * again on the next receive. */
int scio__kit_close_sender(kit *k, kpair *p) {
  unsigned char c;
  close_cancelled(k, &p->s, "close of the sending end in a cancelled scope");
  if (k->failed)
    return 0;
  ssize_t first = scio_receive(p->r, &c, 1);
  if (EITHER("receive after the peer was closed", first, SCIO_EOF,
             SCIO_EBROKEN))
    EQ("receive again after the peer was closed", scio_receive(p->r, &c, 1),
       first);
  return 0;
}

typedef struct send_close {
  scio_stream **s;
  ssize_t send_rc, close_rc;
} send_close;

static int send_then_close(void *arg) {
  send_close *sc = arg;
  sc->send_rc = scio_send(*sc->s, "y", 1);
  sc->close_rc = scio__kit_close(sc->s);
  return 0;
}

/* s sends and closes before r reads: r gets the byte, then SCIO_EOF (and
 * SCIO_EOF again, however often it asks). */
int scio__kit_send_then_close(kit *k, kpair *p) {
  unsigned char c = 0;
  send_close sc = {&p->s, 1, 1};
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = scio_start_soon(&n, send_then_close, &sc)) == 0) {
    scio_wait_all_tasks_blocked();
    if (EQ("receive(max 1)", scio_receive(p->r, &c, 1), 1) &&
        EQ("byte received", c, 'y'))
      for (int i = 0; i < 3 && !k->failed; i++)
        EQ("receive after the peer sent and closed",
           scio_receive(p->r, &c, 1), SCIO_EOF);
    if (!k->failed)
      EQ("close of the receiving end", scio__kit_close(&p->r), 0);
  }
  scio_nursery_close(&n);
  if (rc == 0 && EQ("send(\"y\")", sc.send_rc, 0))
    EQ("close of the sending end", sc.close_rc, 0);
  return rc;
}

/* Close an end while a receive is blocked on r. */
static int close_under_receive(kit *k, kpair *p, scio_stream **end,
                               kop *rx) {
  unsigned char buf[10];
  kop_recv(rx, k, &p->r, buf, sizeof buf);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, rx)) == 0) {
    scio_wait_all_tasks_blocked();
    EQ("close while a receive is blocked", scio__kit_close(end), 0);
  }
  scio_nursery_close(&n);
  return rc;
}

/* Closing r wakes a receive blocked on r with SCIO_ECLOSED. */
int scio__kit_close_wakes(kit *k, kpair *p) {
  kop rx;
  int rc = close_under_receive(k, p, &p->r, &rx);
  if (rc == 0)
    EQ("receive blocked when its stream was closed", rx.rc, SCIO_ECLOSED);
  return rc;
}

/* Closing s wakes a receive blocked on r with SCIO_EOF (or EBROKEN). */
int scio__kit_close_wakes_peer(kit *k, kpair *p) {
  kop rx;
  int rc = close_under_receive(k, p, &p->s, &rx);
  if (rc == 0)
    EITHER("receive blocked when the peer was closed", rx.rc, SCIO_EOF,
           SCIO_EBROKEN);
  return rc;
}

enum { AC_CALLS = 8 };
static const char *const ac_names[AC_CALLS] = {
    "receive(max 1)", "receive(max 0)",  "send(\"x\")",    "send of 0 bytes",
    "send_eof",       "wait_send_ready", "stream_pending", "close again"};

typedef struct after_close {
  scio_stream *x;
  ssize_t rc[AC_CALLS];
  int done;
} after_close;

/* Runs during scio_close(x)'s checkpoint: x is closed but still there. */
static int calls_after_close(void *arg) {
  after_close *ac = arg;
  unsigned char c;
  ac->rc[0] = scio_receive(ac->x, &c, 1);
  ac->rc[1] = scio_receive(ac->x, &c, 0);
  ac->rc[2] = scio_send(ac->x, "x", 1);
  ac->rc[3] = scio_send(ac->x, "", 0);
  ac->rc[4] = scio_send_eof(ac->x);
  ac->rc[5] = scio_wait_send_ready(ac->x);
  ac->rc[6] = scio_stream_pending(ac->x);
  ac->rc[7] = scio_close(ac->x);
  ac->done = 1;
  return 0;
}

static int close_with_calls(kit *k, scio_stream **end, const char *which) {
  after_close ac;
  memset(&ac, 0, sizeof ac);
  ac.x = *end;
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = scio_start_soon(&n, calls_after_close, &ac)) == 0) {
    int crc = scio__kit_close(end);
    if (EQ("close", crc, 0) && !ac.done)
      scio__kit_fail(k, "scio_close(%s) returned without yielding (it is a "
                        "checkpoint)",
                     which);
  }
  scio_nursery_close(&n);
  for (int i = 0; rc == 0 && i < AC_CALLS && !k->failed; i++) {
    char what[64];
    snprintf(what, sizeof what, "%s on %s while its close ran", ac_names[i],
             which);
    EQ(what, ac.rc[i], SCIO_ECLOSED);
  }
  return rc;
}

/* Every call on an end whose close is in flight is SCIO_ECLOSED (a second
 * close included). */
int scio__kit_after_close(kit *k, kpair *p) {
  int rc = close_with_calls(k, &p->s, "the sending end");
  if (rc == 0 && !k->failed)
    rc = close_with_calls(k, &p->r, "the receiving end");
  return rc;
}
