/* Tests of include/scio/stream.h: the generic byte- and object-stream calls
 * (busy detection, closed streams, deferred free, the attribute walk),
 * exercised over memory pipes and small layers defined here.  Every async
 * test runs once per backend (epoll, poll, select). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "scio/pipe.h"
#include "scio/testing.h"
#include "stream_kit.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* ------------------------------------------------------------------------ */
/* A pass-through test layer: answers SCIO_ATTR_USER with its value and
 * forwards everything else to the stream it wraps (and owns).           */

typedef struct tlayer {
  scio_stream base;
  int value;
  int *frees; /* incremented when the layer's memory goes */
} tlayer;

static ssize_t tl_receive(scio_stream *s, void *buf, size_t max) {
  return scio_receive(s->inner, buf, max);
}
static int tl_send(scio_stream *s, const void *buf, size_t len) {
  return scio_send(s->inner, buf, len);
}
static int tl_send_eof(scio_stream *s) { return scio_send_eof(s->inner); }
static int tl_close(scio_stream *s) { return scio_close(s->inner); }
static void tl_free(scio_stream *s) {
  tlayer *l = (tlayer *)s;
  if (l->frees)
    (*l->frees)++;
  free(l);
}
static int tl_attr(scio_stream *s, int key, void *out, size_t len) {
  tlayer *l = (tlayer *)s;
  if (key != SCIO_ATTR_USER)
    return -ENOENT;
  if (len < sizeof l->value)
    return -ENOSPC;
  memcpy(out, &l->value, sizeof l->value);
  return 0;
}

static const scio_stream_ops tlayer_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "test-layer",
    .do_receive = tl_receive,
    .do_send = tl_send,
    .do_send_eof = tl_send_eof,
    .do_close = tl_close,
    .do_free = tl_free,
    .do_attr = tl_attr,
};

/* The same layer without an attribute slot: the walk must pass it by. */
static const scio_stream_ops silent_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "silent-layer",
    .do_receive = tl_receive,
    .do_send = tl_send,
    .do_close = tl_close,
    .do_free = tl_free,
};

static scio_stream *layer_new(const scio_stream_ops *ops, scio_stream *inner,
                              int value, int *frees) {
  tlayer *l = malloc(sizeof *l);
  ck_assert_ptr_nonnull(l);
  scio_stream_init(&l->base, ops, inner);
  l->value = value;
  l->frees = frees;
  return &l->base;
}

/* A stream with only do_free, in static storage, so it can be inspected
 * after close. */
static int bare_frees;
static void bare_free(scio_stream *s) {
  (void)s;
  bare_frees++;
}
static const scio_stream_ops bare_ops = {.size = sizeof(scio_stream_ops),
                                         .name = "bare",
                                         .do_free = bare_free};

/* One receive or send in a child task, inside a cancel scope. */
typedef struct op {
  scio_stream *s;
  void *buf;
  size_t len;
  ssize_t rc;
  int done;
  ssize_t again_receive, again_send; /* calls made right after waking */
} op;

static int recv_task(void *p) {
  op *o = p;
  o->rc = scio_receive(o->s, o->buf, o->len);
  o->done = 1;
  return 0;
}

static int send_task(void *p) {
  op *o = p;
  o->rc = scio_send(o->s, o->buf, o->len);
  o->done = 1;
  return 0;
}

/* Woken by the close, call again at once: the stream is closed but still
 * in memory, since the close itself is still in flight. */
static int recv_then_again(void *p) {
  op *o = p;
  o->rc = scio_receive(o->s, o->buf, o->len);
  char c;
  o->again_receive = scio_receive(o->s, &c, 1);
  o->again_send = scio_send(o->s, "x", 1);
  o->done = 1;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Busy                                                                      */

SCIO_TEST(second_receiver_is_ebusy) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  char buf[8], c;
  op r = {b, buf, sizeof buf, 1, 0, 0, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_receive(b, &c, 1), SCIO_EBUSY);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "another task"));
  /* The other direction of the pipe is another stream: not busy. */
  CK_OK(scio_send(b, "y", 1));
  ck_assert_int_eq(scio_receive(a, &c, 1), 1);
  CK_OK(scio_send(a, "z", 1));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 1);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(second_sender_is_ebusy) {
  scio_stream *a, *b;
  scio_memory_pipe_opts o = {4};
  CK_OK(scio_memory_pipe_open(&a, &b, &o));
  char data[10] = "0123456789", got[16];
  op s = {a, data, sizeof data, 1, 0, 0, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, send_task, &s));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_send(a, "x", 1), SCIO_EBUSY);
  ck_assert_int_eq(scio_send_eof(a), SCIO_EBUSY);
  size_t have = 0;
  while (have < sizeof data) {
    ssize_t k = scio_receive(b, got + have, sizeof got - have);
    ck_assert_int_gt(k, 0);
    have += (size_t)k;
  }
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(s.rc, 0);
  ck_assert(memcmp(got, data, sizeof data) == 0);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Closed streams and the deferred free                                      */

