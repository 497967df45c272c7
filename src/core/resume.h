/* Private: returning from a blocking call after a task switch.
 *
 * Why this exists.  When task A switches to task B, the CPU's return-stack
 * predictor still holds A's return addresses.  B then returns up its own
 * call chain, and the first return into the user's code goes to B's call
 * site while the predictor guesses A's.  That one mispredicted return costs
 * about as much as the whole switch (measured on x86_64: 9.4 ns per switch
 * when two tasks block at the same call site, 16.7 ns at different ones).
 *
 * So on x86_64 a public blocking function is exported as a small assembly
 * entry point that calls its C body through one shared trampoline
 * (resume_x86_64.S).  The body returns a scio__rs: its result and whether
 * it switched tasks, in two registers.  If it switched, the trampoline
 * returns to the caller with an indirect jump, which the indirect-branch
 * predictor gets right from its branch history; if not, with a plain
 * `ret`, which keeps calls and returns paired for the predictor.  Either
 * way the caller resumes at its return address: the flag only picks which
 * predictor is asked, never where control goes.
 *
 * Define a public blocking function, declared SCIO_API in its public
 * header, with its body, a call returning scio__rs:
 *
 *     SCIO__BLOCKING(scio_thing_wait, (scio_thing *t), thing_wait(t, ...))
 *
 * That is all: the macro emits the exported entry point itself (a
 * top-level asm block next to the body), so a layer never edits a core
 * file, and it fails to compile if the parameters differ from the public
 * prototype (or if there is none).  Elsewhere (other CPUs, the ucontext
 * back-end, CET builds) it defines the plain SCIO_API function returning
 * the body's rc, which the compiler checks against the prototype as any
 * definition.  Only functions returning int fit.
 *
 * CET: under -fcf-protection (__CET__ bit 0, IBT) the trampoline is left
 * out and every blocking function is plain C.  Its indirect jump lands on
 * return addresses, which carry no endbr64, so it cannot run where IBT is
 * enforced, and an object holding it must not claim IBT; the portable path
 * keeps the library truthfully marked at the cost of the one mispredicted
 * return per switch.  The trampoline's call/jump pair would also break a
 * shadow stack, as any switch does: the library never claims SHSTK
 * (ctx_x86_64.S).
 *
 * Hazards: the indirect jump leaves the return-stack predictor one entry
 * deeper than the call stack, like a switch does.  GCC leaves symbols
 * defined in top-level asm out of an LTO object's symbol table, so the
 * index of an LTO-built libscio.a does not list the entry point: use the
 * macro in the file that defines the constructor of what the function
 * operates on (scio_checkpoint sits with the scheduler, scio_tx_send with
 * scio_channel_open), which every program using it pulls in anyway.
 */
#ifndef SCIO_CORE_RESUME_H
#define SCIO_CORE_RESUME_H

#include "ctx.h"

/* A blocking body's result: rc as the public function returns it, and
 * `switched` nonzero if the task was suspended and resumed on the way.
 * x86_64 SysV returns the two in rax and rdx, so the trampoline finds
 * the flag without unpacking anything. */
typedef struct scio__rs {
  long rc;
  long switched;
} scio__rs;

static inline scio__rs scio__rs_make(int rc, int switched) {
  scio__rs r = {rc, switched};
  return r;
}

/* resume_x86_64.S repeats this test: keep the two in step. */
#if !defined(SCIO_CTX_UCONTEXT) && defined(__x86_64__) &&                    \
    !defined(__ILP32__) && !(defined(__CET__) && (__CET__ & 1))
#define SCIO__RESUME_ENTRIES 1

/* The exported entry point of `name`, as assembly text: load the body's
 * address into rax (free: no routed function is variadic) and jump to the
 * trampoline with the caller's arguments untouched.  In a section of its
 * own, as -ffunction-sections would put a C function, so that the linker
 * can drop it with the body. */
#define SCIO__RESUME_ENTRY_ASM(name)                                          \
  ".pushsection .text." name ",\"ax\",@progbits\n\t"                          \
  ".globl " name "\n\t"                                                       \
  ".type " name ", @function\n\t"                                             \
  ".p2align 4\n"                                                              \
  name ":\n\t"                                                                \
  ".cfi_startproc\n\t"                                                        \
  "endbr64\n\t"                                                               \
  "leaq scio__rs_" name "(%rip), %rax\n\t"                                    \
  "jmp scio__resume_tramp\n\t"                                                \
  ".cfi_endproc\n\t"                                                          \
  ".size " name ", .-" name "\n\t"                                            \
  ".popsection"

/* The body is referenced only from the asm, which the compiler does not
 * read: `used` keeps it, and keeps it global under LTO, so the entry
 * point's reference still resolves.  __typeof__(name) needs the public
 * declaration in scope and gives its type, which must be the function
 * type the params spell. */
#define SCIO__BLOCKING(name, params, body)                                    \
  _Static_assert(__builtin_types_compatible_p(__typeof__(name), int params), \
                 #name ": SCIO__BLOCKING params differ from the public "     \
                       "prototype");                                          \
  __attribute__((visibility("hidden"), used)) scio__rs scio__rs_##name       \
      params;                                                                 \
  __asm__(SCIO__RESUME_ENTRY_ASM(#name));                                     \
  scio__rs scio__rs_##name params { return body; }
#else
#define SCIO__BLOCKING(name, params, body)                                    \
  SCIO_API int name params { return (int)(body).rc; }
#endif

#endif
