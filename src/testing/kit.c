/* The stream conformance kit: running checks over fresh pairs, recording
 * the first failure, probes, test data (include/scio/streamcheck.h).
 *
 * Only the public API is used on the streams under test, as a user's own
 * test would; the core's internals serve for the error detail alone. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "kit.h"

#define KIT_DEFAULT_LARGE ((size_t)4 << 20)
#define KIT_DEFAULT_TIMEOUT 60.0

/* ------------------------------------------------------------------------ */
/* Failures                                                                  */

void scio__kit_fail(kit *k, const char *fmt, ...) {
  if (k->failed)
    return;
  /* A failure seen after the deadline is the deadline's doing: say so, the
   * expectation then names the call that was still blocked. */
  int late = k->scope && scio_scope_cancel_called(k->scope);
  int n = snprintf(k->msg, sizeof k->msg, "stream check %s (%s): %s",
                   k->check, k->dir, late ? "timed out while " : "");
  if (n < 0 || (size_t)n >= sizeof k->msg)
    n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->msg + n, sizeof k->msg - (size_t)n, fmt, ap);
  va_end(ap);
  k->failed = 1;
  if (k->scope)
    scio_scope_cancel(k->scope);
}

static const char *code_text(ssize_t v, char *buf, size_t len) {
  if (v < 0 && strcmp(scio_err_name((int)v), "UNKNOWN") != 0)
    return scio_err_name((int)v);
  snprintf(buf, len, "%zd", v);
  return buf;
}

int scio__kit_eq(kit *k, const char *what, ssize_t got, ssize_t want) {
  if (got == want)
    return 1;
  char g[24], w[24];
  scio__kit_fail(k, "%s: expected %s, got %s", what,
                 code_text(want, w, sizeof w), code_text(got, g, sizeof g));
  return 0;
}

