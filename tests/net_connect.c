/* tests/net_connect.c -- happy eyeballs (RFC 8305).
 *
 * Deterministic part (Trio's method): the engine with a fake resolver and
 * a fake connector under the autojump clock, asserting the exact time each
 * attempt starts, which sockets are closed, and the messages.
 *
 * Real part: the kernel's sockets, a real dnsmasq, and a private network
 * namespace where SYNs to [2001:db8::2] are dropped (real clock, with
 * tolerances).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "scio/net.h"
#include "scio/testing.h"
#include "support/oom.h"

#include "core/internal.h"
#include "net/connect.h"
#include "core/layer.h"

#include "net_env.h"

/* ======================================================================== */
/* The fake world                                                           */

#define HANG 1 /* a connect result: never finishes */
#define MAXC 12

typedef struct fake_conn {
  const char *ip;
  double delay;  /* until the outcome */
  int result;    /* 0 connected, < 0 failed, HANG */
  /* observed */
  int attempts;
  double started;
  int open;      /* the fake socket is open */
  int cancelled;
  int closed_as_loser;
} fake_conn;

typedef struct fake_world {
  struct {
    double delay;
    int err;
    const char *ips[MAXC];
  } fam[2]; /* [0] AAAA, [1] A */
  int lookups;
  fake_conn conn[MAXC];
  int nconn;
  char order[512]; /* "ip ip ip": the order attempts started in */
} fake_world;

static fake_world W;

static void world_reset(void) { memset(&W, 0, sizeof W); }

static fake_conn *add_conn(const char *ip, double delay, int result) {
  fake_conn *c = &W.conn[W.nconn++];
  c->ip = ip;
  c->delay = delay;
  c->result = result;
  c->started = -1;
  return c;
}

static fake_conn *conn_of(const char *ip) {
  for (int i = 0; i < W.nconn; i++)
    if (strcmp(W.conn[i].ip, ip) == 0)
      return &W.conn[i];
  ck_abort_msg("no fake connection for %s", ip);
  return NULL;
}

static int open_count(void) {
  int n = 0;
  for (int i = 0; i < W.nconn; i++)
    n += W.conn[i].open;
  return n;
}

static scio_addrinfo *make_node(const char *ip, uint16_t port) {
  struct {
    scio_addrinfo ai;
    struct sockaddr_storage ss;
  } *x = scio__calloc(1, sizeof *x);
  ck_assert_ptr_nonnull(x);
  socklen_t len;
  ck_assert(scio__parse_ip_literal(ip, port, &x->ss, &len));
  x->ai.family = x->ss.ss_family;
  x->ai.addr = (struct sockaddr *)&x->ss;
  x->ai.addrlen = len;
  return &x->ai;
}

static int fake_resolve(void *ctx, const char *host, uint16_t port, int family,
                        const scio_dns_opts *dns, scio_addrinfo **out) {
  (void)ctx;
  (void)dns;
  *out = NULL;
  W.lookups++;
  int i = family == AF_INET6 ? 0 : 1;
  int rc = scio_sleep(W.fam[i].delay);
  if (rc < 0)
    return rc;
  if (W.fam[i].err)
    return scio__seterr(W.fam[i].err, "resolve %s: %s", host,
                        W.fam[i].err == SCIO_ENOTFOUND ? "no such host"
                                                       : "DNS failure");
  scio_addrinfo **tail = out;
  for (int k = 0; W.fam[i].ips[k]; k++) {
    *tail = make_node(W.fam[i].ips[k], port);
    tail = &(*tail)->next;
  }
  return 0;
}

