/* Task stacks: mappings, slabs and the per-run cache.
 *
 * Every stack is a "unit" of address space laid out bottom to top as
 *
 *     [guard page, if on][ usable stack ... | user area | scio__stack ]
 *
 * The unit is page-aligned and page-rounded.  The user area and the
 * bookkeeping struct share the top page with the first stack frames, so a
 * task that only uses the top of its stack costs one page of RSS.
 *
 * Mappings matter more than memory here.  The kernel caps each process at
 * vm.max_map_count mappings (65530 by default), and syscalls that create,
 * split or remove mappings are the expensive part of a new stack (mmap,
 * mprotect and munmap each cost microseconds, more in a VM).  So:
 *
 * - Units are carved out of large slabs: a million stacks need about a
 *   thousand mappings (fewer: the kernel merges neighbours), and a new
 *   stack usually costs no syscall at all.
 * - Guards on: when a unit is first carved, its guard page gets a guard
 *   marker, madvise(MADV_GUARD_INSTALL) (Linux 6.13+).  The marker lives in
 *   the page table: access faults (SIGSEGV) like PROT_NONE, but the mapping
 *   is not split, so guarded stacks cost no more mappings than unguarded
 *   ones.  Markers survive MADV_DONTNEED and are copied on fork, so a unit
 *   keeps its guard for the life of its slab and is never guarded twice.
 * - Guards on, without guard markers (older kernels; EINVAL also for a
 *   process under mlockall(MCL_FUTURE)): one mapping per stack, guard made
 *   with mprotect.  That splits the mapping, so each stack costs two and
 *   they top out near 32 000; running into the cap is an ordinary ENOMEM
 *   with a message saying what to do.  The first refusal of a marker is
 *   remembered for the whole process.
 *   Hazard, known and left: qemu-user (cross-architecture emulation)
 *   accepts MADV_GUARD_INSTALL and does nothing, so under it guarded
 *   stacks have no guard; tests/cross/aarch64.sh forces the mprotect
 *   scheme there.
 * - Guards off: slab units without a guard.  Hazard: an overflow runs
 *   silently into the top of the unit below, i.e. into another task's
 *   struct.  That is what SCIO_RUN_NO_GUARD_PAGES trades.
 *
 * Releasing: a slab unit goes back to its slab still holding its pages
 * ("pending"); pending units are the first reused, warm.  Once more than
 * cache_max are pending, and whenever the pool is trimmed, they are
 * released in one batch: a slab with nothing live or cached is unmapped
 * whole (cheapest by far per stack), otherwise the pending units' pages are
 * dropped with MADV_DONTNEED, one call per run of adjacent units.  A
 * dropped unit reads back as zeroes and keeps its guard marker.
 *
 * All mappings are MAP_NORESERVE: untouched pages cost nothing, and the
 * heuristic overcommit policy never refuses them for their size.  The pool
 * belongs to one thread, so nothing here locks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE, MAP_STACK, madvise */
#endif

#include "stack.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_STACK
#define MAP_STACK 0
#endif
/* The Linux 6.13 value.  Older headers lack the name; older kernels answer
 * EINVAL, which sends us to the fallback. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#if defined(__SANITIZE_ADDRESS__)
#define STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_ASAN 1
#endif
#endif

#define STACK_DEFAULT_SIZE ((size_t)256 * 1024)
#define STACK_MIN_SIZE ((size_t)16 * 1024)
#define STACK_ALIGN ((size_t)64) /* the user area holds a task struct */

/* Slab sizing.  A slab holds at least SLAB_MIN_UNITS units and grows with
 * the pool (each new slab about as large as everything in use), up to
 * SLAB_MAX_UNITS units or SLAB_MAX_BYTES of address space.  The byte cap is
 * small on 32-bit systems, where address space is the scarce thing. */
#define SLAB_MIN_UNITS ((size_t)8)
#define SLAB_MAX_UNITS ((size_t)1024)
#define SLAB_MAX_BYTES                                                        \
  (sizeof(void *) >= 8 ? (size_t)256 << 20 : (size_t)16 << 20)

typedef struct slab slab;

/* A slab's header lives in its own page at the top of the slab mapping.
 * Units [0, carved) have been handed out at least once (and, guards on,
 * have their guard marker); the indexes of the free ones are stacked in
 * free_idx, the last npending of them still holding their pages.  A unit
 * that is neither carved-and-free nor never-carved is live or in the pool
 * cache. */
