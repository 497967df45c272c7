/* TLS contexts: one SSL_CTX with scio's safe defaults, shared by many
 * connections and reference-counted so that streams outlive the caller's
 * handle.
 *
 * The trust store is loaded here, once per context: scanning the system
 * store costs about half a handshake, so doing it per connection would
 * halve a server's or a crawler's handshake rate.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <string.h>

#include "core/layer.h"
#include "tls_internal.h"

/* How many client sessions a context keeps (oldest dropped first). */
#define SESSION_CACHE_MAX 64

/* ---- small helpers --------------------------------------------------- */

static int ctx_err(int code, const char *what) {
  return scio__tls_seterr(code, NULL, what);
}

/* Build ALPN wire format ("\x02h2\x08http/1.1") from "h2,http/1.1". */
static int alpn_wire(const char *list, unsigned char **out, size_t *outlen) {
  size_t n = strlen(list);
  unsigned char *w = scio__malloc(n + 1);
  if (!w)
    return scio__seterr(SCIO_ENOMEM, "tls context: no memory for ALPN");
  size_t o = 0;
  const char *p = list;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0 || len > 255) {
      scio__free(w);
      return scio__seterr(SCIO_EINVAL, "tls context: ALPN list \"%s\" has an "
                                       "empty or too long name",
                          list);
    }
    w[o++] = (unsigned char)len;
    memcpy(w + o, p, len);
    o += len;
    if (!e)
      break;
    p = e + 1;
  }
  *out = w;
  *outlen = o;
  return 0;
}

/* Servers: pick the first protocol of our list that the client offers. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
  (void)ssl;
  scio_tls_ctx *ctx = arg;
  for (size_t i = 0; i < ctx->alpn_len; i += 1 + ctx->alpn[i]) {
    const unsigned char *ours = ctx->alpn + i;
    for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
      if (j + 1u + in[j] > inlen)
        break; /* a malformed list: OpenSSL checks too */
      if (in[j] == ours[0] && memcmp(in + j + 1, ours + 1, ours[0]) == 0) {
        *out = in + j + 1;
        *outlen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  /* RFC 7301 §3.2: no overlap is a fatal no_application_protocol alert. */
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int load_pem_ca(SSL_CTX *c, const char *pem) {
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b)
    return ctx_err(SCIO_ENOMEM, "tls context: ca_pem");
  X509_STORE *store = SSL_CTX_get_cert_store(c);
  int n = 0;
  X509 *x;
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
    int ok = X509_STORE_add_cert(store, x);
    X509_free(x);
    if (!ok) {
      BIO_free(b);
      return ctx_err(SCIO_ETLS, "tls context: ca_pem");
    }
    n++;
  }
  BIO_free(b);
  ERR_clear_error(); /* the end of the PEM text reads as an error */
  if (n == 0)
    return scio__seterr(SCIO_ETLS, "tls context: ca_pem holds no "
                                   "certificate");
  return 0;
}

static int load_pem_chain(SSL_CTX *c, const char *pem) {
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b)
    return ctx_err(SCIO_ENOMEM, "tls context: cert_pem");
  X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
  if (!leaf || SSL_CTX_use_certificate(c, leaf) != 1) {
    X509_free(leaf);
    BIO_free(b);
    return ctx_err(SCIO_ETLS, "tls context: cert_pem");
  }
  X509_free(leaf);
  X509 *x;
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
    if (SSL_CTX_add0_chain_cert(c, x) != 1) { /* takes x on success */
      X509_free(x);
      BIO_free(b);
      return ctx_err(SCIO_ETLS, "tls context: cert_pem chain");
    }
  }
  BIO_free(b);
  ERR_clear_error();
  return 0;
}

static int load_pem_key(SSL_CTX *c, const char *pem) {
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b)
    return ctx_err(SCIO_ENOMEM, "tls context: key_pem");
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  int ok = k && SSL_CTX_use_PrivateKey(c, k) == 1;
  EVP_PKEY_free(k);
  return ok ? 0 : ctx_err(SCIO_ETLS, "tls context: key_pem");
}

/* ---- configuration -------------------------------------------------- */

