/* Listeners: TCP (port 0, dual stack), UNIX (stale files), accept and
 * close. */
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/stat.h>

#include "net_support.h"
#include "support/oom.h"

SCIO_TEST(port_zero_and_addrs) {
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  int port = scio_listener_port(l);
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(scio_listener_addrs(l, NULL, 0), 1);
  struct sockaddr_storage ss;
  ck_assert_int_eq(scio_listener_addrs(l, &ss, 1), 1);
  char text[64];
  scio_sockaddr_format(&ss, text, sizeof text);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  ck_assert_str_eq(text, want);
  /* The port is taken now. */
  scio_listener *l2 = (scio_listener *)1;
  ck_assert_int_eq(scio_tcp_listen("127.0.0.1", (uint16_t)port, NULL, &l2),
                   SCIO_EADDRINUSE);
  ck_assert_ptr_null(l2);
  /* ...but SO_REUSEPORT listeners share one. */
  CK_OK(scio_listener_close(l));
  scio_listen_opts o = {0};
  o.reuse_port = 1;
  CK_OK(scio_tcp_listen("127.0.0.1", (uint16_t)port, &o, &l));
  CK_OK(scio_tcp_listen("127.0.0.1", (uint16_t)port, &o, &l2));
  CK_OK(scio_listener_close(l2));
  CK_OK(scio_listener_close(l));
  return 0;
}

static int have_ipv6(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6};
  a.sin6_addr = in6addr_loopback;
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

SCIO_TEST(dual_stack_null_host) {
  scio_listener *l;
  CK_OK(scio_tcp_listen(NULL, 0, NULL, &l));
  int port = scio_listener_port(l);
  int want = have_ipv6() ? 2 : 1;
  ck_assert_int_eq(scio_listener_addrs(l, NULL, 0), want);
  struct sockaddr_storage ss[2];
  scio_listener_addrs(l, ss, 2);
  for (int i = 0; i < want; i++) {
    int p = ss[i].ss_family == AF_INET6
                ? ntohs(((struct sockaddr_in6 *)&ss[i])->sin6_port)
                : ntohs(((struct sockaddr_in *)&ss[i])->sin_port);
    ck_assert_int_eq(p, port); /* one port for both */
  }
  /* A client of each family is accepted, and both are seen in turn. */
  int c4 = net_raw_connect(AF_INET, port);
  int c6 = want == 2 ? net_raw_connect(AF_INET6, port) : -1;
  int fams = 0;
  for (int i = 0; i < want; i++) {
    scio_stream *s;
    CK_OK(scio_listener_accept(l, &s));
    int f;
    CK_OK(scio_stream_family(s, &f));
    fams |= f == AF_INET6 ? 2 : 1;
    CK_OK(scio_close(s));
  }
  ck_assert_int_eq(fams, want == 2 ? 3 : 1);
  close(c4);
  if (c6 >= 0)
    close(c6);
  CK_OK(scio_listener_close(l));
  /* IPV6_V6ONLY: IPv4 and IPv6 listeners of one port do not clash. */
  if (want == 2) {
    scio_listener *l4, *l6;
    CK_OK(scio_tcp_listen("0.0.0.0", 0, NULL, &l4));
    CK_OK(scio_tcp_listen("::", (uint16_t)scio_listener_port(l4), NULL, &l6));
    scio_listener_close(l6);
    scio_listener_close(l4);
  }
  return 0;
}

/* A host name binds every address the resolver gives (from /etc/hosts for
 * localhost: no DNS server needed). */
SCIO_TEST(listen_on_a_host_name) {
  scio_listener *l = NULL;
  ck_assert_int_eq(scio_tcp_listen("localhost", 0, NULL, &l), 0);
  struct sockaddr_storage a[4];
  int n = scio_listener_addrs(l, a, 4);
  ck_assert_int_ge(n, 1);
  int v4 = 0;
  for (int i = 0; i < n && i < 4; i++)
    if (a[i].ss_family == AF_INET)
      v4 |= ((struct sockaddr_in *)&a[i])->sin_addr.s_addr ==
            htonl(INADDR_LOOPBACK);
  ck_assert_msg(v4, "127.0.0.1 not among the %d addresses of localhost", n);
  ck_assert_int_gt(scio_listener_port(l), 0);
  scio_listener_close(l);
  return 0;
}

