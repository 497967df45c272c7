/* OpenSSL's errors as scio error detail.
 *
 * The reason a user needs is usually in one of two places: the
 * verification result of the SSL object (what was wrong with the
 * certificate) or the last entry of the thread's error queue (an alert
 * from the peer, a parse failure).  Either way the queue is emptied, so a
 * stale entry cannot be misreported by a later, unrelated call.
 *
 * Also the handshake timeout of TLS streams and DTLS channels, and its
 * error.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/layer.h"
#include "tls_internal.h"

/* Whether OpenSSL's queue says an allocation failed anywhere. */
static int queue_has_malloc_failure(void) {
  unsigned long e;
  int found = 0;
  while ((e = ERR_get_error()) != 0)
    if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
      found = 1;
  return found;
}

int scio__tls_seterr(int code, SSL *ssl, const char *what) {
  unsigned long e = ERR_peek_last_error();
  if (e && ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
    code = SCIO_ENOMEM;
  long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  int rc;
  if (vr != X509_V_OK && ERR_GET_LIB(e) == ERR_LIB_SSL &&
      ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    rc = scio__seterr(code, "%s: certificate verify failed: %s", what,
                      X509_verify_cert_error_string(vr));
  } else if (e) {
    const char *reason = ERR_reason_error_string(e);
    if (reason)
      rc = scio__seterr(code, "%s: %s", what, reason);
    else
      rc = scio__seterr(code, "%s: OpenSSL error %lu", what, e);
  } else if (code == SCIO_EBROKEN) {
    rc = scio__seterr(code, "%s: the connection broke", what);
  } else {
    rc = scio__seterr(code, "%s: TLS failure", what);
  }
  /* An allocation failure deep in a call often surfaces as a generic
   * error on top: it is still out of memory. */
  if (queue_has_malloc_failure())
    rc = SCIO_ENOMEM;
  return rc;
}

int scio__tls_handshake_timed(int (*handshake)(void *), void *arg,
                              double timeout, const char *what) {
  if (timeout <= 0)
    return handshake(arg);
  scio_scope cs;
  int rc = scio_fail_after(&cs, timeout);
  if (rc < 0)
    return rc;
  rc = handshake(arg);
  int crc = scio_scope_close(&cs);
  if (rc == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs))
    return scio__seterr(crc, "%s: no handshake within %g s", what, timeout);
  return rc;
}
