/* Tests of include/scio/stapled.h: stapled byte and object streams.  The
 * halves are memory pipes and two tiny streams defined here (a byte stream
 * and an object stream that record what they are asked to do).  Every
 * async test runs once per backend (epoll, poll, select). */
#include <stdio.h>
#include <string.h>

#include "scio/pipe.h"
#include "scio/stapled.h"
#include "scio/testing.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* What happened to a test stream's resources. */
typedef struct life {
  int closes, frees;
} life;

/* ------------------------------------------------------------------------ */
/* A recording byte stream: send appends to `out`; no half-close.  It
 * answers SCIO_ATTR_USER and SCIO_ATTR_USER + v with v, and
 * SCIO_ATTR_BUFFERED with `buffered`.                                    */

typedef struct tb {
  scio_stream base;
  char out[64];
  size_t nout;
  int v;
  size_t buffered;
  int close_rc;
  scio_scope *cancel_on_close; /* cancelled by the close, if set */
  life *life;
} tb;

static int tb_send(scio_stream *s, const void *buf, size_t len) {
  tb *t = (tb *)s;
  ck_assert_uint_le(t->nout + len, sizeof t->out);
  memcpy(t->out + t->nout, buf, len);
  t->nout += len;
  return scio_checkpoint();
}

static ssize_t tb_receive(scio_stream *s, void *buf, size_t max) {
  (void)s;
  (void)buf;
  (void)max;
  int rc = scio_checkpoint();
  return rc < 0 ? rc : SCIO_EOF;
}

static int tb_close(scio_stream *s) {
  tb *t = (tb *)s;
  t->life->closes++;
  if (t->cancel_on_close)
    scio_scope_cancel(t->cancel_on_close);
  return t->close_rc;
}

static void tb_free(scio_stream *s) {
  tb *t = (tb *)s;
  t->life->frees++;
  free(t);
}

static int put_attr(const void *v, size_t size, void *out, size_t len) {
  if (len < size)
    return -ENOSPC;
  memcpy(out, v, size);
  return 0;
}

static int tb_attr(scio_stream *s, int key, void *out, size_t len) {
  tb *t = (tb *)s;
  if (key == SCIO_ATTR_USER || key == SCIO_ATTR_USER + t->v)
    return put_attr(&t->v, sizeof t->v, out, len);
  if (key == SCIO_ATTR_BUFFERED)
    return put_attr(&t->buffered, sizeof t->buffered, out, len);
  return -ENOENT;
}

static const scio_stream_ops tb_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "recording",
    .do_receive = tb_receive,
    .do_send = tb_send,
    .do_close = tb_close,
    .do_free = tb_free,
    .do_attr = tb_attr,
};

static tb *tb_new(int v, life *l) {
  tb *t = calloc(1, sizeof *t);
  ck_assert_ptr_nonnull(t);
  scio_stream_init(&t->base, &tb_ops, NULL);
  t->v = v;
  t->life = l;
  return t;
}

/* ------------------------------------------------------------------------ */
/* A tiny object stream of ints: send records items, receive hands out the
 * preloaded ones, then SCIO_EOF.  Same attributes as tb.                 */

typedef struct tq {
  scio_ostream base;
  int sent[16];
  int nsent;
  int load[16];
  int nload, next;
  int v;
  int close_rc;
  scio_scope *cancel_on_close; /* cancelled by the close, if set */
  life *life;
} tq;

static int tq_send(scio_ostream *s, const void *item) {
  tq *q = (tq *)s;
  if (q->nsent == 16)
    return SCIO_EBROKEN;
  memcpy(&q->sent[q->nsent++], item, sizeof(int));
  return scio_checkpoint();
}

static int tq_receive(scio_ostream *s, void *item) {
  tq *q = (tq *)s;
  int rc = scio_checkpoint();
  if (rc < 0)
    return rc;
  if (q->next == q->nload)
    return SCIO_EOF;
  memcpy(item, &q->load[q->next++], sizeof(int));
  return 0;
}

static int tq_close(scio_ostream *s) {
  tq *q = (tq *)s;
  q->life->closes++;
  if (q->cancel_on_close)
    scio_scope_cancel(q->cancel_on_close);
  return q->close_rc;
}