/* DTLS has one version here, 1.2, spelled SCIO_TLS_1_2 by the caller. */
static int set_dtls_versions(SSL_CTX *c, const scio_tls_ctx_opts *o) {
  if ((o->min_version && o->min_version != SCIO_TLS_1_2) ||
      (o->max_version && o->max_version != SCIO_TLS_1_2))
    return scio__seterr(SCIO_EINVAL, "dtls context: only DTLS 1.2 "
                                     "(SCIO_TLS_1_2) is supported");
  if (SSL_CTX_set_min_proto_version(c, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, DTLS1_2_VERSION) != 1)
    return ctx_err(SCIO_ETLS, "dtls context: version bounds");
  return 0;
}

static int set_versions(SSL_CTX *c, const scio_tls_ctx_opts *o, int dtls) {
  if (dtls)
    return set_dtls_versions(c, o);
  int lo = o->min_version ? o->min_version : SCIO_TLS_1_2;
  int hi = o->max_version;
  if ((lo != SCIO_TLS_1_2 && lo != SCIO_TLS_1_3) ||
      (hi && hi != SCIO_TLS_1_2 && hi != SCIO_TLS_1_3) || (hi && hi < lo))
    return scio__seterr(SCIO_EINVAL, "tls context: bad version bounds "
                                     "(min 0x%04x, max 0x%04x)",
                        o->min_version, o->max_version);
  if (SSL_CTX_set_min_proto_version(c, lo) != 1 ||
      SSL_CTX_set_max_proto_version(c, hi) != 1)
    return ctx_err(SCIO_ETLS, "tls context: version bounds");
  return 0;
}

static int set_trust(scio_tls_ctx *ctx, const scio_tls_ctx_opts *o) {
  SSL_CTX *c = ctx->ssl_ctx;
  int any = o->ca_file || o->ca_dir || o->ca_pem;
  if ((o->ca_file || o->ca_dir) &&
      SSL_CTX_load_verify_locations(c, o->ca_file, o->ca_dir) != 1)
    return ctx_err(SCIO_ETLS, "tls context: loading CA file/dir");
  if (o->ca_pem) {
    int rc = load_pem_ca(c, o->ca_pem);
    if (rc < 0)
      return rc;
  }
  if (ctx->role == SCIO_TLS_CLIENT && !any && !o->insecure_no_verify &&
      SSL_CTX_set_default_verify_paths(c) != 1)
    return ctx_err(SCIO_ETLS, "tls context: loading the system trust store");
  return 0;
}

static int set_identity(SSL_CTX *c, const scio_tls_ctx_opts *o, int role) {
  int has_cert = o->cert_file || o->cert_pem;
  int has_key = o->key_file || o->key_pem;
  if (role == SCIO_TLS_SERVER && (!has_cert || !has_key))
    return scio__seterr(SCIO_EINVAL, "tls context: a server needs a "
                                     "certificate and a key");
  if (has_cert != has_key)
    return scio__seterr(SCIO_EINVAL, "tls context: a certificate needs its "
                                     "key and a key its certificate");
  int rc = 0;
  if (o->cert_file && SSL_CTX_use_certificate_chain_file(c, o->cert_file) != 1)
    return ctx_err(SCIO_ETLS, "tls context: cert_file");
  if (o->cert_pem && (rc = load_pem_chain(c, o->cert_pem)) < 0)
    return rc;
  if (o->key_file &&
      SSL_CTX_use_PrivateKey_file(c, o->key_file, SSL_FILETYPE_PEM) != 1)
    return ctx_err(SCIO_ETLS, "tls context: key_file");
  if (o->key_pem && (rc = load_pem_key(c, o->key_pem)) < 0)
    return rc;
  if (has_cert && SSL_CTX_check_private_key(c) != 1)
    return ctx_err(SCIO_ETLS, "tls context: the key does not match the "
                              "certificate");
  return 0;
}

static int set_ciphers(SSL_CTX *c, const scio_tls_ctx_opts *o) {
  if (o->cipher_list && SSL_CTX_set_cipher_list(c, o->cipher_list) != 1)
    return ctx_err(SCIO_ETLS, "tls context: cipher_list");
  if (o->ciphersuites && SSL_CTX_set_ciphersuites(c, o->ciphersuites) != 1)
    return ctx_err(SCIO_ETLS, "tls context: ciphersuites");
  return 0;
}

