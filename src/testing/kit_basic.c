/* Stream checks: sending and receiving, busy receivers, checkpoints and
 * cancellation (the one-way group; the rest is in kit_close.c and
 * kit_bulk.c).  What each asserts: include/scio/streamcheck.h. */
#include <string.h>

#include "kit.h"

#define EQ(what, got, want) scio__kit_eq(k, (what), (got), (want))

/* A send and a concurrent receive(max 1) meet, both yielding; an empty
 * send delivers nothing (the receiver keeps waiting, no EOF). */
static int ck_send_receive(kit *k, kpair *p) {
  unsigned char got[2] = {0, 0};
  kop rx, tx, empty, rx2;
  kop_recv(&rx, k, &p->r, &got[0], 1);
  kop_recv(&rx2, k, &p->r, &got[1], 1);
  kop_send(&tx, k, &p->s, "x", 1);
  kop_send(&empty, k, &p->s, "", 0);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &rx)) == 0)
    scio__kop_run(&tx);
  scio_nursery_close(&n);
  if (rc < 0 || !EQ("send(\"x\")", tx.rc, 0) ||
      !scio__kit_yielded(k, "send", tx.steps) ||
      !EQ("receive(max 1)", rx.rc, 1) || !EQ("byte received", got[0], 'x') ||
      !scio__kit_yielded(k, "receive", rx.steps))
    return rc;
  if ((rc = scio_nursery_open(&n)) < 0)
    return rc;
  if ((rc = kit_spawn(&n, &rx2)) == 0) {
    scio__kop_run(&empty);
    scio_wait_all_tasks_blocked();
    if (EQ("send of 0 bytes", empty.rc, 0) &&
        scio__kit_yielded(k, "send of 0 bytes", empty.steps) &&
        EQ("receive after a send of 0 bytes (still waiting)", rx2.done, 0))
      EQ("send(\"y\")", scio_send(p->s, "y", 1), 0);
  }
  scio_nursery_close(&n);
  if (rc == 0 && EQ("receive(max 1)", rx2.rc, 1))
    EQ("byte received", got[1], 'y');
  return rc;
}

/* Bad arguments, then receive(max 1) byte by byte and receive(max 0). */
static int ck_receive_small(kit *k, kpair *p) {
  unsigned char c = 0;
  if (!EQ("send(NULL, 1)", scio_send(p->s, NULL, 1), SCIO_EINVAL) ||
      !EQ("receive(NULL, 1)", scio_receive(p->r, NULL, 1), SCIO_EINVAL))
    return 0;
  kop tx;
  kop_send(&tx, k, &p->s, "abc", 3);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &tx)) == 0) {
    scio_wait_all_tasks_blocked();
    kop z;
    kop_recv(&z, k, &p->r, &c, 0);
    if (EQ("receive(max 0)", scio__kop_run(&z), 0) &&
        scio__kit_yielded(k, "receive(max 0)", z.steps))
      for (int i = 0; i < 3 && !k->failed; i++)
        if (EQ("receive(max 1)", scio_receive(p->r, &c, 1), 1))
          EQ("byte received", c, "abc"[i]);
  }
  scio_nursery_close(&n);
  if (rc == 0)
    EQ("send(\"abc\")", tx.rc, 0);
  return rc;
}

/* A second receiver is refused and takes nothing. */
static int ck_busy_receive(kit *k, kpair *p) {
  unsigned char got = 0, c;
  kop rx;
  kop_recv(&rx, k, &p->r, &got, 1);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &rx)) == 0) {
    scio_wait_all_tasks_blocked();
    if (EQ("second receive", scio_receive(p->r, &c, 1), SCIO_EBUSY) &&
        EQ("second receive(max 0)", scio_receive(p->r, &c, 0), SCIO_EBUSY))
      EQ("send(\"z\")", scio_send(p->s, "z", 1), 0);
  }
  scio_nursery_close(&n);
  if (rc == 0 && EQ("first receive", rx.rc, 1))
    EQ("byte received by the first receiver", got, 'z');
  return rc;
}

