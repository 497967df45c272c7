/* Private: the machinery of the stream conformance kit
 * (include/scio/streamcheck.h).
 *
 * A check is a function over one fresh pair (kpair: `s` sends, `r`
 * receives).  It never returns early from inside a nursery or a scope:
 * an expectation that fails records the first failure's message and
 * cancels the check's scope, so every task of the check unwinds with
 * SCIO_ECANCELED through its normal path and the check returns once its
 * nurseries are closed.  Child tasks always return 0; their results are
 * read by the check after the nursery closed.
 *
 * Whether a call yielded is seen by one instrument for the whole run of
 * the kit: a probe (kprobe, on the calling task's stack) counts the steps
 * its task ends while the probe is active. */
#ifndef SCIO_TESTING_KIT_H
#define SCIO_TESTING_KIT_H

#include <stdint.h>
#include <sys/types.h>

#include "scio/core.h"
#include "scio/streamcheck.h"

typedef struct kprobe {
  scio_task *task;
  unsigned long steps;
  struct kprobe *next;
} kprobe;

typedef struct kit {
  const scio_stream_kit *cfg;
  const char *check; /* the running check */
  const char *dir;   /* "a->b" or "b->a" */
  int flip;          /* pairs are used the other way round */
  int failed;        /* a failure was recorded (the first one counts) */
  scio_scope *scope; /* the running check's deadline scope */
  double timeout;
  size_t large;
  kprobe *probes;
  scio_instrument ins;
  char msg[512];
} kit;

typedef struct kpair {
  scio_stream *s, *r; /* NULL once a check closed it */
} kpair;

typedef int (*kit_fn)(kit *k, kpair *p);
typedef struct kit_check {
  const char *name;
  kit_fn fn;
  int clogged; /* run on a make_clogged pair (skipped without one) */
} kit_check;

/* Record a failure (the first one is kept) and cancel the check. */
__attribute__((format(printf, 2, 3))) void scio__kit_fail(kit *k,
                                                          const char *fmt,
                                                          ...);
/* got == want, else a failure "what: expected WANT, got GOT". Returns the
 * truth. */
int scio__kit_eq(kit *k, const char *what, ssize_t got, ssize_t want);
/* got is one of want1, want2. */
int scio__kit_either(kit *k, const char *what, ssize_t got, ssize_t want1,
                     ssize_t want2);

void scio__kit_probe_begin(kit *k, kprobe *p);
unsigned long scio__kit_probe_end(kit *k, kprobe *p);
/* A probed call must have yielded at least once. */
int scio__kit_yielded(kit *k, const char *what, unsigned long steps);

/* Deterministic test bytes (printable with SCIO_STREAM_KIT_TEXT). */
void scio__kit_fill(const kit *k, unsigned char *buf, size_t n,
                    uint64_t seed);
uint64_t scio__kit_rand(uint64_t *state);

/* Receive exactly n bytes that must equal want[0..n), with receive sizes
 * drawn from 1..maxchunk.  0, or a failure recorded. */
int scio__kit_recv_expect(kit *k, scio_stream *r, const unsigned char *want,
                          size_t n, size_t maxchunk, uint64_t seed);
/* Close *end (if not NULL) and forget it. */
int scio__kit_close(scio_stream **end);

/* One operation in a child task, its result read after the nursery. */
enum kop_kind {
  KOP_RECEIVE,
  KOP_SEND,
  KOP_SEND_EOF,
  KOP_WAIT,
  KOP_WAIT_RECEIVE,
  KOP_CLOSE
};
typedef struct kop {
  kit *k;
  scio_stream **st; /* the end, by reference: a close forgets it */
  int kind;
  const void *sbuf;
  void *rbuf;
  size_t len;
  ssize_t rc;
  unsigned long steps;
  int done, wait_first, own_scope;
  scio_scope scope; /* own_scope: cancel it to cancel just this op */
} kop;
void scio__kop_init(kop *o, kit *k, scio_stream **st, int kind);
/* Run the operation in this task (probed); returns and stores its result. */
ssize_t scio__kop_run(kop *o);
/* The same as a task body (after scio_wait_all_tasks_blocked with
 * wait_first, inside o->scope with own_scope); returns 0. */
int scio__kop_task(void *arg);

static inline void kop_recv(kop *o, kit *k, scio_stream **st, void *buf,
                            size_t len) {
  scio__kop_init(o, k, st, KOP_RECEIVE);
  o->rbuf = buf;
  o->len = len;
}

static inline void kop_send(kop *o, kit *k, scio_stream **st,
                            const void *buf, size_t len) {
  scio__kop_init(o, k, st, KOP_SEND);
  o->sbuf = buf;
  o->len = len;
}

static inline int kit_spawn(scio_nursery *n, kop *o) {
  return scio_start_soon(n, scio__kop_task, o);
}

/* The checks defined outside kit_basic.c (lists: kit_basic.c, kit_close.c
 * for the two-way and half-close groups). */
int scio__kit_bulk_tiny(kit *k, kpair *p);
int scio__kit_bulk_large(kit *k, kpair *p);
int scio__kit_bulk_cancel_send(kit *k, kpair *p);
int scio__kit_close_receiver(kit *k, kpair *p);
int scio__kit_close_receiver_cancelled(kit *k, kpair *p);
int scio__kit_close_sender(kit *k, kpair *p);
int scio__kit_send_then_close(kit *k, kpair *p);
int scio__kit_close_wakes(kit *k, kpair *p);
int scio__kit_close_wakes_peer(kit *k, kpair *p);
int scio__kit_after_close(kit *k, kpair *p);
int scio__kit_clogged_wait(kit *k, kpair *p);
int scio__kit_clogged_busy_wait(kit *k, kpair *p);
int scio__kit_clogged_busy_send(kit *k, kpair *p);
int scio__kit_clogged_close_receiver(kit *k, kpair *p);
int scio__kit_clogged_close_receiver_send(kit *k, kpair *p);
int scio__kit_clogged_close_sender(kit *k, kpair *p);
int scio__kit_clogged_close_sender_wait(kit *k, kpair *p);


/* The checks, by group. */
extern const kit_check scio__kit_one_way[];
extern const size_t scio__kit_one_way_n;
extern const kit_check scio__kit_two_way[];
extern const size_t scio__kit_two_way_n;
extern const kit_check scio__kit_half_close[];
extern const size_t scio__kit_half_close_n;

#endif