static int fake_connect(void *ctx, const struct sockaddr *sa, socklen_t len,
                        const struct sockaddr *local, socklen_t locallen,
                        int *fd) {
  (void)ctx;
  (void)len;
  (void)local;
  (void)locallen;
  char ip[64];
  const void *p = sa->sa_family == AF_INET6
                      ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                      : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
  inet_ntop(sa->sa_family, p, ip, sizeof ip);
  fake_conn *c = conn_of(ip);
  c->attempts++;
  c->started = scio_now();
  size_t l = strlen(W.order);
  snprintf(W.order + l, sizeof W.order - l, "%s%s", l ? " " : "", ip);
  c->open = 1;
  int rc = c->result == HANG ? scio_sleep_forever() : scio_sleep(c->delay);
  if (rc < 0) {
    c->open = 0;
    c->cancelled = 1;
    return rc;
  }
  if (c->result < 0) {
    c->open = 0;
    return c->result;
  }
  *fd = 1000 + (int)(c - W.conn);
  return 0;
}

static void fake_close(void *ctx, int fd) {
  (void)ctx;
  fake_conn *c = &W.conn[fd - 1000];
  ck_assert(c->open);
  c->open = 0;
  c->closed_as_loser = 1;
}

static const scio__he_env fake_env = {fake_resolve, fake_connect, fake_close,
                                      NULL};

static int he(const char *host, uint16_t port, const scio_connect_opts *o,
              int *fd) {
  return scio__connect_tcp_fd_env(host, port, o, &fake_env, fd);
}

static const char *winner_ip(int fd) { return W.conn[fd - 1000].ip; }

#define assert_time(t, want)                                                  \
  ck_assert_msg(fabs((t) - (want)) < 1e-6, "%s = %.6f, want %.6f", #t, (t),   \
                (double)(want))

/* ======================================================================== */
/* Deterministic tests                                                      */

/* Trio's scenario: each attempt gets the delay, attempts start at 0, 0.25,
 * 0.5; the third wins; the two still hanging are closed. */
SCIO_TEST_AUTOJUMP(he_attempts_start_every_delay) {
  world_reset();
  W.fam[0].err = SCIO_ENOTFOUND;
  W.fam[1].ips[0] = "1.1.1.1";
  W.fam[1].ips[1] = "2.2.2.2";
  W.fam[1].ips[2] = "3.3.3.3";
  add_conn("1.1.1.1", 0, HANG);
  add_conn("2.2.2.2", 0, HANG);
  add_conn("3.3.3.3", 0.1, 0);
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  ck_assert_str_eq(winner_ip(fd), "3.3.3.3");
  assert_time(conn_of("1.1.1.1")->started, 0);
  assert_time(conn_of("2.2.2.2")->started, 0.25);
  assert_time(conn_of("3.3.3.3")->started, 0.5);
  assert_time(scio_now(), 0.6);
  ck_assert(conn_of("1.1.1.1")->cancelled && conn_of("2.2.2.2")->cancelled);
  ck_assert_int_eq(open_count(), 1);
  fake_close(NULL, fd);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_families_interleave_ipv6_first) {
  world_reset();
  const char *v6[] = {"2001:db8::a", "2001:db8::b", "2001:db8::c"};
  const char *v4[] = {"192.0.2.1", "192.0.2.2"};
  for (int i = 0; i < 3; i++) {
    W.fam[0].ips[i] = v6[i];
    add_conn(v6[i], 0, -ECONNREFUSED);
  }
  for (int i = 0; i < 2; i++) {
    W.fam[1].ips[i] = v4[i];
    add_conn(v4[i], 0, -ECONNREFUSED);
  }
  int fd = 7;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), -ECONNREFUSED);
  ck_assert_int_eq(fd, -1);
  ck_assert_str_eq(W.order, "2001:db8::a 192.0.2.1 2001:db8::b 192.0.2.2 "
                            "2001:db8::c");
  /* failures start the next attempt at once: no delay was waited */
  assert_time(scio_now(), 0);
  ck_assert_str_eq(scio_errmsg(),
                   "connect h.test:80: 5 attempts failed: "
                   "[2001:db8::a]:80 connection refused; "
                   "192.0.2.1:80 connection refused; "
                   "[2001:db8::b]:80 connection refused; "
                   "192.0.2.2:80 connection refused; "
                   "[2001:db8::c]:80 connection refused");
  ck_assert_int_eq(open_count(), 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_failure_starts_the_next_attempt_at_once) {
  world_reset();
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("2001:db8::2", 0.1, -ENETUNREACH);
  add_conn("192.0.2.2", 0.01, 0);
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  ck_assert_str_eq(winner_ip(fd), "192.0.2.2");
  assert_time(conn_of("192.0.2.2")->started, 0.1);
  assert_time(scio_now(), 0.11);
  fake_close(NULL, fd);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_aaaa_within_the_resolution_delay_goes_first) {
  world_reset();
  W.fam[0].delay = 0.03;
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("2001:db8::2", 0.01, 0);
  add_conn("192.0.2.2", 0.01, 0);
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  ck_assert_str_eq(winner_ip(fd), "2001:db8::2");
  assert_time(conn_of("2001:db8::2")->started, 0.03);
  ck_assert_int_eq(conn_of("192.0.2.2")->attempts, 0);
  fake_close(NULL, fd);
  return 0;
}

