/* Private: what the DTLS files share.
 *
 * An endpoint hands every datagram it reads to a *sink*: the channel of
 * the sender's address, or the running serve for unknown senders.  A sink
 * is a bounded queue plus at most one waiting task.  The task that waits
 * reads the socket itself when nobody else does (the endpoint's single
 * "reader"), so datagrams move without a background task.
 */
#ifndef SCIO_DTLS_INTERNAL_H
#define SCIO_DTLS_INTERNAL_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "core/layer.h"
#include "scio/dtls.h"
#include "scio/sync.h"
#include "tls_bio.h"
#include "tls_internal.h"

/* One datagram, in a queue. */
typedef struct scio__dtls_dgram {
  struct scio__dtls_dgram *next;
  struct sockaddr_storage peer; /* where it came from */
  size_t len;
  unsigned char data[];
} scio__dtls_dgram;

typedef struct scio__dtls_queue {
  scio__dtls_dgram *head, *tail;
  size_t n;
} scio__dtls_queue;

typedef struct scio__dtls_sink {
  scio__node node;     /* in ep->waiting while `waiter` is set */
  scio__task *waiter;  /* the task parked for this sink, or NULL */
  scio__dtls_queue in;
  uint64_t dropped;
  int closed;
} scio__dtls_sink;

/* What SSL_get_app_data points to, for the cookie callbacks: the endpoint
 * (its secret) and the peer the cookie is for. */
typedef struct scio__dtls_peer {
  scio_dtls_endpoint *ep;
  struct sockaddr_storage addr;
} scio__dtls_peer;

/* Datagrams OpenSSL reads (`in`, borrowed: a sink's queue) and writes
 * (`out`), through the BIO of dtls_bio.c. */
typedef struct scio__dtls_io {
  scio__dtls_queue *in;
  scio__dtls_queue out;
  int oom;
  int seen; /* SCIO__DTLS_SEEN_* of the datagrams read since cleared */
} scio__dtls_io;

/* What the records of datagrams handed to OpenSSL were. */
enum { SCIO__DTLS_SEEN_HANDSHAKE = 1, SCIO__DTLS_SEEN_DATA = 2 };

/* A channel's entry in its endpoint's table (dtls_table.c). */
typedef struct scio__dtls_hnode {
  struct scio__dtls_hnode *next;
  const struct sockaddr_storage *addr;
} scio__dtls_hnode;

typedef struct scio__dtls_table {
  scio__dtls_hnode **b;
  size_t nb, n;
} scio__dtls_table;

/* Add h (0 or SCIO_ENOMEM), remove it, find the entry of an address. */
int scio__dtls_table_add(scio__dtls_table *t, scio__dtls_hnode *h);
void scio__dtls_table_remove(scio__dtls_table *t, scio__dtls_hnode *h);
scio__dtls_hnode *scio__dtls_table_find(const scio__dtls_table *t,
                                        const struct sockaddr_storage *a);
void scio__dtls_table_free(scio__dtls_table *t);

#define SCIO__DTLS_SECRET 32

struct scio_dtls_endpoint {
  scio_udp *udp;
  unsigned refs;          /* the handle, each channel, a running serve */
  int closed;
  size_t queue_max;
  scio_dtls_filter_fn filter;
  void *filter_arg;
  unsigned char secret[SCIO__DTLS_SECRET];
  scio__node channels;    /* dtls channels, by their `link` */
  scio__dtls_table table; /* the same, by peer address */
  scio__node waiting;     /* sinks with a parked task */
  scio__dtls_sink *serve; /* the running serve's sink, or NULL */
  /* The reader: the one task inside scio_udp_receive_from. */
  int reading;
  scio__dtls_sink *reader_sink;
  scio_scope *reader_scope; /* cancelled to interrupt the reader */
  unsigned char *rbuf;
  scio_lock send_lock;      /* one sender on the socket at a time */
  scio_dtls_statistics stats;
};

/* ---- dtls_endpoint.c ---- */
void scio__dtls_ep_ref(scio_dtls_endpoint *ep);
void scio__dtls_ep_unref(scio_dtls_endpoint *ep);
/* Wait until `s` has a datagram (0), or s or the endpoint is closed
 * (SCIO_ECLOSED), reading the socket meanwhile when nobody else does.
 * A checkpoint when it has to wait; SCIO_ECANCELED. */
