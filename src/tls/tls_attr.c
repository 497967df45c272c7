/* The attributes TLS streams (tls_stream.c) and DTLS channels
 * (dtls_channel.c) both read from their SSL object. */
#include <errno.h>
#include <openssl/ssl.h>
#include <string.h>

#include "tls_internal.h"

int scio__tls_put_str(const char *v, void *out, size_t len) {
  if (!v)
    return -ENOENT;
  size_t n = strlen(v);
  if (len < n + 1)
    return -ENOSPC;
  memcpy(out, v, n + 1);
  return 0;
}

static int attr_alpn(SSL *ssl, void *out, size_t len) {
  const unsigned char *p;
  unsigned n;
  SSL_get0_alpn_selected(ssl, &p, &n);
  if (n == 0)
    return -ENOENT;
  if (len < (size_t)n + 1)
    return -ENOSPC;
  memcpy(out, p, n);
  ((char *)out)[n] = '\0';
  return 0;
}

int scio__tls_ssl_attr(SSL *ssl, int key, void *out, size_t len) {
  switch (key) {
  case SCIO_ATTR_ALPN:
    return attr_alpn(ssl, out, len);
  case SCIO_ATTR_TLS_VERSION:
    return scio__tls_put_str(SSL_get_version(ssl), out, len);
  case SCIO_ATTR_CIPHER:
    return scio__tls_put_str(SSL_get_cipher_name(ssl), out, len);
  case SCIO_ATTR_PEER_CERT: {
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x)
      return -ENOENT;
    if (len < sizeof x)
      return -ENOSPC;
    memcpy(out, &x, sizeof x);
    return 0;
  }
  default:
    return -ENOENT;
  }
}