/* A first; AAAA later than the 50 ms resolution delay: IPv4 starts at
 * 0.05, and the late IPv6 address is tried next, at 0.05 + 0.25. */
SCIO_TEST_AUTOJUMP(he_late_aaaa_joins_the_race) {
  world_reset();
  W.fam[0].delay = 0.2;
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].ips[0] = "192.0.2.2";
  W.fam[1].ips[1] = "192.0.2.3";
  add_conn("2001:db8::2", 0, 0);
  add_conn("192.0.2.2", 0, HANG);
  add_conn("192.0.2.3", 0, HANG);
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  ck_assert_str_eq(winner_ip(fd), "2001:db8::2");
  assert_time(conn_of("192.0.2.2")->started, 0.05);
  assert_time(conn_of("2001:db8::2")->started, 0.30);
  ck_assert_int_eq(conn_of("192.0.2.3")->attempts, 0);
  ck_assert(conn_of("192.0.2.2")->cancelled);
  ck_assert_int_eq(open_count(), 1);
  fake_close(NULL, fd);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_negative_aaaa_answer_does_not_wait) {
  world_reset();
  W.fam[0].delay = 0.01;
  W.fam[0].err = SCIO_ENOTFOUND;
  W.fam[1].delay = 0.02;
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("192.0.2.2", 0, 0);
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  assert_time(conn_of("192.0.2.2")->started, 0.02);
  fake_close(NULL, fd);
  /* and a dead AAAA lookup delays IPv4 by the resolution delay only */
  world_reset();
  W.fam[0].delay = 30;
  W.fam[0].err = SCIO_EDNS;
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("192.0.2.2", 0, 0);
  double t0 = scio_now();
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  assert_time(conn_of("192.0.2.2")->started - t0, 0.05);
  assert_time(scio_now() - t0, 0.05); /* the AAAA lookup was cancelled */
  fake_close(NULL, fd);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_lookup_failures) {
  world_reset();
  W.fam[0].err = SCIO_ENOTFOUND;
  W.fam[1].err = SCIO_ENOTFOUND;
  int fd = -1;
  ck_assert_int_eq(he("db.test", 5432, NULL, &fd), SCIO_ENOTFOUND);
  ck_assert_str_eq(scio_errmsg(),
                   "connect db.test:5432: resolve db.test: no such host");
  world_reset();
  W.fam[0].err = SCIO_ENOTFOUND;
  W.fam[1].err = SCIO_EDNS;
  ck_assert_int_eq(he("db.test", 5432, NULL, &fd), SCIO_EDNS);
  ck_assert_str_eq(scio_errmsg(), "connect db.test:5432: resolve db.test: no "
                                  "such host; resolve db.test: DNS failure");
  ck_assert_int_eq(fd, -1);
  return 0;
}

