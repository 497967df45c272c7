/* A scripted source stream for the Check suites: see script_stream.h. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "script_stream.h"

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static ssize_t src_deliver(script_source *src, void *buf, size_t max) {
  if (src->i == src->n)
    return SCIO_EOF;
  const script_chunk *c = &src->chunks[src->i];
  if (c->err) {
    src->i++;
    return c->err;
  }
  size_t k = min_sz(max, c->len - src->off);
  memcpy(buf, c->data + src->off, k);
  src->off += k;
  if (src->off == c->len) {
    src->i++;
    src->off = 0;
  }
  return (ssize_t)k;
}

static ssize_t src_receive(scio_stream *s, void *buf, size_t max) {
  script_source *src = script_of(s);
  src->rec->receives++;
  while (src->i < src->n && !src->chunks[src->i].len &&
         !src->chunks[src->i].err)
    src->i++;
  double at = src->i < src->n ? src->chunks[src->i].at
              : src->hang_at_end ? SCIO_DEADLINE_NONE
                                 : 0;
  scio_scope nap;
  scio_scope_open(&nap, SCIO_DEADLINE_NONE, 0);
  src->nap = &nap;
  int rc = isinf(at) ? scio_sleep_forever() : scio_sleep_until(at);
  src->nap = NULL;
  scio_scope_close(&nap);
  if (s->closed)
    return SCIO_ECLOSED;
  if (rc < 0)
    return rc;
  if (src->close_on_deliver && src->i < src->n) {
    scio_stream *top = src->close_on_deliver;
    src->close_on_deliver = NULL;
    scio_close(top);
  }
  return src_deliver(src, buf, max);
}

static int src_send(scio_stream *s, const void *buf, size_t len) {
  script_record *r = script_of(s)->rec;
  ck_assert_uint_le(r->nsent + len, sizeof r->sent);
  if (len)
    memcpy(r->sent + r->nsent, buf, len);
  r->nsent += len;
  return scio_checkpoint();
}

static int src_send_eof(scio_stream *s) {
  script_of(s)->rec->eofs++;
  return scio_checkpoint();
}

static int src_close(scio_stream *s) {
  script_source *src = script_of(s);
  src->rec->closes++;
  if (src->nap)
    scio_scope_cancel(src->nap);
  return 0;
}

static void src_free(scio_stream *s) { free(s); }

static int src_attr(scio_stream *s, int key, void *out, size_t len) {
  (void)s;
  if (key != SCIO_ATTR_USER)
    return -ENOENT;
  if (len < sizeof(int))
    return -ENOSPC;
  int v = 42;
  memcpy(out, &v, sizeof v);
  return 0;
}

static const scio_stream_ops source_ops = {
    .size = sizeof(scio_stream_ops),
    .name = "script",
    .do_receive = src_receive,
    .do_send = src_send,
    .do_send_eof = src_send_eof,
    .do_close = src_close,
    .do_free = src_free,
    .do_attr = src_attr,
};

scio_stream *script_source_new(const script_chunk *c, size_t n,
                               script_record *rec) {
  script_source *src = calloc(1, sizeof *src);
  ck_assert_ptr_nonnull(src);
  scio_stream_init(&src->base, &source_ops, NULL);
  src->chunks = c;
  src->n = n;
  src->rec = rec;
  return &src->base;
}
