/* A set of pointers: open addressing with linear probing.
 *
 * Removal shifts later entries of the probe run back into the hole instead
 * of leaving tombstones, so a set that sees many adds and removes (a
 * limiter's borrowers come and go all the time) never degrades. */
#include <stdint.h>

#include "core/layer.h"
#include "ptrset.h"

/* A 64-bit mix (the MurmurHash3 finaliser): pointers share their low bits
 * (alignment) and high bits (the same mapping), so they must be mixed
 * before masking. */
static size_t home(const scio__ptrset *s, const void *p) {
  uint64_t h = (uint64_t)(uintptr_t)p;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return (size_t)h & s->mask;
}

void scio__ptrset_init(scio__ptrset *s) {
  s->slots = NULL;
  s->mask = 0;
  s->count = 0;
}

void scio__ptrset_free(scio__ptrset *s) {
  scio__free((void *)s->slots);
  scio__ptrset_init(s);
}

/* Put p into the first empty slot of its probe run. */
static void place(scio__ptrset *s, const void *p) {
  size_t i = home(s, p);
  while (s->slots[i])
    i = (i + 1) & s->mask;
  s->slots[i] = p;
}

int scio__ptrset_reserve(scio__ptrset *s, size_t n) {
  size_t nslots = s->slots ? s->mask + 1 : 0;
  if (n <= nslots / 2)
    return 0;
  size_t want = 8;
  while (want / 2 < n) {
    if (want > SIZE_MAX / 2 / sizeof(void *))
      return SCIO_ENOMEM;
    want *= 2;
  }
  const void **slots = scio__calloc(want, sizeof *slots);
  if (!slots)
    return SCIO_ENOMEM;
  const void **old = s->slots;
  s->slots = slots;
  s->mask = want - 1;
  for (size_t i = 0; i < nslots; i++)
    if (old[i])
      place(s, old[i]);
  scio__free((void *)old);
  return 0;
}

int scio__ptrset_has(const scio__ptrset *s, const void *p) {
  if (s->count == 0)
    return 0;
  for (size_t i = home(s, p); s->slots[i]; i = (i + 1) & s->mask)
    if (s->slots[i] == p)
      return 1;
  return 0;
}

void scio__ptrset_add(scio__ptrset *s, const void *p) {
  if (!s->slots || s->count + 1 > (s->mask + 1) / 2)
    scio__panic("ptrset_add without reserved room (count %zu)", s->count);
  place(s, p);
  s->count++;
}

int scio__ptrset_remove(scio__ptrset *s, const void *p) {
  if (s->count == 0)
    return 0;
  size_t hole = home(s, p);
  while (s->slots[hole] != p) {
    if (!s->slots[hole])
      return 0;
    hole = (hole + 1) & s->mask;
  }
  /* An entry further along the run may move into the hole only if the hole
   * is on its probe path, i.e. its home is cyclically at or before the
   * hole: its distance from home is at least the hole's distance. */
  for (size_t j = (hole + 1) & s->mask; s->slots[j]; j = (j + 1) & s->mask) {
    size_t from_home = (j - home(s, s->slots[j])) & s->mask;
    if (from_home >= ((j - hole) & s->mask)) {
      s->slots[hole] = s->slots[j];
      hole = j;
    }
  }
  s->slots[hole] = NULL;
  s->count--;
  return 1;
}
