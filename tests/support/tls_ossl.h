/* tests/support/tls_ossl.h -- what the TLS and DTLS suites (check_tls.c,
 * check_dtls.c) share: OpenSSL's allocations counted and failed on demand,
 * the loop that fails each of them in turn, main(), and a canceller.
 *
 * OpenSSL's allocation hooks count from the start of main()
 * (CRYPTO_set_mem_functions works only before its first allocation), so
 * the suite's main() is test_ossl_main():
 *
 *   static test_pki pki;
 *   static Suite *tls_suite(void) { ... }
 *   int main(void) { return test_ossl_main(tls_suite, &pki); }
 *
 * An operation under test runs with allocation N failing between
 * test_ossl_arm(N) and test_ossl_disarm(); test_ossl_loop() tries N = 1,
 * 1 + stride, ... until a run does not reach N.  Each point is run twice
 * and only the second run is measured: the first fills OpenSSL's lazily
 * made caches (the error strings, the per-thread error queue), which are
 * not leaks. */
#ifndef SCIO_TESTS_SUPPORT_TLS_OSSL_H
#define SCIO_TESTS_SUPPORT_TLS_OSSL_H

#include <check.h>

#include "scio.h"
#include "pki.h"

/* ck_assert that a scio call succeeded (>= 0), with its error's name and
 * message otherwise. */
#define CK_OK(expr)                                                           \
  do {                                                                        \
    int rc_ = (expr);                                                         \
    ck_assert_msg(rc_ >= 0, "%s: %s (%s)", #expr, scio_err_name(rc_),         \
                  scio_errmsg());                                             \
  } while (0)

extern long test_ossl_live;  /* OpenSSL's blocks not yet freed */
extern int test_ossl_hit;    /* the armed allocation was reached (and failed) */
extern long test_ossl_armed; /* in a test_ossl_run: the allocation to fail */

/* Count OpenSSL's allocations from 0 again and fail the n-th (0: none). */
void test_ossl_arm(long n);
/* Fail nothing more (test_ossl_hit stays as it is). */
void test_ossl_disarm(void);

/* scio_run(fn) on epoll and the autojump clock (a side left waiting for a
 * peer that failed costs no real time), with test_ossl_armed = fail_at:
 * fn arms test_ossl_armed around what it tests. */
int test_ossl_run(scio_fn fn, long fail_at);

typedef struct test_ossl_loop_opts {
  /* One run with OpenSSL's allocation fail_at failing (0: none), which
   * arms it itself: 0, or the error. */
  int (*op)(long fail_at);
  /* The errors a run with a failed allocation may return, 0-terminated
   * (0 is always accepted). */
  const int *ok;
  /* Try every stride-th point only; SCIO_TLS_OOM_STRIDE overrides it
   * (0 means 1). */
  long stride;
  /* Fail the test when a point beyond this is still reached. */
  long max;
} test_ossl_loop_opts;

/* op(0) must succeed; then each point, until a run does not reach it:
 * its result must be 0 or one of o->ok, with no OpenSSL block leaked and
 * OpenSSL's error queue empty.  Returns the number of points that failed
 * an allocation; *stride is the stride used. */
long test_ossl_loop(const test_ossl_loop_opts *o, long *stride);

/* A task that cancels a scope after `steps` scheduler steps (checkpoints),
 * to cancel an operation at every point: arg is a test_canceller; cs may
 * be set to NULL meanwhile (too late to cancel). */
typedef struct test_canceller {
  scio_scope *cs;
  int steps;
} test_canceller;
int test_cancel_after(void *arg);

/* main() of a TLS suite: install the hooks, make *pki, run the suite
 * (made after the PKI), free *pki.  An exit status. */
int test_ossl_main(Suite *(*suite)(void), test_pki *pki);

#endif