static void tq_free(scio_ostream *s) {
  tq *q = (tq *)s;
  q->life->frees++;
  free(q);
}

static int tq_attr(scio_ostream *s, int key, void *out, size_t len) {
  tq *q = (tq *)s;
  if (key == SCIO_ATTR_USER || key == SCIO_ATTR_USER + q->v)
    return put_attr(&q->v, sizeof q->v, out, len);
  if (key == SCIO_ATTR_BUFFERED) {
    size_t n = (size_t)(q->nload - q->next);
    return put_attr(&n, sizeof n, out, len);
  }
  return -ENOENT;
}

static const scio_ostream_ops tq_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "int-queue",
    .do_send = tq_send,
    .do_receive = tq_receive,
    .do_close = tq_close,
    .do_free = tq_free,
    .do_attr = tq_attr,
};

static tq *tq_new(size_t item_size, int v, life *l) {
  tq *q = calloc(1, sizeof *q);
  ck_assert_ptr_nonnull(q);
  scio_ostream_init(&q->base, &tq_ops, NULL, item_size);
  q->v = v;
  q->life = l;
  return q;
}

/* ------------------------------------------------------------------------ */
/* Byte streams                                                              */

typedef struct pipes {
  scio_stream *a1, *b1, *a2, *b2;
} pipes;

static void pipes_open(pipes *p) {
  CK_OK(scio_memory_pipe_open(&p->a1, &p->b1, NULL));
  CK_OK(scio_memory_pipe_open(&p->a2, &p->b2, NULL));
}

SCIO_TEST(byte_routing) {
  pipes p;
  pipes_open(&p);
  scio_stream *st;
  CK_OK(scio_stapled_open(p.a1, p.b2, &st));
  char buf[16];
  CK_OK(scio_send(st, "ping", 4));
  ck_assert_int_eq(scio_receive(p.b1, buf, sizeof buf), 4);
  ck_assert(memcmp(buf, "ping", 4) == 0);
  CK_OK(scio_send(p.a2, "pong!", 5));
  ck_assert_int_eq(scio_receive(st, buf, sizeof buf), 5);
  ck_assert(memcmp(buf, "pong!", 5) == 0);
  CK_OK(scio_stream_attr(st, SCIO_ATTR_LAYER, buf, sizeof buf));
  ck_assert_str_eq(buf, "stapled");
  /* BUFFERED is the receive half's, not the send half's. */
  CK_OK(scio_send(p.b1, "abc", 3));     /* waits in a1, the send half */
  CK_OK(scio_send(p.a2, "1234567", 7)); /* waits in b2, the receive half */
  size_t n = 0;
  CK_OK(scio_stream_attr(st, SCIO_ATTR_BUFFERED, &n, sizeof n));
  ck_assert_uint_eq(n, 7);
  int fd;
  ck_assert_int_eq(scio_stream_fd(st, &fd), -ENOENT);
  /* Close closes both: FIN towards b1, EBROKEN for a2. */
  CK_OK(scio_close(st));
  ck_assert_int_eq(scio_receive(p.b1, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_send(p.a2, "x", 1), SCIO_EBROKEN);
  CK_OK(scio_close(p.b1));
  CK_OK(scio_close(p.a2));
  return 0;
}

/* Two pipes and two stapled streams make one full-duplex connection. */
static int echo_once(void *arg) {
  scio_stream *s = arg;
  char buf[64];
  ssize_t n = scio_receive(s, buf, sizeof buf);
  if (n < 0)
    return (int)n;
  int rc = scio_send(s, buf, (size_t)n);
  return rc < 0 ? rc : scio_send_eof(s);
}

SCIO_TEST(byte_duplex_connection) {
  pipes p;
  pipes_open(&p);
  scio_stream *client, *server;
  CK_OK(scio_stapled_open(p.a1, p.b2, &client));
  CK_OK(scio_stapled_open(p.a2, p.b1, &server));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, echo_once, server));
  CK_OK(scio_send(client, "echo me", 7));
  char buf[16];
  ck_assert_int_eq(scio_receive(client, buf, sizeof buf), 7);
  ck_assert(memcmp(buf, "echo me", 7) == 0);
  ck_assert_int_eq(scio_receive(client, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_close(client));
  CK_OK(scio_close(server));
  return 0;
}