struct slab {
  slab *prev, *next; /* the pool's list of slabs with room */
  slab *dirty_next;  /* the pool's list of slabs with pending units */
  char *base;        /* the mapping; unit i starts at base + i * unit */
  size_t map_size;   /* the whole mapping, header page included */
  size_t unit;       /* bytes per unit */
  unsigned cap, carved, nfree, npending;
  unsigned char listed; /* 1 while on the list of slabs with room */
  unsigned char dirty;  /* 1 while on the list of slabs with pending units */
  unsigned free_idx[];
};

/* The bookkeeping at the top of each unit: the public struct plus what
 * only this file needs.  pub comes first so a scio__stack * converts. */
typedef struct stack_hdr {
  scio__stack pub;
  slab *slab; /* NULL: the stack is a mapping of its own */
} stack_hdr;

/* How a stack is made, for the failure message. */
enum stack_kind {
  KIND_MAPPED,     /* own mapping, mprotect guard */
  KIND_SLAB,       /* slab unit, no guard */
  KIND_SLAB_GUARD  /* slab unit, guard marker */
};

/* Set once the kernel refuses a guard marker, and then for good: the
 * answer will not change, and asking again would cost a syscall per stack.
 * Process-wide because it is a property of the kernel (or of valgrind, or
 * of mlockall); threads racing to set it all store the same value. */
static int markers_refused;

static _Thread_local long fail_countdown;
static _Thread_local int force_mprotect;

/* ------------------------------------------------------------------------
 * Small helpers
 */

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static size_t round_up(size_t n, size_t align)
{
  return (n + align - 1) / align * align;
}

static size_t top_bytes(const scio__stack_pool *p)
{
  return round_up(sizeof(stack_hdr), STACK_ALIGN) +
         round_up(p->user_size, STACK_ALIGN);
}

static size_t unit_bytes(const scio__stack_pool *p)
{
  size_t guard = p->guard ? page_size() : 0;

  return round_up(guard + p->stack_size + top_bytes(p), page_size());
}

#ifdef STACK_ASAN
#include <sanitizer/asan_interface.h>
/* Address space we hand out may carry ASan poison from an earlier mapping
 * at the same address (stack redzones of frames that were abandoned, never
 * popped).  Clear it; reading the shadow first keeps clean shadow pages
 * untouched. */
static void asan_clear(void *m, size_t len)
{
  if (__asan_region_is_poisoned(m, len))
    __asan_unpoison_memory_region(m, len);
}
#else
static void asan_clear(void *m, size_t len)
{
  (void)m;
  (void)len;
}
#endif

/* The fail_after hook: 1 if the caller is the one to fail. */
static int hook_fails(void)
{
  return fail_countdown > 0 && --fail_countdown == 0;
}

/* Every new mapping goes through here, so the fail_after hook covers them
 * all.  Returns NULL with errno set on failure. */
