/* Datagrams (UDP, UNIX datagram, connected object streams) and fd
 * passing over UNIX stream sockets. */
#include <fcntl.h>
#include <sys/stat.h>

#include "net_support.h"

SCIO_TEST(udp_send_to_receive_from) {
  scio_udp *a, *b;
  CK_OK(scio_udp_open("127.0.0.1", 0, NULL, &a));
  CK_OK(scio_udp_open("127.0.0.1", 0, NULL, &b));
  struct sockaddr_storage aa, ba, from;
  CK_OK(scio_udp_local_addr(a, &aa));
  CK_OK(scio_udp_local_addr(b, &ba));
  ck_assert_int_ne(ntohs(((struct sockaddr_in *)&ba)->sin_port), 0);
  CK_OK(scio_udp_send_to(a, "one", 3, &ba));
  CK_OK(scio_udp_send_to(a, "", 0, &ba)); /* an empty datagram */
  CK_OK(scio_udp_send_to(a, "three", 5, &ba));
  char buf[16];
  ck_assert_int_eq(scio_udp_receive_from(b, buf, sizeof buf, &from), 3);
  ck_assert(memcmp(&from, &aa, sizeof(struct sockaddr_in)) == 0);
  ck_assert_int_eq(scio_udp_receive_from(b, buf, sizeof buf, NULL), 0);
  /* Truncated to max: the rest of that datagram is lost. */
  ck_assert_int_eq(scio_udp_receive_from(b, buf, 2, NULL), 2);
  ck_assert(memcmp(buf, "th", 2) == 0);
  /* Reply to the sender's address. */
  CK_OK(scio_udp_send_to(b, "back", 4, &from));
  ck_assert_int_eq(scio_udp_receive_from(a, buf, sizeof buf, NULL), 4);
  ck_assert_int_eq(scio_udp_send_to(a, "x", 1, NULL), SCIO_EINVAL);
  scio_udp *c = (scio_udp *)1;
  ck_assert_int_eq(scio_udp_open("example.org", 0, NULL, &c), SCIO_EINVAL);
  ck_assert_ptr_null(c);
  CK_OK(scio_udp_close(a));
  CK_OK(scio_udp_close(b));
  return 0;
}

typedef struct urecv {
  scio_udp *u;
  ssize_t rc;
  scio_scope *scope;
} urecv;

static int udp_recv_task(void *p) {
  urecv *r = p;
  scio_scope cs;
  scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  r->scope = &cs;
  char buf[8];
  r->rc = scio_udp_receive_from(r->u, buf, sizeof buf, NULL);
  r->scope = NULL;
  scio_scope_close(&cs);
  return 0;
}

SCIO_TEST(udp_close_cancel_and_busy) {
  int fds0 = net_count_fds();
  scio_udp *u;
  CK_OK(scio_udp_open(NULL, 0, NULL, &u));
  urecv r = {u, 0, NULL};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, udp_recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  char b;
  ck_assert_int_eq(scio_udp_receive_from(u, &b, 1, NULL), SCIO_EBUSY);
  scio_scope_cancel(r.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECANCELED);
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, udp_recv_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_udp_close(u));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(net_count_fds(), fds0);
  return 0;
}

SCIO_TEST(unix_datagram_sockets) {
  char path[108];
  net_sock_path(path, sizeof path, "dgram");
  scio_udp *srv, *cli;
  CK_OK(scio_unix_datagram_open(path, &srv));
  CK_OK(scio_unix_datagram_open(NULL, &cli));
  struct sockaddr_storage to;
  memset(&to, 0, sizeof to);
  struct sockaddr_un *sun = (struct sockaddr_un *)&to;
  sun->sun_family = AF_UNIX;
  strcpy(sun->sun_path, path);
  CK_OK(scio_udp_send_to(cli, "dg", 2, &to));
  char buf[8];
  ck_assert_int_eq(scio_udp_receive_from(srv, buf, sizeof buf, NULL), 2);
  scio_udp *dup = (scio_udp *)1;
  ck_assert_int_eq(scio_unix_datagram_open(path, &dup), SCIO_EADDRINUSE);
  CK_OK(scio_udp_close(srv));
  CK_OK(scio_udp_close(cli));
  struct stat st;
  ck_assert_int_eq(lstat(path, &st), -1); /* removed on close */
  return 0;
}