SCIO_TEST(byte_attr_order) {
  life lt = {0, 0}, lr = {0, 0};
  tb *tx = tb_new(1, &lt), *rx = tb_new(2, &lr);
  tx->buffered = 100;
  rx->buffered = 5;
  scio_stream *st;
  CK_OK(scio_stapled_open(&tx->base, &rx->base, &st));
  int v = 0;
  CK_OK(scio_stream_attr(st, SCIO_ATTR_USER, &v, sizeof v));
  ck_assert_int_eq(v, 1); /* the send half answers first */
  CK_OK(scio_stream_attr(st, SCIO_ATTR_USER + 2, &v, sizeof v));
  ck_assert_int_eq(v, 2); /* only the receive half knows it */
  ck_assert_int_eq(scio_stream_attr(st, SCIO_ATTR_USER + 3, &v, sizeof v),
                   -ENOENT);
  ck_assert_int_eq(scio_stream_attr(st, SCIO_ATTR_USER, &v, 1), -ENOSPC);
  size_t n = 0;
  CK_OK(scio_stream_attr(st, SCIO_ATTR_BUFFERED, &n, sizeof n));
  ck_assert_uint_eq(n, 5);
  CK_OK(scio_close(st));
  ck_assert_int_eq(lt.closes + lt.frees + lr.closes + lr.frees, 4);
  return 0;
}

SCIO_TEST(byte_send_eof_goes_to_send_half) {
  pipes p;
  pipes_open(&p);
  scio_stream *st;
  CK_OK(scio_stapled_open(p.a1, p.b2, &st));
  CK_OK(scio_send(st, "last", 4));
  CK_OK(scio_send_eof(st));
  char buf[8];
  ck_assert_int_eq(scio_receive(p.b1, buf, sizeof buf), 4);
  ck_assert_int_eq(scio_receive(p.b1, buf, sizeof buf), SCIO_EOF);
  ck_assert_int_eq(scio_send(st, "x", 1), SCIO_ECLOSED);
  /* The receive half is untouched. */
  CK_OK(scio_send(p.a2, "still", 5));
  ck_assert_int_eq(scio_receive(st, buf, sizeof buf), 5);
  CK_OK(scio_close(st));
  CK_OK(scio_close(p.b1));
  CK_OK(scio_close(p.a2));
  return 0;
}

SCIO_TEST(byte_send_eof_closes_half_without_half_close) {
  life lt = {0, 0};
  tb *tx = tb_new(1, &lt);
  scio_stream *a2, *b2;
  CK_OK(scio_memory_pipe_open(&a2, &b2, NULL));
  scio_stream *st;
  CK_OK(scio_stapled_open(&tx->base, b2, &st));
  CK_OK(scio_send(st, "hi", 2));
  ck_assert_int_eq(tx->nout, 2);
  CK_OK(scio_send_eof(st));
  ck_assert_int_eq(lt.closes, 1);
  ck_assert_int_eq(lt.frees, 1); /* the half is gone */
  ck_assert_int_eq(scio_send(st, "x", 1), SCIO_ECLOSED);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "send_eof"));
  CK_OK(scio_send_eof(st)); /* idempotent */
  int v;
  ck_assert_int_eq(scio_stream_attr(st, SCIO_ATTR_USER, &v, sizeof v),
                   -ENOENT);
  CK_OK(scio_send(a2, "ok", 2));
  char buf[4];
  ck_assert_int_eq(scio_receive(st, buf, sizeof buf), 2);
  CK_OK(scio_close(st));
  ck_assert_int_eq(lt.closes, 1); /* not closed twice */
  ck_assert_int_eq(scio_send(a2, "x", 1), SCIO_EBROKEN);
  CK_OK(scio_close(a2));
  return 0;
}

