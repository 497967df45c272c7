/* Private: the non-blocking BIO of TLS streams (tls_bio.c). */
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

/* A BIO over `io` (which must outlive it); NULL when out of memory. */
BIO *scio__tls_bio_new(scio__tls_io *io);
/* Compact `in` and make room for `more` bytes: 0 or -1 (out of memory). */
int scio__tls_in_reserve(scio__tls_io *io, size_t more);
void scio__tls_io_free(scio__tls_io *io);

#endif