/* The example, exactly: the attempt that hangs ends with the
 * kernel's timeout after the refused one. */
SCIO_TEST_AUTOJUMP(he_all_attempts_failed_message) {
  world_reset();
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("2001:db8::2", 3, SCIO_ETIMEDOUT);
  add_conn("192.0.2.2", 0.001, -ECONNREFUSED);
  int fd = -1;
  ck_assert_int_eq(he("both.test", 8000, NULL, &fd), SCIO_ETIMEDOUT);
  ck_assert_str_eq(scio_errmsg(),
                   "connect both.test:8000: 2 attempts failed: "
                   "[2001:db8::2]:8000 timed out; "
                   "192.0.2.2:8000 connection refused");
  assert_time(conn_of("192.0.2.2")->started, 0.25);
  assert_time(scio_now(), 3);
  ck_assert_int_eq(open_count(), 0);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_two_winners_at_once_one_is_closed) {
  world_reset();
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("2001:db8::2", 0.3, 0);
  add_conn("192.0.2.2", 0.05, 0);
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, NULL, &fd), 0);
  ck_assert_int_eq(open_count(), 1);
  const char *loser = strcmp(winner_ip(fd), "192.0.2.2") == 0 ? "2001:db8::2"
                                                               : "192.0.2.2";
  ck_assert(conn_of(loser)->closed_as_loser);
  fake_close(NULL, fd);
  return 0;
}

/* Cancellation at every point of the race closes everything. */
SCIO_TEST_AUTOJUMP(he_cancelled_anywhere_closes_everything) {
  const double when[] = {-1, 0, 0.01, 0.05, 0.1, 0.25, 0.26, 0.5, 0.75, 1.0};
  for (size_t k = 0; k < sizeof when / sizeof when[0]; k++) {
    world_reset();
    W.fam[0].delay = 0.1;
    W.fam[0].ips[0] = "2001:db8::2";
    W.fam[0].ips[1] = "2001:db8::3";
    W.fam[1].delay = 0.01;
    W.fam[1].ips[0] = "192.0.2.2";
    W.fam[1].ips[1] = "192.0.2.3";
    add_conn("2001:db8::2", 0, HANG);
    add_conn("2001:db8::3", 0, HANG);
    add_conn("192.0.2.2", 0, HANG);
    add_conn("192.0.2.3", 0, HANG);
    double t0 = scio_now();
    scio_scope cs;
    scio_move_on_after(&cs, when[k]);
    int fd = -1;
    ck_assert_int_eq(he("h.test", 80, NULL, &fd), SCIO_ECANCELED);
    scio_scope_close(&cs);
    ck_assert(scio_scope_cancelled_caught(&cs));
    ck_assert_int_eq(fd, -1);
    ck_assert_msg(open_count() == 0, "cancel at %g: %d open", when[k],
                  open_count());
    assert_time(scio_now() - t0, when[k] < 0 ? 0 : when[k]);
  }
  return 0;
}

SCIO_TEST_AUTOJUMP(he_ip_literals_skip_dns) {
  world_reset();
  add_conn("192.0.2.9", 0, 0);
  add_conn("2001:db8::9", 0, 0);
  int fd = -1;
  ck_assert_int_eq(he("192.0.2.9", 80, NULL, &fd), 0);
  fake_close(NULL, fd);
  ck_assert_int_eq(he("[2001:db8::9]", 80, NULL, &fd), 0);
  fake_close(NULL, fd);
  ck_assert_int_eq(he("2001:db8::9", 80, NULL, &fd), 0);
  fake_close(NULL, fd);
  ck_assert_int_eq(W.lookups, 0);
  /* a literal that fails: one attempt in the message */
  conn_of("192.0.2.9")->result = -ECONNREFUSED;
  ck_assert_int_eq(he("192.0.2.9", 80, NULL, &fd), -ECONNREFUSED);
  ck_assert_str_eq(scio_errmsg(), "connect 192.0.2.9:80: 1 attempt failed: "
                                  "192.0.2.9:80 connection refused");
  return 0;
}

