/* scio_getaddrinfo: ares_getaddrinfo on a channel of its own. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "resolver.h"

typedef struct node {
  scio_addrinfo ai;
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } u;
} node;

typedef struct gai_query {
  scio__dns *d;
  int status;
  struct ares_addrinfo *res;
} gai_query;

/* Runs on the calling task's stack: from ares_getaddrinfo itself (numeric
 * host, /etc/hosts), from ares_process_fd in scio__dns_run, or from
 * ares_destroy in scio__dns_close; never after the caller has returned. */
static void gai_done(void *arg, int status, int timeouts,
                     struct ares_addrinfo *res) {
  (void)timeouts;
  gai_query *q = arg;
  q->status = status;
  q->res = res;
  q->d->pending--;
}

SCIO_API void scio_freeaddrinfo(scio_addrinfo *ai) {
  while (ai) {
    scio_addrinfo *next = ai->next;
    scio__free(ai->canonname);
    scio__free(ai);
    ai = next;
  }
}

/* The canonical name: the target of the CNAME chain that no other CNAME
 * record points past, else the name itself. */
static const char *canon_of(const struct ares_addrinfo *res) {
  for (const struct ares_addrinfo_cname *c = res->cnames; c; c = c->next) {
    int aliased = 0;
    for (const struct ares_addrinfo_cname *o = res->cnames; o; o = o->next)
      if (o->alias && c->name && strcmp(o->alias, c->name) == 0)
        aliased = 1;
    if (!aliased && c->name)
      return c->name;
  }
  return res->name;
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = scio__malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

/* Copy c-ares's result into scio's own nodes (so that the caller frees
 * with scio_freeaddrinfo, whatever c-ares's allocator is). */
static int convert(const struct ares_addrinfo *res, const scio_addrinfo_opts *o,
                   scio_addrinfo **out) {
  scio_addrinfo *head = NULL, **tail = &head;
  for (const struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
    size_t len = n->ai_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
    if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
        n->ai_addrlen < len)
      continue;
    node *x = scio__calloc(1, sizeof *x);
    if (!x)
      goto oom;
    memcpy(&x->u, n->ai_addr, len);
    x->ai.family = n->ai_family;
    x->ai.socktype = o ? o->socktype : 0;
    x->ai.protocol = o ? o->protocol : 0;
    x->ai.ttl = n->ai_ttl;
    x->ai.addrlen = (socklen_t)len;
    x->ai.addr = &x->u.sa;
    *tail = &x->ai;
    tail = &x->ai.next;
  }
  if (head && o && (o->flags & SCIO_AI_CANONNAME) && canon_of(res)) {
    head->canonname = dup_str(canon_of(res));
    if (!head->canonname)
      goto oom;
  }
  *out = head;
  return 0;
oom:
  scio_freeaddrinfo(head);
  return SCIO_ENOMEM;
}

static int check_args(const char *host, const scio_addrinfo_opts *o,
                      scio_addrinfo **out) {
  if (!out)
    return scio__seterr(SCIO_EINVAL, "getaddrinfo: out is NULL");
  if (!host || !*host)
    return scio__seterr(SCIO_EINVAL, "getaddrinfo: no host");
  if (!scio__task_cur())
    return scio__seterr(SCIO_EINVAL, "resolve %s: not inside a task", host);
  if (o && o->family != AF_UNSPEC && o->family != AF_INET &&
      o->family != AF_INET6)
    return scio__seterr(SCIO_EINVAL, "resolve %s: bad family %d", host,
                        o->family);
  if (o && (o->flags & ~(unsigned)(SCIO_AI_CANONNAME | SCIO_AI_NUMERICHOST |
                                   SCIO_AI_NUMERICSERV | SCIO_AI_NOSORT)))
    return scio__seterr(SCIO_EINVAL, "resolve %s: unknown flags 0x%x", host,
                        o->flags);
  return 0;
}

static struct ares_addrinfo_hints make_hints(const scio_addrinfo_opts *o) {
  struct ares_addrinfo_hints h;
  memset(&h, 0, sizeof h);
  if (!o)
    return h;
  h.ai_family = o->family;
  h.ai_socktype = o->socktype;
  h.ai_protocol = o->protocol;
  if (o->flags & SCIO_AI_CANONNAME)
    h.ai_flags |= ARES_AI_CANONNAME;
  if (o->flags & SCIO_AI_NUMERICHOST)
    h.ai_flags |= ARES_AI_NUMERICHOST;
  if (o->flags & SCIO_AI_NUMERICSERV)
    h.ai_flags |= ARES_AI_NUMERICSERV;
  if (o->flags & SCIO_AI_NOSORT)
    h.ai_flags |= ARES_AI_NOSORT;
  return h;
}

SCIO_API int scio_getaddrinfo(const char *host, const char *service,
                              const scio_addrinfo_opts *opts,
                              scio_addrinfo **out) {
  if (out)
    *out = NULL;
  int rc = check_args(host, opts, out);
  if (rc < 0)
    return rc;
  if ((rc = scio_checkpoint_if_cancelled()) < 0)
    return rc;
  char what[300];
  snprintf(what, sizeof what, "resolve %s", host);
  scio__dns d;
  if ((rc = scio__dns_open(&d, opts ? &opts->dns : NULL, what)) < 0)
    return rc;
  gai_query q = {&d, ARES_ENOTINITIALIZED, NULL};
  struct ares_addrinfo_hints hints = make_hints(opts);
  d.pending = 1;
  ares_getaddrinfo(d.ch, host, service, &hints, gai_done, &q);
  rc = scio__dns_run(&d);
  scio__dns_close(&d); /* if still pending, gai_done runs now */
  if (rc == 0)
    scio__dns_finish_checkpoint(&d);
  if (rc == SCIO_ECANCELED)
    rc = scio__seterr(rc, "%s: cancelled", what);
  else if (rc == SCIO_ENOMEM)
    rc = scio__seterr(rc, "%s: out of memory", what);
  else if (q.status != ARES_SUCCESS)
    rc = scio__dns_error(scio__dns_status(&d, q.status), what);
  else if ((rc = convert(q.res, opts, out)) < 0)
    rc = scio__seterr(rc, "%s: out of memory", what);
  else if (!*out)
    rc = scio__dns_error(ARES_ENODATA, what);
  if (q.res)
    ares_freeaddrinfo(q.res);
  return rc;
}

int scio__resolve_family(const char *host, uint16_t port, int family,
                         const scio_dns_opts *dns, scio_addrinfo **out) {
  scio_addrinfo_opts o;
  memset(&o, 0, sizeof o);
  o.family = family;
  o.socktype = SOCK_STREAM;
  o.protocol = IPPROTO_TCP;
  o.flags = SCIO_AI_NUMERICSERV;
  if (dns)
    o.dns = *dns;
  char service[8];
  snprintf(service, sizeof service, "%u", (unsigned)port);
  return scio_getaddrinfo(host, service, &o, out);
}