/* scio_listener_fds gives the listener's own sockets, in the order of
 * scio_listener_addrs, for options scio has no field for. */
SCIO_TEST(listener_fds_are_its_sockets) {
  scio_listener *l = NULL;
  CK_OK(scio_tcp_listen("localhost", 0, NULL, &l));
  int n = scio_listener_fds(l, NULL, 0);
  ck_assert_int_eq(n, scio_listener_addrs(l, NULL, 0));
  ck_assert_int_ge(n, 1);
  int fds[4] = {-1, -1, -1, -1};
  struct sockaddr_storage a[4];
  ck_assert_int_eq(scio_listener_fds(l, fds, 4), n);
  ck_assert_int_eq(scio_listener_addrs(l, a, 4), n);
  for (int i = 0; i < n && i < 4; i++) {
    struct sockaddr_storage b;
    socklen_t bl = sizeof b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&b, &bl), 0);
    char ta[80], tb[80];
    scio_sockaddr_format(&a[i], ta, sizeof ta);
    scio_sockaddr_format(&b, tb, sizeof tb);
    ck_assert_str_eq(ta, tb);
    int acc = 0;
    socklen_t al = sizeof acc;
    ck_assert_int_eq(getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
    ck_assert_int_eq(acc, 1);
  }
  /* max smaller than the count: fills max, still returns the count. */
  int one = -1;
  ck_assert_int_eq(scio_listener_fds(l, &one, 1), n);
  ck_assert_int_eq(one, fds[0]);
#ifdef SO_INCOMING_CPU
  /* What http_hello --pin does with it: steer connections by CPU. */
  int cpu = 0, got = -1;
  socklen_t gl = sizeof got;
  ck_assert_int_eq(setsockopt(fds[0], SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu), 0);
  ck_assert_int_eq(getsockopt(fds[0], SOL_SOCKET, SO_INCOMING_CPU, &got, &gl), 0);
  ck_assert_int_eq(got, 0);
#endif
  /* The listener still accepts after its fds were lent out. */
  int c = net_raw_connect(a[0].ss_family, scio_listener_port(l));
  scio_stream *s;
  CK_OK(scio_listener_accept(l, &s));
  CK_OK(scio_close(s));
  close(c);
  CK_OK(scio_listener_close(l));
  /* A UNIX listener has its one socket. */
  char path[108];
  net_sock_path(path, sizeof path, "fds");
  CK_OK(scio_unix_listen(path, NULL, &l));
  ck_assert_int_eq(scio_listener_fds(l, fds, 4), 1);
  struct sockaddr_un un;
  socklen_t ul = sizeof un;
  ck_assert_int_eq(getsockname(fds[0], (struct sockaddr *)&un, &ul), 0);
  ck_assert_str_eq(un.sun_path, path);
  CK_OK(scio_listener_close(l));
  return 0;
}

/* Accepted TCP streams get TCP_NODELAY (unless the listener keeps Nagle)
 * and TCP_INQ, whether set on them or inherited from the listening
 * socket: every one of them, not just the first. */
static void check_accepted_opts(unsigned stream_flags, int cleared) {
  scio_listen_opts o = {0};
  o.stream_flags = stream_flags;
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, &o, &l));
  int port = scio_listener_port(l);
  if (cleared) {
    /* The listening socket has neither (as on a kernel that does not
     * copy them): the first accept finds out, and every stream gets them
     * set of its own. */
    int lfd, zero = 0;
    ck_assert_int_eq(scio_listener_fds(l, &lfd, 1), 1);
    ck_assert_int_eq(setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &zero,
                                sizeof zero), 0);
    ck_assert_int_eq(setsockopt(lfd, IPPROTO_TCP, TCP_INQ, &zero,
                                sizeof zero), 0);
  }
  for (int i = 0; i < 3; i++) {
    int c = net_raw_connect(AF_INET, port);
    scio_stream *s;
    CK_OK(scio_listener_accept(l, &s));
    int fd = -1, nd = -1, inq = -1;
    CK_OK(scio_stream_fd(s, &fd));
    socklen_t sl = sizeof nd;
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &sl), 0);
    ck_assert_int_eq(nd != 0, !(stream_flags & SCIO_SOCKET_KEEP_NAGLE));
    sl = sizeof inq;
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INQ, &inq, &sl), 0);
    ck_assert_int_eq(inq, 1);
    /* And the stream works. */
    ck_assert_int_eq(write(c, "x", 1), 1);
    char b;
    ck_assert_int_eq(scio_receive(s, &b, 1), 1);
    CK_OK(scio_close(s));
    close(c);
  }
  CK_OK(scio_listener_close(l));
}