SCIO_TEST(byte_close_releases_both_even_on_errors) {
  life lt = {0, 0}, lr = {0, 0};
  tb *tx = tb_new(1, &lt), *rx = tb_new(2, &lr);
  tx->close_rc = -EIO;
  rx->close_rc = -EPIPE;
  scio_stream *st;
  CK_OK(scio_stapled_open(&tx->base, &rx->base, &st));
  ck_assert_int_eq(scio_close(st), -EIO); /* the first error */
  ck_assert_int_eq(lt.closes, 1);
  ck_assert_int_eq(lt.frees, 1);
  ck_assert_int_eq(lr.closes, 1);
  ck_assert_int_eq(lr.frees, 1);
  /* Only the receive half fails. */
  tx = tb_new(1, &lt);
  rx = tb_new(2, &lr);
  rx->close_rc = -EPIPE;
  CK_OK(scio_stapled_open(&tx->base, &rx->base, &st));
  ck_assert_int_eq(scio_close(st), -EPIPE);
  ck_assert_int_eq(lt.frees + lr.frees, 4);
  return 0;
}

typedef struct blocked {
  scio_stream *s;
  ssize_t rc;
} blocked;

static int blocked_receive(void *arg) {
  blocked *b = arg;
  char c;
  b->rc = scio_receive(b->s, &c, 1);
  return 0;
}

SCIO_TEST(byte_close_wakes_blocked_receiver) {
  pipes p;
  pipes_open(&p);
  scio_stream *st;
  CK_OK(scio_stapled_open(p.a1, p.b2, &st));
  blocked b = {st, 1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, blocked_receive, &b));
  CK_OK(scio_wait_all_tasks_blocked());
  char c;
  ck_assert_int_eq(scio_receive(st, &c, 1), SCIO_EBUSY);
  CK_OK(scio_close(st));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(b.rc, SCIO_ECLOSED);
  CK_OK(scio_close(p.b1));
  CK_OK(scio_close(p.a2));
  return 0;
}

/* An allocator that fails every allocation, installed just around one
 * constructor call. */
static void *fail_malloc(void *c, size_t n) {
  (void)c;
  (void)n;
  return NULL;
}
static void *fail_realloc(void *c, void *p, size_t n) {
  (void)c;
  (void)p;
  (void)n;
  return NULL;
}
static void plain_free(void *c, void *p) {
  (void)c;
  free(p);
}
static const scio_allocator failing = {fail_malloc, fail_realloc, plain_free,
                                       NULL};

