/* Tests of include/scio/error.h: the error table, details, allocator hook. */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scio/testing.h"

START_TEST(codes_are_negative_and_distinct) {
  int codes[] = {
#define X(name, value, text) SCIO_##name,
      SCIO_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_lt(codes[i], 0);
    for (size_t j = i + 1; j < n; j++)
      ck_assert_int_ne(codes[i], codes[j]);
  }
  ck_assert_int_eq(SCIO_ECANCELED, -ECANCELED);
  ck_assert_int_eq(SCIO_ETIMEDOUT, -ETIMEDOUT);
  ck_assert_int_eq(SCIO_ENOMEM, -ENOMEM);
  ck_assert_int_eq(SCIO_EWOULDBLOCK, -EAGAIN);
  ck_assert_int_le(SCIO_EOF, -4000);
  ck_assert_int_ge(SCIO_EOF, -4099);
}
END_TEST

START_TEST(strerror_and_names) {
  ck_assert_str_eq(scio_strerror(SCIO_ECANCELED), "operation cancelled");
  ck_assert_str_eq(scio_strerror(SCIO_EOF), "end of stream");
  ck_assert_str_eq(scio_err_name(SCIO_EBROKEN), "EBROKEN");
  ck_assert_str_eq(scio_err_name(SCIO_ETIMEDOUT), "ETIMEDOUT");
  /* Other errno values fall back to strerror; junk is "unknown". */
  ck_assert_str_eq(scio_strerror(-EXDEV), strerror(EXDEV));
  ck_assert_str_eq(scio_strerror(-4050), "unknown error");
  ck_assert_str_eq(scio_strerror(12345), "unknown error");
  ck_assert_str_eq(scio_err_name(-4050), "UNKNOWN");
  ck_assert_str_eq(scio_strerror(0), "success");
  ck_assert_str_eq(scio_err_name(0), "OK");
  /* Positive values are results, not errors. */
  ck_assert_str_eq(scio_err_name(ECONNREFUSED), "UNKNOWN");
  ck_assert_str_eq(scio_err_name(INT_MIN), "UNKNOWN");
  ck_assert_str_eq(scio_strerror(INT_MIN), "unknown error");
}
END_TEST

/* Every constant of the table is named after itself, and the networking
 * errnos are there as macros. */
START_TEST(table_names_itself) {
  static const struct {
    int code;
    const char *name;
  } table[] = {
#define X(name, value, text) {SCIO_##name, #name},
      SCIO_ERRNO_MAP(X)
#undef X
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    ck_assert_str_eq(scio_err_name(table[i].code), table[i].name);
    ck_assert_str_ne(scio_strerror(table[i].code), "unknown error");
  }
  ck_assert_int_eq(SCIO_ECONNREFUSED, -ECONNREFUSED);
  ck_assert_int_eq(SCIO_ECONNRESET, -ECONNRESET);
  ck_assert_int_eq(SCIO_EHOSTUNREACH, -EHOSTUNREACH);
  ck_assert_int_eq(SCIO_ENETUNREACH, -ENETUNREACH);
  ck_assert_int_eq(SCIO_EADDRINUSE, -EADDRINUSE);
  ck_assert_int_eq(SCIO_EADDRNOTAVAIL, -EADDRNOTAVAIL);
  ck_assert_int_eq(SCIO_ENFILE, -ENFILE);
  ck_assert_int_eq(SCIO_EPIPE, -EPIPE);
  ck_assert_int_eq(SCIO_EINTR, -EINTR);
  ck_assert_int_eq(SCIO_EACCES, -EACCES);
  /* The file errors (<scio/file.h>). */
  ck_assert_int_eq(SCIO_EISDIR, -EISDIR);
  ck_assert_int_eq(SCIO_ENOTDIR, -ENOTDIR);
  ck_assert_int_eq(SCIO_ESPIPE, -ESPIPE);
  ck_assert_int_eq(SCIO_EFBIG, -EFBIG);
  ck_assert_int_eq(SCIO_EROFS, -EROFS);
  ck_assert_str_eq(scio_err_name(SCIO_EISDIR), "EISDIR");
  ck_assert_str_eq(scio_strerror(SCIO_EISDIR), "is a directory");
  ck_assert_str_eq(scio_err_name(SCIO_EROFS), "EROFS");
  ck_assert_str_eq(scio_err_name(SCIO_ECONNREFUSED), "ECONNREFUSED");
  ck_assert_str_eq(scio_strerror(SCIO_ECONNREFUSED), "connection refused");
  /* The alias keeps its value; the name is the errno's. */
  ck_assert_int_eq(SCIO_EWOULDBLOCK, SCIO_EAGAIN);
  ck_assert_str_eq(scio_err_name(SCIO_EWOULDBLOCK), "EAGAIN");
}
END_TEST