SCIO_TEST(accepted_streams_get_their_options) {
  for (int cleared = 0; cleared < 2; cleared++) {
    check_accepted_opts(0, cleared);
    check_accepted_opts(SCIO_SOCKET_KEEP_NAGLE, cleared);
  }
  return 0;
}

SCIO_TEST(listen_bad_input) {
  scio_listener *l = (scio_listener *)1;
  ck_assert_int_eq(scio_tcp_listen("127.0.0.1", 0, NULL, NULL), SCIO_EINVAL);
  scio_listen_opts o = {0};
  o.family = 12345;
  ck_assert_int_eq(scio_tcp_listen(NULL, 0, &o, &l), SCIO_EINVAL);
  o.family = 0;
  o.backlog = -1;
  ck_assert_int_eq(scio_tcp_listen(NULL, 0, &o, &l), SCIO_EINVAL);
  ck_assert_int_eq(scio_tcp_listen("192.0.2.1", 0, NULL, &l),
                   -EADDRNOTAVAIL);
  ck_assert_int_eq(scio_unix_listen("", NULL, &l), SCIO_EINVAL);
  ck_assert_int_eq(scio_listener_accept(NULL, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_listener_port(NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_listener_fds(NULL, NULL, 0), SCIO_EINVAL);
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  ck_assert_int_eq(scio_listener_fds(l, NULL, 1), SCIO_EINVAL);
  CK_OK(scio_listener_close(l));
  CK_OK(scio_listener_close(NULL));
  return 0;
}

SCIO_TEST(unix_stale_live_and_removed) {
  char path[108];
  net_sock_path(path, sizeof path, "stale");
  /* A stale file: bound, then its server died. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  strcpy(sun.sun_path, path);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
  close(fd);
  scio_listener *l, *l2;
  CK_OK(scio_unix_listen(path, NULL, &l));
  ck_assert_int_eq(scio_listener_port(l), SCIO_EINVAL);
  /* A live one is refused, and left alone. */
  ck_assert_int_eq(scio_unix_listen(path, NULL, &l2), SCIO_EADDRINUSE);
  scio_stream *a, *b;
  /* The probe that found the server alive was a connection: it arrives
   * first, already closed. */
  CK_OK(scio_listener_accept(l, &b));
  char c;
  ck_assert_int_eq(scio_receive(b, &c, 1), SCIO_EOF);
  scio_close(b);
  CK_OK(scio_connect_unix(path, &a));
  CK_OK(scio_listener_accept(l, &b));
  CK_OK(scio_send(a, "u", 1));
  ck_assert_int_eq(scio_receive(b, &c, 1), 1);
  scio_close(a);
  scio_close(b);
  CK_OK(scio_listener_close(l));
  struct stat st;
  ck_assert_int_eq(lstat(path, &st), -1); /* removed on close */
  /* A regular file is not a stale socket. */
  int f = open(path, O_CREAT | O_WRONLY, 0600);
  close(f);
  ck_assert_int_eq(scio_unix_listen(path, NULL, &l), SCIO_EADDRINUSE);
  ck_assert_int_eq(lstat(path, &st), 0);
  unlink(path);
  return 0;
}

typedef struct acc {
  scio_listener *l;
  scio_stream *s;
  int rc, done;
  scio_scope *scope;
  char msg[128];
} acc;

static int accept_task(void *p) {
  acc *a = p;
  scio_scope cs;
  scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0);
  a->scope = &cs;
  a->rc = scio_listener_accept(a->l, &a->s);
  snprintf(a->msg, sizeof a->msg, "%s", a->rc < 0 ? scio_errmsg() : "");
  a->scope = NULL;
  scio_scope_close(&cs);
  a->done = 1;
  return 0;
}

/* With one socket (it waits through the fd contract) and with every
 * address (one wait per socket, when the host has IPv6 too). */
SCIO_TEST(close_wakes_accept_and_busy) {
  const char *hosts[] = {"127.0.0.1", NULL};
  for (int h = 0; h < 2; h++) {
    scio_listener *l;
    CK_OK(scio_tcp_listen(hosts[h], 0, NULL, &l));
    acc a = {l, NULL, 0, 0, NULL, ""};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, accept_task, &a));
    CK_OK(scio_wait_all_tasks_blocked());
    scio_stream *s = (scio_stream *)1;
    ck_assert_int_eq(scio_listener_accept(l, &s), SCIO_EBUSY);
    ck_assert_ptr_null(s);
    CK_OK(scio_listener_close(l));
    CK_OK(scio_nursery_close(&n));
    ck_assert_int_eq(a.rc, SCIO_ECLOSED);
    ck_assert_ptr_null(a.s);
    ck_assert_msg(strstr(a.msg, "closed while waiting"), "%s", a.msg);
  }
  return 0;
}

