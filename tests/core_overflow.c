/* Tests of the stack-overflow report (src/core/overflow.c), part of
 * tests/check_core: a task that overflows its stack still kills the
 * process by SIGSEGV, after a line on stderr that names it and the option
 * to raise; other faults are left as they were; an application's own
 * SIGSEGV handler and alternate stack are never touched.  The dying cases
 * run in a child (tests/support/crash.h). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scio/testing.h"
#include "support/crash.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* ASan, TSan and valgrind own SIGSEGV (the sanitizers install their
 * handler, so scio rightly stays away); only a plain build can see scio's
 * report. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PLAIN_BUILD 0
#else
#define PLAIN_BUILD 1
#endif

static int plain(void) { return PLAIN_BUILD && !RUNNING_ON_VALGRIND; }

/* Deep recursion that the compiler cannot turn into a loop. */
static __attribute__((noinline)) int recurse(volatile char *prev, int n) {
  volatile char frame[512];
  frame[0] = (char)n;
  frame[511] = prev ? prev[0] : 0;
  if (n == 0)
    return frame[0] + frame[511];
  return recurse(frame, n - 1) + frame[100];
}

static int overflow_body(void *arg) {
  (void)arg;
  return recurse(NULL, 1 << 30);
}

static int spawn_diver(void *arg) {
  (void)arg;
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon_named(&n, overflow_body, NULL, "deep-diver");
  return scio_nursery_close(&n);
}

static void run_diver(void *arg) {
  (void)arg;
  scio_run_opts o;
  memset(&o, 0, sizeof o);
  o.stack_size = 64 * 1024;
  scio_run(spawn_diver, NULL, &o);
}

START_TEST(overflow_names_the_task) {
  scio_crash c;
  scio_crash_run(run_diver, NULL, &c);
  ck_assert_msg(strstr(c.err, "scio: stack overflow in task deep-diver "
                              "(stack 64 KiB); raise "
                              "scio_run_opts.stack_size\n") != NULL,
                "stderr: \"%s\"", c.err);
  ck_assert_msg(c.signal == SIGSEGV, "signal %d, status %#x", c.signal,
                c.status);
}
END_TEST

/* The root task, with the default stack size and no name of its own. */
static void run_root_overflow(void *arg) {
  (void)arg;
  scio_run(overflow_body, NULL, NULL);
}

START_TEST(overflow_of_the_root_task) {
  scio_crash c;
  scio_crash_run(run_root_overflow, NULL, &c);
  ck_assert_msg(strstr(c.err, "scio: stack overflow in task ") != NULL &&
                    strstr(c.err, "(stack 256 KiB)") != NULL,
                "stderr: \"%s\"", c.err);
  ck_assert_int_eq(c.signal, SIGSEGV);
}
END_TEST

