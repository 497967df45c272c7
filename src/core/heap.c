/* Pairing heap: see heap.h for why. */
#include "heap.h"

/* Link two roots; the larger key becomes the first child of the smaller. */
static scio__hnode *meld(scio__hnode *a, scio__hnode *b) {
  if (!a)
    return b;
  if (!b)
    return a;
  if (b->key < a->key) {
    scio__hnode *t = a;
    a = b;
    b = t;
  }
  b->sibling = a->child;
  if (a->child)
    a->child->prev = b;
  b->prev = a;
  a->child = b;
  a->sibling = NULL;
  a->prev = NULL;
  return a;
}

/* Standard two-pass merge of a sibling list: pair left to right, then meld
 * the pairs right to left.  Iterative, so deep heaps cannot overflow the
 * (small) coroutine stack. */
static scio__hnode *merge_pairs(scio__hnode *first) {
  scio__hnode *pairs = NULL; /* singly linked through ->prev, reversed */
  while (first) {
    scio__hnode *a = first, *b = first->sibling;
    first = b ? b->sibling : NULL;
    a->sibling = a->prev = NULL;
    if (b)
      b->sibling = b->prev = NULL;
    scio__hnode *m = meld(a, b);
    m->prev = pairs;
    pairs = m;
  }
  scio__hnode *result = NULL;
  while (pairs) {
    scio__hnode *next = pairs->prev;
    pairs->prev = NULL;
    result = meld(pairs, result);
    pairs = next;
  }
  return result;
}

void scio__heap_insert(scio__heap *h, scio__hnode *n) {
  n->child = n->sibling = n->prev = NULL;
  h->root = meld(h->root, n);
  h->count++;
}

scio__hnode *scio__heap_pop(scio__heap *h) {
  scio__hnode *r = h->root;
  if (!r)
    return NULL;
  h->root = merge_pairs(r->child);
  r->child = r->sibling = r->prev = NULL;
  h->count--;
  return r;
}

void scio__heap_remove(scio__heap *h, scio__hnode *n) {
  if (n == h->root) {
    scio__heap_pop(h);
    return;
  }
  /* Detach n's subtree from its parent or previous sibling. */
  if (n->prev->child == n)
    n->prev->child = n->sibling;
  else
    n->prev->sibling = n->sibling;
  if (n->sibling)
    n->sibling->prev = n->prev;
  n->sibling = n->prev = NULL;
  scio__hnode *sub = merge_pairs(n->child);
  n->child = NULL;
  h->root = meld(h->root, sub);
  h->count--;
}
