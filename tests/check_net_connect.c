/* The net suite's resolver and happy-eyeballs part (branch `resolver`).
 * The lead merges it into tests/check_net.c (branch `sockets`): the two
 * builders below become two calls in that suite's builder. */
#include "scio/testing.h"

void net_resolve_tests(Suite *s);
void net_connect_tests(Suite *s);

int main(void) {
  Suite *s = suite_create("net_connect");
  net_resolve_tests(s);
  net_connect_tests(s);
  return scio_test_main(s);
}
