/* Private: what the TLS files share. */
#ifndef SCIO_TLS_INTERNAL_H
#define SCIO_TLS_INTERNAL_H

#include <openssl/ssl.h>

#include "scio/tls.h"

/* A cached client session, per server name (sessions of one name are only
 * offered to that name, so a session cannot leak to another server). */
typedef struct scio__tls_session {
  struct scio__tls_session *next;
  SSL_SESSION *sess;
  char name[];
} scio__tls_session;

struct scio_tls_ctx {
  SSL_CTX *ssl_ctx;
  int role;
  int verify;         /* clients: verify the server */
  int resume;         /* clients: keep and offer sessions */
  int dtls;           /* a DTLS context (scio_dtls_ctx_open) */
  unsigned refs;      /* atomic: contexts may be shared across threads */
  unsigned char *alpn; /* servers: wire-format list, in preference order */
  size_t alpn_len;
  scio__tls_session *sessions; /* clients; guarded by `lock` */
  unsigned nsessions;
  void *lock;          /* pthread_mutex_t *, for the session list */
};

void scio__tls_ctx_ref(scio_tls_ctx *ctx);
/* scio_tls_ctx_open, or with dtls set the DTLS flavour of it (DTLS
 * methods, DTLS 1.2 bounds, no client session cache). */
int scio__tls_ctx_open_method(const scio_tls_ctx_opts *opts, int dtls,
                              scio_tls_ctx **out);
/* Clients: the cached session for `name` (a new reference), or NULL. */
SSL_SESSION *scio__tls_session_get(scio_tls_ctx *ctx, const char *name);
/* Clients: remember `sess` for `name` (takes a reference of its own). */
void scio__tls_session_put(scio_tls_ctx *ctx, const char *name,
                           SSL_SESSION *sess);
/* The new-session callback of client contexts (tls_stream.c): finds the
 * stream's server name through SSL_get_app_data. */
int scio__tls_new_session_cb(SSL *ssl, SSL_SESSION *sess);

/* Report OpenSSL's error queue (and a verification result) as `code`
 * with "what: reason" in scio_errmsg(); the queue is left empty.  Returns
 * code. */
int scio__tls_seterr(int code, SSL *ssl, const char *what);
/* handshake(arg) under a handshake timeout (none when timeout <= 0):
 * SCIO_ETIMEDOUT with "what: no handshake within N s" when it runs out
 * (tls_error.c). */
int scio__tls_handshake_timed(int (*handshake)(void *), void *arg,
                              double timeout, const char *what);

/* Attributes (tls_attr.c).  Copy the C string v to out (len bytes): 0,
 * -ENOENT when v is NULL, -ENOSPC when it does not fit. */
int scio__tls_put_str(const char *v, void *out, size_t len);
/* The attributes that come from the SSL object alone (SCIO_ATTR_ALPN,
 * _TLS_VERSION, _CIPHER, _PEER_CERT), as a stream's do_attr answers them;
 * -ENOENT for any other key. */
int scio__tls_ssl_attr(SSL *ssl, int key, void *out, size_t len);

#endif
