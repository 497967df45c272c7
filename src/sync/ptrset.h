/* Private: a set of non-NULL pointers, for the capacity limiter's
 * borrowers.
 *
 * Open addressing with linear probing, at most half full, so membership
 * tests stay O(1) however many tokens a limiter has.  Memory is only
 * allocated by scio__ptrset_reserve: callers reserve room before they
 * commit to anything, and adding to a set with room cannot fail. */
#ifndef SCIO_SYNC_PTRSET_H
#define SCIO_SYNC_PTRSET_H

#include <stddef.h>

typedef struct scio__ptrset {
  const void **slots; /* NULL marks an empty slot; NULL when nothing is
                         allocated yet */
  size_t mask;        /* number of slots - 1 */
  size_t count;
} scio__ptrset;

void scio__ptrset_init(scio__ptrset *s);
/* Free the slots; the set is then empty and may be used again. */
void scio__ptrset_free(scio__ptrset *s);

/* Make room for n entries in all, so that adds up to that count do not
 * allocate.  Returns 0, or SCIO_ENOMEM with the set unchanged. */
int scio__ptrset_reserve(scio__ptrset *s, size_t n);

int scio__ptrset_has(const scio__ptrset *s, const void *p);

/* Add p (non-NULL, not in the set).  Room must have been reserved. */
void scio__ptrset_add(scio__ptrset *s, const void *p);

/* Remove p.  Returns 1 if it was in the set, 0 if not. */
int scio__ptrset_remove(scio__ptrset *s, const void *p);

#endif
