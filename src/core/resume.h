/* Private: returning from a blocking call after a task switch.
 *
 * Why this exists.  When task A switches to task B, the CPU's return-stack
 * predictor still holds A's return addresses.  B then returns up its own
 * call chain: the frames inside scio are shared code (the same return sites
 * in every task), but the last return, into the user's code, goes to B's
 * call site while the predictor guesses A's.  That one mispredicted return
 * costs about as much as the whole switch (measured on x86_64: 9.4 ns per
 * switch when both tasks block at the same call site, 16.7 ns when they
 * block at different ones).
 *
 * So on x86_64 a public blocking function is exported as a small stub
 * (resume_x86_64.S) that calls its C body through one shared trampoline.
 * When the body returns, the trampoline looks at scio__tls_resumed, which
 * scio__schedule sets in a task it resumes: if the call switched tasks, the
 * trampoline returns to the caller with an indirect jump, which the
 * indirect-branch predictor gets right from its branch history; if not,
 * with a plain `ret`, which keeps call and return paired.  Either way the
 * caller resumes at its return address: the flag only picks which predictor
 * is asked, never where control goes.
 *
 * Define a public blocking function as
 *
 *     SCIO__BLOCKING(int, scio_thing_wait)(scio_thing *t) { ... }
 *
 * and add `SCIO_RESUME_STUB scio_thing_wait` to resume_x86_64.S.  Elsewhere
 * (other CPUs, the ucontext back-end) the macro is the plain SCIO_API
 * definition.
 *
 * Cost: the stub and trampoline add about eight instructions to a call.
 * Hazard: the indirect jump leaves the return-stack predictor one entry
 * deeper than the call stack, like the switch itself does; and the
 * trampoline is incompatible with CET shadow stacks, as the switch is.
 */
#ifndef SCIO_CORE_RESUME_H
#define SCIO_CORE_RESUME_H

#include "ctx.h"

#if !defined(SCIO_CTX_UCONTEXT) && defined(__x86_64__) && !defined(__ILP32__)
#define SCIO__RESUME_STUBS 1
#endif

#ifdef SCIO__RESUME_STUBS
/* Set to 1 in a task that scio__schedule resumed; cleared by the
 * trampoline before it calls a body. */
extern __thread unsigned char scio__tls_resumed
    __attribute__((tls_model("initial-exec")));
#define SCIO__BLOCKING(type, name)                                            \
  __attribute__((visibility("hidden"))) type scio__rs_##name
#else
#define SCIO__BLOCKING(type, name) SCIO_API type name
#endif

#endif
