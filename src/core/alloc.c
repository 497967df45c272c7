/* The allocator hook: every allocation scio makes goes through here, so that
 * users can account for memory and tests can fail allocation N. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static scio_allocator g_alloc;

SCIO_API void scio_set_allocator(const scio_allocator *a) {
  if (a)
    g_alloc = *a;
  else
    memset(&g_alloc, 0, sizeof g_alloc);
}

void *scio__malloc(size_t n) {
  if (g_alloc.malloc_fn)
    return g_alloc.malloc_fn(g_alloc.ctx, n);
  return malloc(n);
}

void *scio__calloc(size_t n, size_t size) {
  if (size && n > (size_t)-1 / size)
    return NULL;
  void *p = scio__malloc(n * size);
  if (p)
    memset(p, 0, n * size);
  return p;
}

void *scio__realloc(void *p, size_t n) {
  if (g_alloc.realloc_fn)
    return g_alloc.realloc_fn(g_alloc.ctx, p, n);
  return realloc(p, n);
}

void scio__free(void *p) {
  if (!p)
    return;
  if (g_alloc.free_fn)
    g_alloc.free_fn(g_alloc.ctx, p);
  else
    free(p);
}