int scio__kit_either(kit *k, const char *what, ssize_t got, ssize_t want1,
                     ssize_t want2) {
  if (got == want1 || got == want2)
    return 1;
  char g[24], w1[24], w2[24];
  scio__kit_fail(k, "%s: expected %s or %s, got %s", what,
                 code_text(want1, w1, sizeof w1),
                 code_text(want2, w2, sizeof w2),
                 code_text(got, g, sizeof g));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Probes: did a call yield?                                                 */

static void probe_step(void *ctx, scio_task *t) {
  kit *k = ctx;
  for (kprobe *p = k->probes; p; p = p->next)
    if (p->task == t)
      p->steps++;
}

void scio__kit_probe_begin(kit *k, kprobe *p) {
  p->task = scio_task_current();
  p->steps = 0;
  p->next = k->probes;
  k->probes = p;
}

unsigned long scio__kit_probe_end(kit *k, kprobe *p) {
  for (kprobe **pp = &k->probes; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  return p->steps;
}

int scio__kit_yielded(kit *k, const char *what, unsigned long steps) {
  if (steps > 0)
    return 1;
  scio__kit_fail(k, "%s: returned without yielding (every stream call but "
                    "attr and pending is a checkpoint)",
                 what);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                      */

uint64_t scio__kit_rand(uint64_t *state) {
  uint64_t x = *state; /* xorshift64: reproducible, not secure */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

void scio__kit_fill(const kit *k, unsigned char *buf, size_t n,
                    uint64_t seed) {
  uint64_t st = seed * 2654435761u + 1;
  int text = k->cfg->flags & SCIO_STREAM_KIT_TEXT;
  for (size_t i = 0; i < n; i++) {
    unsigned v = (unsigned)(scio__kit_rand(&st) >> 32);
    buf[i] = text ? (unsigned char)(' ' + v % 95) : (unsigned char)v;
  }
}

int scio__kit_recv_expect(kit *k, scio_stream *r, const unsigned char *want,
                          size_t n, size_t maxchunk, uint64_t seed) {
  unsigned char buf[16384];
  uint64_t st = seed + 77;
  if (maxchunk > sizeof buf)
    maxchunk = sizeof buf;
  for (size_t got = 0; got < n;) {
    size_t max = 1 + (size_t)(scio__kit_rand(&st) % maxchunk);
    ssize_t m = scio_receive(r, buf, max);
    if (m <= 0 || (size_t)m > max) {
      char g[24];
      scio__kit_fail(k, "receive(max %zu): expected data (%zu of %zu bytes "
                        "still due), got %s",
                     max, n - got, n, code_text(m, g, sizeof g));
      return -1;
    }
    if ((size_t)m > n - got || memcmp(buf, want + got, (size_t)m) != 0) {
      scio__kit_fail(k, "receive: bytes %zu..%zu differ from what was sent",
                     got, got + (size_t)m);
      return -1;
    }
    got += (size_t)m;
  }
  return 0;
}

int scio__kit_close(scio_stream **end) {
  scio_stream *s = *end;
  *end = NULL;
  return s ? scio_close(s) : 0;
}

/* ------------------------------------------------------------------------ */
/* One operation in a child task                                             */

void scio__kop_init(kop *o, kit *k, scio_stream **st, int kind) {
  memset(o, 0, sizeof *o);
  o->k = k;
  o->st = st;
  o->kind = kind;
  o->rc = 1; /* no call returns 1 here except a one-byte receive */
}

static ssize_t kop_call(kop *o) {
  scio_stream *s = *o->st;
  switch (o->kind) {
  case KOP_RECEIVE:
    return scio_receive(s, o->rbuf, o->len);
  case KOP_SEND:
    return scio_send(s, o->sbuf, o->len);
  case KOP_SEND_EOF:
    return scio_send_eof(s);
  case KOP_WAIT:
    return scio_wait_send_ready(s);
  case KOP_WAIT_RECEIVE:
    return scio_wait_receive_ready(s);
  default:
    return scio__kit_close(o->st);
  }
}

ssize_t scio__kop_run(kop *o) {
  kprobe p;
  scio__kit_probe_begin(o->k, &p);
  o->rc = kop_call(o);
  o->steps = scio__kit_probe_end(o->k, &p);
  o->done = 1;
  return o->rc;
}

int scio__kop_task(void *arg) {
  kop *o = arg;
  if (o->wait_first)
    scio_wait_all_tasks_blocked();
  if (o->own_scope && scio_scope_open(&o->scope, SCIO_DEADLINE_NONE, 0) < 0)
    o->own_scope = 0;
  scio__kop_run(o);
  if (o->own_scope)
    scio_scope_close(&o->scope);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Running checks                                                            */

static int make_pair(kit *k, const kit_check *c, kpair *p) {
  scio_stream *a = NULL, *b = NULL;
  scio_stream_pair_fn make = c->clogged ? k->cfg->make_clogged : k->cfg->make;
  int rc = make(&a, &b, k->cfg->arg);
  if (rc == 0 && (!a || !b || a == b))
    rc = scio__seterr(SCIO_EINVAL, "stream check %s: make returned 0 "
                                   "without two distinct streams",
                      c->name);
  if (rc < 0) {
    if (a != b)
      scio_close(b);
    scio_close(a);
    return rc;
  }
  p->s = k->flip ? b : a;
  p->r = k->flip ? a : b;
  return 0;
}

/* Trio's aclose_forcefully: a close in a cancelled scope still releases
 * the stream, and cannot block on a peer. */
static void close_forcefully(kpair *p) {
  scio_scope cs;
  if (scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0) == 0) {
    scio_scope_cancel(&cs);
    scio__kit_close(&p->s);
    scio__kit_close(&p->r);
    scio_scope_close(&cs);
  }
}

static int run_one(kit *k, const kit_check *c) {
  kpair p;
  k->check = c->name;
  int rc = make_pair(k, c, &p);
  if (rc < 0)
    return rc;
  scio_scope cs;
  if ((rc = scio_scope_open(&cs, scio_now() + k->timeout, 0)) < 0) {
    close_forcefully(&p);
    return rc;
  }
  k->scope = &cs;
  rc = c->fn(k, &p);
  if (!k->failed && scio_scope_cancel_called(&cs))
    scio__kit_fail(k, "did not finish within %g s (a call blocked where it "
                      "must not)",
                   k->timeout);
  k->scope = NULL;
  scio_scope_close(&cs);
  close_forcefully(&p);
  if (k->failed)
    return scio__seterr(SCIO_STREAM_CHECK_FAILED, "%s", k->msg);
  return rc < 0 && rc != SCIO_ECANCELED ? rc : 0;
}

static int run_list(kit *k, const kit_check *list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (list[i].clogged && !k->cfg->make_clogged)
      continue;
    int rc = scio_checkpoint_if_cancelled();
    if (rc == 0)
      rc = run_one(k, &list[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int one_way(kit *k, int flip) {
  k->flip = flip;
  k->dir = flip ? "b->a" : "a->b";
  return run_list(k, scio__kit_one_way, scio__kit_one_way_n);
}

/* level 0: one-way; 1: two-way; 2: half-closeable. */
static int run_level(kit *k, int level) {
  int rc = one_way(k, 0);
  if (rc == 0 && level >= 1)
    rc = one_way(k, 1);
  k->flip = 0;
  k->dir = "a<->b";
  if (rc == 0 && level >= 1)
    rc = run_list(k, scio__kit_two_way, scio__kit_two_way_n);
  if (rc == 0 && level >= 2)
    rc = run_list(k, scio__kit_half_close, scio__kit_half_close_n);
  return rc;
}

static int kit_main(const scio_stream_kit *cfg, int level) {
  if (!cfg || !cfg->make || !(cfg->timeout >= 0))
    return scio__seterr(SCIO_EINVAL, "stream check: %s",
                        !cfg || !cfg->make ? "no make function"
                                           : "bad timeout");
  if (!scio_task_current())
    return scio__seterr(SCIO_EINVAL, "stream check: not inside a task");
  kit k;
  memset(&k, 0, sizeof k);
  k.cfg = cfg;
  k.timeout = cfg->timeout > 0 ? cfg->timeout : KIT_DEFAULT_TIMEOUT;
  k.large = cfg->large ? cfg->large : KIT_DEFAULT_LARGE;
  k.ins.after_task_step = probe_step;
  k.ins.ctx = &k;
  int rc = scio_instrument_add(&k.ins);
  if (rc < 0)
    return scio__seterr(rc, "stream check: no free instrument slot");
  rc = run_level(&k, level);
  scio_instrument_remove(&k.ins);
  return rc;
}

SCIO_API int scio_stream_check_one_way(const scio_stream_kit *kit) {
  return kit_main(kit, 0);
}

SCIO_API int scio_stream_check_two_way(const scio_stream_kit *kit) {
  return kit_main(kit, 1);
}

SCIO_API int scio_stream_check_half_closeable(const scio_stream_kit *kit) {
  return kit_main(kit, 2);
}