SCIO_TEST(calls_after_close_are_eclosed) {
  scio_stream s;
  bare_frees = 0;
  scio_stream_init(&s, &bare_ops, NULL);
  CK_OK(scio_close(&s));
  ck_assert_int_eq(bare_frees, 1);
  char c;
  ck_assert_int_eq(scio_receive(&s, &c, 1), SCIO_ECLOSED);
  ck_assert_int_eq(scio_receive(&s, &c, 0), SCIO_ECLOSED);
  ck_assert_int_eq(scio_send(&s, "x", 1), SCIO_ECLOSED);
  ck_assert_int_eq(scio_send_eof(&s), SCIO_ECLOSED);
  ck_assert_int_eq(scio_close(&s), SCIO_ECLOSED);
  ck_assert_int_eq(bare_frees, 1);
  return 0;
}

SCIO_TEST(close_wakes_blocked_receiver_with_eclosed) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  char buf[8];
  op r = {a, buf, sizeof buf, 1, 0, 1, 1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_then_again, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_close(a)); /* the receiver runs during close's checkpoint */
  ck_assert_int_eq(r.done, 1);
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(r.again_receive, SCIO_ECLOSED);
  ck_assert_int_eq(r.again_send, SCIO_ECLOSED);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_close(b));
  return 0;
}

/* A closer whose checkpoint is cancelled returns before the blocked task
 * runs: the memory must outlive the close and go when that task leaves. */
SCIO_TEST(free_deferred_until_blocked_task_leaves) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  int frees = 0;
  scio_stream *top = layer_new(&tlayer_ops, a, 7, &frees);
  char buf[8];
  op r = {top, buf, sizeof buf, 1, 0, 0, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_close(top), SCIO_ECANCELED); /* but released */
  CK_OK(scio_scope_close(&cs));
  ck_assert_int_eq(r.done, 0);
  ck_assert_int_eq(frees, 0);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(frees, 1);
  CK_OK(scio_close(b));
  return 0;
}

