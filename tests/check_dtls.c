/* Tests of <scio/dtls.h>: DTLS endpoints on loopback, both ends scio,
 * with a PKI made in memory (tests/support/pki.c).  Handshake loss is
 * simulated with the endpoint's filter hook; every timing test runs on the
 * autojump clock.  Peers from OpenSSL's command line are exercised by
 * tests/dtls_peers.sh. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scio.h"
#include "scio/testing.h"
#include "support/pki.h"

#define CK_OK(expr)                                                           \
  do {                                                                        \
    int rc_ = (expr);                                                         \
    ck_assert_msg(rc_ >= 0, "%s: %s (%s)", #expr, scio_err_name(rc_),         \
                  scio_errmsg());                                             \
  } while (0)

static test_pki pki;

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.')
      n++;
  if (d)
    closedir(d);
  return n - 1;
}

/* ---- a server and a client endpoint on loopback ------------------------- */

typedef struct drop_rule {
  int outgoing;   /* which direction to drop */
  int first;      /* drop the first N datagrams of that direction */
  int seen;
  int dropped;
} drop_rule;

static int drop_filter(void *arg, int outgoing,
                       const struct sockaddr_storage *peer, const void *data,
                       size_t len) {
  (void)peer;
  (void)data;
  (void)len;
  drop_rule *r = arg;
  if (outgoing != r->outgoing)
    return 0;
  if (r->seen++ < r->first) {
    r->dropped++;
    return 1;
  }
  return 0;
}

typedef struct world {
  scio_tls_ctx *sctx, *cctx;
  scio_dtls_endpoint *sep, *cep;
  struct sockaddr_storage saddr;
  scio_nursery n;
  scio_dtls_opts so;   /* serve's options */
  scio_dtls_handler handler;
  void *harg;
  int serve_rc;
  int serve_done;
  int errors;          /* reports to the error hook */
  int last_error;
  char last_detail[256];
} world;

static void on_error(void *ctx, const struct sockaddr_storage *peer, int code,
                     const char *detail) {
  (void)peer;
  world *w = ctx;
  w->errors++;
  w->last_error = code;
  snprintf(w->last_detail, sizeof w->last_detail, "%s", detail);
}

static int echo_handler(scio_ostream *ch, void *arg) {
  (void)arg;
  char buf[2048];
  for (;;) {
    scio_datagram d = {.data = buf, .cap = sizeof buf};
    int rc = scio_ostream_receive(ch, &d);
    if (rc == SCIO_EOF)
      return 0;
    if (rc < 0)
      return rc;
    if ((rc = scio_ostream_send(ch, &d)) < 0)
      return rc;
  }
}

static int serve_task(void *p) {
  world *w = p;
  w->serve_rc = scio_dtls_serve(w->sep, w->sctx, w->handler, w->harg, NULL,
                                &w->so);
  w->serve_done = 1;
  return 0;
}

static void world_open(world *w, const scio_dtls_endpoint_opts *server_eo,
                       const scio_dtls_endpoint_opts *client_eo) {
  scio_tls_ctx_opts sco = {.role = SCIO_TLS_SERVER,
                           .cert_pem = pki.server,
                           .key_pem = pki.server_key};
  scio_tls_ctx_opts cco = {.ca_pem = pki.ca};
  if (!w->sctx)
    CK_OK(scio_dtls_ctx_open(&sco, &w->sctx));
  if (!w->cctx)
    CK_OK(scio_dtls_ctx_open(&cco, &w->cctx));
  CK_OK(scio_dtls_endpoint_open("127.0.0.1", 0, server_eo, &w->sep));
  CK_OK(scio_dtls_endpoint_open("127.0.0.1", 0, client_eo, &w->cep));
  CK_OK(scio_dtls_endpoint_local_addr(w->sep, &w->saddr));
  if (!w->handler)
    w->handler = echo_handler;
  w->so.on_error = on_error;
  w->so.error_ctx = w;
  CK_OK(scio_nursery_open(&w->n));
  CK_OK(scio_start_soon(&w->n, serve_task, w));
}

