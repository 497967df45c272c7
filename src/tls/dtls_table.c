/* The channels of an endpoint by peer address: a chained hash table, so
 * that sorting a datagram costs the same with ten thousand peers as with
 * one.  The nodes live in the channels; the table only holds the buckets,
 * doubled when there are as many channels as buckets. */
#include <netinet/in.h>
#include <string.h>

#include "dtls_internal.h"

#define FIRST_BUCKETS 16

/* FNV-1a over the port and the address bytes (the ones addr_eq compares). */
static size_t addr_hash(const struct sockaddr_storage *a) {
  const unsigned char *p;
  size_t n;
  uint16_t port;
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
    p = (const unsigned char *)&s->sin6_addr;
    n = sizeof s->sin6_addr;
    port = s->sin6_port;
  } else {
    const struct sockaddr_in *s = (const struct sockaddr_in *)a;
    p = (const unsigned char *)&s->sin_addr;
    n = sizeof s->sin_addr;
    port = s->sin_port;
  }
  uint64_t h = 1469598103934665603ull;
  h = (h ^ (port & 0xff)) * 1099511628211ull;
  h = (h ^ (port >> 8)) * 1099511628211ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return (size_t)(h ^ (h >> 32));
}

static int rehash(scio__dtls_table *t, size_t nb) {
  scio__dtls_hnode **b = scio__calloc(nb, sizeof *b);
  if (!b)
    return -1;
  for (size_t i = 0; i < t->nb; i++)
    for (scio__dtls_hnode *h = t->b[i], *next; h; h = next) {
      next = h->next;
      size_t j = addr_hash(h->addr) & (nb - 1);
      h->next = b[j];
      b[j] = h;
    }
  scio__free(t->b);
  t->b = b;
  t->nb = nb;
  return 0;
}

int scio__dtls_table_add(scio__dtls_table *t, scio__dtls_hnode *h) {
  if (!t->b && rehash(t, FIRST_BUCKETS) < 0)
    return scio__seterr(SCIO_ENOMEM, "dtls: out of memory for the channel "
                                     "table");
  if (t->n >= t->nb)
    rehash(t, t->nb * 2); /* failing that, chains just grow longer */
  size_t j = addr_hash(h->addr) & (t->nb - 1);
  h->next = t->b[j];
  t->b[j] = h;
  t->n++;
  return 0;
}

void scio__dtls_table_remove(scio__dtls_table *t, scio__dtls_hnode *h) {
  size_t j = addr_hash(h->addr) & (t->nb - 1);
  for (scio__dtls_hnode **pp = &t->b[j]; *pp; pp = &(*pp)->next)
    if (*pp == h) {
      *pp = h->next;
      h->next = NULL;
      t->n--;
      return;
    }
}

scio__dtls_hnode *scio__dtls_table_find(const scio__dtls_table *t,
                                        const struct sockaddr_storage *a) {
  if (!t->b)
    return NULL;
  for (scio__dtls_hnode *h = t->b[addr_hash(a) & (t->nb - 1)]; h; h = h->next)
    if (scio__dtls_addr_eq(h->addr, a))
      return h;
  return NULL;
}

void scio__dtls_table_free(scio__dtls_table *t) {
  scio__free(t->b);
  memset(t, 0, sizeof *t);
}
