/* tests/support/tls_ossl.c -- OpenSSL allocation hooks, main() and the
 * canceller of the TLS and DTLS suites (see tls_ossl.h). */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>

#include "scio/testing.h"
#include "tls_ossl.h"

long test_ossl_live, test_ossl_armed;
int test_ossl_hit;
static long ossl_count, ossl_fail_at;

static int ossl_should_fail(void) {
  if (ossl_fail_at && ++ossl_count == ossl_fail_at) {
    test_ossl_hit = 1;
    return 1;
  }
  return 0;
}

static void *ossl_malloc(size_t n, const char *file, int line) {
  (void)file;
  (void)line;
  if (ossl_should_fail())
    return NULL;
  void *p = malloc(n);
  if (p)
    test_ossl_live++;
  return p;
}

static void *ossl_realloc(void *old, size_t n, const char *file, int line) {
  (void)file;
  (void)line;
  if (ossl_should_fail())
    return NULL;
  void *p = realloc(old, n);
  if (p && !old)
    test_ossl_live++;
  return p;
}

static void ossl_free(void *p, const char *file, int line) {
  (void)file;
  (void)line;
  if (p)
    test_ossl_live--;
  free(p);
}

void test_ossl_arm(long n) {
  ossl_count = 0;
  test_ossl_hit = 0;
  ossl_fail_at = n;
}

void test_ossl_disarm(void) { ossl_fail_at = 0; }

int test_ossl_run(scio_fn fn, long fail_at) {
  ossl_count = 0;
  test_ossl_hit = 0;
  test_ossl_armed = fail_at;
  scio_run_opts o = {.backend = "epoll", .clock = SCIO_CLOCK_AUTOJUMP};
  int rc = scio_run(fn, NULL, &o);
  test_ossl_armed = 0;
  return rc;
}

static int is_ok(const int *ok, int rc) {
  if (rc == 0)
    return 1;
  for (; ok && *ok; ok++)
    if (*ok == rc)
      return 1;
  return 0;
}

long test_ossl_loop(const test_ossl_loop_opts *o, long *stride) {
  const char *env = getenv("SCIO_TLS_OOM_STRIDE");
  long step = env ? atol(env) : o->stride;
  if (step < 1)
    step = 1;
  *stride = step;
  ck_assert_int_eq(o->op(0), 0);
  long points = 0;
  for (long n = 1;; n += step) {
    o->op(n); /* settle */
    long live0 = test_ossl_live;
    int rc = o->op(n);
    if (!test_ossl_hit) {
      ck_assert_msg(rc == 0, "fault %ld not reached but rc %s", n,
                    scio_err_name(rc));
      break;
    }
    points++;
    ck_assert_msg(is_ok(o->ok, rc), "fault %ld: %s: %s", n,
                  scio_err_name(rc), scio_errmsg());
    ck_assert_msg(test_ossl_live == live0,
                  "fault %ld: %ld OpenSSL blocks leaked", n,
                  test_ossl_live - live0);
    ck_assert_msg(ERR_peek_error() == 0, "fault %ld: error queue not empty",
                  n);
    ck_assert_msg(n < o->max, "no end to the allocation points");
  }
  return points;
}

int test_cancel_after(void *arg) {
  test_canceller *c = arg;
  for (int i = 0; i < c->steps; i++)
    if (scio_checkpoint() < 0)
      return 0;
  if (c->cs)
    scio_scope_cancel(c->cs);
  return 0;
}

int test_ossl_main(Suite *(*suite)(void), test_pki *pki) {
  if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
    return 1; /* something allocated through OpenSSL before main */
  if (test_pki_make(pki) < 0)
    return 1;
  int rc = scio_test_main(suite());
  test_pki_free(pki);
  return rc;
}
