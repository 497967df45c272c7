/* Private: an intrusive pairing heap keyed by a double (deadlines).
 *
 * Why a pairing heap: insertion is O(1) and nothing is ever allocated, so
 * opening a cancel scope with a deadline cannot fail for lack of memory and
 * costs a few pointer writes; removal of an arbitrary node (closing a scope
 * before its deadline, the common case) is O(log n) amortised.
 */
#ifndef SCIO_CORE_HEAP_H
#define SCIO_CORE_HEAP_H

#include <stddef.h>

typedef struct scio__hnode {
  double key;
  struct scio__hnode *child;   /* first child */
  struct scio__hnode *sibling; /* next sibling */
  struct scio__hnode *prev;    /* parent if first child, else previous sibling;
                                  NULL when not in a heap */
} scio__hnode;

typedef struct scio__heap {
  scio__hnode *root;
  size_t count;
} scio__heap;

static inline void scio__heap_init(scio__heap *h) {
  h->root = NULL;
  h->count = 0;
}
static inline int scio__hnode_in_heap(const scio__heap *h, const scio__hnode *n) {
  return n->prev != NULL || h->root == n;
}
static inline scio__hnode *scio__heap_min(const scio__heap *h) { return h->root; }

void scio__heap_insert(scio__heap *h, scio__hnode *n);
void scio__heap_remove(scio__heap *h, scio__hnode *n);
scio__hnode *scio__heap_pop(scio__heap *h);

#endif