/* In a cancelled scope every call fails first and has no effect. */
static void cancelled_calls(kit *k, kpair *p) {
  unsigned char c;
  scio_scope cs;
  if (scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0) < 0)
    return;
  scio_scope_cancel(&cs);
  EQ("cancelled receive(max 1)", scio_receive(p->r, &c, 1), SCIO_ECANCELED);
  EQ("cancelled receive(max 0)", scio_receive(p->r, &c, 0), SCIO_ECANCELED);
  EQ("cancelled send(\"x\")", scio_send(p->s, "x", 1), SCIO_ECANCELED);
  EQ("cancelled send of 0 bytes", scio_send(p->s, "", 0), SCIO_ECANCELED);
  int w = scio_wait_send_ready(p->s);
  if (w != SCIO_ENOSYS)
    EQ("cancelled wait_send_ready", w, SCIO_ECANCELED);
  scio_scope_close(&cs);
}

/* Calls that can complete at once still yield; cancelled, they fail
 * without effect; the data is all there afterwards. */
static int ck_checkpoints(kit *k, kpair *p) {
  unsigned char c = 0, got = 0;
  kop tx, r1, z;
  kop_send(&tx, k, &p->s, "ab", 2);
  kop_recv(&r1, k, &p->r, &c, 1);
  kop_recv(&z, k, &p->r, &c, 0);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &tx)) == 0) {
    scio_wait_all_tasks_blocked();
    if (EQ("receive(max 1)", scio__kop_run(&r1), 1) && EQ("byte", c, 'a') &&
        scio__kit_yielded(k, "receive(max 1) with data waiting", r1.steps) &&
        EQ("receive(max 0)", scio__kop_run(&z), 0) &&
        scio__kit_yielded(k, "receive(max 0)", z.steps))
      cancelled_calls(k, p);
    if (!k->failed && EQ("receive after the cancelled calls",
                         scio_receive(p->r, &c, 1), 1))
      EQ("byte (nothing lost)", c, 'b');
  }
  scio_nursery_close(&n);
  if (rc < 0 || !EQ("send(\"ab\")", tx.rc, 0))
    return rc;
  /* Sending: with a receiver waiting, so that no stream needs a buffer. */
  kop rx, e, s1, w;
  kop_recv(&rx, k, &p->r, &got, 1);
  kop_send(&e, k, &p->s, "", 0);
  kop_send(&s1, k, &p->s, "c", 1);
  scio__kop_init(&w, k, &p->s, KOP_WAIT);
  if ((rc = scio_nursery_open(&n)) < 0)
    return rc;
  if ((rc = kit_spawn(&n, &rx)) == 0) {
    scio_wait_all_tasks_blocked();
    scio__kop_run(&w);
    if ((w.rc == SCIO_ENOSYS ||
         (EQ("wait_send_ready with a receiver waiting", w.rc, 0) &&
          scio__kit_yielded(k, "wait_send_ready", w.steps))) &&
        EQ("send of 0 bytes", scio__kop_run(&e), 0) &&
        scio__kit_yielded(k, "send of 0 bytes", e.steps))
      if (EQ("send(\"c\")", scio__kop_run(&s1), 0))
        scio__kit_yielded(k, "send(\"c\")", s1.steps);
  }
  scio_nursery_close(&n);
  if (rc == 0 && EQ("receive", rx.rc, 1))
    EQ("byte received (the cancelled send sent nothing)", got, 'c');
  return rc;
}

/* A receive cancelled while blocked loses nothing. */
static int ck_cancel_receive(kit *k, kpair *p) {
  unsigned char c, got[8];
  kop rx, rx2;
  kop_recv(&rx, k, &p->r, &c, 1);
  rx.own_scope = 1;
  kop_recv(&rx2, k, &p->r, got, sizeof got);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &rx)) == 0) {
    scio_wait_all_tasks_blocked();
    scio_scope_cancel(&rx.scope);
    scio_wait_all_tasks_blocked();
    if (EQ("receive cancelled while blocked", rx.rc, SCIO_ECANCELED) &&
        (rc = kit_spawn(&n, &rx2)) == 0) {
      scio_wait_all_tasks_blocked();
      EQ("send(\"q\")", scio_send(p->s, "q", 1), 0);
    }
  }
  scio_nursery_close(&n);
  if (rc == 0 && EQ("receive after the cancelled one", rx2.rc, 1))
    EQ("byte received", got[0], 'q');
  return rc;
}

/* A send and a receive cancelled before they start; then both ends close
 * cleanly at the same time. */
