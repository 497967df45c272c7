/* Context switching: the part shared by every back-end.
 *
 * The back-ends (ctx_x86_64.S, ctx_aarch64.S, ctx_ucontext.c) only move
 * registers.  Everything a tool needs to hear about a switch happens here, so
 * that the rules below hold for all of them:
 *
 * - ASan is told about every stack change.  Before leaving a stack we call
 *   __sanitizer_start_switch_fiber with the destination's bounds; the first
 *   thing done on arrival is __sanitizer_finish_switch_fiber.  Without this,
 *   a longjmp or an exception on a coroutine stack makes ASan unpoison a
 *   bogus range ("ASan is ignoring requested __asan_handle_no_return").
 * - TSan is told too: each made context is a TSan fiber, created with it
 *   and destroyed when it is released, and every switch names the fiber it
 *   goes to (__tsan_switch_to_fiber), so TSan keeps one shadow call stack
 *   and one happens-before clock per coroutine instead of seeing the stack
 *   pointer jump inside one thread.
 * - Each made context's stack is registered with valgrind until it is
 *   released, so that valgrind sees a stack switch and not a huge SP change.
 * - A new context inherits the floating-point control state (rounding mode,
 *   exception masks) of the code that made it, as a new pthread does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getattr_np */
#endif

#include "ctx.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTX_ASAN 1
#endif
#endif

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTX_TSAN 1
#endif
#endif

/* Smallest stack scio__ctx_make accepts: room for the initial frame the
 * back-ends build plus a little more.  Real stacks are far larger. */
#define CTX_MIN_STACK 2048

/* ------------------------------------------------------------------------
 * AddressSanitizer
 */
#ifdef CTX_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

/* Announce that the running code is about to leave its stack for `to`.
 * `fake_save` receives this stack's fake-stack pointer (used by
 * detect_stack_use_after_return) so it can be restored on return; NULL
 * means we never come back and ASan frees the fake stack at once.  Hazard:
 * after a NULL call nothing may touch a fake frame, so the caller must not
 * have address-taken locals. */
static inline void asan_leave(void **fake_save, const scio__ctx *to)
{
  __sanitizer_start_switch_fiber(fake_save, to->stack_lo, to->stack_size);
}

/* First thing after arriving on a stack.  We always know every stack's
 * bounds, so we never ask ASan what the previous stack was. */
static inline void asan_arrive(void *fake)
{
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
}

/* A stack reused for a new context may still carry the redzones of frames
 * abandoned by scio__ctx_exit_to; clear them so that the new frames do not
 * trip over stale poison.  Reading the shadow first keeps untouched shadow
 * pages unallocated. */
static void asan_clean(void *lo, size_t size)
{
  if (__asan_region_is_poisoned(lo, size))
    __asan_unpoison_memory_region(lo, size);
}
#else
static inline void asan_leave(void **fake_save, const scio__ctx *to)
{
  (void)fake_save;
  (void)to;
}
static inline void asan_arrive(void *fake) { (void)fake; }
static inline void asan_clean(void *lo, size_t size)
{
  (void)lo;
  (void)size;
}
#endif

/* ------------------------------------------------------------------------
 * ThreadSanitizer (the fiber interface of tsan_interface.h, declared here so
 * that no particular compiler's header is needed).
 */
#ifdef CTX_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);

static inline void *tsan_current(void) { return __tsan_get_current_fiber(); }
static inline void *tsan_create(void) { return __tsan_create_fiber(0); }
static inline void tsan_destroy(void *f)
{
  if (f)
    __tsan_destroy_fiber(f);
}
static inline void tsan_switch(const scio__ctx *to)
{
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
}
#else
static inline void *tsan_current(void) { return NULL; }
static inline void *tsan_create(void) { return NULL; }
static inline void tsan_destroy(void *f) { (void)f; }
static inline void tsan_switch(const scio__ctx *to) { (void)to; }
#endif

/* ------------------------------------------------------------------------
 * valgrind.  Outside valgrind the client requests cost a few instructions
 * and return 0, which is also our "not registered" value: under valgrind
 * the client's main stack holds id 0, so ours start at 1.
 */
#ifdef HAVE_VALGRIND_VALGRIND_H
static unsigned vg_register(void *lo, size_t size)
{
  return VALGRIND_STACK_REGISTER(lo, (char *)lo + size);
}