SCIO_TEST_AUTOJUMP(he_local_address_selects_the_family) {
  world_reset();
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].ips[0] = "192.0.2.2";
  add_conn("2001:db8::2", 0, 0);
  add_conn("192.0.2.2", 0, 0);
  scio_connect_opts o = {0};
  o.local_address = "127.0.0.1";
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, &o, &fd), 0);
  ck_assert_str_eq(winner_ip(fd), "192.0.2.2");
  ck_assert_int_eq(W.lookups, 1);
  ck_assert_int_eq(conn_of("2001:db8::2")->attempts, 0);
  fake_close(NULL, fd);
  ck_assert_int_eq(he("2001:db8::2", 80, &o, &fd), SCIO_EINVAL);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_delay_option) {
  world_reset();
  W.fam[1].ips[0] = "192.0.2.1";
  W.fam[1].ips[1] = "192.0.2.2";
  W.fam[1].ips[2] = "192.0.2.3";
  W.fam[0].err = SCIO_ENOTFOUND;
  add_conn("192.0.2.1", 0, HANG);
  add_conn("192.0.2.2", 0, HANG);
  add_conn("192.0.2.3", 0, 0);
  scio_connect_opts o = {0};
  o.happy_eyeballs_delay = 0.1;
  int fd = -1;
  ck_assert_int_eq(he("h.test", 80, &o, &fd), 0);
  assert_time(conn_of("192.0.2.2")->started, 0.1);
  assert_time(conn_of("192.0.2.3")->started, 0.2);
  fake_close(NULL, fd);
  /* INFINITY: one at a time, each after the previous failed */
  world_reset();
  W.fam[1].ips[0] = "192.0.2.1";
  W.fam[1].ips[1] = "192.0.2.2";
  W.fam[0].err = SCIO_ENOTFOUND;
  add_conn("192.0.2.1", 2, SCIO_ETIMEDOUT);
  add_conn("192.0.2.2", 0, 0);
  o.happy_eyeballs_delay = INFINITY;
  double t0 = scio_now();
  ck_assert_int_eq(he("h.test", 80, &o, &fd), 0);
  assert_time(conn_of("192.0.2.2")->started - t0, 2);
  fake_close(NULL, fd);
  return 0;
}

SCIO_TEST_AUTOJUMP(he_bad_arguments) {
  world_reset();
  int fd = 5;
  scio_connect_opts o = {0};
  ck_assert_int_eq(he(NULL, 80, NULL, &fd), SCIO_EINVAL);
  ck_assert_int_eq(fd, -1);
  ck_assert_int_eq(he("", 80, NULL, &fd), SCIO_EINVAL);
  ck_assert_int_eq(he("h.test", 80, NULL, NULL), SCIO_EINVAL);
  o.happy_eyeballs_delay = -0.1;
  ck_assert_int_eq(he("h.test", 80, &o, &fd), SCIO_EINVAL);
  o.happy_eyeballs_delay = NAN;
  ck_assert_int_eq(he("h.test", 80, &o, &fd), SCIO_EINVAL);
  o.happy_eyeballs_delay = 0;
  scio_layer no_wrap = {NULL};
  o.layer = &no_wrap;
  ck_assert_int_eq(he("h.test", 80, &o, &fd), SCIO_EINVAL);
  o.layer = NULL;
  o.local_address = "not-an-ip";
  ck_assert_int_eq(he("h.test", 80, &o, &fd), SCIO_EINVAL);
  ck_assert_int_eq(W.lookups, 0);
  return 0;
}

