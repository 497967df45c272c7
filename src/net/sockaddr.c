/* Socket addresses for people ("[::1]:80"), for error details and logs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "net_internal.h"

SCIO_API int scio_sockaddr_format(const struct sockaddr_storage *addr,
                                  char *buf, size_t len) {
  if (!buf || len == 0)
    return SCIO_EINVAL;
  buf[0] = '\0';
  if (!addr)
    return SCIO_EINVAL;
  char ip[INET6_ADDRSTRLEN];
  int n;
  switch (addr->ss_family) {
  case AF_INET: {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    n = snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    n = snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    break;
  }
  case AF_UNIX: {
    const struct sockaddr_un *a = (const struct sockaddr_un *)addr;
    /* An unnamed socket (a socketpair end, a client) has no path. */
    if (a->sun_path[0])
      n = snprintf(buf, len, "unix:%.*s", (int)sizeof a->sun_path,
                   a->sun_path);
    else
      n = snprintf(buf, len, "unix:(unnamed)");
    break;
  }
  default:
    snprintf(buf, len, "?");
    return SCIO_EINVAL;
  }
  if (n < 0)
    return SCIO_EINVAL;
  return (size_t)n >= len ? (int)len - 1 : n;
}