static void vg_deregister(unsigned id) { VALGRIND_STACK_DEREGISTER(id); }
#else
static unsigned vg_register(void *lo, size_t size)
{
  (void)lo;
  (void)size;
  return 0;
}

static void vg_deregister(unsigned id) { (void)id; }
#endif

/* ------------------------------------------------------------------------
 * Back-end glue.  Each back-end provides be_make, be_swap, be_jump and the
 * main-context hooks with the same meaning.
 */
typedef void ctx_boot_fn(void (*entry)(void *), void *arg);

#if !defined(SCIO_CTX_UCONTEXT) && defined(__x86_64__)
/* In ctx_x86_64.S, which describes the protocol: a suspended context is
 * its sp, bp, ip and FP control words in the scio__ctx; resuming one jumps
 * to ip.  asm_swap is the out-of-line switch, asm_jump resumes without
 * saving, and asm_start is the first ip of a new context. */
__attribute__((visibility("hidden"))) void
scio__ctx_asm_swap(scio__ctx *from, scio__ctx *to);
__attribute__((visibility("hidden"), noreturn)) void
scio__ctx_asm_jump(scio__ctx *to);
__attribute__((visibility("hidden"))) void scio__ctx_asm_start(void);

/* The offsets that ctx_x86_64.S uses. */
_Static_assert(offsetof(scio__ctx, sp) == 0, "CTX_SP");
_Static_assert(offsetof(scio__ctx, ip) == 48, "CTX_IP");
_Static_assert(offsetof(scio__ctx, bp) == 56, "CTX_BP");
_Static_assert(offsetof(scio__ctx, mxcsr) == 64, "CTX_MXCSR");
_Static_assert(offsetof(scio__ctx, x87cw) == 68, "CTX_X87CW");

/* Below the 16-byte aligned top: boot, entry and arg for asm_start, then
 * 8 zero bytes; the new context inherits the maker's control words. */
static int be_make(scio__ctx *c, ctx_boot_fn *boot, void (*entry)(void *),
                   void *arg, void *uc_storage)
{
  (void)uc_storage;
  uintptr_t top = ((uintptr_t)c->stack_lo + c->stack_size) & ~(uintptr_t)15;
  void **frame = (void **)(top - 32);
  frame[0] = (void *)boot;
  frame[1] = (void *)entry;
  frame[2] = arg;
  frame[3] = NULL;
  c->sp = frame;
  c->bp = NULL;
  c->ip = (void *)scio__ctx_asm_start;
  c->mxcsr = __builtin_ia32_stmxcsr();
  __asm__ volatile("fnstcw %0" : "=m"(c->x87cw));
  return 0;
}

static inline void be_swap(scio__ctx *from, scio__ctx *to)
{
  scio__ctx_asm_swap(from, to);
}

__attribute__((noreturn)) static inline void be_jump(scio__ctx *to)
{
  scio__ctx_asm_jump(to);
}

#elif !defined(SCIO_CTX_UCONTEXT)
/* In ctx_aarch64.S.  asm_swap pushes the callee-saved registers and the FP
 * control word on the current stack, stores the stack pointer in *save_sp,
 * loads new_sp and pops the same frame from there.  asm_jump is its second
 * half alone, for a context that never comes back.  asm_prime builds such a
 * frame below `top` whose "return" enters a trampoline that calls
 * boot(entry, arg); it returns the stack pointer to switch to. */
__attribute__((visibility("hidden"))) void scio__ctx_asm_swap(void **save_sp,
                                                              void *new_sp);
__attribute__((visibility("hidden"), noreturn)) void
scio__ctx_asm_jump(void *new_sp);
__attribute__((visibility("hidden"))) void *
scio__ctx_asm_prime(void *top, ctx_boot_fn *boot, void (*entry)(void *),
                    void *arg);

static int be_make(scio__ctx *c, ctx_boot_fn *boot, void (*entry)(void *),
                   void *arg, void *uc_storage)
{
  (void)uc_storage;
  c->sp = scio__ctx_asm_prime((char *)c->stack_lo + c->stack_size, boot,
                              entry, arg);
  return 0;
}

static inline void be_swap(scio__ctx *from, scio__ctx *to)
{
  scio__ctx_asm_swap(&from->sp, to->sp);
}

__attribute__((noreturn)) static inline void be_jump(scio__ctx *to)
{
  scio__ctx_asm_jump(to->sp);
}
#endif

