/* The BIO between OpenSSL and a TLS stream: a pair of byte queues that
 * never block.
 *
 * OpenSSL reads ciphertext from `in` (filled by the stream from the
 * wrapped stream) and appends ciphertext to `out` (drained by the stream
 * into the wrapped stream).  When `in` is empty a read asks to be retried,
 * so SSL_read / SSL_do_handshake return SSL_ERROR_WANT_READ and the stream
 * waits, as a task, outside OpenSSL.  Writes always succeed (the queue
 * grows), so OpenSSL never stops half-way through producing a record.
 * That is what makes cancellation safe: a task can only be cancelled
 * between OpenSSL calls.
 *
 * Unlike a memory BIO, OpenSSL reads straight from the buffer the wrapped
 * stream received into: one copy fewer per byte received.
 *
 * The BIO_METHOD of each kind of BIO (this one, and the datagram BIO of
 * dtls_bio.c) is made here too, by scio__bio_new.
 */
#include <openssl/bio.h>
#include <pthread.h>
#include <string.h>

#include "core/layer.h"
#include "tls_bio.h"

/* Queues start small (a handshake flight, an interactive record) and
 * double as needed: a server holding many quiet connections keeps little
 * memory per connection, and a handshake touches few cache lines. */
#define QUEUE_MIN 4096

static int q_reserve(scio__tls_queue *q, size_t more) {
  if (q->cap - q->len >= more)
    return 0;
  size_t cap = q->cap ? q->cap : QUEUE_MIN;
  while (cap - q->len < more)
    cap *= 2;
  unsigned char *p = scio__realloc(q->data, cap);
  if (!p)
    return -1;
  q->data = p;
  q->cap = cap;
  return 0;
}

static int bio_write(BIO *b, const char *data, int len) {
  scio__tls_io *io = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0)
    return 0;
  if (q_reserve(&io->out, (size_t)len) < 0) {
    io->oom = 1;
    return -1;
  }
  memcpy(io->out.data + io->out.len, data, (size_t)len);
  io->out.len += (size_t)len;
  return len;
}

static int bio_read(BIO *b, char *data, int len) {
  scio__tls_io *io = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  size_t avail = io->in.len - io->in.off;
  if (avail == 0) {
    /* Even at the end of the wrapped stream: the stream, not OpenSSL,
     * decides what an EOF means (a ragged EOF may be acceptable). */
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = (size_t)len < avail ? (size_t)len : avail;
  memcpy(data, io->in.data + io->in.off, n);
  io->in.off += n;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num;
  (void)ptr;
  scio__tls_io *io = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1; /* the stream drains `out` itself */
  case BIO_CTRL_PENDING:
    return (long)(io->in.len - io->in.off);
  case BIO_CTRL_WPENDING:
    return (long)io->out.len;
  case BIO_CTRL_EOF:
    return io->in_eof && io->in.off == io->in.len;
  default:
    return 0;
  }
}

const scio__bio_ops scio__tls_bio_ops = {"scio stream", bio_write, bio_read,
                                          bio_ctrl};

int scio__tls_in_reserve(scio__tls_io *io, size_t more) {
  /* Move what OpenSSL has not read yet to the front first: a partial
   * record is all that can be left over. */
  scio__tls_queue *q = &io->in;
  if (q->off > 0) {
    memmove(q->data, q->data + q->off, q->len - q->off);
    q->len -= q->off;
    q->off = 0;
  }
  return q_reserve(q, more);
}

void scio__tls_io_free(scio__tls_io *io) {
  scio__free(io->in.data);
  scio__free(io->out.data);
  scio__free(io->spare);
  memset(io, 0, sizeof *io);
}

/* ---- the BIO_METHODs of every kind (streams here, DTLS in dtls_bio.c) --- */

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static const scio__bio_ops *const kind_ops[SCIO__BIO_KINDS] = {
    [SCIO__BIO_STREAM] = &scio__tls_bio_ops,
    [SCIO__BIO_DTLS] = &scio__dtls_bio_ops,
};
static BIO_METHOD *methods[SCIO__BIO_KINDS];
static pthread_once_t method_once[SCIO__BIO_KINDS] = {PTHREAD_ONCE_INIT,
                                                       PTHREAD_ONCE_INIT};

/* Each kind's method is made the first time a BIO of that kind is. */
static void method_make(int kind) {
  const scio__bio_ops *ops = kind_ops[kind];
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               ops->name);
  if (m && (!BIO_meth_set_write(m, ops->write) ||
            !BIO_meth_set_read(m, ops->read) ||
            !BIO_meth_set_ctrl(m, ops->ctrl) ||
            !BIO_meth_set_create(m, bio_create))) {
    BIO_meth_free(m);
    m = NULL;
  }
  methods[kind] = m;
}

static void method_make_stream(void) { method_make(SCIO__BIO_STREAM); }
static void method_make_dtls(void) { method_make(SCIO__BIO_DTLS); }
static void (*const method_makers[SCIO__BIO_KINDS])(void) = {
    [SCIO__BIO_STREAM] = method_make_stream,
    [SCIO__BIO_DTLS] = method_make_dtls,
};

BIO *scio__bio_new(int kind, void *data) {
  pthread_once(&method_once[kind], method_makers[kind]);
  if (!methods[kind])
    return NULL;
  BIO *b = BIO_new(methods[kind]);
  if (b)
    BIO_set_data(b, data);
  return b;
}