static int ck_cancelled_ops(kit *k, kpair *p) {
  unsigned char c;
  kop tx, rx, cs_, cr;
  kop_send(&tx, k, &p->s, "x", 1);
  kop_recv(&rx, k, &p->r, &c, 1);
  scio_scope cs;
  scio_nursery n;
  int rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  if (rc < 0)
    return rc;
  scio_scope_cancel(&cs);
  if ((rc = scio_nursery_open(&n)) == 0) {
    if ((rc = kit_spawn(&n, &tx)) == 0)
      rc = kit_spawn(&n, &rx);
    scio_nursery_close(&n);
  }
  scio_scope_close(&cs);
  if (rc < 0 || !EQ("send in a cancelled scope", tx.rc, SCIO_ECANCELED) ||
      !EQ("receive in a cancelled scope", rx.rc, SCIO_ECANCELED))
    return rc;
  scio__kop_init(&cs_, k, &p->s, KOP_CLOSE);
  scio__kop_init(&cr, k, &p->r, KOP_CLOSE);
  if ((rc = scio_nursery_open(&n)) < 0)
    return rc;
  if ((rc = kit_spawn(&n, &cs_)) == 0)
    rc = kit_spawn(&n, &cr);
  scio_nursery_close(&n);
  if (rc == 0 && EQ("close of the sending end", cs_.rc, 0) &&
      EQ("close of the receiving end", cr.rc, 0)) {
    scio__kit_yielded(k, "close", cs_.steps);
  }
  return rc;
}

/* Pending: not a checkpoint; > 0 means a receive completes on its own; 0
 * once everything was received. */
static int ck_pending(kit *k, kpair *p) {
  unsigned char got[3];
  kop tx;
  kop_send(&tx, k, &p->s, "abc", 3);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if ((rc = kit_spawn(&n, &tx)) == 0) {
    scio_wait_all_tasks_blocked();
    kprobe pr;
    scio__kit_probe_begin(k, &pr);
    ssize_t m = scio_stream_pending(p->r);
    unsigned long steps = scio__kit_probe_end(k, &pr);
    if (!EQ("stream_pending yields (it must not)", (ssize_t)steps, 0))
      m = -1;
    else if (m < 0)
      EQ("stream_pending", m, 3);
    /* With bytes pending, this receive must complete by itself; if it
     * blocks, the check's deadline names it. */
    size_t have = 0;
    while (m >= 0 && have < 3 && !k->failed) {
      ssize_t g = scio_receive(p->r, got + have, 3 - have);
      if (EQ(m > 0 ? "receive with bytes pending" : "receive",
             g > 0 ? 1 : g, 1))
        have += (size_t)g;
    }
    if (!k->failed && EQ("bytes received", memcmp(got, "abc", 3), 0) &&
        !(k->cfg->flags & SCIO_STREAM_KIT_CONTROL_BYTES)) {
      scio_wait_all_tasks_blocked();
      EQ("stream_pending once all was received", scio_stream_pending(p->r),
         0);
    }
  }
  scio_nursery_close(&n);
  if (rc == 0 && EQ("send(\"abc\")", tx.rc, 0) &&
      !(k->cfg->flags & SCIO_STREAM_KIT_CONTROL_BYTES))
    EQ("stream_pending of the sending end", scio_stream_pending(p->s), 0);
  return rc;
}

/* wait_receive_ready, where the stream answers it (a layer that cannot
 * tell returns SCIO_ENOSYS at once, and the check passes): it sleeps
 * while nothing can be received and refuses a second waiter and a
 * receive; a send wakes it with 0 and the byte stays for the receive;
 * ready at once it still yields; cancelled (before or while blocked) it
 * fails without effect; an end of stream makes it ready. */
