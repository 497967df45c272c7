/* The BIO between OpenSSL and a DTLS channel: datagrams in, datagrams out,
 * never blocking.
 *
 * A read hands OpenSSL exactly one queued datagram (DTLS parses a read as
 * one datagram); an empty queue asks to be retried, so OpenSSL returns
 * SSL_ERROR_WANT_READ and the channel waits, as a task, outside OpenSSL.
 * Each write is one datagram OpenSSL wants sent; it is queued and always
 * succeeds, and the channel sends the queue after the OpenSSL call.  So a
 * task is only ever cancelled between OpenSSL calls.
 */
#include <openssl/bio.h>
#include <string.h>

#include "dtls_internal.h"

scio__dtls_dgram *scio__dtls_dgram_new(const void *data, size_t len) {
  scio__dtls_dgram *d = scio__malloc(sizeof *d + len);
  if (!d)
    return NULL;
  d->next = NULL;
  memset(&d->peer, 0, sizeof d->peer);
  d->len = len;
  if (len)
    memcpy(d->data, data, len);
  return d;
}

void scio__dtls_push(scio__dtls_queue *q, scio__dtls_dgram *d) {
  d->next = NULL;
  if (q->tail)
    q->tail->next = d;
  else
    q->head = d;
  q->tail = d;
  q->n++;
}

scio__dtls_dgram *scio__dtls_pop(scio__dtls_queue *q) {
  scio__dtls_dgram *d = q->head;
  if (!d)
    return NULL;
  q->head = d->next;
  if (!q->head)
    q->tail = NULL;
  q->n--;
  d->next = NULL;
  return d;
}

void scio__dtls_queue_clear(scio__dtls_queue *q) {
  scio__dtls_dgram *d;
  while ((d = scio__dtls_pop(q)))
    scio__free(d);
}

static int bio_write(BIO *b, const char *data, int len) {
  scio__dtls_io *io = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len < 0)
    return -1;
  scio__dtls_dgram *d = scio__dtls_dgram_new(data, (size_t)len);
  if (!d) {
    io->oom = 1;
    return -1;
  }
  scio__dtls_push(&io->out, d);
  return len;
}

/* Which kinds of record a datagram holds (13-byte record headers, the
 * length last): the channel answers a peer still sending handshake
 * records after its own handshake ended (dtls_channel.c). */
static int record_kinds(const unsigned char *p, size_t len) {
  int seen = 0;
  for (size_t off = 0; off + 13 <= len;
       off += 13 + (size_t)(p[off + 11] << 8 | p[off + 12])) {
    if (p[off] == 20 || p[off] == 22) /* ChangeCipherSpec, handshake */
      seen |= SCIO__DTLS_SEEN_HANDSHAKE;
    else if (p[off] == 23) /* application data */
      seen |= SCIO__DTLS_SEEN_DATA;
  }
  return seen;
}

static int bio_read(BIO *b, char *data, int len) {
  scio__dtls_io *io = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  scio__dtls_dgram *d = io->in ? scio__dtls_pop(io->in) : NULL;
  if (!d) {
    BIO_set_retry_read(b);
    return -1;
  }
  /* OpenSSL reads with room for the largest record; a longer datagram is
   * cut, and its records then fail to parse and are dropped. */
  size_t n = d->len < (size_t)len ? d->len : (size_t)len;
  memcpy(data, d->data, n);
  io->seen |= record_kinds(d->data, d->len);
  scio__free(d);
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num;
  (void)ptr;
  scio__dtls_io *io = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1; /* the channel sends `out` itself */
  case BIO_CTRL_PENDING:
    return io->in && io->in->head ? (long)io->in->head->len : 0;
  case BIO_CTRL_WPENDING:
    return 0;
  case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
    return 28; /* IPv4 + UDP; the MTU is set explicitly anyway */
  default:
    /* Peer addresses, MTU queries, timers: the channel knows them. */
    return 0;
  }
}

const scio__bio_ops scio__dtls_bio_ops = {"scio dtls", bio_write, bio_read,
                                           bio_ctrl};
