/* Tests of include/scio/version.h. */
#include <stdio.h>
#include <string.h>

#include "scio/testing.h"

START_TEST(version_matches_headers) {
  ck_assert_uint_eq(scio_version(), SCIO_VERSION_HEX);
  ck_assert_str_eq(scio_version_string(), SCIO_VERSION_STRING);
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", SCIO_VERSION_MAJOR,
           SCIO_VERSION_MINOR, SCIO_VERSION_PATCH);
  ck_assert_str_eq(buf, SCIO_VERSION_STRING);
  ck_assert(SCIO_VERSION_AT_LEAST(0, 0, 1));
  ck_assert(SCIO_VERSION_AT_LEAST(SCIO_VERSION_MAJOR, SCIO_VERSION_MINOR,
                                  SCIO_VERSION_PATCH));
  ck_assert(!SCIO_VERSION_AT_LEAST(SCIO_VERSION_MAJOR + 1, 0, 0));
}
END_TEST

int main(void) {
  Suite *s = suite_create("version");
  TCase *tc = scio_tcase_new("version", 5);
  tcase_add_test(tc, version_matches_headers);
  suite_add_tcase(s, tc);
  return scio_test_main(s);
}