/* The observer sees the race as it happens. */
static char events[1024];
static void on_event(void *arg, const scio_connect_event *ev) {
  (void)arg;
  static const char *names[] = {"?", "resolved", "attempt", "slow", "failed",
                                "connected", "abandoned"};
  size_t l = strlen(events);
  if (ev->kind == SCIO_CONNECT_RESOLVED)
    snprintf(events + l, sizeof events - l, "%.3f resolved %s %d\n",
             ev->elapsed, ev->family == AF_INET6 ? "AAAA" : "A", ev->count);
  else
    snprintf(events + l, sizeof events - l, "%.3f %s %s%s%s\n", ev->elapsed,
             names[ev->kind], ev->addr_text, ev->error ? " " : "",
             ev->error_text);
}

SCIO_TEST_AUTOJUMP(he_observer_sees_every_step) {
  world_reset();
  events[0] = 0;
  W.fam[0].ips[0] = "2001:db8::2";
  W.fam[1].delay = 0.01;
  W.fam[1].ips[0] = "192.0.2.2";
  W.fam[1].ips[1] = "192.0.2.3";
  add_conn("2001:db8::2", 0, HANG);
  add_conn("192.0.2.2", 0.01, -ECONNREFUSED);
  add_conn("192.0.2.3", 0.001, 0);
  scio_connect_opts o = {0};
  o.on_event = on_event;
  int fd = -1;
  ck_assert_int_eq(he("both.test", 8000, &o, &fd), 0);
  ck_assert_str_eq(events, "0.000 resolved AAAA 1\n"
                           "0.000 attempt [2001:db8::2]:8000\n"
                           "0.010 resolved A 2\n"
                           "0.250 slow [2001:db8::2]:8000\n"
                           "0.250 attempt 192.0.2.2:8000\n"
                           "0.260 failed 192.0.2.2:8000 connection refused\n"
                           "0.260 attempt 192.0.2.3:8000\n"
                           "0.261 connected 192.0.2.3:8000\n"
                           "0.261 abandoned [2001:db8::2]:8000\n");
  fake_close(NULL, fd);
  return 0;
}

/* ======================================================================== */
/* The real world                                                           */

static net_dns dns;

static int peer_family(int fd, char *ip, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&ss, &len), 0);
  const void *p = ss.ss_family == AF_INET6
                      ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                      : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
  inet_ntop(ss.ss_family, p, ip, (socklen_t)cap);
  return ss.ss_family;
}

static scio_connect_opts real_opts(void) {
  scio_connect_opts o;
  memset(&o, 0, sizeof o);
  o.dns.servers = dns.servers;
  o.dns.timeout = 2;
  o.dns.tries = 1;
  return o;
}

/* Loopback by name, no namespace: IPv6 is preferred. */
SCIO_TEST(he_real_loopback_by_name) {
  int port;
  int lfd = net_listen("::", 0, &port);
  net_dns_start(&dns, NULL, 0);
  int fds0 = net_count_fds();
  scio_connect_opts o = real_opts();
  int fd = -1;
  ck_assert_int_eq(scio__connect_tcp_fd("both.test", (uint16_t)port, &o, &fd),
                   0);
  char ip[64];
  ck_assert_int_eq(peer_family(fd, ip, sizeof ip), AF_INET6);
  ck_assert_str_eq(ip, "::1");
  ck_assert_int_eq(net_count_fds(), fds0 + 1);
  scio__fd_close(fd);
  ck_assert_int_eq(scio__connect_tcp_fd("127.0.0.1", (uint16_t)port, &o, &fd),
                   0);
  scio__fd_close(fd);
  /* bound to a local address: only its family is tried */
  o.local_address = "127.0.0.1";
  ck_assert_int_eq(scio__connect_tcp_fd("both.test", (uint16_t)port, &o, &fd),
                   0);
  ck_assert_int_eq(peer_family(fd, ip, sizeof ip), AF_INET);
  struct sockaddr_in me;
  socklen_t len = sizeof me;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
  ck_assert_uint_eq(ntohl(me.sin_addr.s_addr), INADDR_LOOPBACK);
  scio__fd_close(fd);
  ck_assert_int_eq(net_count_fds(), fds0);
  net_dns_stop(&dns);
  close(lfd);
  return 0;
}

