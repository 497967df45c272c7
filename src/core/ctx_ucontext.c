/* Context switching with makecontext/swapcontext: the portable fallback.
 *
 * Chosen by configure (--with-context=ucontext, which defines
 * SCIO_CTX_UCONTEXT) or automatically on architectures without our assembly;
 * otherwise this file compiles to nothing.  It is slower than the assembly
 * because glibc's swapcontext also saves and restores the signal mask, which
 * is a system call on every switch.
 */
#include "ctx.h"

#ifdef SCIO_CTX_UCONTEXT

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define UC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UC_ASAN 1
#endif
#endif

/* What lives in the caller's uc_storage.  makecontext can only pass int
 * arguments, so the new context gets this box's address split in two
 * halves and finds boot, entry and arg in it. */
typedef struct uc_box {
  ucontext_t uc;
  scio__ctx_boot_fn *boot;
  void (*entry)(void *);
  void *arg;
} uc_box;

size_t scio__ctx_uc_size(void) { return sizeof(uc_box); }

static void uc_start(unsigned lo, unsigned hi)
{
  uc_box *box = (uc_box *)(uintptr_t)(((uint64_t)hi << 32) | lo);

  box->boot(box->entry, box->arg);
  abort(); /* boot never returns; uc_link is NULL anyway */
}

int scio__ctx_uc_make(scio__ctx *c, scio__ctx_boot_fn *boot,
                      void (*entry)(void *), void *arg, void *uc_storage)
{
  uc_box *box = uc_storage;
  uint64_t addr = (uintptr_t)box;

  if (box == NULL)
    return -EINVAL;
  memset(box, 0, sizeof *box);
  if (getcontext(&box->uc) != 0)
    return -errno;
  box->boot = boot;
  box->entry = entry;
  box->arg = arg;
  box->uc.uc_stack.ss_sp = c->stack_lo;
  box->uc.uc_stack.ss_size = c->stack_size;
  box->uc.uc_link = NULL;
  makecontext(&box->uc, (void (*)(void))uc_start, 2,
              (unsigned)(addr & 0xffffffffu), (unsigned)(addr >> 32));
#ifdef UC_ASAN
  /* Older ASan runtimes (LLVM 14, gcc 12) unpoison the whole target stack in
   * their swapcontext interceptor, i.e. on every switch, which wipes the
   * redzones of the frames still live there.  uc_stack is only read by
   * makecontext, so hiding it afterwards keeps those redzones. */
  box->uc.uc_stack.ss_sp = NULL;
  box->uc.uc_stack.ss_size = 0;
#endif
  c->uc = box;
  return 0;
}

void scio__ctx_uc_swap(scio__ctx *from, scio__ctx *to)
{
  /* swapcontext fails only for bad arguments, which cannot happen here. */
  if (swapcontext(from->uc, to->uc) != 0)
    abort();
}

void scio__ctx_uc_jump(scio__ctx *to)
{
  setcontext(to->uc);
  abort();
}

/* The thread's own stack needs somewhere to be saved too.  It is zeroed so
 * that uc_stack reads as empty (see the ASan note in scio__ctx_uc_make). */
int scio__ctx_uc_main_init(scio__ctx *m)
{
  m->uc = calloc(1, sizeof(ucontext_t));
  return m->uc != NULL ? 0 : -ENOMEM;
}

void scio__ctx_uc_main_fini(scio__ctx *m)
{
  free(m->uc);
  m->uc = NULL;
}

#else
/* ISO C forbids an empty translation unit. */
typedef int scio__ctx_ucontext_unused;
#endif
