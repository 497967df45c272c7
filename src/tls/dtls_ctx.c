/* DTLS contexts and the settings of each DTLS connection.
 *
 * Cookies (RFC 6347 section 4.2.1): a server answers a ClientHello
 * without a valid cookie with a HelloVerifyRequest and forgets it; only a
 * client that can receive at its address can echo the cookie.  The cookie
 * is HMAC-SHA256 over a time bucket and the client's address, keyed with
 * the endpoint's random secret, so it needs no state on the server and
 * expires: a cookie of the current or the previous bucket (60 s each)
 * is accepted.
 */
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "dtls_internal.h"

#define COOKIE_BUCKET 60.0 /* seconds */
/* Retransmission is scio's (dtls_channel.c), on scio's clock: OpenSSL's
 * own timer is pushed out of the way (an hour, in microseconds). */
#define OPENSSL_TIMER_US 3600000000u
/* Defaults for the UDP payload: an Ethernet MTU minus IP and UDP. */
#define MTU_V4 1472
#define MTU_V6 1452
#define MTU_MIN 256

/* The message the HMAC covers: bucket, family, port, address. */
static size_t cookie_msg(const struct sockaddr_storage *a, uint64_t bucket,
                         unsigned char *m) {
  size_t n = 0;
  memcpy(m, &bucket, sizeof bucket);
  n += sizeof bucket;
  memcpy(m + n, &a->ss_family, sizeof a->ss_family);
  n += sizeof a->ss_family;
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
    memcpy(m + n, &s->sin6_port, 2);
    memcpy(m + n + 2, &s->sin6_addr, 16);
    n += 18;
  } else {
    const struct sockaddr_in *s = (const struct sockaddr_in *)a;
    memcpy(m + n, &s->sin_port, 2);
    memcpy(m + n + 2, &s->sin_addr, 4);
    n += 6;
  }
  return n;
}

static int cookie_for(SSL *ssl, uint64_t bucket, unsigned char *out,
                      unsigned *len) {
  scio__dtls_peer *p = SSL_get_app_data(ssl);
  if (!p || !p->ep)
    return 0;
  unsigned char m[64];
  size_t n = cookie_msg(&p->addr, bucket, m);
  return HMAC(EVP_sha256(), p->ep->secret, SCIO__DTLS_SECRET, m, n, out,
              len) != NULL;
}

static uint64_t bucket_now(void) {
  return (uint64_t)(scio_now() / COOKIE_BUCKET); /* now >= 0 */
}

static int cookie_generate(SSL *ssl, unsigned char *cookie,
                           unsigned int *len) {
  return cookie_for(ssl, bucket_now(), cookie, len);
}

static int cookie_verify(SSL *ssl, const unsigned char *cookie,
                         unsigned int len) {
  uint64_t b = bucket_now();
  for (int i = 0; i < 2; i++) {
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned wl = 0;
    if (cookie_for(ssl, b - (uint64_t)i, want, &wl) && wl == len &&
        CRYPTO_memcmp(want, cookie, len) == 0)
      return 1;
  }
  return 0;
}

SCIO_API int scio_dtls_ctx_open(const scio_tls_ctx_opts *opts,
                                scio_tls_ctx **out) {
  int rc = scio__tls_ctx_open_method(opts, 1, out);
  if (rc < 0)
    return rc;
  SSL_CTX *c = (*out)->ssl_ctx;
  if ((*out)->role == SCIO_TLS_SERVER) {
    SSL_CTX_set_cookie_generate_cb(c, cookie_generate);
    SSL_CTX_set_cookie_verify_cb(c, cookie_verify);
  }
  return 0;
}

static unsigned openssl_timer(SSL *ssl, unsigned us) {
  (void)ssl;
  (void)us;
  return OPENSSL_TIMER_US;
}

int scio__dtls_ssl_setup(SSL *ssl, size_t mtu, int family) {
  if (mtu == 0)
    mtu = family == AF_INET6 ? MTU_V6 : MTU_V4;
  if (mtu < MTU_MIN || mtu > 65507)
    return scio__seterr(SCIO_EINVAL, "dtls: mtu %zu is out of range "
                                     "(%d to 65507)",
                        mtu, MTU_MIN);
  DTLS_set_timer_cb(ssl, openssl_timer);
  SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
  if (SSL_set_mtu(ssl, (long)mtu) <= 0) { /* the MTU, or 0 */
    ERR_clear_error();
    return scio__seterr(SCIO_EINVAL, "dtls: mtu %zu refused", mtu);
  }
  return 0;
}