SCIO_TEST(cancelled_accept_then_accept) {
  scio_listener *l;
  CK_OK(scio_tcp_listen("127.0.0.1", 0, NULL, &l));
  acc a = {l, NULL, 0, 0, NULL, ""};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, accept_task, &a));
  CK_OK(scio_wait_all_tasks_blocked());
  scio_scope_cancel(a.scope);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(a.rc, SCIO_ECANCELED);
  int c = net_raw_connect(AF_INET, scio_listener_port(l));
  a.done = 0;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, accept_task, &a));
  CK_OK(scio_nursery_close(&n));
  CK_OK(a.rc);
  scio_close(a.s);
  close(c);
  scio_listener_close(l);
  return 0;
}

/* Many sockets, one listener: connections to each are accepted in turn. */
SCIO_TEST(accept_is_fair_across_sockets) {
  scio_listener *l;
  CK_OK(scio_tcp_listen(NULL, 0, NULL, &l));
  if (scio_listener_addrs(l, NULL, 0) < 2) {
    scio_listener_close(l);
    return 0;
  }
  int port = scio_listener_port(l);
  int cl[8];
  for (int i = 0; i < 4; i++) {
    cl[i] = net_raw_connect(AF_INET, port);
    cl[4 + i] = net_raw_connect(AF_INET6, port);
  }
  int last = -1, switches = 0;
  for (int i = 0; i < 8; i++) {
    scio_stream *s;
    CK_OK(scio_listener_accept(l, &s));
    int f;
    scio_stream_family(s, &f);
    switches += last != -1 && f != last;
    last = f;
    scio_close(s);
  }
  ck_assert_int_eq(switches, 7);
  for (int i = 0; i < 8; i++)
    close(cl[i]);
  scio_listener_close(l);
  return 0;
}

static int oom_listen_body(void *arg) {
  (void)arg;
  scio_listener *l = NULL;
  int rc = scio_tcp_listen(NULL, 0, NULL, &l);
  if (rc < 0) {
    ck_assert_ptr_null(l);
    return rc;
  }
  int c = net_raw_connect(AF_INET, scio_listener_port(l));
  scio_stream *s = NULL;
  rc = scio_listener_accept(l, &s);
  if (rc == 0)
    scio_close(s);
  close(c);
  scio_listener_close(l);
  if (rc < 0)
    return rc;
  char path[108];
  net_sock_path(path, sizeof path, "oom");
  rc = scio_unix_listen(path, NULL, &l);
  if (rc == 0)
    scio_listener_close(l);
  return rc;
}

START_TEST(allocation_failure_listen) {
  if (!scio_oom_install(SCIO_OOM_LIBEVENT))
    return;
  scio_oom_run r = {.fn = oom_listen_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, "tcp_listen", NULL);
  scio_oom_uninstall();
}
END_TEST

void net_listen_tests(Suite *s) {
  TCase *tc = scio_tcase_new("listen", 30);
  scio_tcase_add(tc, port_zero_and_addrs);
  scio_tcase_add(tc, dual_stack_null_host);
  scio_tcase_add(tc, listen_bad_input);
  scio_tcase_add(tc, listen_on_a_host_name);
  scio_tcase_add(tc, listener_fds_are_its_sockets);
  scio_tcase_add(tc, accepted_streams_get_their_options);
  scio_tcase_add(tc, unix_stale_live_and_removed);
  scio_tcase_add(tc, close_wakes_accept_and_busy);
  scio_tcase_add(tc, cancelled_accept_then_accept);
  scio_tcase_add(tc, accept_is_fair_across_sockets);
  suite_add_tcase(s, tc);
  tc = scio_tcase_new("listen-oom", 60);
  tcase_add_loop_test(tc, allocation_failure_listen, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
}
