/* Private: machine context switching between stacks.
 *
 * One implementation is chosen by configure: our own assembly for x86_64
 * (SysV) and aarch64, or a ucontext fallback (--with-context=ucontext).  The
 * assembly keeps only what the ABI says survives a call, and the
 * floating-point control words (x86_64: MXCSR and the x87 control word;
 * aarch64: FPCR).  On aarch64 the switch is a function that saves the
 * callee-saved registers on the stack it leaves.  On x86_64 a suspended
 * context is its sp, bp, resume address and control words, and the hot
 * switch is inline assembly that lets the compiler save the rest
 * (ctx_x86_64.S describes the protocol).
 *
 * Sanitizer and valgrind support live here too, so that callers never think
 * about them: every switch is announced to ASan and TSan (fiber
 * annotations), and each
 * coroutine stack is registered with valgrind for as long as it is used.
 */
#ifndef SCIO_CORE_CTX_H
#define SCIO_CORE_CTX_H

#include <stddef.h>

typedef struct scio__ctx scio__ctx;

/* What the context layer needs of a context; embedded in tasks. */
struct scio__ctx {
  void *sp;              /* saved stack pointer (assembly back-ends) */
  void *uc;              /* ucontext_t * (ucontext back-end only) */
  void *stack_lo;        /* lowest usable byte of the stack */
  size_t stack_size;     /* usable bytes */
  void *asan_fake;       /* ASan fake-stack save slot */
  unsigned valgrind_id;  /* valgrind stack id, 0 if none */
  /* x86_64 assembly: the rest of a suspended context (ctx_x86_64.S). */
  void *ip;              /* where to resume */
  void *bp;              /* rbp */
  unsigned mxcsr;
  unsigned short x87cw;
  void *tsan_fiber;      /* ThreadSanitizer fiber, NULL without TSan */
};

/* Describe the current thread's own stack as a context (the scheduler runs
 * on it).  Fills stack bounds from pthread_getattr_np so that ASan can be
 * told about switches back to it.  Returns 0 or a negative errno. */
int scio__ctx_init_main(scio__ctx *main_ctx);
void scio__ctx_fini_main(scio__ctx *main_ctx);

/* Prepare `c` to run entry(arg) on [stack_lo, stack_lo + size) the first time
 * it is switched to.  `entry` must never return: it ends with
 * scio__ctx_exit_to.  For the ucontext back-end, `uc_storage` must point to
 * scio__ctx_uc_size() bytes that live as long as the context (NULL for the
 * assembly back-ends). Returns 0 or a negative errno. */
int scio__ctx_make(scio__ctx *c, void *stack_lo, size_t size,
                   void (*entry)(void *), void *arg, void *uc_storage);
size_t scio__ctx_uc_size(void);

/* Save the current context in `from` and resume `to`. Returns when something
 * switches back to `from`. */
void scio__ctx_switch(scio__ctx *from, scio__ctx *to);

/* Leave the current context for good and resume `to` (the current stack may
 * be reused as soon as `to` runs).  Tells ASan to drop the fake stack. */
__attribute__((noreturn)) void scio__ctx_exit_to(scio__ctx *cur, scio__ctx *to);

/* Forget a context made by scio__ctx_make (deregisters its valgrind stack).
 * Call before its stack is unmapped or reused for another context. */
void scio__ctx_release(scio__ctx *c);

/* Name of the back-end, e.g. "x86_64-asm", "aarch64-asm", "ucontext". */
const char *scio__ctx_backend(void);

/* Back-end selection, shared by ctx.c, ctx_ucontext.c and the tests.  The
 * assembly exists only for LP64 x86_64 and aarch64; anything else (including
 * x32 and ILP32 aarch64) falls back to ucontext.  The .S files repeat this
 * test because they cannot include a C header. */
#if !defined(SCIO_CTX_UCONTEXT) &&                                           \
    !(defined(__x86_64__) && !defined(__ILP32__)) &&                         \
    !(defined(__aarch64__) && !defined(__ILP32__))
#define SCIO_CTX_UCONTEXT 1
#endif

#ifdef SCIO_CTX_UCONTEXT
/* Internal to ctx.c and ctx_ucontext.c: the ucontext back-end.  ctx.c adds
 * the sanitizer and valgrind work around these. `boot` runs first on a new
 * context and calls entry(arg). */
typedef void scio__ctx_boot_fn(void (*entry)(void *), void *arg);
int scio__ctx_uc_make(scio__ctx *c, scio__ctx_boot_fn *boot,
                      void (*entry)(void *), void *arg, void *uc_storage);