static int ck_receive_ready(kit *k, kpair *p) {
  unsigned char c = 0;
  kop w, w2, wc;
  scio__kop_init(&w, k, &p->r, KOP_WAIT_RECEIVE);
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  int skip = 0;
  if ((rc = kit_spawn(&n, &w)) == 0) {
    scio_wait_all_tasks_blocked();
    if (w.done && w.rc == SCIO_ENOSYS)
      skip = 1;
    else if (EQ("wait_receive_ready with nothing sent (must block)", w.done,
                0) &&
             EQ("second wait_receive_ready", scio_wait_receive_ready(p->r),
                SCIO_EBUSY) &&
             EQ("receive during wait_receive_ready",
                scio_receive(p->r, &c, 1), SCIO_EBUSY))
      EQ("send(\"r\")", scio_send(p->s, "r", 1), 0);
  }
  scio_nursery_close(&n);
  if (rc < 0 || skip || !EQ("wait_receive_ready after a send", w.rc, 0))
    return rc;
  scio__kop_init(&w2, k, &p->r, KOP_WAIT_RECEIVE);
  if (!EQ("wait_receive_ready with a byte waiting", scio__kop_run(&w2), 0) ||
      !scio__kit_yielded(k, "wait_receive_ready with a byte waiting",
                         w2.steps))
    return 0;
  scio_scope cs;
  if ((rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0)) < 0)
    return rc;
  scio_scope_cancel(&cs);
  EQ("cancelled wait_receive_ready", scio_wait_receive_ready(p->r),
     SCIO_ECANCELED);
  scio_scope_close(&cs);
  if (k->failed || !EQ("receive after wait_receive_ready",
                       scio_receive(p->r, &c, 1), 1) ||
      !EQ("byte received", c, 'r'))
    return 0;
  /* Cancelled while blocked: nothing lost, the stream still works. */
  scio__kop_init(&wc, k, &p->r, KOP_WAIT_RECEIVE);
  wc.own_scope = 1;
  if ((rc = scio_nursery_open(&n)) < 0)
    return rc;
  if ((rc = kit_spawn(&n, &wc)) == 0) {
    scio_wait_all_tasks_blocked();
    scio_scope_cancel(&wc.scope);
  }
  scio_nursery_close(&n);
  if (rc < 0 ||
      !EQ("wait_receive_ready cancelled while blocked", wc.rc,
          SCIO_ECANCELED))
    return rc;
  /* An end of stream (send_eof, or closing the sender) makes it ready. */
  int eof = scio_send_eof(p->s);
  if (eof == SCIO_ENOSYS)
    eof = scio__kit_close(&p->s);
  if (!EQ("send_eof (or close) of the sender", eof, 0))
    return 0;
  if (EQ("wait_receive_ready at the end of stream",
         scio_wait_receive_ready(p->r), 0))
    EQ("receive at the end of stream", scio_receive(p->r, &c, 1), SCIO_EOF);
  return 0;
}

/* receive_nowait and send_nowait, where the stream answers them
 * (SCIO_ENOSYS from receive_nowait skips the check): not checkpoints (a
 * cancelled scope does not stop them); nothing to receive is
 * SCIO_EWOULDBLOCK; refused while a receive runs; what send_nowait takes
 * arrives in order, the rest going by a plain send; after
 * wait_receive_ready a receive_nowait has the bytes; the end of stream is
 * SCIO_EOF, and send_nowait after send_eof is SCIO_ECLOSED. */