#ifndef SCIO_CTX_UCONTEXT
static int be_main_init(scio__ctx *m)
{
  (void)m;
  return 0;
}

static void be_main_fini(scio__ctx *m) { (void)m; }

size_t scio__ctx_uc_size(void) { return 0; }

#if defined(__x86_64__)
#define CTX_BACKEND "x86_64-asm"
#else
#define CTX_BACKEND "aarch64-asm"
#endif

#else /* SCIO_CTX_UCONTEXT */
#define be_make scio__ctx_uc_make
#define be_swap scio__ctx_uc_swap
#define be_jump scio__ctx_uc_jump
#define be_main_init scio__ctx_uc_main_init
#define be_main_fini scio__ctx_uc_main_fini
#define CTX_BACKEND "ucontext"
#endif

/* ------------------------------------------------------------------------
 * The interface.
 */

/* Misuse that cannot be reported as an error code: the stack it happened on
 * is in an unknown state, so stop at once. */
__attribute__((noreturn)) static void ctx_die(const char *what)
{
  fprintf(stderr, "scio: fatal: %s\n", what);
  abort();
}

/* The first code to run on a new context's stack. */
static void ctx_boot(void (*entry)(void *), void *arg)
{
  asan_arrive(NULL);
  entry(arg);
  ctx_die("a context's entry function returned "
          "(it must end with scio__ctx_exit_to)");
}

int scio__ctx_init_main(scio__ctx *m)
{
  pthread_attr_t attr;
  void *lo;
  size_t size;
  int rc;

  /* glibc answers pthread_getattr_np for the main thread by parsing
   * /proc/self/maps, which costs more than a short run; a thread's stack
   * does not move, so ask once per thread. */
  static __thread void *cached_lo;
  static __thread size_t cached_size;

  memset(m, 0, sizeof *m);
  if (!cached_lo) {
    rc = pthread_getattr_np(pthread_self(), &attr);
    if (rc != 0)
      return -rc;
    rc = pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0)
      return -rc;
    cached_lo = lo;
    cached_size = size;
  }
  m->stack_lo = cached_lo;
  m->stack_size = cached_size;
  m->tsan_fiber = tsan_current(); /* the thread's own fiber */
  return be_main_init(m);
}

void scio__ctx_fini_main(scio__ctx *m) { be_main_fini(m); }

int scio__ctx_make(scio__ctx *c, void *stack_lo, size_t size,
                   void (*entry)(void *), void *arg, void *uc_storage)
{
  int rc;

  if (c == NULL || stack_lo == NULL || entry == NULL || size < CTX_MIN_STACK)
    return -EINVAL;
  memset(c, 0, sizeof *c);
  c->stack_lo = stack_lo;
  c->stack_size = size;
  asan_clean(stack_lo, size);
  rc = be_make(c, ctx_boot, entry, arg, uc_storage);
  if (rc != 0)
    return rc;
  c->valgrind_id = vg_register(stack_lo, size);
  c->tsan_fiber = tsan_create();
  return 0;
}

/* The ASan calls bracket the register switch; `from` is read again after it,
 * which is safe because `from` points into memory that outlives the switch
 * (a task struct), not into the stack being left. */
void scio__ctx_switch(scio__ctx *from, scio__ctx *to)
{
  asan_leave(&from->asan_fake, to);
  tsan_switch(to);
  be_swap(from, to);
  asan_arrive(from->asan_fake);
}

/* `cur`'s saved state is cleared before leaving, so that switching to a
 * finished context faults at once instead of running a stale frame.  Nothing
 * is saved on the stack being left: it may be reused as soon as `to` runs.
 * Hazard: after asan_leave(NULL) this function must not touch a local. */
void scio__ctx_exit_to(scio__ctx *cur, scio__ctx *to)
{
  cur->sp = NULL;
  cur->uc = NULL;
  cur->ip = NULL;
  asan_leave(NULL, to);
  tsan_switch(to);
  be_jump(to);
}

void scio__ctx_release(scio__ctx *c)
{
  if (c->valgrind_id != 0) {
    vg_deregister(c->valgrind_id);
    c->valgrind_id = 0;
  }
  tsan_destroy(c->tsan_fiber); /* not the running fiber: we left it */
  c->tsan_fiber = NULL;
}

const char *scio__ctx_backend(void) { return CTX_BACKEND; }