void scio__ctx_uc_swap(scio__ctx *from, scio__ctx *to);
__attribute__((noreturn)) void scio__ctx_uc_jump(scio__ctx *to);
int scio__ctx_uc_main_init(scio__ctx *main_ctx);
void scio__ctx_uc_main_fini(scio__ctx *main_ctx);
#endif

/* The switch on the scheduler's hot path.  Without ASan (which needs its
 * fiber calls around every switch) and with an assembly back-end, it is the
 * assembly itself: inline on x86_64, called directly on aarch64; otherwise
 * scio__ctx_switch. */
#if defined(__SANITIZE_ADDRESS__)
#define SCIO__CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCIO__CTX_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SCIO__CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SCIO__CTX_TSAN 1
#endif
#endif
#if defined(SCIO__CTX_TSAN) && !defined(SCIO__CTX_ASAN)
#define SCIO__CTX_ASAN 1 /* TSan too needs the out-of-line, annotated switch */
#endif
#if !defined(SCIO_CTX_UCONTEXT) && !defined(SCIO__CTX_ASAN) &&               \
    defined(__x86_64__)
/* Inline, so that the compiler saves only the registers that are live
 * across the switch (every register but rsp and rbp is declared clobbered)
 * and the switch needs no call or return.  The protocol is that of
 * ctx_x86_64.S: save rsp, rbp, the resume address 1: and the FP control
 * words in `from`; load `to`'s control words if they differ; load its rsp
 * and rbp and jump to its ip.  Nothing is pushed, so the red zone is safe.
 * Every use of this is one resume address: keep it to one call site per
 * hot path. */
#if defined(__CET__) && (__CET__ & 1)
#define SCIO__CTX_ENDBR "endbr64\n\t"
#else
#define SCIO__CTX_ENDBR ""
#endif
#ifdef __AVX512F__
#define SCIO__CTX_AVX512_CLOBBERS                                             \
  , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",   \
      "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", \
      "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#else
#define SCIO__CTX_AVX512_CLOBBERS
#endif
static inline __attribute__((always_inline)) void
scio__ctx_switch_fast(scio__ctx *from, scio__ctx *to) {
  void *d = from, *s = to;
  __asm__ volatile(
      "stmxcsr %c[mx](%%rdi)\n\t"
      "fnstcw %c[cw](%%rdi)\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "movq %%rsp, %c[sp](%%rdi)\n\t"
      "movq %%rbp, %c[bp](%%rdi)\n\t"
      "movq %%rax, %c[ip](%%rdi)\n\t"
      "movl %c[mx](%%rdi), %%eax\n\t"
      "cmpl %c[mx](%%rsi), %%eax\n\t"
      "jne 2f\n\t"
      "movzwl %c[cw](%%rdi), %%eax\n\t"
      "cmpw %c[cw](%%rsi), %%ax\n\t"
      "jne 2f\n"
      "3:\n\t"
      "movq %c[sp](%%rsi), %%rsp\n\t"
      "movq %c[bp](%%rsi), %%rbp\n\t"
      "jmpq *%c[ip](%%rsi)\n"
      "2:\n\t"
      "ldmxcsr %c[mx](%%rsi)\n\t"
      "fldcw %c[cw](%%rsi)\n\t"
      "jmp 3b\n"
      "1:\n\t" SCIO__CTX_ENDBR
      : "+D"(d), "+S"(s)
      : [sp] "i"(__builtin_offsetof(scio__ctx, sp)),
        [ip] "i"(__builtin_offsetof(scio__ctx, ip)),
        [bp] "i"(__builtin_offsetof(scio__ctx, bp)),
        [mx] "i"(__builtin_offsetof(scio__ctx, mxcsr)),
        [cw] "i"(__builtin_offsetof(scio__ctx, x87cw))
      : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13",
        "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
        "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)",
        "st(7)", "mm0", "mm1", "mm2", "mm3", "mm4", "mm5", "mm6", "mm7",
        "memory", "cc" SCIO__CTX_AVX512_CLOBBERS);
}
#elif !defined(SCIO_CTX_UCONTEXT) && !defined(SCIO__CTX_ASAN)
__attribute__((visibility("hidden"))) void scio__ctx_asm_swap(void **save_sp,
                                                              void *new_sp);
static inline void scio__ctx_switch_fast(scio__ctx *from, scio__ctx *to) {
  scio__ctx_asm_swap(&from->sp, to->sp);
}
#else
#define scio__ctx_switch_fast scio__ctx_switch
#endif

#endif
