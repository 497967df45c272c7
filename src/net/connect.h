/* Private: the happy-eyeballs engine (RFC 8305) behind scio_connect_tcp.
 *
 * It works on fds, with the three things it does to the world injectable
 * (Trio's way of testing it): looking up one family, connecting one
 * address, closing a connected socket that lost.  The clock is the run's:
 * tests run the engine under SCIO_CLOCK_AUTOJUMP with a fake resolver and
 * connector and assert the exact times at which attempts start.
 */
#ifndef SCIO_NET_CONNECT_PRIV_H
#define SCIO_NET_CONNECT_PRIV_H

#include <netinet/in.h>

#include "scio/net.h"

typedef struct scio__he_env {
  /* Look host up for one family (AF_INET6 or AF_INET), for TCP on port.
   * Blocks the calling task; cancellable.  Same contract as
   * scio_getaddrinfo (the list is freed with scio_freeaddrinfo). */
  int (*resolve)(void *ctx, const char *host, uint16_t port, int family,
                 const scio_dns_opts *dns, scio_addrinfo **out);
  /* Open a TCP socket (bound to local, if not NULL), connect it to addr and
   * wait until connected: 0 with *fd set, or a negative code.  On any error,
   * SCIO_ECANCELED included, it has closed whatever it opened. */
  int (*connect)(void *ctx, const struct sockaddr *addr, socklen_t addrlen,
                 const struct sockaddr *local, socklen_t locallen, int *fd);
  /* Close a connected socket that lost the race. */
  void (*close)(void *ctx, int fd);
  void *ctx;
} scio__he_env;

/* The real world: scio__resolve_family, scio__tcp_connect_addr,
 * scio__fd_close. */
extern const scio__he_env scio__he_env_real;

/* Happy eyeballs to host:port with env (NULL: the real one).  On success
 * *fd is the connected socket, registered with the run's loop: close it with
 * scio__fd_close or hand it to scio_socket_stream_from_fd.  Errors as
 * scio_connect_tcp. */
int scio__connect_tcp_fd_env(const char *host, uint16_t port,
                             const scio_connect_opts *opts,
                             const scio__he_env *env, int *fd);
int scio__connect_tcp_fd(const char *host, uint16_t port,
                         const scio_connect_opts *opts, int *fd);

/* One real attempt (the real env's connect). */
int scio__tcp_connect_addr(const struct sockaddr *addr, socklen_t addrlen,
                           const struct sockaddr *local, socklen_t locallen,
                           int *fd);

/* "[2001:db8::2]:8000" / "192.0.2.2:8000" into buf (at least 64 bytes). */
void scio__sockaddr_text(const struct sockaddr *sa, char *buf, size_t cap);

/* A short, lower-case text for an attempt's error ("connection refused",
 * "timed out"), for messages that list attempts. */
const char *scio__connect_error_text(int code);

/* Parse a numeric host ("192.0.2.1", "2001:db8::1", "[2001:db8::1]",
 * "fe80::1%eth0") with port into ss.  1 if numeric, 0 if not. */
int scio__parse_ip_literal(const char *host, uint16_t port,
                           struct sockaddr_storage *ss, socklen_t *len);

#endif
