/* tests/support/crash.h -- run code that must die (a misuse that aborts, a
 * stack overflow) in a child process and look at how it died and what it
 * printed.
 *
 * Check's raise-signal tests can only say which signal ended a test; these
 * tests also check the message, which is what a user reads.  The child runs
 * fn(arg) with stderr going into a pipe, and without core dumps; if fn
 * returns, the child exits with status 0.  Works in Check's fork and no-fork
 * modes (the child is a process of its own either way); do not use
 * ck_assert in fn: report through the way it dies. */
#ifndef SCIO_TESTS_SUPPORT_CRASH_H
#define SCIO_TESTS_SUPPORT_CRASH_H

#include <stddef.h>

typedef struct scio_crash {
  int status;     /* from waitpid */
  int signal;     /* the signal that ended the child, or 0 */
  int exit_code;  /* its exit status if it exited, else -1 */
  char err[8192]; /* what it wrote to stderr, NUL-terminated (truncated) */
} scio_crash;

/* Run fn(arg) in a child; fill *out. */
void scio_crash_run(void (*fn)(void *arg), void *arg, scio_crash *out);

#endif /* SCIO_TESTS_SUPPORT_CRASH_H */
