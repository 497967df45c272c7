/* DTLS clients: a channel to one server and its handshake. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "dtls_internal.h"

static int is_ip_literal(const char *h) {
  unsigned char a[16];
  return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* SNI for DNS names, and the name (or address) the certificate must
 * show when the context verifies. */
static int set_peer_name(SSL *ssl, scio_tls_ctx *ctx, const char *host) {
  if (!host)
    return ctx->verify ? scio__seterr(SCIO_EINVAL, "dtls connect: a "
                                                   "verifying client needs "
                                                   "server_hostname")
                       : 0;
  int ok;
  if (is_ip_literal(host))
    ok = !ctx->verify ||
         X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
  else
    ok = SSL_set_tlsext_host_name(ssl, host) == 1 &&
         (!ctx->verify || SSL_set1_host(ssl, host) == 1);
  if (!ok)
    return scio__tls_seterr(SCIO_ENOMEM, NULL, "dtls connect: "
                                               "server_hostname");
  return 0;
}

static int check_args(scio_dtls_endpoint *ep,
                      const struct sockaddr_storage *addr, scio_tls_ctx *ctx,
                      scio_ostream **out) {
  if (!ep || !addr || !ctx || !out)
    return scio__seterr(SCIO_EINVAL, "dtls connect: NULL argument");
  if (!ctx->dtls || ctx->role != SCIO_TLS_CLIENT)
    return scio__seterr(SCIO_EINVAL, "dtls connect: not a DTLS client "
                                     "context (scio_dtls_ctx_open)");
  if (addr->ss_family != AF_INET && addr->ss_family != AF_INET6)
    return scio__seterr(SCIO_EINVAL, "dtls connect: not an IP address");
  if (ep->closed)
    return scio__seterr(SCIO_ECLOSED, "dtls connect: the endpoint is "
                                      "closed");
  if (scio__dtls_chan_find(ep, addr)) {
    char a[128];
    scio_sockaddr_format(addr, a, sizeof a);
    return scio__seterr(SCIO_EADDRINUSE, "dtls connect: the endpoint has a "
                                         "channel to %s already",
                        a);
  }
  return 0;
}

SCIO_API int scio_dtls_connect(scio_dtls_endpoint *ep,
                               const struct sockaddr_storage *addr,
                               scio_tls_ctx *ctx, const scio_dtls_opts *opts,
                               scio_ostream **out) {
  if (out)
    *out = NULL;
  static const scio_dtls_opts defaults;
  const scio_dtls_opts *o = opts ? opts : &defaults;
  int rc = check_args(ep, addr, ctx, out);
  if (rc < 0 || (rc = scio_checkpoint_if_cancelled()) < 0)
    return rc;
  SSL *ssl = SSL_new(ctx->ssl_ctx);
  if (!ssl) {
    ERR_clear_error();
    return scio__seterr(SCIO_ENOMEM, "dtls connect: out of memory");
  }
  SSL_set_connect_state(ssl);
  if ((rc = set_peer_name(ssl, ctx, o->server_hostname)) < 0) {
    SSL_free(ssl);
    return rc;
  }
  scio__dtls_chan *c;
  if ((rc = scio__dtls_chan_new(ep, ctx, ssl, addr, o, &c)) < 0)
    return rc;
  scio_ostream *s = scio__dtls_chan_stream(c);
  if ((rc = scio__dtls_chan_handshake(c)) < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", scio_errmsg());
    scio_ostream_close(s); /* not handshaken: sends nothing */
    ERR_clear_error();
    return scio__seterr(rc, "%s", msg);
  }
  *out = s;
  return 0;
}