/* Recipe 1.2 from inside the test: IPv6 silently drops SYNs, IPv4 answers.
 * The fallback happens at the delay, and the IPv6 socket is closed. */
SCIO_TEST(he_real_ipv6_hangs_fallback_at_the_delay) {
  net_netns_v6_hang(8000);
  int lfd = net_listen("::", 8000, NULL);
  net_dns_start(&dns, NULL, 0);
  int fds0 = net_count_fds();
  scio_connect_opts o = real_opts();
  int fd = -1;
  double t0 = scio_now();
  ck_assert_int_eq(scio__connect_tcp_fd("v6hang.test", 8000, &o, &fd), 0);
  double dt = scio_now() - t0;
  char ip[64];
  ck_assert_int_eq(peer_family(fd, ip, sizeof ip), AF_INET);
  ck_assert_str_eq(ip, "192.0.2.2");
  ck_assert_msg(dt >= 0.25 && dt < 0.25 + net_slack(0.1), "connected after %.3f s", dt);
  ck_assert_int_eq(net_count_fds(), fds0 + 1); /* the IPv6 socket is gone */
  scio__fd_close(fd);
  net_dns_stop(&dns);
  close(lfd);
  return 0;
}

/* An IPv6 address that refuses at once: IPv4 starts without the delay. */
SCIO_TEST(he_real_refused_ipv6_falls_back_at_once) {
  net_private_netns("ip addr add 2001:db8::3/128 dev lo nodad && "
                    "ip addr add 192.0.2.2/32 dev lo");
  int lfd = net_listen("192.0.2.2", 8000, NULL);
  scio_connect_opts o = {0};
  int fd = -1;
  ck_assert_int_eq(scio__connect_tcp_fd("2001:db8::3", 8000, &o, &fd),
                   -ECONNREFUSED);
  ck_assert_str_eq(scio_errmsg(), "connect [2001:db8::3]:8000: 1 attempt "
                                  "failed: [2001:db8::3]:8000 connection "
                                  "refused");
  net_dns_start(&dns, NULL, 0);
  o = real_opts();
  /* many.test: 2001:db8::2, 2001:db8::3 (no address here: unreachable),
   * then 192.0.2.2 */
  double t0 = scio_now();
  ck_assert_int_eq(scio__connect_tcp_fd("many.test", 8000, &o, &fd), 0);
  double dt = scio_now() - t0;
  char ip[64];
  peer_family(fd, ip, sizeof ip);
  ck_assert_str_eq(ip, "192.0.2.2");
  ck_assert_msg(dt < net_slack(0.2), "connected after %.3f s", dt);
  scio__fd_close(fd);
  net_dns_stop(&dns);
  close(lfd);
  return 0;
}

/* Every attempt fails: the kernel times the hanging one out (tcp_syn_retries
 * = 1: about 3 s), the other is refused; the message lists both. */
SCIO_TEST(he_real_all_attempts_failed) {
  net_netns_v6_hang(8000);
  ck_assert_int_eq(system("sysctl -qw net.ipv4.tcp_syn_retries=1"), 0);
  net_dns_start(&dns, NULL, 0);
  scio_connect_opts o = real_opts();
  int fds0 = net_count_fds();
  int fd = -1;
  ck_assert_int_eq(scio__connect_tcp_fd("v6hang.test", 8000, &o, &fd),
                   SCIO_ETIMEDOUT);
  ck_assert_str_eq(scio_errmsg(), "connect v6hang.test:8000: 2 attempts "
                                  "failed: [2001:db8::2]:8000 timed out; "
                                  "192.0.2.2:8000 connection refused");
  ck_assert_int_eq(net_count_fds(), fds0);
  net_dns_stop(&dns);
  return 0;
}

