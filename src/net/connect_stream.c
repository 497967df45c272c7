/* scio_connect_tcp: the happy-eyeballs engine's fd wrapped as a socket
 * stream.
 *
 * Not in Makefile.am until the merge: scio_socket_stream_from_fd comes from
 * branch `sockets` (src/net/socket*.c, scio/net.h).
 */
#include "scio/net.h"
#include "scio/net_connect.h"

#include "connect.h"
#include "fdcompat_resolver.h"

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
  /* It takes the fd, closing it itself if it fails. */
  return scio_socket_stream_from_fd(fd, opts ? opts->stream_flags : 0, out);
}
