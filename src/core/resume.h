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
 * entry point (resume_x86_64.S) that calls its C body through one shared
 * trampoline.
 * The body returns a scio__rs: its result and whether it switched tasks,
 * in two registers.  If it switched, the trampoline returns to the
 * caller with an indirect jump, which the indirect-branch predictor gets
 * right from its branch history; if not, with a plain `ret`, which keeps
 * calls and returns paired for the predictor.  Either way the caller
 * resumes at its return address: the flag only picks which predictor is
 * asked, never where control goes.
 *
 * Define a public blocking function with its body, a call returning
 * scio__rs:
 *
 *     SCIO__BLOCKING(scio_thing_wait, (scio_thing *t), thing_wait(t, ...))
 *
 * and add `SCIO_RESUME_ENTRY scio_thing_wait` to resume_x86_64.S.  Elsewhere
 * (other CPUs, the ucontext back-end) the macro defines the plain SCIO_API
 * function returning the body's rc.  Only functions returning int fit.
 *
 * Hazard: the indirect jump leaves the return-stack predictor one entry
 * deeper than the call stack, like a switch does; and the trampoline is
 * incompatible with CET shadow stacks, as the switch is.
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

#if !defined(SCIO_CTX_UCONTEXT) && defined(__x86_64__) && !defined(__ILP32__)
#define SCIO__RESUME_ENTRIES 1
#define SCIO__BLOCKING(name, params, body)                                    \
  __attribute__((visibility("hidden"))) scio__rs scio__rs_##name params;     \
  scio__rs scio__rs_##name params { return body; }
#else
#define SCIO__BLOCKING(name, params, body)                                    \
  SCIO_API int name params { return (int)(body).rc; }
#endif

#endif