/* Whether the C library names errno value e (glibc 2.32+ can say it
 * exactly; elsewhere strerror's "Unknown error" text is the sign). */
/* strerror's text for the errnos outside the table, the table's own for
 * those in it. */
static const char *libc_text(int e) {
  switch (-e) {
#define X(name, value, text)                                                  \
  case value:                                                                 \
    return text;
    SCIO_ERRNO_MAP(X)
#undef X
  default:
    return strerror(e);
  }
}

static const char *libc_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
  return strerrorname_np(e);
#else
  return strncmp(strerror(e), "Unknown error", 13) == 0 ? NULL : "?";
#endif
}

/* Every errno value has its name, also those outside the table (so that a
 * nursery failure list reads "task job-16: EHOSTDOWN"), and it is the C
 * library's name for it.  Numbers no errno uses (on Linux 41 and 58) are
 * "UNKNOWN", and so is nothing else. */
START_TEST(every_errno_has_its_name) {
  int named = 0;
  for (int e = 1; e <= 133; e++) {
    const char *mine = scio_err_name(-e);
    const char *libc = libc_name(e);
    if (!libc) {
      ck_assert_msg(strcmp(mine, "UNKNOWN") == 0, "errno %d: %s", e, mine);
      continue;
    }
    named++;
    ck_assert_msg(strcmp(mine, "UNKNOWN") != 0, "errno %d has no name", e);
    ck_assert_msg(mine[0] == 'E', "errno %d: %s", e, mine);
    if (strcmp(libc, "?") != 0)
      ck_assert_msg(strcmp(mine, libc) == 0, "errno %d: %s, libc says %s", e,
                    mine, libc);
    ck_assert_str_eq(scio_strerror(-e), libc_text(e));
  }
#ifdef __linux__
  ck_assert_int_eq(named, 131);
  ck_assert_str_eq(scio_err_name(-EHWPOISON), "EHWPOISON");
  ck_assert_str_eq(scio_err_name(-ESTALE), "ESTALE");
#endif
  ck_assert_int_ge(named, 70);
}
END_TEST

START_TEST(errmsg_outside_a_run) {
  scio_errmsg_clear();
  ck_assert_str_eq(scio_errmsg(), "");
  scio_scope cs;
  ck_assert_int_eq(scio_scope_open(&cs, 1.0, 0), SCIO_EINVAL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "not inside a task"));
  scio_errmsg_clear();
  ck_assert_str_eq(scio_errmsg(), "");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* scio_seterr: user code's own error detail                                 */

