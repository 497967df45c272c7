/* Private: intrusive circular doubly-linked lists.
 *
 * Nodes are embedded in their owners (tasks, scopes) and the owner is
 * recovered with scio__container_of, so linking never allocates.
 */
#ifndef SCIO_CORE_LIST_H
#define SCIO_CORE_LIST_H

#include <stddef.h>

#define scio__container_of(ptr, type, member)                                 \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

typedef struct scio__node {
  struct scio__node *next, *prev;
} scio__node;

static inline void scio__list_init(scio__node *h) { h->next = h->prev = h; }
static inline int scio__list_empty(const scio__node *h) { return h->next == h; }

static inline void scio__list_push_back(scio__node *h, scio__node *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}

/* Unlink n and leave it self-linked, so a second remove is harmless. */
static inline void scio__list_remove(scio__node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

static inline int scio__node_linked(const scio__node *n) { return n->next != n; }

#define scio__list_each(pos, head)                                            \
  for (scio__node *pos = (head)->next, *pos##_next = pos->next; pos != (head); \
       pos = pos##_next, pos##_next = pos->next)

#endif