/* Cancelled mid-race with three hanging attempts: no fd stays open. */
SCIO_TEST(he_real_cancel_mid_race_leaves_no_fd) {
  net_netns_v6_hang(8000);
  ck_assert_int_eq(system("nft add rule inet he input tcp dport 8000 "
                          "tcp flags syn drop"),
                   0);
  int lfd = net_listen("::", 8000, NULL);
  net_dns_start(&dns, NULL, 0);
  scio_connect_opts o = real_opts();
  int fds0 = net_count_fds();
  int fd = -1;
  scio_scope cs;
  scio_move_on_after(&cs, 0.6);
  ck_assert_int_eq(scio__connect_tcp_fd("many.test", 8000, &o, &fd),
                   SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_int_eq(fd, -1);
  ck_assert_int_eq(net_count_fds(), fds0);
  net_dns_stop(&dns);
  close(lfd);
  return 0;
}

static int lport;

static int oom_connect_body(void *arg) {
  (void)arg;
  scio_connect_opts o = real_opts();
  o.dns.timeout = 0.2; /* see oom_resolve_body */
  int fd = -1;
  int rc = scio__connect_tcp_fd("both.test", (uint16_t)lport, &o, &fd);
  if (rc == 0)
    scio__fd_close(fd);
  return rc;
}

START_TEST(he_real_allocation_failure_loop) {
  int lfd = net_listen("::", 0, &lport);
  net_dns_start(&dns, NULL, 0);
  /* libevent's allocations do not fail: see resolve_allocation_failure_loop */
  if (scio_oom_install(0)) {
    scio_oom_run r = {.fn = oom_connect_body};
    r.opts.backend = scio_test_backend(_i);
    scio_oom_opts opts = {.max_points = 3000};
    scio_oom_loop(scio_oom_run_op, &r, "connect by name", &opts);
    scio_oom_uninstall();
  }
  net_dns_stop(&dns);
  close(lfd);
}
END_TEST

void net_connect_tests(Suite *s) {
  TCase *tc = scio_tcase_new("happy_eyeballs", 30);
  scio_tcase_add(tc, he_attempts_start_every_delay);
  scio_tcase_add(tc, he_families_interleave_ipv6_first);
  scio_tcase_add(tc, he_failure_starts_the_next_attempt_at_once);
  scio_tcase_add(tc, he_aaaa_within_the_resolution_delay_goes_first);
  scio_tcase_add(tc, he_late_aaaa_joins_the_race);
  scio_tcase_add(tc, he_negative_aaaa_answer_does_not_wait);
  scio_tcase_add(tc, he_lookup_failures);
  scio_tcase_add(tc, he_all_attempts_failed_message);
  scio_tcase_add(tc, he_two_winners_at_once_one_is_closed);
  scio_tcase_add(tc, he_cancelled_anywhere_closes_everything);
  scio_tcase_add(tc, he_ip_literals_skip_dns);
  scio_tcase_add(tc, he_local_address_selects_the_family);
  scio_tcase_add(tc, he_delay_option);
  scio_tcase_add(tc, he_bad_arguments);
  scio_tcase_add(tc, he_observer_sees_every_step);
  suite_add_tcase(s, tc);
  TCase *real = scio_tcase_new("happy_eyeballs_real", 30);
  scio_tcase_add(real, he_real_loopback_by_name);
  scio_tcase_add(real, he_real_ipv6_hangs_fallback_at_the_delay);
  scio_tcase_add(real, he_real_refused_ipv6_falls_back_at_once);
  scio_tcase_add(real, he_real_all_attempts_failed);
  scio_tcase_add(real, he_real_cancel_mid_race_leaves_no_fd);
  suite_add_tcase(s, real);
  TCase *oom = scio_tcase_new("happy_eyeballs_oom", 120);
  tcase_add_loop_test(oom, he_real_allocation_failure_loop, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, oom);
}