static char *map_anon(size_t len)
{
  void *m;

  if (hook_fails()) {
    errno = ENOMEM;
    return NULL;
  }
  m = mmap(NULL, len, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  return m == MAP_FAILED ? NULL : m;
}

/* munmap of a whole mapping we made cannot need a new VMA in practice, but
 * if the kernel merged it with a neighbour and refuses the split at the
 * mapping cap, at least give the memory back; only address space stays. */
static void unmap(void *m, size_t len)
{
  asan_clear(m, len);
  if (munmap(m, len) != 0)
    (void)madvise(m, len, MADV_DONTNEED);
}

/* A guard marker on the page at `page`, which must never have been touched
 * (installing over a present page would first zap it).  Returns 0 or an
 * errno value.  Also under the fail_after hook: it is the one syscall that
 * a guarded slab stack may need. */
static int guard_install(char *page)
{
  if (hook_fails())
    return ENOMEM;
  return madvise(page, page_size(), MADV_GUARD_INSTALL) == 0 ? 0 : errno;
}

/* A marker refused for want of memory (page tables) is a failure like
 * any other.  Anything else means markers are not to be had here: EINVAL
 * from a kernel before 6.13, from one that cannot put them in this mapping
 * (mlockall), or from valgrind; ENOSYS or EPERM from a seccomp filter. */
static int marker_unsupported(int e)
{
  return e != ENOMEM && e != EAGAIN && e != EINTR;
}

static int markers_usable(void)
{
  return !force_mprotect &&
         !__atomic_load_n(&markers_refused, __ATOMIC_RELAXED);
}

static long read_max_map_count(void)
{
  char buf[32];
  ssize_t n;
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return -1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

/* Failure: *err = -ENOMEM (the header promises ENOMEM whatever the
 * syscall said) and a message that names the likely cause and the cure.
 * The pool cache is always empty when we get here, so `live` is the count
 * of stacks in use.  No allocation: this runs when memory is short. */
static scio__stack *stack_fail(const scio__stack_pool *p, enum stack_kind k,
                               const char *call, int e, int *err, char *buf,
                               size_t len)
{
  char cap[24] = "(unknown)";
  long max = read_max_map_count();

  if (max > 0)
    snprintf(cap, sizeof cap, "%ld", max);
  if (err != NULL)
    *err = -ENOMEM;
  if (buf == NULL || len == 0)
    return NULL;
  if (k == KIND_MAPPED)
    snprintf(buf, len,
             "cannot allocate a task stack: %s: %s with %zu stacks in use; "
             "each stack with a guard page costs 2 memory mappings and "
             "vm.max_map_count is %s: set SCIO_RUN_NO_GUARD_PAGES or raise "
             "vm.max_map_count",
             call, strerror(e), p->live, cap);
  else if (k == KIND_SLAB_GUARD)
    snprintf(buf, len,
             "cannot allocate a task stack: %s: %s with %zu stacks in use: "
             "out of memory or address space (guard pages are page-table "
             "markers here and cost no memory mappings; vm.max_map_count is "
             "%s)",
             call, strerror(e), p->live, cap);
  else
    snprintf(buf, len,
             "cannot allocate a task stack: %s: %s with %zu stacks in use: "
             "out of memory or address space (stacks already run without "
             "guard pages, SCIO_RUN_NO_GUARD_PAGES; vm.max_map_count is %s)",
             call, strerror(e), p->live, cap);
  return NULL;
}

/* Write the bookkeeping at the top of a fresh (or freshly zeroed) unit. */
static scio__stack *unit_init(const scio__stack_pool *p, char *unit,
                              size_t unit_size, size_t guard, slab *sl)
{
  size_t top = top_bytes(p);
  char *end = unit + unit_size;
  stack_hdr *h = (stack_hdr *)(end - round_up(sizeof *h, STACK_ALIGN));

  asan_clear(end - top, top);
  h->slab = sl;
  h->pub.map = unit;
  h->pub.map_size = unit_size;
  h->pub.lo = unit + guard;
  h->pub.user = end - top;
  h->pub.size = (size_t)((char *)h->pub.user - (char *)h->pub.lo);
  h->pub.next = NULL;
  h->pub.had_slab = sl != NULL;
  return &h->pub;
}

/* ------------------------------------------------------------------------
 * Fallback guarded stacks: one mapping each, guard made with mprotect.
 *
 * The unit is mapped read-write first and the guard carved out after.  The
 * other order (PROT_NONE first) would let the kernel merge the new mapping
 * with the guard page of the stack above, and undoing a merged mapping at
 * the cap can itself fail.  Mapped this way, if mprotect fails (at the cap
 * it does, since it must split), the whole mapping goes again.
 */
static scio__stack *single_new(scio__stack_pool *p, int *err, char *buf,
                               size_t len)
{
  size_t unit = unit_bytes(p), guard = page_size();
  char *m = map_anon(unit);
  int e;

  if (m == NULL)
    return stack_fail(p, KIND_MAPPED, "mmap", errno, err, buf, len);
  if (mprotect(m, guard, PROT_NONE) != 0) {
    e = errno;
    unmap(m, unit);
    return stack_fail(p, KIND_MAPPED, "mprotect (guard page)", e, err, buf,
                      len);
  }
  return unit_init(p, m, unit, guard, NULL);
}

/* ------------------------------------------------------------------------
 * Slabs: unguarded stacks, and guarded ones where guard markers work.
 */

static void slab_link(scio__stack_pool *p, slab *sl)
{
  sl->prev = NULL;
  sl->next = p->impl;
  if (sl->next != NULL)
    sl->next->prev = sl;
  p->impl = sl;
  sl->listed = 1;
}

static void slab_unlink(scio__stack_pool *p, slab *sl)
{
  if (sl->prev != NULL)
    sl->prev->next = sl->next;
  else
    p->impl = sl->next;
  if (sl->next != NULL)
    sl->next->prev = sl->prev;
  sl->listed = 0;
}

/* How many units the next slab gets: as many as are in use now (so the
 * number of slabs grows with the log of the pool until the caps), never so
 * many that free_idx overflows the header page. */
static size_t slab_units(const scio__stack_pool *p, size_t unit)
{
  size_t want = p->live + p->cached;
  size_t max = SLAB_MAX_BYTES / unit;
  size_t room = (page_size() - offsetof(slab, free_idx)) / sizeof(unsigned);

  if (max > SLAB_MAX_UNITS)
    max = SLAB_MAX_UNITS;
  if (max > room)
    max = room;
  if (max < 1)
    max = 1;
  if (want < SLAB_MIN_UNITS)
    want = SLAB_MIN_UNITS;
  return want < max ? want : max;
}

/* Big anonymous mappings are eligible for transparent huge pages when THP
 * is "always"; one 2 MiB page per touched stack top would cost 512 times the
 * memory we promise.  Newer kernels already treat MAP_STACK this way. */
static slab *slab_new(scio__stack_pool *p, size_t unit, enum stack_kind k,
                      int *err, char *buf, size_t len)
{
  size_t n = slab_units(p, unit);
  size_t map_size = n * unit + page_size();
  char *m = map_anon(map_size);
  slab *sl;

  if (m == NULL) {
    stack_fail(p, k, "mmap (stack slab)", errno, err, buf, len);
    return NULL;
  }
#ifdef MADV_NOHUGEPAGE
  (void)madvise(m, map_size, MADV_NOHUGEPAGE);
#endif
  sl = (slab *)(m + n * unit);
  asan_clear(sl, page_size());
  sl->base = m;
  sl->map_size = map_size;
  sl->unit = unit;
  sl->cap = (unsigned)n;
  sl->carved = sl->nfree = sl->npending = 0;
  sl->dirty = 0;
  sl->dirty_next = NULL;
  slab_link(p, sl);
  return sl;
}

static scio__stack *slab_take(scio__stack_pool *p, int *err, char *buf,
                              size_t len)
{
  size_t unit = unit_bytes(p), guard = p->guard ? page_size() : 0;
  enum stack_kind k = p->guard ? KIND_SLAB_GUARD : KIND_SLAB;
  slab *sl = p->impl;
  unsigned idx;
  int e;

  if (sl == NULL && (sl = slab_new(p, unit, k, err, buf, len)) == NULL)
    return NULL;
  if (sl->nfree > 0) {
    /* Pending units are on top: the one we take may still be warm. */
    idx = sl->free_idx[--sl->nfree];
    if (sl->npending > 0) {
      sl->npending--;
      p->pending--;
    }
  } else {
    idx = sl->carved;
    if (guard && (e = guard_install(sl->base + (size_t)idx * unit)) != 0) {
      /* The unit stays uncarved.  A slab made just for it goes again, so
       * that a failure leaves no mapping behind (it is on no dirty list:
       * nothing was ever given back to it). */
      if (sl->carved == 0) {
        slab_unlink(p, sl);
        unmap(sl->base, sl->map_size);
      }
      if (marker_unsupported(e)) {
        __atomic_store_n(&markers_refused, 1, __ATOMIC_RELAXED);
        return single_new(p, err, buf, len);
      }
      return stack_fail(p, k, "madvise (guard page)", e, err, buf, len);
    }
    sl->carved++;
  }
  if (sl->nfree == 0 && sl->carved == sl->cap)
    slab_unlink(p, sl);
  return unit_init(p, sl->base + (size_t)idx * unit, unit, guard, sl);
}

/* Give a unit back to its slab, pending: its pages stay until the next
 * batch (slabs_release).  Nothing in the unit is read after this. */
static void slab_give(scio__stack_pool *p, stack_hdr *h)
{
  slab *sl = h->slab;
  char *unit = h->pub.map;

  sl->free_idx[sl->nfree++] = (unsigned)((size_t)(unit - sl->base) / sl->unit);
  sl->npending++;
  p->pending++;
  if (!sl->dirty) {
    sl->dirty_next = p->dirty;
    p->dirty = sl;
    sl->dirty = 1;
  }
  if (!sl->listed)
    slab_link(p, sl);
}

/* Drop the pages of a slab's pending units, one madvise per run of
 * adjacent units: units freed together were mostly carved together, so
 * the runs are long and the syscalls few.  A bitmap instead of a sort: no
 * allocation, and linear in the slab (cap <= SLAB_MAX_UNITS). */
static void slab_drop_pending(slab *sl)
{
  uint64_t bits[SLAB_MAX_UNITS / 64];
  unsigned i, lo, idx;

  memset(bits, 0, sizeof bits);
  for (i = sl->nfree - sl->npending; i < sl->nfree; i++) {
    idx = sl->free_idx[i];
    bits[idx / 64] |= (uint64_t)1 << (idx % 64);
  }
  sl->npending = 0;
  for (i = 0; i < sl->carved;) {
    uint64_t rest = bits[i / 64] >> (i % 64); /* bit 0: unit i */

    if (rest == 0) { /* nothing more in this word */
      i = (i / 64 + 1) * 64;
      continue;
    }
    if ((rest & 1) == 0) {
      i += (unsigned)__builtin_ctzll(rest);
      continue;
    }
    for (lo = i; i < sl->carved && ((bits[i / 64] >> (i % 64)) & 1); i++)
      ;
    (void)madvise(sl->base + (size_t)lo * sl->unit,
                  (size_t)(i - lo) * sl->unit, MADV_DONTNEED);
  }
}

/* Release every pending unit: a slab with nothing live or cached is
 * unmapped whole, which also takes its guard markers; the others drop the
 * pending units' pages (markers survive that). */
static void slabs_release(scio__stack_pool *p)
{
  slab *sl, *next;

  for (sl = p->dirty; sl != NULL; sl = next) {
    next = sl->dirty_next;
    sl->dirty = 0;
    if (sl->nfree == sl->carved) {
      slab_unlink(p, sl); /* listed: it has free units */
      unmap(sl->base, sl->map_size);
    } else if (sl->npending > 0) {
      slab_drop_pending(sl);
    }
  }
  p->dirty = NULL;
  p->pending = 0;
}

/* ------------------------------------------------------------------------
 * The pool
 */

static void stack_release(scio__stack_pool *p, scio__stack *s)
{
  stack_hdr *h = (stack_hdr *)s;

  if (h->slab != NULL)
    slab_give(p, h);
  else
    unmap(s->map, s->map_size);
}

int scio__stack_pool_init(scio__stack_pool *p, size_t stack_size,
                          size_t user_size, int guard, size_t cache_max)
{
  if (stack_size == 0)
    stack_size = STACK_DEFAULT_SIZE;
  /* Keeps every later size computation far from overflowing. */
  if (stack_size > SIZE_MAX / 8 || user_size > SIZE_MAX / 8)
    return -EINVAL;
  stack_size = round_up(stack_size, page_size());
  if (stack_size < STACK_MIN_SIZE)
    return -EINVAL;
  memset(p, 0, sizeof *p);
  p->stack_size = stack_size;
  p->user_size = user_size;
  p->guard = guard != 0;
  p->cache_max = cache_max;
  return 0;
}

void scio__stack_pool_fini(scio__stack_pool *p)
{
  assert(p->live == 0 && "task stacks still in use at pool teardown");
  scio__stack_pool_trim(p, 0);
  assert(p->impl == NULL && p->dirty == NULL && p->pending == 0);
}

scio__stack *scio__stack_get(scio__stack_pool *p, int *err, char *msgbuf,
                             size_t msglen)
{
  scio__stack *s = p->cache;

  if (s != NULL) {
    p->cache = s->next;
    p->cached--;
  } else {
    s = !p->guard || markers_usable() ? slab_take(p, err, msgbuf, msglen)
                                      : single_new(p, err, msgbuf, msglen);
    if (s == NULL)
      return NULL;
  }
  s->next = NULL;
  p->live++;
  return s;
}

/* Past the cache, slab units are released in batches of cache_max + 1:
 * one madvise per run of units, or one munmap per emptied slab, instead of
 * a syscall per stack.  The cache bound is kept in spirit: at most
 * cache_max more stacks hold their memory. */
void scio__stack_put(scio__stack_pool *p, scio__stack *s)
{
  assert(p->live > 0);
  p->live--;
  if (p->cached < p->cache_max) {
    s->next = p->cache;
    p->cache = s;
    p->cached++;
    return;
  }
  stack_release(p, s);
  if (p->pending > p->cache_max)
    slabs_release(p);
}

/* The most recently used stacks stay: they are the likeliest to still be
 * in the CPU caches.  Releasing may unmap the memory a node lives in, so
 * the link is read first. */
void scio__stack_pool_trim(scio__stack_pool *p, size_t keep)
{
  scio__stack **link = &p->cache, *s, *next;
  size_t n = 0;

  while (*link != NULL && n < keep) {
    link = &(*link)->next;
    n++;
  }
  s = *link;
  *link = NULL;
  p->cached = n;
  for (; s != NULL; s = next) {
    next = s->next;
    stack_release(p, s);
  }
  if (p->dirty != NULL)
    slabs_release(p);
}

/* Per thread, like the pools, so that tests running pools in several
 * threads do not trip each other. */
void scio__stack_fail_after(long n) { fail_countdown = n > 0 ? n : 0; }

void scio__stack_force_mprotect_guards(int on) { force_mprotect = on != 0; }