/* Another fault in a task is not an overflow: no report, same death. */
static int bad_access(void *arg) {
  (void)arg;
  long page = sysconf(_SC_PAGESIZE);
  volatile char *p = mmap(NULL, (size_t)page, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
  p[1] = 1;
  return 0;
}

static void run_bad_access(void *arg) {
  (void)arg;
  scio_run(bad_access, NULL, NULL);
}

static int raises(void *arg) {
  (void)arg;
  raise(SIGSEGV);
  return 0;
}

static void run_raise(void *arg) {
  (void)arg;
  scio_run(raises, NULL, NULL);
}

START_TEST(other_faults_are_untouched) {
  scio_crash c;
  scio_crash_run(run_bad_access, NULL, &c);
  ck_assert_msg(strstr(c.err, "stack overflow") == NULL, "%s", c.err);
  ck_assert_int_eq(c.signal, SIGSEGV);
  scio_crash_run(run_raise, NULL, &c);
  ck_assert_msg(strstr(c.err, "stack overflow") == NULL, "%s", c.err);
  ck_assert_int_eq(c.signal, SIGSEGV);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The application's signal stays the application's                        */

static void app_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  _exit(42);
}

typedef struct seen {
  struct sigaction during;
  stack_t alt_during;
} seen;

static int look(void *arg) {
  seen *s = arg;
  sigaction(SIGSEGV, NULL, &s->during);
  sigaltstack(NULL, &s->alt_during);
  return 0;
}

/* With a handler of the application's: scio changes neither the handler
 * nor the thread's alternate stack, before, during or after a run, and the
 * application's handler still gets the fault. */
static int app_fault(void *arg) {
  (void)arg;
  raise(SIGSEGV);
  return 0;
}

static void app_owned(void *arg) {
  (void)arg;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = app_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0)
    _exit(1);
  stack_t before; /* none, or a sanitizer's */
  sigaltstack(NULL, &before);
  seen s;
  memset(&s, 0, sizeof s);
  if (scio_run(look, &s, NULL) != 0)
    _exit(2);
  if (s.during.sa_sigaction != app_handler || (s.during.sa_flags & SA_ONSTACK))
    _exit(3);
  if (s.alt_during.ss_sp != before.ss_sp ||
      (s.alt_during.ss_flags & SS_DISABLE) != (before.ss_flags & SS_DISABLE))
    _exit(4);
  struct sigaction after;
  sigaction(SIGSEGV, NULL, &after);
  if (after.sa_sigaction != app_handler)
    _exit(5);
  scio_run(app_fault, NULL, NULL); /* exits 42 in app_handler */
  _exit(6);
}

START_TEST(application_handler_is_left_untouched) {
  scio_crash c;
  scio_crash_run(app_owned, NULL, &c);
  ck_assert_msg(c.exit_code == 42, "exit %d signal %d: %s", c.exit_code,
                c.signal, c.err);
}
END_TEST

/* With the default disposition: scio's handler (on an alternate stack)
 * during the run only, and the default again afterwards. */
static void default_owned(void *arg) {
  (void)arg;
  seen s;
  memset(&s, 0, sizeof s);
  if (scio_run(look, &s, NULL) != 0)
    _exit(2);
  if (!(s.during.sa_flags & SA_SIGINFO) || !(s.during.sa_flags & SA_ONSTACK))
    _exit(3);
  if (s.alt_during.ss_flags & SS_DISABLE)
    _exit(4);
  struct sigaction after;
  sigaction(SIGSEGV, NULL, &after);
  if ((after.sa_flags & SA_SIGINFO) || after.sa_handler != SIG_DFL)
    _exit(5);
  stack_t alt;
  sigaltstack(NULL, &alt);
  if (!(alt.ss_flags & SS_DISABLE))
    _exit(6);
  /* Without guard pages nothing is installed. */
  scio_run_opts o;
  memset(&o, 0, sizeof o);
  o.flags = SCIO_RUN_NO_GUARD_PAGES;
  if (scio_run(look, &s, &o) != 0)
    _exit(7);
  if ((s.during.sa_flags & SA_SIGINFO) || s.during.sa_handler != SIG_DFL)
    _exit(8);
  _exit(0);
}

START_TEST(default_disposition_is_restored_after_the_run) {
  scio_crash c;
  scio_crash_run(default_owned, NULL, &c);
  ck_assert_msg(c.exit_code == 0, "exit %d signal %d: %s", c.exit_code,
                c.signal, c.err);
}
END_TEST

void core_overflow_tests(Suite *s) {
  TCase *tc = scio_tcase_new("overflow-report", 20);
  tcase_add_test(tc, application_handler_is_left_untouched);
  if (plain()) { /* the others need SIGSEGV to be nobody's */
    tcase_add_test(tc, overflow_names_the_task);
    tcase_add_test(tc, overflow_of_the_root_task);
    tcase_add_test(tc, other_faults_are_untouched);
    tcase_add_test(tc, default_disposition_is_restored_after_the_run);
  }
  suite_add_tcase(s, tc);
}