SCIO_TEST(connected_datagrams_keep_lengths) {
  scio_udp *srv;
  CK_OK(scio_udp_open("127.0.0.1", 0, NULL, &srv));
  struct sockaddr_storage sa;
  CK_OK(scio_udp_local_addr(srv, &sa));
  scio_ostream *c;
  CK_OK(scio_datagram_connect(&sa, NULL, &c));
  ck_assert_uint_eq(scio_ostream_item_size(c), sizeof(scio_datagram));
  scio_datagram d = {"hello", 5, 0, 0};
  CK_OK(scio_ostream_send(c, &d));
  d = (scio_datagram){"", 0, 0, 0};
  CK_OK(scio_ostream_send(c, &d));
  char buf[16];
  struct sockaddr_storage from;
  ck_assert_int_eq(scio_udp_receive_from(srv, buf, sizeof buf, &from), 5);
  ck_assert_int_eq(scio_udp_receive_from(srv, buf, sizeof buf, NULL), 0);
  CK_OK(scio_udp_send_to(srv, "reply!", 6, &from));
  CK_OK(scio_udp_send_to(srv, "toolongforit", 12, &from));
  scio_datagram r = {buf, 0, sizeof buf, 0};
  CK_OK(scio_ostream_receive(c, &r));
  ck_assert_uint_eq(r.len, 6);
  ck_assert(!r.truncated);
  r.cap = 4;
  CK_OK(scio_ostream_receive(c, &r));
  ck_assert_uint_eq(r.len, 4);
  ck_assert(r.truncated);
  struct sockaddr_storage ra;
  CK_OK(scio_ostream_attr(c, SCIO_ATTR_REMOTE_ADDR, &ra, sizeof ra));
  ck_assert(memcmp(&ra, &sa, sizeof(struct sockaddr_in)) == 0);
  CK_OK(scio_udp_close(srv));
  /* The peer's port is closed now: ICMP says refused. */
  d = (scio_datagram){"x", 1, 0, 0};
  CK_OK(scio_ostream_send(c, &d));
  r.cap = sizeof buf;
  ck_assert_int_eq(scio_ostream_receive(c, &r), -ECONNREFUSED);
  CK_OK(scio_ostream_close(c));

  scio_ostream *p, *q;
  CK_OK(scio_datagram_pair_open(&p, &q));
  d = (scio_datagram){"abc", 3, 0, 0};
  CK_OK(scio_ostream_send(p, &d));
  CK_OK(scio_ostream_send(p, &d));
  r = (scio_datagram){buf, 0, sizeof buf, 0};
  CK_OK(scio_ostream_receive(q, &r));
  ck_assert_uint_eq(r.len, 3); /* datagrams are not merged */
  CK_OK(scio_ostream_receive(q, &r));
  ck_assert_uint_eq(r.len, 3);
  scio_ostream_close(p);
  scio_ostream_close(q);
  return 0;
}

SCIO_TEST(fd_passing) {
  int fds0 = net_count_fds();
  scio_stream *a, *b;
  CK_OK(scio_socket_pair_open(&a, &b));
  int pp[2];
  ck_assert_int_eq(pipe(pp), 0);
  CK_OK(scio_unix_send_fds(a, "F", 1, pp, 2));
  char buf[8];
  int got[4], n = -1;
  ck_assert_int_eq(scio_unix_receive_fds(b, buf, sizeof buf, got, 4, &n), 1);
  ck_assert_int_eq(n, 2);
  ck_assert(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
  ck_assert(fcntl(got[1], F_GETFD) & FD_CLOEXEC);
  /* They are the same pipe. */
  ck_assert_int_eq(write(got[1], "p", 1), 1);
  ck_assert_int_eq(read(pp[0], buf, 1), 1);
  close(got[0]);
  close(got[1]);
  /* Plain bytes: no fds. */
  CK_OK(scio_send(a, "plain", 5));
  ck_assert_int_eq(scio_unix_receive_fds(b, buf, sizeof buf, got, 4, &n), 5);
  ck_assert_int_eq(n, 0);
  /* More fds than room: an error, and every fd that arrived is closed. */
  int fds1 = net_count_fds();
  int many[3] = {pp[0], pp[1], pp[0]};
  CK_OK(scio_unix_send_fds(a, "M", 1, many, 3));
  ck_assert_int_eq(scio_unix_receive_fds(b, buf, sizeof buf, got, 2, &n),
                   -EMSGSIZE);
  ck_assert_int_eq(n, 0);
  ck_assert_int_eq(net_count_fds(), fds1);
  /* Bad input. */
  ck_assert_int_eq(scio_unix_send_fds(a, "", 0, pp, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_unix_send_fds(a, "x", 1, pp, 0), SCIO_EINVAL);
  scio_stream *t1, *t2;
  net_pair(NET_TCP, &t1, &t2);
  ck_assert_int_eq(scio_unix_send_fds(t1, "x", 1, pp, 1), SCIO_EINVAL);
  scio_close(t1);
  scio_close(t2);
  /* EOF. */
  CK_OK(scio_send_eof(a));
  ck_assert_int_eq(scio_unix_receive_fds(b, buf, sizeof buf, got, 4, &n),
                   SCIO_EOF);
  close(pp[0]);
  close(pp[1]);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  ck_assert_int_eq(net_count_fds(), fds0);
  return 0;
}

void net_dgram_tests(Suite *s) {
  TCase *tc = scio_tcase_new("datagrams", 30);
  scio_tcase_add(tc, udp_send_to_receive_from);
  scio_tcase_add(tc, udp_close_cancel_and_busy);
  scio_tcase_add(tc, unix_datagram_sockets);
  scio_tcase_add(tc, connected_datagrams_keep_lengths);
  scio_tcase_add(tc, fd_passing);
  suite_add_tcase(s, tc);
}