int scio__dtls_wait(scio_dtls_endpoint *ep, scio__dtls_sink *s);
/* Queue `d` (taken) for `s` and wake its task; dropped (and counted)
 * when the queue is full. */
void scio__dtls_deliver(scio_dtls_endpoint *ep, scio__dtls_sink *s,
                        scio__dtls_dgram *d);
/* Close a sink: wake its task with SCIO_ECLOSED, interrupt it if it is
 * the reader, drop its datagrams. */
void scio__dtls_sink_close(scio_dtls_endpoint *ep, scio__dtls_sink *s);
/* Send one datagram to `to` (the filter applies).  A checkpoint. */
int scio__dtls_send(scio_dtls_endpoint *ep, const struct sockaddr_storage *to,
                    const void *data, size_t len);
/* Whether two addresses are the same peer (family, address, port). */
int scio__dtls_addr_eq(const struct sockaddr_storage *a,
                       const struct sockaddr_storage *b);

/* ---- queues (dtls_bio.c) ---- */
scio__dtls_dgram *scio__dtls_dgram_new(const void *data, size_t len);
void scio__dtls_push(scio__dtls_queue *q, scio__dtls_dgram *d);
scio__dtls_dgram *scio__dtls_pop(scio__dtls_queue *q);
void scio__dtls_queue_clear(scio__dtls_queue *q);
/* A BIO over `io` (which must outlive it); NULL when out of memory.  Its
 * BIO_METHOD is made by tls_bio.c, from scio__dtls_bio_ops. */
static inline BIO *scio__dtls_bio_new(scio__dtls_io *io) {
  return scio__bio_new(SCIO__BIO_DTLS, io);
}

/* ---- dtls_ctx.c ---- */
/* The per-SSL settings every DTLS connection gets: scio's own
 * retransmission (OpenSSL's timer disabled), the MTU.  0 or SCIO_EINVAL
 * (mtu too small). */
int scio__dtls_ssl_setup(SSL *ssl, size_t mtu, int family);

/* ---- dtls_channel.c ---- */
typedef struct scio__dtls_chan scio__dtls_chan;
/* A channel to `peer` over `ssl` (taken over; freed on failure), linked
 * into the endpoint.  SCIO_ENOMEM. */
int scio__dtls_chan_new(scio_dtls_endpoint *ep, scio_tls_ctx *ctx, SSL *ssl,
                        const struct sockaddr_storage *peer,
                        const scio_dtls_opts *o, scio__dtls_chan **out);
scio_ostream *scio__dtls_chan_stream(scio__dtls_chan *c);
/* Run the handshake (with the handshake timeout of the options). */
int scio__dtls_chan_handshake(scio__dtls_chan *c);
/* The channel of `addr`, or NULL. */
scio__dtls_chan *scio__dtls_chan_find(scio_dtls_endpoint *ep,
                                      const struct sockaddr_storage *addr);
scio__dtls_sink *scio__dtls_chan_sink(scio__dtls_chan *c);
/* Servers: remember the random of the ClientHello that made the channel
 * (32 bytes), to tell its retransmissions from a new handshake. */
void scio__dtls_chan_set_hello(scio__dtls_chan *c, const unsigned char *rnd);
/* Whether datagram p (n bytes) is a ClientHello from `c`'s address that
 * starts a new handshake: `c` is done with its own and the random
 * differs (the peer restarted with the same address). */
int scio__dtls_chan_new_hello(scio__dtls_chan *c, const unsigned char *p,
                              size_t n);
/* A new handshake from the same address replaced `c`: it is broken and
 * forgotten by the endpoint (its owner still closes it). */
void scio__dtls_chan_replace(scio__dtls_chan *c);
/* Where the random of a ClientHello datagram starts, or NULL when p is
 * not one (epoch 0, handshake record, client_hello, long enough). */
const unsigned char *scio__dtls_hello_random(const unsigned char *p,
                                             size_t n);
/* The endpoint was closed: every channel is marked and woken. */
void scio__dtls_chans_endpoint_closed(scio_dtls_endpoint *ep);

#endif