static int set_alpn(scio_tls_ctx *ctx, const char *list) {
  if (!list)
    return 0;
  unsigned char *w = NULL;
  size_t n = 0;
  int rc = alpn_wire(list, &w, &n);
  if (rc < 0)
    return rc;
  if (ctx->role == SCIO_TLS_CLIENT) {
    rc = SSL_CTX_set_alpn_protos(ctx->ssl_ctx, w, (unsigned)n) == 0
             ? 0
             : ctx_err(SCIO_ENOMEM, "tls context: ALPN");
    scio__free(w);
    return rc;
  }
  ctx->alpn = w;
  ctx->alpn_len = n;
  SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, alpn_select, ctx);
  return 0;
}

static void set_verify(scio_tls_ctx *ctx, const scio_tls_ctx_opts *o) {
  int mode = SSL_VERIFY_NONE;
  if (ctx->role == SCIO_TLS_CLIENT) {
    ctx->verify = !o->insecure_no_verify;
    if (ctx->verify)
      mode = SSL_VERIFY_PEER;
  } else if (o->client_cert == SCIO_TLS_CLIENT_CERT_OPTIONAL) {
    mode = SSL_VERIFY_PEER;
  } else if (o->client_cert == SCIO_TLS_CLIENT_CERT_REQUIRED) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx->ssl_ctx, mode, NULL);
}

static void set_sessions(scio_tls_ctx *ctx, const scio_tls_ctx_opts *o) {
  SSL_CTX *c = ctx->ssl_ctx;
  if (o->no_session_resumption) {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
    return;
  }
  if (ctx->role == SCIO_TLS_CLIENT && ctx->dtls) {
    /* The session cache below keys on TLS streams (their app data). */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  } else if (ctx->role == SCIO_TLS_CLIENT) {
    /* Sessions are kept per server name by scio (tls_stream.c), not in
     * OpenSSL's internal cache, which clients never look up anyway. */
    ctx->resume = 1;
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT |
                                          SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, scio__tls_new_session_cb);
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    static const unsigned char sid[] = "scio";
    SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1);
  }
}

static int configure(scio_tls_ctx *ctx, const scio_tls_ctx_opts *o) {
  SSL_CTX *c = ctx->ssl_ctx;
  /* Renegotiation is an attack surface nobody needs any more; compression
   * leaks secrets (CRIME). */
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  /* scio hands SSL_write pieces of the caller's buffer that may move
   * between retries. */
  SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  int rc;
  if ((rc = set_versions(c, o, ctx->dtls)) < 0 || (rc = set_trust(ctx, o)) < 0 ||
      (rc = set_identity(c, o, ctx->role)) < 0 ||
      (rc = set_ciphers(c, o)) < 0 || (rc = set_alpn(ctx, o->alpn)) < 0)
    return rc;
  set_verify(ctx, o);
  set_sessions(ctx, o);
  return 0;
}

static scio_tls_ctx *ctx_alloc(int role) {
  scio_tls_ctx *ctx = scio__calloc(1, sizeof *ctx);
  if (!ctx)
    return NULL;
  pthread_mutex_t *m = scio__malloc(sizeof *m);
  if (!m) {
    scio__free(ctx);
    return NULL;
  }
  pthread_mutex_init(m, NULL);
  ctx->lock = m;
  ctx->role = role;
  ctx->refs = 1;
  return ctx;
}

static void ctx_free(scio_tls_ctx *ctx) {
  for (scio__tls_session *s = ctx->sessions, *n; s; s = n) {
    n = s->next;
    SSL_SESSION_free(s->sess);
    scio__free(s);
  }
  SSL_CTX_free(ctx->ssl_ctx);
  scio__free(ctx->alpn);
  pthread_mutex_destroy(ctx->lock);
  scio__free(ctx->lock);
  scio__free(ctx);
}

static const SSL_METHOD *method_of(int role, int dtls) {
  if (dtls)
    return role == SCIO_TLS_SERVER ? DTLS_server_method()
                                   : DTLS_client_method();
  return role == SCIO_TLS_SERVER ? TLS_server_method() : TLS_client_method();
}