static int my_wrapper(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int my_wrapper(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = scio_vseterr(code, fmt, ap);
  va_end(ap);
  return rc;
}

START_TEST(seterr_outside_a_run) {
  scio_errmsg_clear();
  ck_assert_int_eq(scio_seterr(SCIO_EPROTO, "bad header %#x from %s", 0x2a,
                               "peer"),
                   SCIO_EPROTO);
  ck_assert_str_eq(scio_errmsg(), "bad header 0x2a from peer");
  ck_assert_int_eq(my_wrapper(-EIO, "disk %d", 3), -EIO);
  ck_assert_str_eq(scio_errmsg(), "disk 3");
  /* Any code is passed through; NULL clears. */
  ck_assert_int_eq(scio_seterr(7, "%s", "seven"), 7);
  ck_assert_str_eq(scio_errmsg(), "seven");
  ck_assert_int_eq(scio_seterr(SCIO_EIO, NULL), SCIO_EIO);
  ck_assert_str_eq(scio_errmsg(), "");
  /* A scio failure replaces it. */
  scio_seterr(SCIO_EIO, "mine");
  scio_scope cs;
  ck_assert_int_eq(scio_scope_open(&cs, 1.0, 0), SCIO_EINVAL);
  ck_assert_ptr_null(strstr(scio_errmsg(), "mine"));
  scio_errmsg_clear();
}
END_TEST

static int refused_job(void *arg) {
  (void)arg;
  return scio_seterr(SCIO_ECONNREFUSED, "connect db.example:%d: refused",
                     5432);
}

static int long_job(void *arg) {
  (void)arg;
  char big[3000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  scio_seterr(SCIO_EIO, "long %s", big);
  ck_assert_int_eq((int)strlen(scio_errmsg()), 5 + 2999);
  return scio_seterr(SCIO_EHOSTDOWN, "peer down");
}

SCIO_TEST(seterr_in_a_task_reaches_the_failure_list) {
  /* The task's own detail, in the task. */
  ck_assert_int_eq(scio_seterr(SCIO_EINVAL, "root %d", 1), SCIO_EINVAL);
  ck_assert_str_eq(scio_errmsg(), "root 1");
  scio_nursery n;
  ck_assert_int_eq(scio_nursery_open(&n), 0);
  ck_assert_int_eq(scio_start_soon_named(&n, refused_job, NULL, "job-16"), 0);
  ck_assert_int_eq(scio_start_soon_named(&n, long_job, NULL, "job-17"), 0);
  int rc = scio_nursery_close(&n);
  ck_assert_int_eq(rc, SCIO_ECONNREFUSED);
  const char *msg = scio_errmsg();
  ck_assert_msg(strstr(msg, "job-16: ECONNREFUSED") != NULL, "%s", msg);
  ck_assert_msg(strstr(msg, "connect db.example:5432: refused") != NULL, "%s",
                msg);
  /* The second failure is an errno outside the table: named all the same. */
  ck_assert_msg(strstr(msg, "job-17: EHOSTDOWN") != NULL, "%s", msg);
  ck_assert_msg(strstr(msg, "peer down") != NULL, "%s", msg);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The allocator hook                                                         */

static long n_malloc, n_free;
static void *c_malloc(void *ctx, size_t n) {
  (void)ctx;
  n_malloc++;
  return malloc(n);
}
static void *c_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  if (!p)
    n_malloc++;
  return realloc(p, n);
}
static void c_free(void *ctx, void *p) {
  (void)ctx;
  if (p)
    n_free++;
  free(p);
}

static int fail_now(void *arg) {
  (void)arg;
  return -EIO;
}

static char big_name[2000];

static int long_detail(void *arg) {
  (void)arg;
  /* A failure with a long name makes a long error-group message, which goes
   * to the heap through the allocator. */
  memset(big_name, 'a', sizeof big_name - 1);
  scio_nursery n;
  ck_assert_int_eq(scio_nursery_open(&n), 0);
  ck_assert_int_eq(scio_start_soon_named(&n, fail_now, NULL, big_name), 0);
  ck_assert_int_eq(scio_nursery_close(&n), -EIO);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), big_name));
  return 0;
}

START_TEST(allocator_hook_sees_every_allocation) {
  scio_allocator a = {c_malloc, c_realloc, c_free, NULL};
  scio_set_allocator(&a);
  ck_assert_int_eq(scio_run(long_detail, NULL, NULL), 0);
  /* The root task's detail outlives the run until cleared. */
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "aaaa"));
  scio_errmsg_clear();
  scio_set_allocator(NULL);
  ck_assert_int_gt(n_malloc, 0);
  ck_assert_int_eq(n_malloc, n_free);
}
END_TEST

/* A thread that ran scio_run, got an error with a detail and exits: the
 * detail it holds after the run (heap, through the allocator) is freed at
 * its exit, not leaked. */
static int fails_with_detail(void *arg) {
  (void)arg;
  return scio_seterr(SCIO_EIO, "the thread's own failure, %d", 42);
}

static void *run_and_exit(void *arg) {
  int *rc = arg;
  *rc = scio_run(fails_with_detail, NULL, NULL);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "own failure, 42"));
  return NULL;
}

START_TEST(errmsg_freed_at_thread_exit) {
  n_malloc = n_free = 0;
  scio_allocator a = {c_malloc, c_realloc, c_free, NULL};
  scio_set_allocator(&a);
  for (int i = 0; i < 2; i++) {
    pthread_t th;
    int rc = 0;
    ck_assert_int_eq(pthread_create(&th, NULL, run_and_exit, &rc), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(rc, SCIO_EIO);
  }
  scio_set_allocator(NULL);
  ck_assert_int_gt(n_malloc, 0);
  ck_assert_int_eq(n_malloc, n_free);
}
END_TEST

int main(void) {
  Suite *s = suite_create("error");
  TCase *tc = scio_tcase_new("error", 10);
  tcase_add_test(tc, codes_are_negative_and_distinct);
  tcase_add_test(tc, strerror_and_names);
  tcase_add_test(tc, table_names_itself);
  tcase_add_test(tc, every_errno_has_its_name);
  tcase_add_test(tc, seterr_outside_a_run);
  scio_tcase_add(tc, seterr_in_a_task_reaches_the_failure_list);
  tcase_add_test(tc, errmsg_outside_a_run);
  tcase_add_test(tc, allocator_hook_sees_every_allocation);
  tcase_add_test(tc, errmsg_freed_at_thread_exit);
  suite_add_tcase(s, tc);
  return scio_test_main(s);
}
