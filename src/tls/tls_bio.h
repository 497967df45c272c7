/* Private: the non-blocking BIOs of TLS streams and DTLS channels
 * (tls_bio.c, dtls_bio.c). */
#ifndef SCIO_TLS_BIO_H
#define SCIO_TLS_BIO_H

#include <openssl/bio.h>
#include <stddef.h>

typedef struct scio__tls_queue {
  unsigned char *data;
  size_t off, len, cap; /* unread bytes are data[off, len) */
} scio__tls_queue;

typedef struct scio__tls_io {
  scio__tls_queue in;  /* ciphertext received, not yet read by OpenSSL */
  scio__tls_queue out; /* ciphertext OpenSSL wrote, not yet sent */
  unsigned char *spare; /* a drained out buffer kept for reuse */
  size_t spare_cap;
  size_t in_room;      /* room to make before the next receive */
  int in_eof;          /* the wrapped stream ended */
  int oom;             /* a write could not grow `out` */
} scio__tls_io;

/* The kinds of BIO, each with its BIO_METHOD. */
enum { SCIO__BIO_STREAM, SCIO__BIO_DTLS, SCIO__BIO_KINDS };

/* What a kind's BIO_METHOD is made of (every kind's create just marks the
 * BIO initialised). */
typedef struct scio__bio_ops {
  const char *name;
  int (*write)(BIO *b, const char *data, int len);
  int (*read)(BIO *b, char *data, int len);
  long (*ctrl)(BIO *b, int cmd, long num, void *ptr);
} scio__bio_ops;

extern const scio__bio_ops scio__tls_bio_ops;  /* SCIO__BIO_STREAM: tls_bio.c */
extern const scio__bio_ops scio__dtls_bio_ops; /* SCIO__BIO_DTLS: dtls_bio.c */

/* A BIO of `kind` over `data` (a scio__tls_io, or a scio__dtls_io, which
 * must outlive it); NULL when out of memory.  The kind's BIO_METHOD is
 * made on first use. */
BIO *scio__bio_new(int kind, void *data);
static inline BIO *scio__tls_bio_new(scio__tls_io *io) {
  return scio__bio_new(SCIO__BIO_STREAM, io);
}
/* Compact `in` and make room for `more` bytes: 0 or -1 (out of memory). */
int scio__tls_in_reserve(scio__tls_io *io, size_t more);
void scio__tls_io_free(scio__tls_io *io);

#endif
