/* scio_tcp_listen: one listener over every address of a host. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "listener.h"

enum { MAX_ADDRS = 16, PORT0_TRIES = 20 };

typedef struct addr_list {
  struct sockaddr_storage a[MAX_ADDRS];
  socklen_t len[MAX_ADDRS];
  int n;
  int optional_v6; /* a NULL host: the v6 socket may be missing */
} addr_list;

/* A host *name*: resolved with scio_getaddrinfo (c-ares, /etc/hosts
 * first), so only inside a task, where it is a checkpoint.  Every address
 * it gives is bound (duplicates skipped). */
static int resolve_listen_host(const char *host, int family, addr_list *out) {
  if (!scio_task_current())
    return scio__seterr(SCIO_EINVAL, "tcp_listen %s: a host name is "
                                     "resolved on the loop: call from a "
                                     "task, or use an IP literal or NULL",
                        host);
  scio_addrinfo_opts o = {.family = family, .socktype = SOCK_STREAM};
  scio_addrinfo *res = NULL;
  int rc = scio_getaddrinfo(host, NULL, &o, &res);
  if (rc < 0)
    return rc;
  for (scio_addrinfo *ai = res; ai && out->n < MAX_ADDRS; ai = ai->next) {
    int dup = 0;
    for (int i = 0; i < out->n; i++)
      dup |= out->len[i] == ai->addrlen &&
             memcmp(&out->a[i], ai->addr, ai->addrlen) == 0;
    if (dup)
      continue;
    memcpy(&out->a[out->n], ai->addr, ai->addrlen);
    out->len[out->n++] = ai->addrlen;
  }
  scio_freeaddrinfo(res);
  return 0;
}

static void add_any(addr_list *l, int family) {
  struct sockaddr_storage *ss = &l->a[l->n];
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_any;
    l->len[l->n++] = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    l->len[l->n++] = sizeof *a;
  }
}

static int literal_addrs(const char *host, int family, addr_list *l) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc == EAI_NONAME)
    return resolve_listen_host(host, family, l);
  if (rc == EAI_MEMORY)
    return scio__seterr(SCIO_ENOMEM, "tcp_listen: out of memory");
  if (rc != 0)
    return scio__seterr(SCIO_EINVAL, "tcp_listen %s: %s", host,
                        gai_strerror(rc));
  for (struct addrinfo *ai = res; ai && l->n < MAX_ADDRS; ai = ai->ai_next) {
    memcpy(&l->a[l->n], ai->ai_addr, ai->ai_addrlen);
    l->len[l->n++] = ai->ai_addrlen;
  }
  freeaddrinfo(res);
  return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
  if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  else
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static uint16_t bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
    return 0;
  return ss.ss_family == AF_INET6
             ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Bind every address; with port 0 the first socket picks the port and the
 * others take the same one.  1: retry (port 0 taken on another family). */
static int bind_all(addr_list *al, uint16_t port, const scio_listen_opts *o,
                    scio_listener *l) {
  int k = 0, picked = port == 0;
  for (int i = 0; i < al->n; i++) {
    set_port(&al->a[i], port);
    int fd = scio__listen_socket((struct sockaddr *)&al->a[i], al->len[i], o,
                                 "tcp_listen");
    if (fd < 0) {
      /* A host without IPv6 still listens on IPv4. */
      if (al->optional_v6 && al->a[i].ss_family == AF_INET6 &&
          (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL))
        continue;
      if (fd == SCIO_EADDRINUSE && picked && k > 0)
        return 1; /* the port we picked is taken for the other family */
      return fd;
    }
    l->socks[k].fd = fd;
    l->socks[k].family = al->a[i].ss_family;
    k++;
    if (port == 0)
      port = bound_port(fd);
  }
  l->n = k;
  return k > 0 ? 0 : scio__seterr(-EADDRNOTAVAIL, "tcp_listen: no address");
}

SCIO_API int scio_tcp_listen(const char *host, uint16_t port,
                             const scio_listen_opts *opts,
                             scio_listener **out) {
  if (out)
    *out = NULL;
  scio_listen_opts o;
  memset(&o, 0, sizeof o);
  if (opts)
    o = *opts;
  if (!out || o.backlog < 0 ||
      (o.family != 0 && o.family != AF_INET && o.family != AF_INET6) ||
      (o.stream_flags & ~(unsigned)SCIO_SOCKET_KEEP_NAGLE))
    return scio__seterr(SCIO_EINVAL, "tcp_listen: bad argument");
  addr_list al;
  al.n = 0;
  al.optional_v6 = 0;
  if (host) {
    int rc = literal_addrs(host, o.family, &al);
    if (rc < 0)
      return rc;
  } else {
    /* IPv6 first: with port 0 its free port is then tried on IPv4. */
    if (o.family != AF_INET)
      add_any(&al, AF_INET6);
    if (o.family != AF_INET6)
      add_any(&al, AF_INET);
    al.optional_v6 = o.family == 0;
  }
  for (int attempt = 0;; attempt++) {
    scio_listener *l = scio__listener_new(al.n);
    if (!l)
      return scio__seterr(SCIO_ENOMEM, "tcp_listen: out of memory");
    l->stream_flags = o.stream_flags;
    int rc = bind_all(&al, port, &o, l);
    if (rc == 0) {
      *out = l;
      return 0;
    }
    scio__listener_discard(l);
    if (rc < 0 || attempt == PORT0_TRIES)
      return rc < 0 ? rc
                    : scio__seterr(SCIO_EADDRINUSE, "tcp_listen: no port "
                                                    "free on every family");
  }
}
