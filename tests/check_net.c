/* Tests of include/scio/net.h, on real loopback sockets.  Every async test
 * runs once per backend (epoll, poll, select).  Each area lives in its own
 * file (tests/net_*.c) with one builder call below: add yours here. */
#include "net_support.h"

void net_resolve_tests(Suite *s);
void net_connect_tests(Suite *s);
void net_kit_tests(Suite *s);

int main(void) {
  Suite *s = suite_create("net");
  net_sockets_tests(s);
  net_listen_tests(s);
  net_serve_tests(s);
  net_dgram_tests(s);
  net_resolve_tests(s);
  net_connect_tests(s);
  net_kit_tests(s);
  return scio_test_main(s);
}