SCIO_TEST(slots_left_null) {
  scio_stream s;
  bare_frees = 0;
  scio_stream_init(&s, &bare_ops, NULL);
  char c, name[16];
  ck_assert_int_eq(scio_receive(&s, &c, 1), -ENOSYS);
  ck_assert_int_eq(scio_send(&s, "x", 1), -ENOSYS);
  ck_assert_int_eq(scio_send_eof(&s), -ENOSYS);
  ck_assert_int_eq(scio_stream_attr(&s, SCIO_ATTR_USER, &c, 1), -ENOENT);
  CK_OK(scio_stream_attr(&s, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "bare");
  CK_OK(scio_close(&s));
  ck_assert_int_eq(bare_frees, 1);
  return 0;
}

SCIO_TEST(null_stream_is_einval) {
  char c;
  ck_assert_int_eq(scio_receive(NULL, &c, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_send(NULL, "x", 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_send_eof(NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_stream_attr(NULL, SCIO_ATTR_FD, &c, 1), SCIO_EINVAL);
  CK_OK(scio_close(NULL));
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_stream_attr(a, SCIO_ATTR_LAYER, NULL, 8),
                   SCIO_EINVAL);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Attributes through layers                                                 */

SCIO_TEST(attr_walks_down_the_chain) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  int frees = 0;
  /* test-layer over silent-layer over the pipe end b. */
  scio_stream *mid = layer_new(&silent_ops, b, 0, &frees);
  scio_stream *top = layer_new(&tlayer_ops, mid, 42, &frees);
  CK_OK(scio_send(a, "12345", 5));
  int v = 0;
  CK_OK(scio_stream_attr(top, SCIO_ATTR_USER, &v, sizeof v));
  ck_assert_int_eq(v, 42);
  ck_assert_int_eq(scio_stream_attr(top, SCIO_ATTR_USER, &v, 2), -ENOSPC);
  size_t n = 0;
  CK_OK(scio_stream_attr(top, SCIO_ATTR_BUFFERED, &n, sizeof n));
  ck_assert_uint_eq(n, 5); /* answered by the pipe, two layers down */
  char name[32];
  CK_OK(scio_stream_attr(top, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "test-layer"); /* the top layer's name */
  ck_assert_int_eq(scio_stream_attr(top, SCIO_ATTR_LAYER, name, 10),
                   -ENOSPC); /* "test-layer" needs 11 */
  CK_OK(scio_stream_attr(top, SCIO_ATTR_LAYER, name, 11));
  CK_OK(scio_stream_attr(mid, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "silent-layer");
  ck_assert_int_eq(scio_stream_attr(top, SCIO_ATTR_USER + 1, &v, sizeof v),
                   -ENOENT);
  ck_assert_int_eq(scio_stream_fd(top, &v), -ENOENT);
  ck_assert_int_eq(scio_stream_family(top, &v), -ENOENT);
  /* Data passes through, and closing the top closes the chain. */
  char buf[8];
  ck_assert_int_eq(scio_receive(top, buf, sizeof buf), 5);
  CK_OK(scio_close(top));
  ck_assert_int_eq(frees, 2);
  ck_assert_int_eq(scio_receive(a, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_close(a));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* receive with max 0                                                        */

static int count_rounds(void *p) {
  int *rounds = p;
  for (int i = 0; i < 10; i++) {
    (*rounds)++;
    if (scio_checkpoint() < 0)
      break;
  }
  return 0;
}

SCIO_TEST(receive_max_zero) {
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  CK_OK(scio_send(a, "abc", 3));
  int rounds = 0;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, count_rounds, &rounds));
  char buf[4];
  ck_assert_int_eq(scio_receive(b, buf, 0), 0);
  ck_assert_int_eq(rounds, 1); /* it yielded: a checkpoint */
  size_t left = 0;
  CK_OK(scio_stream_attr(b, SCIO_ATTR_BUFFERED, &left, sizeof left));
  ck_assert_uint_eq(left, 3); /* took nothing */
  /* Nothing buffered in the other direction: still 0 at once. */
  ck_assert_int_eq(scio_receive(a, buf, 0), 0);
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_receive(b, buf, 0), SCIO_ECANCELED);
  CK_OK(scio_scope_close(&cs));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(scio_receive(b, buf, sizeof buf), 3);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Object streams: the generic calls                                         */

static int bare_ofrees;
static void bare_ofree(scio_ostream *s) {
  (void)s;
  bare_ofrees++;
}
static int bare_oattr(scio_ostream *s, int key, void *out, size_t len) {
  (void)s;
  if (key != SCIO_ATTR_USER)
    return -ENOENT;
  return len < 1 ? -ENOSPC : (*(char *)out = 'o', 0);
}
static const scio_ostream_ops bare_oops = {.size = sizeof(scio_ostream_ops),
                                           .name = "bare-object",
                                           .do_free = bare_ofree,
                                           .do_attr = bare_oattr};

SCIO_TEST(object_stream_generic_calls) {
  scio_ostream s;
  bare_ofrees = 0;
  scio_ostream_init(&s, &bare_oops, NULL, sizeof(long));
  ck_assert_uint_eq(scio_ostream_item_size(&s), sizeof(long));
  ck_assert_uint_eq(scio_ostream_item_size(NULL), 0);
  long item = 5;
  ck_assert_int_eq(scio_ostream_send(&s, &item), -ENOSYS);
  ck_assert_int_eq(scio_ostream_receive(&s, &item), -ENOSYS);
  ck_assert_int_eq(scio_ostream_send_eof(&s), -ENOSYS);
  ck_assert_int_eq(scio_ostream_send(&s, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_ostream_send(NULL, &item), SCIO_EINVAL);
  char c = 0, name[16];
  CK_OK(scio_ostream_attr(&s, SCIO_ATTR_USER, &c, 1));
  ck_assert_int_eq(c, 'o');
  ck_assert_int_eq(scio_ostream_attr(&s, SCIO_ATTR_FD, &c, 1), -ENOENT);
  CK_OK(scio_ostream_attr(&s, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "bare-object");
  ck_assert_int_eq(scio_ostream_attr(&s, SCIO_ATTR_LAYER, name, 4), -ENOSPC);
  CK_OK(scio_ostream_close(&s));
  ck_assert_int_eq(bare_ofrees, 1);
  ck_assert_int_eq(scio_ostream_send(&s, &item), SCIO_ECLOSED);
  ck_assert_int_eq(scio_ostream_receive(&s, &item), SCIO_ECLOSED);
  ck_assert_int_eq(scio_ostream_close(&s), SCIO_ECLOSED);
  CK_OK(scio_ostream_close(NULL));
  return 0;
}

/* ------------------------------------------------------------------------ */


/* A stream that answers the address keys like a socket would. */
typedef struct addr_stream {
  scio_stream s;
} addr_stream;

static int addr_attr(scio_stream *s, int key, void *out, size_t len) {
  (void)s;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  switch (key) {
  case SCIO_ATTR_LOCAL_ADDR:
  case SCIO_ATTR_REMOTE_ADDR:
    if (len < sizeof(struct sockaddr_storage))
      return -ENOSPC;
    sin.sin_port = htons(key == SCIO_ATTR_LOCAL_ADDR ? 1111 : 2222);
    memset(out, 0, sizeof(struct sockaddr_storage));
    memcpy(out, &sin, sizeof sin);
    return 0;
  case SCIO_ATTR_FD:
  case SCIO_ATTR_FAMILY:
    if (len < sizeof(int))
      return -ENOSPC;
    *(int *)out = key == SCIO_ATTR_FD ? 42 : AF_INET;
    return 0;
  default:
    return -ENOENT;
  }
}

static const scio_stream_ops addr_ops = {
    .size = sizeof(scio_stream_ops), .name = "addr", .do_attr = addr_attr};

SCIO_TEST(typed_getters) {
  addr_stream as;
  scio_stream_init(&as.s, &addr_ops, NULL);
  struct sockaddr_storage ss;
  CK_OK(scio_stream_local_addr(&as.s, &ss));
  ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 1111);
  CK_OK(scio_stream_remote_addr(&as.s, &ss));
  ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2222);
  int fd = -1, family = -1;
  CK_OK(scio_stream_fd(&as.s, &fd));
  ck_assert_int_eq(fd, 42);
  CK_OK(scio_stream_family(&as.s, &family));
  ck_assert_int_eq(family, AF_INET);
  char name[16];
  CK_OK(scio_stream_layer(&as.s, name, sizeof name));
  ck_assert_str_eq(name, "addr");
  ck_assert_int_eq(scio_stream_layer(&as.s, name, 2), -ENOSPC);
  /* A memory pipe has no addresses: -ENOENT, nothing written. */
  scio_stream *a, *b;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_stream_local_addr(a, &ss), -ENOENT);
  ck_assert_int_eq(scio_stream_remote_addr(a, &ss), -ENOENT);
  ck_assert_int_eq(scio_stream_fd(a, &fd), -ENOENT);
  ck_assert_int_eq(fd, 42);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  return 0;
}

static int make_pipe(void *arg) {
  scio_stream **ends = arg;
  return scio_memory_pipe_open(&ends[0], &ends[1], NULL);
}

/* Streams made in a run can be closed after it returned (cleanup code):
 * released, and no error for the checkpoint there is nothing to yield to. */
START_TEST(close_after_the_run_releases) {
  scio_stream *ends[2];
  ck_assert_int_eq(scio_run(make_pipe, ends, NULL), 0);
  ck_assert_int_eq(scio_close(ends[0]), 0);
  ck_assert_int_eq(scio_close(ends[1]), 0);
}
END_TEST

void stream_outparams_tests(Suite *s); /* tests/stream_outparams.c */

static Suite *stream_suite(void) {
  Suite *s = suite_create("stream");
  TCase *tc = scio_tcase_new("busy", 10);
  scio_tcase_add(tc, second_receiver_is_ebusy);
  scio_tcase_add(tc, second_sender_is_ebusy);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("close", 10);
  scio_tcase_add(tc, calls_after_close_are_eclosed);
  scio_tcase_add(tc, close_wakes_blocked_receiver_with_eclosed);
  scio_tcase_add(tc, free_deferred_until_blocked_task_leaves);
  scio_tcase_add(tc, slots_left_null);
  scio_tcase_add(tc, null_stream_is_einval);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("attr", 10);
  scio_tcase_add(tc, attr_walks_down_the_chain);
  scio_tcase_add(tc, typed_getters);
  tcase_add_test(tc, close_after_the_run_releases);
  scio_tcase_add(tc, receive_max_zero);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("object", 10);
  scio_tcase_add(tc, object_stream_generic_calls);
  suite_add_tcase(s, tc);

  stream_kit_tests(s);
  stream_slot_tests(s);
  stream_kit_self_tests(s);
  stream_outparams_tests(s);
  return s;
}

int main(void) { return scio_test_main(stream_suite()); }