static void world_close(world *w) {
  /* Let the handlers see the clients' close_notify first. */
  scio_wait_all_tasks_blocked();
  scio_dtls_endpoint_close(w->cep);
  scio_dtls_endpoint_close(w->sep);
  CK_OK(scio_nursery_close(&w->n));
  ck_assert_int_eq(w->serve_rc, 0);
  scio_tls_ctx_close(w->sctx);
  scio_tls_ctx_close(w->cctx);
  ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

static int connect_localhost(world *w, scio_ostream **ch) {
  scio_dtls_opts o = {.server_hostname = "localhost"};
  return scio_dtls_connect(w->cep, &w->saddr, w->cctx, &o, ch);
}

static void round_trip(scio_ostream *ch, const char *text) {
  scio_datagram d = {.data = (void *)text, .len = strlen(text)};
  CK_OK(scio_ostream_send(ch, &d));
  char buf[256];
  scio_datagram r = {.data = buf, .cap = sizeof buf};
  CK_OK(scio_ostream_receive(ch, &r));
  ck_assert_uint_eq(r.len, strlen(text));
  ck_assert(memcmp(buf, text, r.len) == 0);
  ck_assert_int_eq(r.truncated, 0);
}

/* ---- tests ----------------------------------------------------------------- */

SCIO_TEST_AUTOJUMP(handshake_echo_and_attributes) {
  int fds0 = count_fds();
  world w = {0};
  world_open(&w, NULL, NULL);
  scio_ostream *ch;
  CK_OK(connect_localhost(&w, &ch));
  round_trip(ch, "hello over dtls");
  round_trip(ch, "second datagram");
  char v[64];
  CK_OK(scio_ostream_attr(ch, SCIO_ATTR_TLS_VERSION, v, sizeof v));
  ck_assert_str_eq(v, "DTLSv1.2");
  CK_OK(scio_ostream_attr(ch, SCIO_ATTR_LAYER, v, sizeof v));
  ck_assert_str_eq(v, "dtls");
  CK_OK(scio_ostream_attr(ch, SCIO_ATTR_CIPHER, v, sizeof v));
  struct sockaddr_storage ss;
  CK_OK(scio_ostream_attr(ch, SCIO_ATTR_REMOTE_ADDR, &ss, sizeof ss));
  ck_assert_int_eq(((struct sockaddr_in *)&ss)->sin_port,
                   ((struct sockaddr_in *)&w.saddr)->sin_port);
  void *cert = NULL;
  CK_OK(scio_ostream_attr(ch, SCIO_ATTR_PEER_CERT, &cert, sizeof cert));
  ck_assert_ptr_nonnull(cert);
  size_t mtu = scio_dtls_channel_cleartext_mtu(ch);
  ck_assert_uint_gt(mtu, 1300);
  ck_assert_uint_lt(mtu, 1472);
  scio_dtls_statistics st;
  CK_OK(scio_dtls_endpoint_statistics(w.sep, &st));
  ck_assert_uint_eq(st.channels, 1);
  ck_assert_uint_eq(st.hello_verify_sent, 1);
  ck_assert_uint_eq(st.garbage, 0);
  CK_OK(scio_ostream_close(ch));
  world_close(&w);
  ck_assert_msg(w.errors == 0, "%d errors, last %s: %s", w.errors, scio_err_name(w.last_error), w.last_detail);
  ck_assert_int_eq(count_fds(), fds0);
  return 0;
}

/* The client's first two ClientHellos are lost: it sends again after 1 s
 * and 2 s (autojump), and the handshake completes. */
SCIO_TEST_AUTOJUMP(lost_client_hellos_are_retransmitted) {
  drop_rule r = {.outgoing = 1, .first = 2};
  scio_dtls_endpoint_opts ceo = {.filter = drop_filter, .filter_arg = &r};
  world w = {0};
  world_open(&w, NULL, &ceo);
  double t0 = scio_now();
  scio_ostream *ch;
  CK_OK(connect_localhost(&w, &ch));
  double took = scio_now() - t0;
  ck_assert_int_eq(r.dropped, 2);
  ck_assert_msg(took >= 3.0 && took < 3.5, "took %g s", took);
  round_trip(ch, "after loss");
  CK_OK(scio_ostream_close(ch));
  world_close(&w);
  return 0;
}

static Suite *dtls_suite(void) {
  Suite *s = suite_create("dtls");
  TCase *tc = scio_tcase_new("handshake", 30);
  scio_tcase_add(tc, handshake_echo_and_attributes);
  suite_add_tcase(s, tc);
  tc = scio_tcase_new("loss", 30);
  scio_tcase_add(tc, lost_client_hellos_are_retransmitted);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (test_pki_make(&pki) < 0)
    return 1;
  int rc = scio_test_main(dtls_suite());
  test_pki_free(&pki);
  return rc;
}
