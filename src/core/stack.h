/* Private: task stacks.
 *
 * Stacks are mmap'd (MAP_NORESERVE, so only touched pages cost memory), with
 * an optional guard page at the low end, and kept in a LIFO cache per run
 * for reuse.  Most stacks are carved out of large "slabs" so that they cost
 * no memory mapping of their own; the guard page is then a page-table marker
 * (MADV_GUARD_INSTALL, Linux 6.13+) rather than a PROT_NONE mapping.  On
 * kernels without it, guarded stacks fall back to one mapping each.  See
 * stack.c for the details.
 *
 * The top of each stack holds a small header reserved for the owner (the
 * task struct lives there, so spawning needs no malloc).
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
  void *impl;           /* internal to stack.c: slabs with free units */
  void *dirty;          /* internal to stack.c: slabs with units to drop */
  size_t pending;       /* internal to stack.c: freed units not yet dropped */
};

/* Set up a pool.  stack_size 0 means the default (256 KiB); it is rounded up
 * to pages and must be at least 16 KiB, else -EINVAL. Returns 0. */
int scio__stack_pool_init(scio__stack_pool *p, size_t stack_size,
                          size_t user_size, int guard, size_t cache_max);
/* Unmap every cached stack; stacks still handed out are a bug (asserted). */
void scio__stack_pool_fini(scio__stack_pool *p);

/* Get a stack: from the cache if possible, else a new one.  On failure
 * returns NULL and sets *err to SCIO_ENOMEM with a message for
 * scio__errmsg_set explaining the cause (e.g. "mmap: vm.max_map_count
 * (65530) reached: use SCIO_RUN_NO_GUARD_PAGES or raise it").  The message is
 * written to msgbuf (msglen bytes). */
scio__stack *scio__stack_get(scio__stack_pool *p, int *err, char *msgbuf,
                             size_t msglen);
/* Return a stack to the cache.  If the cache is full it is released; slab
 * stacks are released in batches (at most cache_max of them wait, their
 * memory still held, for the next batch or trim). */
void scio__stack_put(scio__stack_pool *p, scio__stack *s);
/* Trim the cache down to `keep` stacks and release everything waiting
 * (called when the loop is idle). */
void scio__stack_pool_trim(scio__stack_pool *p, size_t keep);

/* Test hook: make the `n`-th next stack mapping or guard-marker
 * installation fail with ENOMEM (0 disables).  Per thread. */
void scio__stack_fail_after(long n);
/* Test hook: on (1), new guarded stacks use the fallback scheme (a mapping
 * of their own, guard made with mprotect) even where guard markers work, so
 * that tests can reach the vm.max_map_count limit.  Per thread. */
void scio__stack_force_mprotect_guards(int on);

#endif
