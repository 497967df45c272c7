/* Private: task stacks.
 *
 * Stacks are mmap'd (MAP_NORESERVE, so only touched pages cost memory), with
 * an optional PROT_NONE guard page at the low end, and kept in a LIFO cache
 * per run for reuse.  The cache is trimmed when the loop goes idle.
 *
 * The top of each stack mapping holds a small header reserved for the owner
 * (the task struct lives there, so spawning needs no malloc).
 */
#ifndef SCIO_CORE_STACK_H
#define SCIO_CORE_STACK_H

#include <stddef.h>

typedef struct scio__stack scio__stack;
typedef struct scio__stack_pool scio__stack_pool;

struct scio__stack {
  void *map;            /* start of the whole mapping (guard included);
                           for a stack carved from a slab, of its unit */
  size_t map_size;      /* size of the whole mapping (or unit) */
  void *lo;             /* lowest usable byte (above the guard) */
  size_t size;          /* usable bytes, from lo up to the user area */
  void *user;           /* scio__stack_pool.user_size bytes at the top */
  scio__stack *next;    /* cache link */
  unsigned char had_slab; /* internal to stack.c */
};

struct scio__stack_pool {
  size_t stack_size;    /* usable size, page-rounded */
  size_t user_size;     /* bytes reserved at the top for the owner */
  int guard;            /* 1: guard page below each stack */
  size_t cache_max;     /* keep at most this many free stacks */
  size_t cached;        /* how many are in the cache now */
  scio__stack *cache;   /* LIFO of free stacks */
  size_t live;          /* stacks handed out and not returned */
  void *impl;           /* internal to stack.c (slabs etc.) */
};

/* Set up a pool.  stack_size 0 means the default (256 KiB); it is rounded up
 * to pages and must be at least 16 KiB, else -EINVAL. Returns 0. */
int scio__stack_pool_init(scio__stack_pool *p, size_t stack_size,
                          size_t user_size, int guard, size_t cache_max);
/* Unmap every cached stack; stacks still handed out are a bug (asserted). */
void scio__stack_pool_fini(scio__stack_pool *p);

/* Get a stack: from the cache if possible, else a new mapping.  On failure
 * returns NULL and sets *err to SCIO_ENOMEM with a message for
 * scio__errmsg_set explaining the cause (e.g. "mmap: vm.max_map_count
 * (65530) reached: use SCIO_RUN_NO_GUARD_PAGES or raise it").  The message is
 * written to msgbuf (msglen bytes). */
scio__stack *scio__stack_get(scio__stack_pool *p, int *err, char *msgbuf,
                             size_t msglen);
/* Return a stack to the cache (or unmap it if the cache is full). */
void scio__stack_put(scio__stack_pool *p, scio__stack *s);
/* Trim the cache down to `keep` stacks (called when the loop is idle). */
void scio__stack_pool_trim(scio__stack_pool *p, size_t keep);

/* Test hook: make the next `n`-th stack mapping fail (0 disables). */
void scio__stack_fail_after(long n);

#endif
