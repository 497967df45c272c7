/* Tests of include/scio/error.h: the error table, details, allocator hook. */
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
  ck_assert_str_eq(scio_strerror(-EIO), strerror(EIO));
  ck_assert_str_eq(scio_strerror(-4050), "unknown error");
  ck_assert_str_eq(scio_strerror(12345), "unknown error");
  ck_assert_str_eq(scio_err_name(-4050), "UNKNOWN");
  ck_assert_ptr_nonnull(scio_strerror(0));
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

int main(void) {
  Suite *s = suite_create("error");
  TCase *tc = scio_tcase_new("error", 10);
  tcase_add_test(tc, codes_are_negative_and_distinct);
  tcase_add_test(tc, strerror_and_names);
  tcase_add_test(tc, errmsg_outside_a_run);
  tcase_add_test(tc, allocator_hook_sees_every_allocation);
  suite_add_tcase(s, tc);
  return scio_test_main(s);
}
