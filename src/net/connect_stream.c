/* scio_connect_tcp: the happy-eyeballs engine's fd wrapped as a socket
 * stream, and, when the options carry a layer (TLS), that layer on top. */
#include "connect.h"
#include "core/layer.h"
#include "scio/net.h"

#include <stdio.h>

SCIO_API int scio_connect_tcp(const char *host, uint16_t port,
                              const scio_connect_opts *opts,
                              scio_stream **out) {
  if (!out)
    return scio__seterr(SCIO_EINVAL, "connect: out is NULL");
  *out = NULL;
  int fd = -1;
  int rc = scio__connect_tcp_fd(host, port, opts, &fd);
  if (rc < 0)
    return rc;
  /* On failure the fd is still ours. */
  scio_stream *s;
  rc = scio_socket_stream_from_fd(fd, opts ? opts->stream_flags : 0, &s);
  if (rc < 0) {
    scio__fd_close(fd);
    return rc;
  }
  const scio_layer *layer = opts ? opts->layer : NULL;
  if (!layer) {
    *out = s;
    return 0;
  }
  rc = layer->wrap(layer, host, s, out);
  if (rc < 0) {
    /* The detail is the layer's ("tls handshake: certificate verify
     * failed: ..."); closing must not replace it. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", scio_errmsg());
    scio_close(s);
    return scio__seterr(rc, "connect %s port %u: %s", host, (unsigned)port,
                        msg);
  }
  return 0;
}