static int ck_nowait(kit *k, kpair *p) {
  unsigned char got[8];
  scio_scope cs;
  int rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  if (rc < 0)
    return rc;
  scio_scope_cancel(&cs);
  ssize_t n = scio_receive_nowait(p->r, got, sizeof got);
  ssize_t zero = scio_receive_nowait(p->r, got, 0);
  scio_scope_close(&cs);
  if (n == SCIO_ENOSYS)
    return 0;
  if (!EQ("receive_nowait with nothing sent, in a cancelled scope", n,
          SCIO_EWOULDBLOCK) ||
      !EQ("receive_nowait of 0 bytes", zero, 0))
    return 0;
  /* A receive blocked on the stream makes receive_nowait busy. */
  kop rx;
  kop_recv(&rx, k, &p->r, got, 1);
  scio_nursery nu;
  if ((rc = scio_nursery_open(&nu)) < 0)
    return rc;
  if ((rc = kit_spawn(&nu, &rx)) == 0) {
    scio_wait_all_tasks_blocked();
    EQ("receive_nowait during a receive", scio_receive_nowait(p->r, got, 1),
       SCIO_EBUSY);
    EQ("send(\"a\")", scio_send(p->s, "a", 1), 0);
  }
  scio_nursery_close(&nu);
  if (rc < 0 || k->failed || !EQ("receive of \"a\"", rx.rc, 1) ||
      !EQ("byte received", got[0], 'a'))
    return rc;
  /* send_nowait in a cancelled scope: a prefix, or nothing; the rest by a
   * plain send in a child (a pipe without buffer takes it only from a
   * waiting receiver). */
  if ((rc = scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0)) < 0)
    return rc;
  scio_scope_cancel(&cs);
  ssize_t sent = scio_send_nowait(p->s, "bcd", 3);
  scio_scope_close(&cs);
  if (sent == SCIO_ENOSYS || sent == SCIO_EWOULDBLOCK)
    sent = 0;
  if (sent < 0 || sent > 3) {
    EQ("send_nowait of 3 bytes (a prefix or SCIO_EWOULDBLOCK)", sent, 3);
    return 0;
  }
  static const char bcd[] = "bcd";
  kop tx;
  kop_send(&tx, k, &p->s, bcd + sent, (size_t)(3 - sent));
  if ((rc = scio_nursery_open(&nu)) < 0)
    return rc;
  size_t have = 0;
  if ((rc = kit_spawn(&nu, &tx)) == 0) {
    while (have < 3 && !k->failed) {
      if (!EQ("wait_receive_ready before receive_nowait",
              scio_wait_receive_ready(p->r), 0))
        break;
      n = scio_receive_nowait(p->r, got + have, 3 - have);
      if (n == SCIO_EWOULDBLOCK) /* stale readiness: allowed, rare */
        continue;
      if (n <= 0) {
        EQ("receive_nowait after wait_receive_ready (bytes)", n, 1);
        break;
      }
      have += (size_t)n;
    }
  }
  scio_nursery_close(&nu);
  if (rc < 0 || k->failed || !EQ("rest sent by send", tx.rc, 0) ||
      !EQ("bytes in order", memcmp(got, "bcd", 3), 0))
    return rc;
  int eof = scio_send_eof(p->s);
  int eof_sent = eof == 0;
  if (eof == SCIO_ENOSYS)
    eof = scio__kit_close(&p->s);
  if (!EQ("send_eof (or close) of the sender", eof, 0))
    return 0;
  if (eof_sent) {
    n = scio_send_nowait(p->s, "x", 1);
    if (n != SCIO_ENOSYS)
      EQ("send_nowait after send_eof", n, SCIO_ECLOSED);
  }
  if (EQ("wait_receive_ready at the end of stream",
         scio_wait_receive_ready(p->r), 0))
    EQ("receive_nowait at the end of stream",
       scio_receive_nowait(p->r, got, 1), SCIO_EOF);
  return 0;
}

const kit_check scio__kit_one_way[] = {
    {"send_receive", ck_send_receive, 0},
    {"receive_small", ck_receive_small, 0},
    {"busy_receive", ck_busy_receive, 0},
    {"checkpoints", ck_checkpoints, 0},
    {"cancel_receive", ck_cancel_receive, 0},
    {"cancelled_ops", ck_cancelled_ops, 0},
    {"pending", ck_pending, 0},
    {"receive_ready", ck_receive_ready, 0},
    {"nowait", ck_nowait, 0},
    {"tiny_writes", scio__kit_bulk_tiny, 0},
    {"large_write", scio__kit_bulk_large, 0},
    {"cancel_send", scio__kit_bulk_cancel_send, 0},
    {"close_receiver", scio__kit_close_receiver, 0},
    {"close_receiver_cancelled", scio__kit_close_receiver_cancelled, 0},
    {"close_sender", scio__kit_close_sender, 0},
    {"send_then_close", scio__kit_send_then_close, 0},
    {"close_wakes", scio__kit_close_wakes, 0},
    {"close_wakes_peer", scio__kit_close_wakes_peer, 0},
    {"after_close", scio__kit_after_close, 0},
    {"clogged_wait", scio__kit_clogged_wait, 1},
    {"clogged_busy_wait", scio__kit_clogged_busy_wait, 1},
    {"clogged_busy_send", scio__kit_clogged_busy_send, 1},
    {"clogged_close_receiver", scio__kit_clogged_close_receiver, 1},
    {"clogged_close_receiver_send", scio__kit_clogged_close_receiver_send,
     1},
    {"clogged_close_sender", scio__kit_clogged_close_sender, 1},
    {"clogged_close_sender_wait", scio__kit_clogged_close_sender_wait, 1},
};
const size_t scio__kit_one_way_n =
    sizeof scio__kit_one_way / sizeof scio__kit_one_way[0];
