/* Tests of include/scio/net.h, on real loopback sockets.  Every async test
 * runs once per backend (epoll, poll, select).  Each area lives in its own
 * file (tests/net_*.c) with one builder call below: add yours here. */
#include "net_support.h"

int main(void) {
  Suite *s = suite_create("net");
  net_sockets_tests(s);
  net_listen_tests(s);
  net_serve_tests(s);
  net_dgram_tests(s);
  return scio_test_main(s);
}