SCIO_TEST(byte_construction_errors_leave_halves) {
  pipes p;
  pipes_open(&p);
  scio_stream *st = (scio_stream *)1;
  ck_assert_int_eq(scio_stapled_open(NULL, p.b2, &st), SCIO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(scio_stapled_open(p.a1, NULL, &st), SCIO_EINVAL);
  ck_assert_int_eq(scio_stapled_open(p.a1, p.b2, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_stapled_open(p.a1, p.a1, &st), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "both"));
  scio_set_allocator(&failing);
  int rc = scio_stapled_open(p.a1, p.b2, &st);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(st);
  /* The halves are still the caller's, and work. */
  char buf[4];
  CK_OK(scio_send(p.a1, "ok", 2));
  ck_assert_int_eq(scio_receive(p.b1, buf, sizeof buf), 2);
  CK_OK(scio_send(p.a2, "ok", 2));
  ck_assert_int_eq(scio_receive(p.b2, buf, sizeof buf), 2);
  CK_OK(scio_close(p.a1));
  CK_OK(scio_close(p.b1));
  CK_OK(scio_close(p.a2));
  CK_OK(scio_close(p.b2));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Object streams                                                            */

SCIO_TEST(object_routing) {
  life lt = {0, 0}, lr = {0, 0};
  tq *tx = tq_new(sizeof(int), 1, &lt), *rx = tq_new(sizeof(int), 2, &lr);
  rx->load[0] = 10;
  rx->load[1] = 20;
  rx->nload = 2;
  scio_ostream *st;
  CK_OK(scio_stapled_object_open(&tx->base, &rx->base, &st));
  ck_assert_uint_eq(scio_ostream_item_size(st), sizeof(int));
  int item = 7;
  CK_OK(scio_ostream_send(st, &item));
  item = 8;
  CK_OK(scio_ostream_send(st, &item));
  ck_assert_int_eq(tx->nsent, 2);
  ck_assert_int_eq(tx->sent[0], 7);
  ck_assert_int_eq(tx->sent[1], 8);
  ck_assert_int_eq(rx->nsent, 0);
  size_t n = 0;
  CK_OK(scio_ostream_attr(st, SCIO_ATTR_BUFFERED, &n, sizeof n));
  ck_assert_uint_eq(n, 2); /* the receive half's */
  CK_OK(scio_ostream_receive(st, &item));
  ck_assert_int_eq(item, 10);
  CK_OK(scio_ostream_receive(st, &item));
  ck_assert_int_eq(item, 20);
  ck_assert_int_eq(scio_ostream_receive(st, &item), SCIO_EOF);
  int v = 0;
  CK_OK(scio_ostream_attr(st, SCIO_ATTR_USER, &v, sizeof v));
  ck_assert_int_eq(v, 1);
  CK_OK(scio_ostream_attr(st, SCIO_ATTR_USER + 2, &v, sizeof v));
  ck_assert_int_eq(v, 2);
  ck_assert_int_eq(scio_ostream_attr(st, SCIO_ATTR_FD, &v, sizeof v),
                   -ENOENT);
  char name[32];
  CK_OK(scio_ostream_attr(st, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "stapled-object");
  CK_OK(scio_ostream_close(st));
  ck_assert_int_eq(lt.closes + lr.closes, 2);
  ck_assert_int_eq(lt.frees + lr.frees, 2);
  return 0;
}

SCIO_TEST(object_construction_errors_leave_halves) {
  life lt = {0, 0}, lr = {0, 0};
  tq *tx = tq_new(sizeof(int), 1, &lt), *rx = tq_new(sizeof(long), 2, &lr);
  scio_ostream *st = (scio_ostream *)1;
  ck_assert_int_eq(scio_stapled_object_open(&tx->base, &rx->base, &st),
                   SCIO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "item sizes"));
  ck_assert_int_eq(scio_stapled_object_open(NULL, &rx->base, &st),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_stapled_object_open(&tx->base, &tx->base, &st),
                   SCIO_EINVAL);
  ck_assert_int_eq(scio_stapled_object_open(&tx->base, &rx->base, NULL),
                   SCIO_EINVAL);
  tq *rx2 = tq_new(sizeof(int), 3, &lr);
  scio_set_allocator(&failing);
  int rc = scio_stapled_object_open(&tx->base, &rx2->base, &st);
  scio_set_allocator(NULL);
  ck_assert_int_eq(rc, SCIO_ENOMEM);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(lt.closes + lr.closes, 0); /* nothing taken */
  int item = 1;
  CK_OK(scio_ostream_send(&tx->base, &item));
  CK_OK(scio_ostream_close(&tx->base));
  CK_OK(scio_ostream_close(&rx->base));
  CK_OK(scio_ostream_close(&rx2->base));
  ck_assert_int_eq(lt.frees + lr.frees, 3);
  return 0;
}

/* A cancellation that reaches the close standing in for send_eof (here:
 * the close itself cancels the scope, and the close's checkpoint sees it)
 * comes after the half was closed: send_eof returns 0 and the cancellation
 * stays pending, so the scope catches it only if a later checkpoint inside
 * delivers it. */
SCIO_TEST(send_eof_cancelled_in_its_close_stays_pending) {
  for (int later = 0; later < 2; later++) {
    life lt = {0, 0}, lr = {0, 0};
    tb *tx = tb_new(1, &lt);
    scio_stream *a2, *b2;
    CK_OK(scio_memory_pipe_open(&a2, &b2, NULL));
    scio_stream *st;
    CK_OK(scio_stapled_open(&tx->base, b2, &st));
    scio_scope cs;
    CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
    tx->cancel_on_close = &cs;
    CK_OK(scio_send_eof(st));
    ck_assert_int_eq(lt.closes, 1);
    if (later)
      ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
    CK_OK(scio_scope_close(&cs));
    ck_assert_int_eq(scio_scope_cancelled_caught(&cs), later);
    CK_OK(scio_close(st));
    CK_OK(scio_close(a2));

    tq *otx = tq_new(sizeof(int), 1, &lt), *orx = tq_new(sizeof(int), 2, &lr);
    scio_ostream *ost;
    CK_OK(scio_stapled_object_open(&otx->base, &orx->base, &ost));
    CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
    otx->cancel_on_close = &cs;
    CK_OK(scio_ostream_send_eof(ost));
    ck_assert_int_eq(lt.closes, 2);
    if (later)
      ck_assert_int_eq(scio_checkpoint(), SCIO_ECANCELED);
    CK_OK(scio_scope_close(&cs));
    ck_assert_int_eq(scio_scope_cancelled_caught(&cs), later);
    CK_OK(scio_ostream_close(ost));
  }
  return 0;
}

SCIO_TEST(object_send_eof_closes_send_half) {
  life lt = {0, 0}, lr = {0, 0};
  tq *tx = tq_new(sizeof(int), 1, &lt), *rx = tq_new(sizeof(int), 2, &lr);
  rx->load[0] = 5;
  rx->nload = 1;
  scio_ostream *st;
  CK_OK(scio_stapled_object_open(&tx->base, &rx->base, &st));
  CK_OK(scio_ostream_send_eof(st));
  ck_assert_int_eq(lt.closes, 1);
  ck_assert_int_eq(lt.frees, 1);
  int item = 1;
  ck_assert_int_eq(scio_ostream_send(st, &item), SCIO_ECLOSED);
  CK_OK(scio_ostream_send_eof(st)); /* idempotent */
  CK_OK(scio_ostream_receive(st, &item));
  ck_assert_int_eq(item, 5);
  CK_OK(scio_ostream_close(st));
  ck_assert_int_eq(lt.closes, 1);
  ck_assert_int_eq(lr.closes, 1);
  ck_assert_int_eq(lr.frees, 1);
  return 0;
}

/* A send half that has a half-close of its own (here: another stapled
 * stream) gets send_eof forwarded instead of being closed. */
SCIO_TEST(object_send_eof_forwards_to_half_close) {
  life l = {0, 0};
  tq *tx1 = tq_new(sizeof(int), 1, &l), *rx1 = tq_new(sizeof(int), 2, &l);
  tq *rx2 = tq_new(sizeof(int), 3, &l);
  scio_ostream *inner, *outer;
  CK_OK(scio_stapled_object_open(&tx1->base, &rx1->base, &inner));
  CK_OK(scio_stapled_object_open(inner, &rx2->base, &outer));
  CK_OK(scio_ostream_send_eof(outer));
  ck_assert_int_eq(l.closes, 1); /* tx1, closed by the inner stapled */
  int item = 1;
  ck_assert_int_eq(scio_ostream_send(outer, &item), SCIO_ECLOSED);
  CK_OK(scio_ostream_close(outer));
  ck_assert_int_eq(l.closes, 3);
  ck_assert_int_eq(l.frees, 3);
  return 0;
}

SCIO_TEST(object_close_releases_both_even_on_errors) {
  life lt = {0, 0}, lr = {0, 0};
  tq *tx = tq_new(sizeof(int), 1, &lt), *rx = tq_new(sizeof(int), 2, &lr);
  tx->close_rc = -EIO;
  rx->close_rc = -EPIPE;
  scio_ostream *st;
  CK_OK(scio_stapled_object_open(&tx->base, &rx->base, &st));
  ck_assert_int_eq(scio_ostream_close(st), -EIO);
  ck_assert_int_eq(lt.closes + lr.closes, 2);
  ck_assert_int_eq(lt.frees + lr.frees, 2);
  return 0;
}

/* ------------------------------------------------------------------------ */

static Suite *stapled_suite(void) {
  Suite *s = suite_create("stapled");
  TCase *tc = scio_tcase_new("byte", 10);
  scio_tcase_add(tc, byte_routing);
  scio_tcase_add(tc, byte_duplex_connection);
  scio_tcase_add(tc, byte_attr_order);
  scio_tcase_add(tc, byte_send_eof_goes_to_send_half);
  scio_tcase_add(tc, byte_send_eof_closes_half_without_half_close);
  scio_tcase_add(tc, byte_close_releases_both_even_on_errors);
  scio_tcase_add(tc, byte_close_wakes_blocked_receiver);
  scio_tcase_add(tc, byte_construction_errors_leave_halves);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("object", 10);
  scio_tcase_add(tc, object_routing);
  scio_tcase_add(tc, object_construction_errors_leave_halves);
  scio_tcase_add(tc, object_send_eof_closes_send_half);
  scio_tcase_add(tc, send_eof_cancelled_in_its_close_stays_pending);
  scio_tcase_add(tc, object_send_eof_forwards_to_half_close);
  scio_tcase_add(tc, object_close_releases_both_even_on_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return scio_test_main(stapled_suite()); }
