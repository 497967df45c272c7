/* One TCP connection attempt, and the small helpers of the engine's
 * messages (address text, error text, numeric hosts). */
#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "connect.h"
#include "core/layer.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int fail_close(int fd, int code) {
  scio__fd_close(fd);
  return code;
}

/* Writable after a non-blocking connect: connected, failed, or (a spurious
 * wake-up) still in progress.  0 connected, 1 in progress, < 0 failed. */
static int connect_outcome(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return -errno;
  if (err == EINPROGRESS || err == EALREADY)
    return 1;
  if (err)
    return -err;
  struct sockaddr_storage ss;
  len = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
    return errno == ENOTCONN ? 1 : -errno;
  return 0;
}

int scio__tcp_connect_addr(const struct sockaddr *sa, socklen_t salen,
                           const struct sockaddr *local, socklen_t locallen,
                           int *out) {
  *out = -1;
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  IPPROTO_TCP);
  if (fd < 0)
    return -errno;
  if (local) {
    /* Let connect choose the port: many connections from one local
     * address do not exhaust the ephemeral ports at bind time. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                     sizeof one);
    if (bind(fd, local, locallen) < 0)
      return fail_close(fd, -errno);
  }
  if (connect(fd, sa, salen) < 0) {
    if (errno != EINPROGRESS)
      return fail_close(fd, -errno);
    for (;;) {
      int rc = scio__fd_wait(fd, SCIO__FD_WRITE);
      if (rc < 0)
        return fail_close(fd, rc);
      rc = connect_outcome(fd);
      if (rc < 0)
        return fail_close(fd, rc);
      if (rc == 0)
        break;
    }
  }
  *out = fd;
  return 0;
}

void scio__sockaddr_text(const struct sockaddr *sa, char *buf, size_t cap) {
  char ip[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, INET6_ADDRSTRLEN);
    if (in6->sin6_scope_id)
      snprintf(ip + strlen(ip), sizeof ip - strlen(ip), "%%%u",
               (unsigned)in6->sin6_scope_id);
    snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
  } else {
    snprintf(buf, cap, "(family %d)", sa->sa_family);
  }
}

const char *scio__connect_error_text(int code) {
  static __thread char buf[96];
  switch (code) {
  case SCIO_ETIMEDOUT:
    return "timed out";
  case -ECONNREFUSED:
    return "connection refused";
  case -ENETUNREACH:
    return "network unreachable";
  case -EHOSTUNREACH:
    return "host unreachable";
  case -ECONNRESET:
    return "connection reset";
  case SCIO_ENOMEM:
    return "out of memory";
  case SCIO_ECANCELED:
    return "cancelled";
  default:
    break;
  }
  snprintf(buf, sizeof buf, "%s", scio_strerror(code));
  if (buf[0])
    buf[0] = (char)tolower((unsigned char)buf[0]);
  return buf;
}

int scio__parse_ip_literal(const char *host, uint16_t port,
                           struct sockaddr_storage *ss, socklen_t *len) {
  char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
  size_t n = strlen(host);
  if (n >= sizeof tmp)
    return 0;
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    memcpy(tmp, host + 1, n - 2);
    tmp[n - 2] = 0;
  } else {
    memcpy(tmp, host, n + 1);
  }
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in = (void *)ss;
  if (host[0] != '[' && inet_pton(AF_INET, tmp, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    *len = sizeof *in;
    return 1;
  }
  struct sockaddr_in6 *in6 = (void *)ss;
  char *pct = strchr(tmp, '%');
  if (pct)
    *pct++ = 0;
  if (inet_pton(AF_INET6, tmp, &in6->sin6_addr) != 1)
    return 0;
  if (pct) {
    char *end;
    unsigned long id = strtoul(pct, &end, 10);
    if (*end || !*pct)
      id = if_nametoindex(pct);
    if (!id)
      return 0;
    in6->sin6_scope_id = (uint32_t)id;
  }
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  *len = sizeof *in6;
  return 1;
}
