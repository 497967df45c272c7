/* scio_getnameinfo: ares_getnameinfo on a channel of its own. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "resolver.h"

typedef struct gni_query {
  scio__dns *d;
  int status;
  char *host, *serv;
  size_t hostlen, servlen;
} gni_query;

static void copy_out(char *dst, size_t cap, const char *src) {
  if (!dst || !cap)
    return;
  snprintf(dst, cap, "%s", src ? src : "");
}

/* Runs on the calling task's stack (see gai_done in resolver_gai.c). */
static void gni_done(void *arg, int status, int timeouts, char *node,
                     char *service) {
  (void)timeouts;
  gni_query *q = arg;
  q->status = status;
  if (status == ARES_SUCCESS) {
    copy_out(q->host, q->hostlen, node);
    copy_out(q->serv, q->servlen, service);
  }
  q->d->pending--;
}

static int ni_flags(unsigned f, int want_host, int want_serv) {
  int r = 0;
  if (want_host)
    r |= ARES_NI_LOOKUPHOST;
  if (want_serv)
    r |= ARES_NI_LOOKUPSERVICE;
  if (f & SCIO_NI_NUMERICHOST)
    r |= ARES_NI_NUMERICHOST;
  if (f & SCIO_NI_NUMERICSERV)
    r |= ARES_NI_NUMERICSERV;
  if (f & SCIO_NI_NAMEREQD)
    r |= ARES_NI_NAMEREQD;
  if (f & SCIO_NI_NOFQDN)
    r |= ARES_NI_NOFQDN;
  if (f & SCIO_NI_DGRAM)
    r |= ARES_NI_DGRAM;
  return r;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t cap) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
              ip, sizeof ip);
  else
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
              sizeof ip);
  snprintf(buf, cap, "reverse lookup of %s", ip);
}

static int check_args(const struct sockaddr *sa, socklen_t len,
                      const scio_nameinfo_opts *o, int want_host,
                      int want_serv) {
  if (!sa)
    return scio__seterr(SCIO_EINVAL, "getnameinfo: no address");
  if (!(sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) &&
      !(sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)))
    return scio__seterr(SCIO_EINVAL, "getnameinfo: not an IPv4 or IPv6 "
                                     "address (family %d, length %u)",
                        sa->sa_family, (unsigned)len);
  if (!want_host && !want_serv)
    return scio__seterr(SCIO_EINVAL, "getnameinfo: neither host nor service "
                                     "asked for");
  if (o && (o->flags & ~(unsigned)(SCIO_NI_NUMERICHOST | SCIO_NI_NUMERICSERV |
                                   SCIO_NI_NAMEREQD | SCIO_NI_NOFQDN |
                                   SCIO_NI_DGRAM)))
    return scio__seterr(SCIO_EINVAL, "getnameinfo: unknown flags 0x%x",
                        o->flags);
  if (!scio__task_cur())
    return scio__seterr(SCIO_EINVAL, "getnameinfo: not inside a task");
  return 0;
}

SCIO_API int scio_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                              const scio_nameinfo_opts *opts, char *host,
                              size_t hostlen, char *serv, size_t servlen) {
  int want_host = host && hostlen;
  int want_serv = serv && servlen;
  if (want_host)
    host[0] = 0;
  if (want_serv)
    serv[0] = 0;
  int rc = check_args(sa, salen, opts, want_host, want_serv);
  if (rc < 0)
    return rc;
  if ((rc = scio_checkpoint_if_cancelled()) < 0)
    return rc;
  char what[80];
  addr_text(sa, what, sizeof what);
  scio__dns d;
  if ((rc = scio__dns_open(&d, opts ? &opts->dns : NULL, what)) < 0)
    return rc;
  gni_query q = {&d, ARES_ENOTINITIALIZED, host, serv, hostlen, servlen};
  if (!want_host)
    q.hostlen = 0;
  if (!want_serv)
    q.servlen = 0;
  d.pending = 1;
  ares_getnameinfo(d.ch, sa, (ares_socklen_t)salen,
                   ni_flags(opts ? opts->flags : 0, want_host, want_serv),
                   gni_done, &q);
  rc = scio__dns_run(&d);
  scio__dns_close(&d);
  if (rc == 0)
    scio__dns_finish_checkpoint(&d);
  if (rc == SCIO_ECANCELED)
    rc = scio__seterr(rc, "%s: cancelled", what);
  else if (rc == SCIO_ENOMEM)
    rc = scio__seterr(rc, "%s: out of memory", what);
  else if (q.status != ARES_SUCCESS)
    rc = scio__dns_error(scio__dns_status(&d, q.status), what);
  if (rc < 0) {
    if (want_host)
      host[0] = 0;
    if (want_serv)
      serv[0] = 0;
  }
  return rc;
}
