/* Tests of the test harness itself, part of tests/check_core: a backend
 * that include/scio/testing.h skips is reported, and the allocation-failure
 * harness (tests/support/oom.h) does not pass vacuously.  For the latter,  Each case runs a
 * small suite of its own in Check's no-fork mode (what CK_FORK=no gives)
 * inside a child process (tests/support/crash.h), after libevent has been
 * used, and reports its failures through the child's exit status and
 * stderr. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scio/testing.h"
#include "support/crash.h"
#include "support/oom.h"

static int nothing(void *arg) {
  (void)arg;
  return 0;
}

/* An operation that allocates nothing while armed. */
static int allocates_nothing(void *arg) {
  (void)arg;
  return 0;
}

static int spawns(void *arg) {
  (void)arg;
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  rc = scio_start_soon(&n, nothing, NULL);
  int crc = scio_nursery_close(&n);
  return rc < 0 ? rc : crc;
}

START_TEST(inner_vacuous_loop) {
  scio_oom_install(0);
  scio_oom_loop(allocates_nothing, NULL, "allocates-nothing", NULL);
  scio_oom_uninstall();
}
END_TEST

/* libevent already used in this process, as in a no-fork run. */
START_TEST(inner_libevent_loop) {
  ck_assert_int_eq(scio_run(spawns, NULL, NULL), 0);
  ck_assert_int_eq(scio_oom_install(SCIO_OOM_LIBEVENT), 1);
  scio_oom_run r = {.fn = spawns};
  r.opts.backend = "poll";
  scio_oom_loop(scio_oom_run_op, &r, "no-fork", NULL);
  scio_oom_uninstall();
}
END_TEST

/* Run one test in a no-fork runner; exit with its failure count after
 * printing the failure messages to stderr (100 if it did not run). */
static void run_inner(void *test) {
  /* The outer run's filters (make check CK_RUN_CASE=...) must not filter
   * the inner suite away. */
  unsetenv("CK_RUN_CASE");
  unsetenv("CK_RUN_SUITE");
  unsetenv("CK_INCLUDE_TAGS");
  unsetenv("CK_EXCLUDE_TAGS");
  Suite *s = suite_create("inner");
  TCase *tc = tcase_create("inner");
  const TTest *t;
  memcpy(&t, &test, sizeof t);
  tcase_add_test(tc, t);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  int failed = srunner_ntests_failed(sr);
  TestResult **res = srunner_failures(sr);
  for (int i = 0; i < failed; i++)
    fprintf(stderr, "%s\n", tr_msg(res[i]));
  free(res);
  fflush(stderr);
  _exit(srunner_ntests_run(sr) == 1 ? failed : 100);
}

static void *as_arg(const TTest *t) {
  void *p;
  memcpy(&p, &t, sizeof p);
  return p;
}

START_TEST(oom_loop_that_fails_nothing_is_a_failure) {
  scio_crash c;
  scio_crash_run(run_inner, as_arg(inner_vacuous_loop), &c);
  ck_assert_msg(c.exit_code == 1, "exit %d, stderr: %s", c.exit_code, c.err);
  ck_assert_msg(strstr(c.err, "allocates-nothing: persist=0: not one "
                              "allocation was failed") != NULL,
                "%s", c.err);
}
END_TEST

START_TEST(oom_loop_works_without_fork) {
  scio_crash c;
  scio_crash_run(run_inner, as_arg(inner_libevent_loop), &c);
  ck_assert_msg(c.exit_code == 0, "exit %d, stderr: %s", c.exit_code, c.err);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* testing.h says what it skipped                                            */

static int never_runs(void *arg) {
  (void)arg;
  return SCIO_EIO;
}

static void run_on_missing_backend(void *arg) {
  (void)arg;
  scio_test_run_on(never_runs, "no-such-backend", 0, "probe");
}

START_TEST(skipped_backend_is_reported) {
  scio_crash c;
  scio_crash_run(run_on_missing_backend, NULL, &c);
  ck_assert_msg(c.exit_code == 0, "exit %d: %s", c.exit_code, c.err);
  ck_assert_msg(strstr(c.err, "scio test probe: backend no-such-backend "
                              "skipped: ") != NULL &&
                    strstr(c.err, "not available") != NULL,
                "stderr: \"%s\"", c.err);
}
END_TEST

void core_oom_tests(Suite *s) {
  TCase *tc = scio_tcase_new("oom-harness", 60);
  tcase_add_test(tc, oom_loop_that_fails_nothing_is_a_failure);
  tcase_add_test(tc, oom_loop_works_without_fork);
  tcase_add_test(tc, skipped_backend_is_reported);
  suite_add_tcase(s, tc);
}