int scio__tls_ctx_open_method(const scio_tls_ctx_opts *opts, int dtls,
                              scio_tls_ctx **out) {
  if (out)
    *out = NULL;
  static const scio_tls_ctx_opts defaults;
  const scio_tls_ctx_opts *o = opts ? opts : &defaults;
  if (!out)
    return scio__seterr(SCIO_EINVAL, "tls context: NULL out pointer");
  if (o->role != SCIO_TLS_CLIENT && o->role != SCIO_TLS_SERVER)
    return scio__seterr(SCIO_EINVAL, "tls context: unknown role %d", o->role);
  scio_tls_ctx *ctx = ctx_alloc(o->role);
  if (!ctx)
    return scio__seterr(SCIO_ENOMEM, "tls context: out of memory");
  ctx->dtls = dtls;
  ctx->ssl_ctx = SSL_CTX_new(method_of(o->role, dtls));
  int rc = ctx->ssl_ctx ? configure(ctx, o)
                        : ctx_err(SCIO_ENOMEM, "tls context: SSL_CTX_new");
  if (rc < 0) {
    ctx_free(ctx);
    ERR_clear_error();
    return rc;
  }
  *out = ctx;
  return 0;
}

SCIO_API int scio_tls_ctx_open(const scio_tls_ctx_opts *opts,
                               scio_tls_ctx **out) {
  return scio__tls_ctx_open_method(opts, 0, out);
}

SCIO_API int scio_tls_ctx_open_ssl(SSL_CTX *ssl_ctx, int role,
                                   scio_tls_ctx **out) {
  if (out)
    *out = NULL;
  if (!ssl_ctx || !out ||
      (role != SCIO_TLS_CLIENT && role != SCIO_TLS_SERVER))
    return scio__seterr(SCIO_EINVAL, "tls context: NULL SSL_CTX or out "
                                     "pointer, or unknown role");
  scio_tls_ctx *ctx = ctx_alloc(role);
  if (!ctx)
    return scio__seterr(SCIO_ENOMEM, "tls context: out of memory");
  SSL_CTX_up_ref(ssl_ctx);
  ctx->ssl_ctx = ssl_ctx;
  /* The application decides about verification: a client checks the
   * host name whenever its SSL_CTX verifies peers. */
  ctx->verify = role == SCIO_TLS_CLIENT &&
                (SSL_CTX_get_verify_mode(ssl_ctx) & SSL_VERIFY_PEER);
  *out = ctx;
  return 0;
}

void scio__tls_ctx_ref(scio_tls_ctx *ctx) {
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
}

SCIO_API void scio_tls_ctx_close(scio_tls_ctx *ctx) {
  if (ctx && __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) == 0)
    ctx_free(ctx);
}

SCIO_API SSL_CTX *scio_tls_ctx_ssl_ctx(scio_tls_ctx *ctx) {
  return ctx ? ctx->ssl_ctx : NULL;
}

/* ---- the client session cache -------------------------------------- */

SSL_SESSION *scio__tls_session_get(scio_tls_ctx *ctx, const char *name) {
  SSL_SESSION *found = NULL;
  pthread_mutex_lock(ctx->lock);
  for (scio__tls_session *s = ctx->sessions; s; s = s->next)
    if (strcmp(s->name, name) == 0) {
      if (SSL_SESSION_is_resumable(s->sess) && SSL_SESSION_up_ref(s->sess))
        found = s->sess;
      break;
    }
  pthread_mutex_unlock(ctx->lock);
  return found;
}

/* Unlink and free the entry for `name`, if any; with the lock held. */
static void session_drop(scio_tls_ctx *ctx, const char *name) {
  for (scio__tls_session **pp = &ctx->sessions; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->name, name) == 0) {
      scio__tls_session *s = *pp;
      *pp = s->next;
      SSL_SESSION_free(s->sess);
      scio__free(s);
      ctx->nsessions--;
      return;
    }
}

/* Drop the oldest (last) entry; with the lock held. */
static void session_drop_oldest(scio_tls_ctx *ctx) {
  scio__tls_session **pp = &ctx->sessions;
  while (*pp && (*pp)->next)
    pp = &(*pp)->next;
  if (*pp)
    session_drop(ctx, (*pp)->name);
}

void scio__tls_session_put(scio_tls_ctx *ctx, const char *name,
                           SSL_SESSION *sess) {
  size_t n = strlen(name);
  scio__tls_session *s = scio__malloc(sizeof *s + n + 1);
  if (!s)
    return; /* resumption is an optimisation: nothing to report */
  memcpy(s->name, name, n + 1);
  SSL_SESSION_up_ref(sess);
  s->sess = sess;
  pthread_mutex_lock(ctx->lock);
  session_drop(ctx, name);
  if (ctx->nsessions >= SESSION_CACHE_MAX)
    session_drop_oldest(ctx);
  s->next = ctx->sessions;
  ctx->sessions = s;
  ctx->nsessions++;
  pthread_mutex_unlock(ctx->lock);
}
