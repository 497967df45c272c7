/* scio — testing helpers for Check (https://libcheck.github.io/check/).
 *
 * Header-only: include it in test programs that link Check; libscio does not
 * depend on Check.
 *
 * SCIO_TEST(name) { ... return 0; } defines a Check test whose body runs as
 * the root task of scio_run, once per libevent backend: add it with
 * scio_tcase_add(tc, name), which registers a loop test with one iteration
 * per backend (epoll, poll, select), so each backend passes or fails on its
 * own line and in its own forked process.  SCIO_TEST_AUTOJUMP(name) does the
 * same under the autojump clock.  The body returns 0 for success; any other
 * value fails the test with scio_strerror() and scio_errmsg().  Check's
 * ck_assert_* macros work inside the body and inside tasks it spawns (in
 * Check's default fork mode).  Pointer arguments are borrowed unless a
 * function says otherwise.
 */
#ifndef SCIO_TESTING_H
#define SCIO_TESTING_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scio.h"
#include "scio/streamcheck.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCIO_TEST_NBACKENDS 3
enum { SCIO_TEST_FLAG_AUTOJUMP = 1 };

/* The name of backend i modulo SCIO_TEST_NBACKENDS ("epoll", "poll",
 * "select"): the backend of iteration i of a loop test.  The string is
 * static, owned by the header.  Not a checkpoint.  Never fails. */
static inline const char *scio_test_backend(int i) {
  static const char *const names[SCIO_TEST_NBACKENDS] = {"epoll", "poll",
                                                         "select"};
  return names[i % SCIO_TEST_NBACKENDS];
}

/* Run body under `backend` (a scio_run_opts.backend name); fail the test
 * unless the body returns 0.  A backend this system lacks is skipped, with
 * a line on stderr that says which and why ("scio test NAME: backend
 * kqueue skipped: run: backend kqueue is not available"), so that a run
 * that tested less than it seems shows it.  flags: SCIO_TEST_FLAG_AUTOJUMP
 * or 0.  Called outside a run (it runs one): not a checkpoint.  Returns
 * nothing; a body that fails (SCIO_E... or any other value) fails the test
 * through ck_assert_msg. */
static inline void scio_test_run_on(scio_fn body, const char *backend,
                                    int flags, const char *name) {
  scio_run_opts o;
  memset(&o, 0, sizeof o);
  o.backend = backend;
  if (flags & SCIO_TEST_FLAG_AUTOJUMP)
    o.clock = SCIO_CLOCK_AUTOJUMP;
  int rc = scio_run(body, NULL, &o);
  if (rc == -ENOSYS && strstr(scio_errmsg(), "not available")) {
    fprintf(stderr, "scio test %s: backend %s skipped: %s\n", name,
            o.backend, scio_errmsg());
    fflush(stderr);
    return;
  }
  ck_assert_msg(rc == 0, "%s on %s returned %s (%s): %s", name, o.backend,
                scio_err_name(rc), scio_strerror(rc), scio_errmsg());
}

/* scio_test_run_on with the backend of loop iteration i.  Not a
 * checkpoint.  Returns nothing (a failure fails the test). */
static inline void scio_test_run(scio_fn body, int i, int flags,
                                 const char *name) {
  scio_test_run_on(body, scio_test_backend(i), flags, name);
}

#define SCIO__TEST(name, flags)                                               \
  static int name##_body(void *);                                             \
  START_TEST(name) { scio_test_run(name##_body, _i, (flags), #name); }        \
  END_TEST                                                                    \
  static int name##_body(void *scio_test_arg_ __attribute__((unused)))

#define SCIO_TEST(name) SCIO__TEST(name, 0)
#define SCIO_TEST_AUTOJUMP(name) SCIO__TEST(name, SCIO_TEST_FLAG_AUTOJUMP)

/* Add a SCIO_TEST to a TCase: one iteration per backend. */
#define scio_tcase_add(tc, name)                                              \
  tcase_add_loop_test((tc), name, 0, SCIO_TEST_NBACKENDS)

/* A TCase with a per-test timeout in seconds (Check multiplies it by
 * CK_TIMEOUT_MULTIPLIER, which sanitizer and valgrind runs set).  The
 * caller owns it until suite_add_tcase hands it to the suite.  Not a
 * checkpoint.  Never fails (Check aborts when out of memory). */
static inline TCase *scio_tcase_new(const char *name, double timeout) {
  TCase *tc = tcase_create(name);
  tcase_set_timeout(tc, timeout);
  return tc;
}

/* Run a suite in fork mode and return an exit status for main():
 * EXIT_SUCCESS, or EXIT_FAILURE if a test failed.  Takes over s (frees it
 * with its runner).  Not a checkpoint.  Never fails. */
static inline int scio_test_main(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ------------------------------------------------------------------------ */
/* The stream conformance kit under Check                                    */

/* Fail the current Check test unless rc is 0, with `what`, scio_errmsg()
 * and the code's name (SCIO_STREAM_CHECK_FAILED for a failed check) in
 * the message: how the wrappers below end.  Not a checkpoint.  Returns
 * nothing (a failure ends the test through ck_assert_msg). */
static inline void scio_test_kit_result(int rc, const char *what) {
  ck_assert_msg(rc == 0, "%s: %s (%s)", what, scio_errmsg(),
                rc == SCIO_STREAM_CHECK_FAILED ? "SCIO_STREAM_CHECK_FAILED"
                                               : scio_err_name(rc));
}

/* Run the checks of <scio/streamcheck.h> from a test body (a SCIO_TEST, or
 * a task it spawns) and fail the test with the first failed check's
 * message.  These are wrappers: the checks are libscio's, Check-free
 * (scio_stream_check_*), so their results can also be read directly.
 * Trio's names: check_one_way_stream(make, make_clogged) and so on, with
 * the makers and options in one scio_stream_kit:
 *
 *   SCIO_TEST_AUTOJUMP(my_stream_conforms) {
 *     scio_stream_kit kit = {.make = my_pair, .make_clogged = my_clogged};
 *     scio_check_half_closeable_stream(&kit);
 *     return 0;
 *   }
 *
 * The autojump clock makes the kit's per-check deadline free; on the real
 * clock give the TCase a timeout above kit.timeout.  A failure ends the test
 * through ck_assert_msg.  Each is a checkpoint (the checks run streams in
 * the calling task).  Returns nothing: a check that fails (its code, e.g.
 * SCIO_STREAM_CHECK_FAILED, in the message) fails the test. */
static inline void scio_check_one_way_stream(const scio_stream_kit *kit) {
  scio_test_kit_result(scio_stream_check_one_way(kit),
                       "scio_check_one_way_stream");
}
static inline void scio_check_two_way_stream(const scio_stream_kit *kit) {
  scio_test_kit_result(scio_stream_check_two_way(kit),
                       "scio_check_two_way_stream");
}
static inline void scio_check_half_closeable_stream(
    const scio_stream_kit *kit) {
  scio_test_kit_result(scio_stream_check_half_closeable(kit),
                       "scio_check_half_closeable_stream");
}

#ifdef __cplusplus
}
#endif
#endif /* SCIO_TESTING_H */
