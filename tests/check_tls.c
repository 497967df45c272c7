/* Tests of <scio/tls.h>: TLS streams over memory pipes, both ends scio,
 * with a PKI made in memory (tests/support/pki.c).  Peers from other TLS
 * implementations are exercised over TCP by tests/tls_peers.sh. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "scio.h"
#include "scio/testing.h"
#include "support/oom.h"
#include "support/pki.h"
#include "support/tls_ossl.h"

static test_pki pki;

/* ---- a client and a server over a memory pipe --------------------------- */

typedef struct side {
  scio_tls_ctx_opts co;
  scio_tls_opts o;
  scio_tls_ctx *ctx;
  scio_stream *raw;    /* the pipe end (owned by tls once wrapped) */
  scio_stream *tls;
  int rc;
  char err[512];
} side;

typedef struct pair {
  side c, s;
  size_t pipe_buffer;
} pair;

static void server_defaults(side *s) {
  s->co.role = SCIO_TLS_SERVER;
  s->co.cert_pem = pki.server;
  s->co.key_pem = pki.server_key;
}

static void client_defaults(side *c) {
  c->co.ca_pem = pki.ca;
  c->o.server_hostname = "localhost";
}

static void pair_defaults(pair *p) {
  memset(p, 0, sizeof *p);
  server_defaults(&p->s);
  client_defaults(&p->c);
}

/* A side whose wrap fails closes its (still its own) pipe end, so that
 * the peer's handshake ends too instead of waiting for it. */
static int wrap_side(void *arg) {
  side *sd = arg;
  sd->rc = scio_tls_wrap(sd->raw, sd->ctx, &sd->o, &sd->tls);
  if (sd->rc < 0) {
    snprintf(sd->err, sizeof sd->err, "%s", scio_errmsg());
    scio_close(sd->raw);
    sd->raw = NULL;
  }
  return 0;
}

/* Make both contexts (unless the test made them) and the pipe, failing
 * the test if they fail. */
static void pair_open(pair *p) {
  if (!p->c.ctx)
    CK_OK(scio_tls_ctx_open(&p->c.co, &p->c.ctx));
  if (!p->s.ctx)
    CK_OK(scio_tls_ctx_open(&p->s.co, &p->s.ctx));
  scio_memory_pipe_opts po = {.buffer_size = p->pipe_buffer};
  CK_OK(scio_memory_pipe_open(&p->c.raw, &p->s.raw, &po));
}

/* pair_open, then run both handshakes; results in p->c.rc / p->s.rc. */
static void pair_connect(pair *p) {
  pair_open(p);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wrap_side, &p->s));
  wrap_side(&p->c);
  if (p->c.rc < 0) { /* the failed client's end is ours: end the server's */
    scio_close(p->c.raw);
    p->c.raw = NULL;
  }
  CK_OK(scio_nursery_close(&n));
}

static void pair_close(pair *p) {
  /* A side whose wrap failed still owns its pipe end (wrap_side closes it
   * and clears raw); a side whose TLS stream a test took over (tls NULL,
   * rc 0) gave its pipe end with it. */
  scio_close(p->c.tls ? p->c.tls : p->c.rc < 0 ? p->c.raw : NULL);
  scio_close(p->s.tls ? p->s.tls : p->s.rc < 0 ? p->s.raw : NULL);
  p->c.raw = p->s.raw = NULL;
  scio_tls_ctx_close(p->c.ctx);
  scio_tls_ctx_close(p->s.ctx);
  p->c.tls = p->s.tls = NULL;
  p->c.ctx = p->s.ctx = NULL;
}

static void expect_ok(pair *p) {
  ck_assert_msg(p->c.rc == 0, "client: %s: %s", scio_err_name(p->c.rc),
                p->c.err);
  ck_assert_msg(p->s.rc == 0, "server: %s: %s", scio_err_name(p->s.rc),
                p->s.err);
}

static void expect_fail(const side *sd, int code, const char *text) {
  ck_assert_msg(sd->rc == code, "expected %s, got %s: %s",
                scio_err_name(code), scio_err_name(sd->rc), sd->err);
  ck_assert_msg(strstr(sd->err, text), "message \"%s\" lacks \"%s\"",
                sd->err, text);
  ck_assert_ptr_null(sd->tls);
  ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

static void attr_str(scio_stream *s, int key, char *buf, size_t len) {
  CK_OK(scio_stream_attr(s, key, buf, len));
}

/* Receive exactly n bytes. */
static int recv_all(scio_stream *s, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = scio_receive(s, (char *)buf + got, n - got);
    if (r < 0)
      return (int)r;
    got += (size_t)r;
  }
  return 0;
}

/* ---- handshakes and attributes ----------------------------------------- */

SCIO_TEST(handshake_echo_and_attributes) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  CK_OK(scio_send(p.c.tls, "hello", 5));
  char buf[16];
  CK_OK(recv_all(p.s.tls, buf, 5));
  ck_assert(memcmp(buf, "hello", 5) == 0);
  CK_OK(scio_send(p.s.tls, "world", 5));
  CK_OK(recv_all(p.c.tls, buf, 5));
  ck_assert(memcmp(buf, "world", 5) == 0);

  char v[64];
  attr_str(p.c.tls, SCIO_ATTR_TLS_VERSION, v, sizeof v);
  ck_assert_str_eq(v, "TLSv1.3");
  attr_str(p.s.tls, SCIO_ATTR_CIPHER, v, sizeof v);
  ck_assert_msg(strstr(v, "TLS_"), "cipher %s", v);
  attr_str(p.c.tls, SCIO_ATTR_LAYER, v, sizeof v);
  ck_assert_str_eq(v, "tls");
  attr_str(p.s.tls, SCIO_ATTR_SERVER_NAME, v, sizeof v);
  ck_assert_str_eq(v, "localhost");
  ck_assert_int_eq(scio_stream_attr(p.c.tls, SCIO_ATTR_ALPN, v, sizeof v),
                   -ENOENT);
  ck_assert_int_eq(scio_stream_attr(p.c.tls, SCIO_ATTR_TLS_VERSION, v, 3),
                   -ENOSPC);
  X509 *peer = NULL;
  CK_OK(scio_stream_attr(p.c.tls, SCIO_ATTR_PEER_CERT, &peer, sizeof peer));
  ck_assert_ptr_nonnull(peer);
  char cn[64];
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
                            sizeof cn);
  ck_assert_str_eq(cn, "localhost");
  scio_tls_der der;
  CK_OK(scio_stream_attr(p.c.tls, SCIO_ATTR_PEER_CERT_DER, &der, sizeof der));
  const unsigned char *d = der.data;
  X509 *parsed = d2i_X509(NULL, &d, (long)der.len);
  ck_assert_int_eq(X509_cmp(parsed, peer), 0);
  X509_free(parsed);
  /* No client certificate: the server has no peer. */
  ck_assert_int_eq(
      scio_stream_attr(p.s.tls, SCIO_ATTR_PEER_CERT, &peer, sizeof peer),
      -ENOENT);
  ck_assert_ptr_nonnull(scio_tls_ssl(p.c.tls));
  ck_assert_ptr_null(scio_tls_ssl(p.c.raw == p.c.tls ? NULL : NULL));
  /* The pipe below answers nothing the TLS layer does not: walk-through. */
  ck_assert_int_eq(scio_stream_attr(p.c.tls, SCIO_ATTR_REMOTE_ADDR, v, 1),
                   -ENOENT);
  pair_close(&p);
  return 0;
}

SCIO_TEST(tls12_when_capped) {
  pair p;
  pair_defaults(&p);
  p.s.co.max_version = SCIO_TLS_1_2;
  pair_connect(&p);
  expect_ok(&p);
  char v[32];
  attr_str(p.c.tls, SCIO_ATTR_TLS_VERSION, v, sizeof v);
  ck_assert_str_eq(v, "TLSv1.2");
  CK_OK(scio_send(p.c.tls, "x", 1));
  CK_OK(recv_all(p.s.tls, v, 1));
  pair_close(&p);
  /* A client that insists on 1.3 against a 1.2-only server fails. */
  pair_defaults(&p);
  p.s.co.max_version = SCIO_TLS_1_2;
  p.c.co.min_version = SCIO_TLS_1_3;
  pair_connect(&p);
  expect_fail(&p.c, SCIO_ETLS, "tls handshake");
  ck_assert_int_lt(p.s.rc, 0);
  pair_close(&p);
  return 0;
}

SCIO_TEST(alpn_agreement_and_mismatch) {
  pair p;
  pair_defaults(&p);
  p.c.co.alpn = "h2,http/1.1";
  p.s.co.alpn = "http/1.1,h2";
  pair_connect(&p);
  expect_ok(&p);
  char v[32];
  attr_str(p.c.tls, SCIO_ATTR_ALPN, v, sizeof v);
  ck_assert_str_eq(v, "http/1.1"); /* the server's preference wins */
  attr_str(p.s.tls, SCIO_ATTR_ALPN, v, sizeof v);
  ck_assert_str_eq(v, "http/1.1");
  pair_close(&p);

  pair_defaults(&p);
  p.c.co.alpn = "h2";
  p.s.co.alpn = "http/1.1";
  pair_connect(&p);
  expect_fail(&p.c, SCIO_ETLS, "no application protocol");
  ck_assert_int_eq(p.s.rc, SCIO_ETLS);
  pair_close(&p);
  return 0;
}

/* ---- certificate verification ------------------------------------------ */

static void bad_server_cert(const char *cert, const char *key,
                            const char *reason) {
  pair p;
  pair_defaults(&p);
  p.s.co.cert_pem = cert;
  p.s.co.key_pem = key;
  pair_connect(&p);
  expect_fail(&p.c, SCIO_ETLS, reason);
  ck_assert_msg(strstr(p.c.err, "certificate verify failed"), "%s", p.c.err);
  ck_assert_int_lt(p.s.rc, 0); /* the server got the client's alert */
  pair_close(&p);
}

SCIO_TEST(bad_certificates_are_rejected_by_default) {
  bad_server_cert(pki.wronghost, pki.server_key, "hostname mismatch");
  bad_server_cert(pki.expired, pki.server_key, "certificate has expired");
  bad_server_cert(pki.selfsigned, pki.selfsigned_key, "self-signed");
  bad_server_cert(pki.rogue, pki.server_key, "unable to get local issuer");
  return 0;
}

SCIO_TEST(system_store_rejects_a_private_ca) {
  pair p;
  pair_defaults(&p);
  p.c.co.ca_pem = NULL; /* the system store knows no "Test CA" */
  pair_connect(&p);
  expect_fail(&p.c, SCIO_ETLS, "certificate verify failed");
  pair_close(&p);
  return 0;
}

SCIO_TEST(ip_literal_is_checked_against_ip_san) {
  pair p;
  pair_defaults(&p);
  p.c.o.server_hostname = "127.0.0.1";
  pair_connect(&p);
  expect_ok(&p);
  pair_close(&p);
  pair_defaults(&p);
  p.c.o.server_hostname = "127.0.0.2";
  pair_connect(&p);
  expect_fail(&p.c, SCIO_ETLS, "IP address mismatch");
  pair_close(&p);
  return 0;
}

SCIO_TEST(insecure_client_accepts_anything) {
  pair p;
  pair_defaults(&p);
  p.c.co.ca_pem = NULL;
  p.c.co.insecure_no_verify = 1;
  p.c.o.server_hostname = NULL;
  p.s.co.cert_pem = pki.selfsigned;
  p.s.co.key_pem = pki.selfsigned_key;
  pair_connect(&p);
  expect_ok(&p);
  pair_close(&p);
  return 0;
}

static int close_later(void *arg) {
  scio_stream **s = arg;
  scio_wait_all_tasks_blocked();
  scio_close(*s);
  *s = NULL;
  return 0;
}

SCIO_TEST(verifying_client_needs_a_hostname) {
  pair p;
  pair_defaults(&p);
  p.c.o.server_hostname = NULL;
  pair_open(&p);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wrap_side, &p.s));
  wrap_side(&p.c);
  expect_fail(&p.c, SCIO_EINVAL, "server_hostname");
  /* The client's pipe end is still ours: closing it ends the server's
   * handshake. */
  CK_OK(scio_start_soon(&n, close_later, &p.c.raw));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(p.s.rc, SCIO_EBROKEN);
  pair_close(&p);
  return 0;
}

SCIO_TEST(client_certificates) {
  /* Required and missing: under TLS 1.3 the client's handshake completes
   * before the server has judged its (absent) certificate; the alert
   * arrives with the first read. */
  pair p;
  pair_defaults(&p);
  p.s.co.client_cert = SCIO_TLS_CLIENT_CERT_REQUIRED;
  p.s.co.ca_pem = pki.ca;
  pair_connect(&p);
  ck_assert_int_eq(p.s.rc, SCIO_ETLS);
  ck_assert_int_eq(p.c.rc, 0);
  char b[8];
  ssize_t r = scio_receive(p.c.tls, b, sizeof b);
  ck_assert_int_eq(r, SCIO_ETLS);
  ck_assert_msg(strstr(scio_errmsg(), "certificate required"), "%s",
                scio_errmsg());
  ck_assert_int_eq(scio_send(p.c.tls, "x", 1), SCIO_EBROKEN);
  pair_close(&p);

  /* Required and given. */
  pair_defaults(&p);
  p.s.co.client_cert = SCIO_TLS_CLIENT_CERT_REQUIRED;
  p.s.co.ca_pem = pki.ca;
  p.c.co.cert_pem = pki.client;
  p.c.co.key_pem = pki.client_key;
  pair_connect(&p);
  expect_ok(&p);
  X509 *peer = NULL;
  CK_OK(scio_stream_attr(p.s.tls, SCIO_ATTR_PEER_CERT, &peer, sizeof peer));
  char cn[32];
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
                            sizeof cn);
  ck_assert_str_eq(cn, "client");
  pair_close(&p);

  /* Optional and missing: fine. */
  pair_defaults(&p);
  p.s.co.client_cert = SCIO_TLS_CLIENT_CERT_OPTIONAL;
  p.s.co.ca_pem = pki.ca;
  pair_connect(&p);
  expect_ok(&p);
  CK_OK(scio_send(p.c.tls, "y", 1));
  CK_OK(recv_all(p.s.tls, b, 1));
  pair_close(&p);
  return 0;
}

/* ---- end of stream ----------------------------------------------------- */

SCIO_TEST(close_notify_is_a_clean_eof) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  CK_OK(scio_send(p.s.tls, "bye", 3));
  /* The server closes; its close waits (briefly) for our close_notify,
   * which the client sends when it closes after reading EOF. */
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  scio_stream *s = p.s.tls;
  p.s.tls = NULL;
  CK_OK(scio_start_soon(&n, (scio_fn)scio_close, s));
  char b[8];
  CK_OK(recv_all(p.c.tls, b, 3));
  ck_assert_int_eq(scio_receive(p.c.tls, b, sizeof b), SCIO_EOF);
  ck_assert_int_eq(scio_receive(p.c.tls, b, sizeof b), SCIO_EOF);
  /* After the peer's close_notify we may still send (TLS half-close). */
  CK_OK(scio_close(p.c.tls));
  p.c.tls = NULL;
  CK_OK(scio_nursery_close(&n));
  pair_close(&p);
  return 0;
}

static void ragged_eof(int ragged_ok, ssize_t expect) {
  pair p;
  pair_defaults(&p);
  p.c.o.ragged_eof_ok = ragged_ok;
  pair_connect(&p);
  expect_ok(&p);
  CK_OK(scio_send(p.s.tls, "abc", 3));
  /* The server's transport ends without close_notify. */
  CK_OK(scio_send_eof(p.s.raw));
  char b[8];
  CK_OK(recv_all(p.c.tls, b, 3));
  ssize_t r = scio_receive(p.c.tls, b, sizeof b);
  ck_assert_msg(r == expect, "got %s: %s", scio_err_name((int)r),
                scio_errmsg());
  if (expect == SCIO_EBROKEN)
    ck_assert(strstr(scio_errmsg(), "without close_notify"));
  pair_close(&p);
}

SCIO_TEST(ragged_eof_in_both_modes) {
  ragged_eof(0, SCIO_EBROKEN);
  ragged_eof(1, SCIO_EOF);
  return 0;
}

SCIO_TEST(send_eof_is_not_supported) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  ck_assert_int_eq(scio_send_eof(p.c.tls), -ENOSYS);
  ck_assert(strstr(scio_errmsg(), "half-close"));
  CK_OK(scio_send(p.c.tls, "still", 5)); /* nothing broke */
  char b[8];
  CK_OK(recv_all(p.s.tls, b, 5));
  pair_close(&p);
  return 0;
}

/* ---- unwrap -------------------------------------------------------------- */

typedef struct unwrapper {
  scio_stream *tls, *plain;
  char trailing[64];
  size_t ntrailing;
  int rc;
} unwrapper;

static int unwrap_server(void *arg) {
  unwrapper *u = arg;
  u->rc = scio_tls_unwrap(u->tls, &u->plain, u->trailing, sizeof u->trailing,
                          &u->ntrailing);
  return 0;
}

SCIO_TEST(unwrap_returns_the_plaintext_stream) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  unwrapper u = {.tls = p.s.tls};
  p.s.tls = NULL;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, unwrap_server, &u));
  char b[32];
  ck_assert_int_eq(scio_receive(p.c.tls, b, sizeof b), SCIO_EOF);
  scio_stream *plain = NULL;
  size_t nt = 99;
  CK_OK(scio_tls_unwrap(p.c.tls, &plain, NULL, 0, &nt));
  p.c.tls = NULL;
  ck_assert_uint_eq(nt, 0);
  /* Plaintext right behind our close_notify: may arrive as trailing
   * bytes of the server's unwrap. */
  CK_OK(scio_send(plain, "PLAIN", 5));
  CK_OK(scio_nursery_close(&n));
  ck_assert_msg(u.rc == 0, "%s", scio_err_name(u.rc));
  ck_assert_uint_le(u.ntrailing, 5);
  memcpy(b, u.trailing, u.ntrailing);
  CK_OK(recv_all(u.plain, b + u.ntrailing, 5 - u.ntrailing));
  ck_assert(memcmp(b, "PLAIN", 5) == 0);
  scio_close(plain);
  scio_close(u.plain);
  pair_close(&p);
  return 0;
}

SCIO_TEST(unwrap_bad_input) {
  scio_stream *a, *b, *out = (scio_stream *)1;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_tls_unwrap(a, &out, NULL, 0, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  ck_assert_int_eq(scio_tls_unwrap(NULL, &out, NULL, 0, NULL), SCIO_EINVAL);
  ck_assert_ptr_null(scio_tls_ssl(a));
  scio_close(a);
  scio_close(b);
  return 0;
}

/* ---- layering and concurrency ----------------------------------------- */

SCIO_TEST(tls_over_tls) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  /* A second TLS session inside the first one. */
  side c2 = {0}, s2 = {0};
  server_defaults(&s2);
  client_defaults(&c2);
  c2.ctx = p.c.ctx;
  s2.ctx = p.s.ctx;
  c2.raw = p.c.tls;
  s2.raw = p.s.tls;
  p.c.tls = p.s.tls = NULL;
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wrap_side, &s2));
  wrap_side(&c2);
  CK_OK(scio_nursery_close(&n));
  ck_assert_msg(c2.rc == 0 && s2.rc == 0, "%s / %s", c2.err, s2.err);
  CK_OK(scio_send(c2.tls, "inner", 5));
  char b[8];
  CK_OK(recv_all(s2.tls, b, 5));
  ck_assert(memcmp(b, "inner", 5) == 0);
  char layer[16];
  attr_str(c2.tls, SCIO_ATTR_LAYER, layer, sizeof layer);
  ck_assert_str_eq(layer, "tls");
  p.c.tls = c2.tls;
  p.s.tls = s2.tls;
  pair_close(&p);
  return 0;
}

#define BIG (4u << 20)

typedef struct bulk {
  scio_stream *s;
  unsigned char *buf;
  size_t n;
  int rc;
} bulk;

static int bulk_send(void *arg) {
  bulk *b = arg;
  b->rc = scio_send(b->s, b->buf, b->n);
  return b->rc;
}

static int bulk_recv(void *arg) {
  bulk *b = arg;
  b->rc = recv_all(b->s, b->buf, b->n);
  return b->rc;
}

/* Each side sends 4 MiB while receiving 4 MiB, with one task receiving
 * and another sending on the same stream: no SCIO_EBUSY between them. */
SCIO_TEST(large_transfers_both_ways_concurrently) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  unsigned char *src = malloc(BIG), *d1 = malloc(BIG), *d2 = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    src[i] = (unsigned char)(i * 2654435761u >> 13);
  bulk cs = {p.c.tls, src, BIG, 0}, ss = {p.s.tls, src, BIG, 0};
  bulk cr = {p.c.tls, d1, BIG, 0}, sr = {p.s.tls, d2, BIG, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, bulk_send, &cs));
  CK_OK(scio_start_soon(&n, bulk_send, &ss));
  CK_OK(scio_start_soon(&n, bulk_recv, &cr));
  CK_OK(scio_start_soon(&n, bulk_recv, &sr));
  CK_OK(scio_nursery_close(&n));
  ck_assert(memcmp(src, d1, BIG) == 0);
  ck_assert(memcmp(src, d2, BIG) == 0);
  free(src);
  free(d1);
  free(d2);
  pair_close(&p);
  return 0;
}

SCIO_TEST(tiny_and_empty_writes) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  CK_OK(scio_send(p.c.tls, "", 0));
  for (int i = 0; i < 100; i++)
    CK_OK(scio_send(p.c.tls, "z", 1));
  char b[100];
  CK_OK(recv_all(p.s.tls, b, 100));
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(b[i], 'z');
  pair_close(&p);
  return 0;
}

typedef struct recv_until_closed {
  scio_stream *s;
  ssize_t rc;
} recv_until_closed;

static int blocked_receiver(void *arg) {
  recv_until_closed *r = arg;
  char b[8];
  r->rc = scio_receive(r->s, b, sizeof b);
  return 0;
}

SCIO_TEST(close_wakes_a_blocked_receiver) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  recv_until_closed r = {p.c.tls, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, blocked_receiver, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio_receive(p.c.tls, (char[4]){0}, 4), SCIO_EBUSY);
  scio_close(p.c.tls);
  p.c.tls = NULL;
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  pair_close(&p);
  return 0;
}

/* ---- cancellation ------------------------------------------------------ */

SCIO_TEST_AUTOJUMP(cancelled_receive_loses_nothing) {
  pair p;
  pair_defaults(&p);
  pair_connect(&p);
  expect_ok(&p);
  char b[8];
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  ck_assert_int_eq(scio_receive(p.c.tls, b, sizeof b), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  CK_OK(scio_send(p.s.tls, "late", 4));
  CK_OK(recv_all(p.c.tls, b, 4));
  ck_assert(memcmp(b, "late", 4) == 0);
  pair_close(&p);
  return 0;
}

SCIO_TEST_AUTOJUMP(cancelled_send_breaks_the_stream) {
  pair p;
  pair_defaults(&p);
  p.pipe_buffer = 4096; /* a send of 1 MiB blocks: nobody reads */
  pair_connect(&p);
  expect_ok(&p);
  static unsigned char big[1 << 20];
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  ck_assert_int_eq(scio_send(p.c.tls, big, sizeof big), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_int_eq(scio_send(p.c.tls, "x", 1), SCIO_EBROKEN);
  char b[4];
  ck_assert_int_eq(scio_receive(p.c.tls, b, sizeof b), SCIO_EBROKEN);
  pair_close(&p);
  return 0;
}

SCIO_TEST_AUTOJUMP(cancelled_handshake_returns_the_stream) {
  scio_tls_ctx *ctx;
  scio_tls_ctx_opts co = {.ca_pem = pki.ca};
  CK_OK(scio_tls_ctx_open(&co, &ctx));
  scio_stream *a, *b, *tls = (scio_stream *)1;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  scio_tls_opts o = {.server_hostname = "localhost"};
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 5.0));
  /* Nobody answers on b. */
  ck_assert_int_eq(scio_tls_wrap(a, ctx, &o, &tls), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_ptr_null(tls);
  /* a is still ours, and usable as a stream: b reads the ClientHello,
   * then EOF once we close a. */
  CK_OK(scio_close(a));
  char buf[4096];
  ssize_t r;
  size_t total = 0;
  while ((r = scio_receive(b, buf, sizeof buf)) > 0)
    total += (size_t)r;
  ck_assert_int_eq(r, SCIO_EOF);
  ck_assert_uint_gt(total, 0);
  scio_close(b);
  scio_tls_ctx_close(ctx);
  return 0;
}

/* Cancel the client's handshake after k scheduler steps, for every k up
 * to a full handshake: each run ends in success or SCIO_ECANCELED, the
 * server never hangs, nothing leaks (ASan and valgrind check the rest). */
static int server_with_timeout(void *arg) {
  side *s = arg;
  scio_scope cs;
  scio_move_on_after(&cs, 10.0);
  wrap_side(s);
  scio_scope_close(&cs);
  return 0;
}

SCIO_TEST_AUTOJUMP(handshake_cancelled_at_every_step) {
  int completed = 0;
  for (int k = 0; k < 200 && completed < 3; k++) {
    pair p;
    pair_defaults(&p);
    pair_open(&p);
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, server_with_timeout, &p.s));
    scio_scope cs;
    CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
    test_canceller c = {&cs, k};
    CK_OK(scio_start_soon(&n, test_cancel_after, &c));
    wrap_side(&p.c);
    if (p.c.rc < 0) {
      scio_close(p.c.raw);
      p.c.raw = NULL;
    }
    scio_scope_close(&cs);
    CK_OK(scio_nursery_close(&n));
    ck_assert_msg(p.c.rc == 0 || p.c.rc == SCIO_ECANCELED, "k=%d: %s: %s", k,
                  scio_err_name(p.c.rc), p.c.err);
    if (p.c.rc == 0)
      completed++;
    else
      ck_assert_int_lt(p.s.rc, 0);
    pair_close(&p);
  }
  ck_assert_int_eq(completed, 3);
  return 0;
}

/* ---- deferred handshakes and handshake timeouts --------------------------- */

typedef struct sender {
  scio_stream *s;
  int rc;
} sender;

static int send_hi(void *arg) {
  sender *x = arg;
  x->rc = scio_send(x->s, "hi", 2);
  return 0;
}

static int client_then_yo(void *arg) {
  side *c = arg;
  wrap_side(c);
  if (c->rc == 0)
    c->rc = scio_send(c->tls, "yo", 2);
  return 0;
}

typedef struct receiver {
  scio_stream *s;
  char buf[2];
  int rc;
} receiver;

static int receive_two(void *arg) {
  receiver *r = arg;
  r->rc = recv_all(r->s, r->buf, 2);
  return 0;
}

SCIO_TEST(deferred_handshake_runs_at_first_use) {
  pair p;
  pair_defaults(&p);
  p.s.o.defer_handshake = 1;
  pair_open(&p);
  /* No I/O: returns at once although nobody talks to the server yet. */
  CK_OK(scio_tls_wrap(p.s.raw, p.s.ctx, &p.s.o, &p.s.tls));
  /* A receiver and a sender both start before the handshake: one runs
   * it, the other waits for it. */
  receiver rcv = {p.s.tls, {0}, -1};
  sender snd = {p.s.tls, -1};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, receive_two, &rcv));
  CK_OK(scio_start_soon(&n, send_hi, &snd));
  CK_OK(scio_start_soon(&n, client_then_yo, &p.c));
  CK_OK(scio_nursery_close(&n));
  expect_ok(&p);
  ck_assert_int_eq(snd.rc, 0);
  ck_assert_int_eq(rcv.rc, 0);
  ck_assert(memcmp(rcv.buf, "yo", 2) == 0);
  char b[2];
  CK_OK(recv_all(p.c.tls, b, 2));
  ck_assert(memcmp(b, "hi", 2) == 0);
  CK_OK(scio_tls_handshake(p.s.tls)); /* done already: a checkpoint */
  pair_close(&p);
  return 0;
}

SCIO_TEST(deferred_handshake_failure_breaks_the_stream) {
  pair p;
  pair_defaults(&p);
  p.s.o.defer_handshake = 1;
  p.s.co.cert_pem = pki.wronghost;
  pair_open(&p);
  CK_OK(scio_tls_wrap(p.s.raw, p.s.ctx, &p.s.o, &p.s.tls));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wrap_side, &p.c));
  int rc = scio_tls_handshake(p.s.tls);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(p.c.rc, SCIO_ETLS);
  ck_assert_int_eq(rc, SCIO_ETLS);
  char b[2];
  ck_assert_int_eq(scio_receive(p.s.tls, b, 2), SCIO_EBROKEN);
  ck_assert_int_eq(scio_send(p.s.tls, b, 2), SCIO_EBROKEN);
  ck_assert_int_eq(scio_tls_handshake(p.c.raw), SCIO_EINVAL);
  pair_close(&p);
  return 0;
}

SCIO_TEST_AUTOJUMP(handshake_timeout) {
  scio_tls_ctx *ctx;
  scio_tls_ctx_opts co = {.role = SCIO_TLS_SERVER,
                          .cert_pem = pki.server,
                          .key_pem = pki.server_key};
  CK_OK(scio_tls_ctx_open(&co, &ctx));
  scio_stream *a, *b, *tls = (scio_stream *)1;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  scio_tls_opts o = {.handshake_timeout = 2.5};
  double t0 = scio_now();
  ck_assert_int_eq(scio_tls_wrap(a, ctx, &o, &tls), SCIO_ETIMEDOUT);
  ck_assert(scio_now() - t0 >= 2.5 && scio_now() - t0 < 2.6);
  ck_assert_msg(strstr(scio_errmsg(), "no handshake within 2.5 s"), "%s",
                scio_errmsg());
  ck_assert_ptr_null(tls);
  scio_close(a); /* a failed wrap leaves it with us */
  scio_close(b);
  scio_tls_ctx_close(ctx);
  return 0;
}

/* ---- the stream conformance kit ------------------------------------------ */

/* TLS is a two-way stream (no half-close): the kit's two-way checks over
 * TLS over memory pipes (both ends scio, one context pair per test). */
typedef struct kit_ctx {
  scio_tls_ctx *c, *s;
  size_t pipe_buffer;
} kit_ctx;

static int kit_pair(scio_stream **a, scio_stream **b, void *arg) {
  kit_ctx *k = arg;
  pair p;
  pair_defaults(&p);
  p.c.ctx = k->c;
  p.s.ctx = k->s;
  p.pipe_buffer = k->pipe_buffer;
  scio_memory_pipe_opts po = {.buffer_size = p.pipe_buffer};
  int rc = scio_memory_pipe_open(&p.c.raw, &p.s.raw, &po);
  if (rc < 0)
    return rc;
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, wrap_side, &p.s);
  wrap_side(&p.c);
  scio_nursery_close(&n);
  if (p.c.rc < 0 || p.s.rc < 0) {
    scio_close(p.c.tls ? p.c.tls : p.c.raw);
    scio_close(p.s.tls ? p.s.tls : p.s.raw);
    return p.c.rc < 0 ? p.c.rc : p.s.rc;
  }
  *a = p.c.tls;
  *b = p.s.tls;
  return 0;
}

/* No clogged variant: a pipe small enough that a 3-byte send blocks
 * (TLS adds a 22-byte record around it) turns the handshake and the large
 * checks into byte-by-byte crawls. */
SCIO_TEST_AUTOJUMP(kit_tls_over_memory_pipes) {
  kit_ctx k = {0};
  pair p;
  pair_defaults(&p);
  CK_OK(scio_tls_ctx_open(&p.c.co, &k.c));
  CK_OK(scio_tls_ctx_open(&p.s.co, &k.s));
  scio_stream_kit kit = {.make = kit_pair,
                         .arg = &k,
                         .large = 1 << 20,
                         .flags = SCIO_STREAM_KIT_CONTROL_BYTES};
  scio_check_two_way_stream(&kit);
  scio_tls_ctx_close(k.c);
  scio_tls_ctx_close(k.s);
  return 0;
}

/* ---- sessions ---------------------------------------------------------- */

SCIO_TEST(sessions_are_resumed) {
  pair p;
  pair_defaults(&p);
  CK_OK(scio_tls_ctx_open(&p.c.co, &p.c.ctx));
  CK_OK(scio_tls_ctx_open(&p.s.co, &p.s.ctx));
  scio_tls_ctx *cctx = p.c.ctx, *sctx = p.s.ctx;
  for (int round = 0; round < 2; round++) {
    p.c.ctx = cctx;
    p.s.ctx = sctx;
    pair_connect(&p);
    expect_ok(&p);
    ck_assert_int_eq(SSL_session_reused(scio_tls_ssl(p.c.tls)), round);
    /* TLS 1.3 tickets arrive after the handshake: read once. */
    CK_OK(scio_send(p.s.tls, "t", 1));
    char b;
    CK_OK(recv_all(p.c.tls, &b, 1));
    scio_close(p.c.tls);
    scio_close(p.s.tls);
    p.c.tls = p.s.tls = NULL;
  }
  /* Another name gets no session of this one. */
  p.c.o.server_hostname = "127.0.0.1";
  pair_connect(&p);
  expect_ok(&p);
  ck_assert_int_eq(SSL_session_reused(scio_tls_ssl(p.c.tls)), 0);
  pair_close(&p);
  return 0;
}

/* ---- contexts ---------------------------------------------------------- */

static void ctx_fails(const scio_tls_ctx_opts *o, int code, const char *txt) {
  scio_tls_ctx *ctx = (scio_tls_ctx *)1;
  int rc = scio_tls_ctx_open(o, &ctx);
  ck_assert_msg(rc == code, "got %s: %s", scio_err_name(rc), scio_errmsg());
  ck_assert_ptr_null(ctx);
  ck_assert_msg(strstr(scio_errmsg(), txt), "\"%s\" lacks \"%s\"",
                scio_errmsg(), txt);
  ck_assert(ERR_peek_error() == 0);
}

START_TEST(context_options_are_checked) {
  scio_tls_ctx_opts o = {.role = SCIO_TLS_SERVER};
  ctx_fails(&o, SCIO_EINVAL, "needs a certificate");
  o.cert_pem = pki.server;
  ctx_fails(&o, SCIO_EINVAL, "needs a certificate and a key");
  scio_tls_ctx_opts half = {.cert_pem = pki.client};
  ctx_fails(&half, SCIO_EINVAL, "needs its key");
  o.key_pem = pki.client_key;
  ctx_fails(&o, SCIO_ETLS, "mismatch");
  o.key_pem = "-----BEGIN PRIVATE KEY-----\nnot base64\n";
  ctx_fails(&o, SCIO_ETLS, "key_pem");
  o.key_pem = pki.server_key;
  o.alpn = "h2,,http/1.1";
  ctx_fails(&o, SCIO_EINVAL, "ALPN");
  o.alpn = NULL;
  o.min_version = SCIO_TLS_1_3;
  o.max_version = SCIO_TLS_1_2;
  ctx_fails(&o, SCIO_EINVAL, "version");
  o.min_version = 0x0301;
  o.max_version = 0;
  ctx_fails(&o, SCIO_EINVAL, "version");
  o.min_version = 0;
  o.ciphersuites = "NO_SUCH_SUITE";
  ctx_fails(&o, SCIO_ETLS, "ciphersuites");
  o.ciphersuites = NULL;
  o.cert_file = "/nonexistent/cert.pem";
  o.cert_pem = NULL;
  ctx_fails(&o, SCIO_ETLS, "cert_file");
  scio_tls_ctx_opts c = {.ca_pem = "garbage"};
  ctx_fails(&c, SCIO_ETLS, "ca_pem");
  c.ca_pem = NULL;
  c.role = 7;
  ctx_fails(&c, SCIO_EINVAL, "role");
  ck_assert_int_eq(scio_tls_ctx_open(NULL, NULL), SCIO_EINVAL);
  scio_tls_ctx *ctx;
  ck_assert_int_eq(scio_tls_ctx_open(NULL, &ctx), 0); /* client defaults */
  ck_assert_ptr_nonnull(scio_tls_ctx_ssl_ctx(ctx));
  scio_tls_ctx_close(ctx);
  scio_tls_ctx_close(NULL);
}
END_TEST

SCIO_TEST(own_ssl_ctx) {
  SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
  ck_assert_ptr_nonnull(sc);
  BIO *cb = BIO_new_mem_buf(pki.server, -1), *kb =
                                                  BIO_new_mem_buf(pki.server_key, -1);
  X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
  EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
  ck_assert(SSL_CTX_use_certificate(sc, x) == 1);
  ck_assert(SSL_CTX_use_PrivateKey(sc, k) == 1);
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cb);
  BIO_free(kb);
  pair p;
  pair_defaults(&p);
  CK_OK(scio_tls_ctx_open_ssl(sc, SCIO_TLS_SERVER, &p.s.ctx));
  SSL_CTX_free(sc); /* the scio context keeps its reference */
  ck_assert_ptr_eq(scio_tls_ctx_ssl_ctx(p.s.ctx), sc);
  pair_connect(&p);
  expect_ok(&p);
  pair_close(&p);
  scio_tls_ctx *bad = (scio_tls_ctx *)1;
  ck_assert_int_eq(scio_tls_ctx_open_ssl(NULL, 0, &bad), SCIO_EINVAL);
  ck_assert_ptr_null(bad);
  return 0;
}

SCIO_TEST(wrap_bad_arguments_leave_the_stream) {
  scio_stream *a, *b, *out = (scio_stream *)1;
  CK_OK(scio_memory_pipe_open(&a, &b, NULL));
  ck_assert_int_eq(scio_tls_wrap(a, NULL, NULL, &out), SCIO_EINVAL);
  ck_assert_ptr_null(out);
  CK_OK(scio_send(a, "x", 1)); /* a is untouched and still ours */
  char c;
  CK_OK(recv_all(b, &c, 1));
  scio_close(a);
  scio_close(b);
  return 0;
}

/* ---- allocation failures ------------------------------------------------ */

/* Contexts and a pipe (nothing failing), then, armed by arm(1) until
 * arm(0), both handshakes and a round trip: 0 or the first error. */
static int armed_handshake(pair *p, void (*arm)(int on)) {
  arm(0);
  int rc = scio_tls_ctx_open(&p->c.co, &p->c.ctx);
  if (rc == 0)
    rc = scio_tls_ctx_open(&p->s.co, &p->s.ctx);
  if (rc == 0)
    rc = scio_memory_pipe_open(&p->c.raw, &p->s.raw, NULL);
  arm(1);
  if (rc == 0) {
    scio_nursery n;
    scio_nursery_open(&n);
    rc = scio_start_soon(&n, wrap_side, &p->s);
    wrap_side(&p->c);
    if (p->c.rc < 0) { /* let the server's handshake end too */
      scio_close(p->c.raw);
      p->c.raw = NULL;
    }
    int crc = scio_nursery_close(&n);
    if (rc == 0)
      rc = p->c.rc < 0 ? p->c.rc : p->s.rc < 0 ? p->s.rc : crc;
    if (rc == 0) {
      rc = scio_send(p->c.tls, "ok", 2);
      char b[2];
      if (rc == 0)
        rc = recv_all(p->s.tls, b, 2);
    }
  }
  arm(0);
  pair_close(p);
  return rc;
}

static int oom_handshake(void *arg) {
  (void)arg;
  pair p;
  pair_defaults(&p);
  return armed_handshake(&p, scio_oom_arm);
}

START_TEST(allocation_failure_loop) {
  if (!scio_oom_install(0))
    return;
  /* A failure on one side can show on the other as a broken peer. */
  static const int also_ok[] = {SCIO_EBROKEN, SCIO_ETLS, SCIO_ECLOSED, 0};
  scio_oom_run r = {.fn = oom_handshake};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_opts o = {.self_armed = 1, .also_ok = also_ok};
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, &o);
  scio_oom_uninstall();
}
END_TEST

/* OpenSSL's own allocations fail too (tests/support/tls_ossl.h).
 * Contexts are made before the counting starts (their own allocation
 * failures are a plain loop in context_allocation_failures); the wrap,
 * the handshake and a round trip are counted. */
static void ossl_arm(int on) {
  if (on)
    test_ossl_arm(test_ossl_armed);
  else
    test_ossl_disarm();
}

static int ossl_handshake(void *arg) {
  (void)arg;
  pair p;
  pair_defaults(&p);
  p.c.co.no_session_resumption = 1;
  p.s.co.no_session_resumption = 1;
  return armed_handshake(&p, ossl_arm);
}

/* Autojump: a side left waiting for a peer that failed (close's wait for
 * close_notify) costs no real time. */
static int ossl_run(long fail_at) {
  return test_ossl_run(ossl_handshake, fail_at);
}

START_TEST(openssl_allocation_failures) {
  /* Under valgrind every point costs seconds: sample a seventh of them
   * there (ASan runs them all). */
  static const int ok[] = {SCIO_ENOMEM, SCIO_ETLS, SCIO_EBROKEN, 0};
  test_ossl_loop_opts o = {.op = ossl_run, .ok = ok, .stride = 1,
                           .max = 100000};
  long stride;
  long points = test_ossl_loop(&o, &stride);
  /* The loop really failed allocations (a stride samples 1 in stride). */
  ck_assert_int_gt(points * stride, 100);
}
END_TEST

/* Context set-up under OpenSSL allocation failures: SCIO_ENOMEM or
 * SCIO_ETLS, nothing leaked, the queue empty. */
static int ctx_pair_op(long fail_at) {
  scio_tls_ctx_opts c = {.ca_pem = pki.ca, .alpn = "h2,http/1.1"};
  scio_tls_ctx_opts sv = {.role = SCIO_TLS_SERVER,
                          .cert_pem = pki.server,
                          .key_pem = pki.server_key,
                          .alpn = "http/1.1"};
  scio_tls_ctx *a = NULL, *b = NULL;
  test_ossl_arm(fail_at);
  int rc = scio_tls_ctx_open(&c, &a);
  if (rc == 0)
    rc = scio_tls_ctx_open(&sv, &b);
  test_ossl_disarm();
  scio_tls_ctx_close(a);
  scio_tls_ctx_close(b);
  return rc;
}

START_TEST(context_allocation_failures) {
  static const int ok[] = {SCIO_ENOMEM, SCIO_ETLS, 0};
  test_ossl_loop_opts o = {.op = ctx_pair_op, .ok = ok, .stride = 1,
                           .max = 100000};
  long stride;
  ck_assert_int_gt(test_ossl_loop(&o, &stride), 10);
}
END_TEST

static Suite *tls_suite(void) {
  Suite *s = suite_create("tls");
  TCase *tc = scio_tcase_new("handshake", 30);
  scio_tcase_add(tc, handshake_echo_and_attributes);
  scio_tcase_add(tc, tls12_when_capped);
  scio_tcase_add(tc, alpn_agreement_and_mismatch);
  scio_tcase_add(tc, sessions_are_resumed);
  scio_tcase_add(tc, own_ssl_ctx);
  tcase_add_test(tc, context_options_are_checked);
  scio_tcase_add(tc, wrap_bad_arguments_leave_the_stream);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("verify", 30);
  scio_tcase_add(tc, bad_certificates_are_rejected_by_default);
  scio_tcase_add(tc, system_store_rejects_a_private_ca);
  scio_tcase_add(tc, ip_literal_is_checked_against_ip_san);
  scio_tcase_add(tc, insecure_client_accepts_anything);
  scio_tcase_add(tc, verifying_client_needs_a_hostname);
  scio_tcase_add(tc, client_certificates);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("eof", 30);
  scio_tcase_add(tc, close_notify_is_a_clean_eof);
  scio_tcase_add(tc, ragged_eof_in_both_modes);
  scio_tcase_add(tc, send_eof_is_not_supported);
  scio_tcase_add(tc, unwrap_returns_the_plaintext_stream);
  scio_tcase_add(tc, unwrap_bad_input);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("streams", 60);
  scio_tcase_add(tc, tls_over_tls);
  scio_tcase_add(tc, large_transfers_both_ways_concurrently);
  scio_tcase_add(tc, tiny_and_empty_writes);
  scio_tcase_add(tc, kit_tls_over_memory_pipes);
  scio_tcase_add(tc, close_wakes_a_blocked_receiver);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("cancel", 120);
  scio_tcase_add(tc, cancelled_receive_loses_nothing);
  scio_tcase_add(tc, cancelled_send_breaks_the_stream);
  scio_tcase_add(tc, cancelled_handshake_returns_the_stream);
  scio_tcase_add(tc, handshake_cancelled_at_every_step);
  scio_tcase_add(tc, deferred_handshake_runs_at_first_use);
  scio_tcase_add(tc, deferred_handshake_failure_breaks_the_stream);
  scio_tcase_add(tc, handshake_timeout);
  tcase_add_loop_test(tc, allocation_failure_loop, 0, SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);

  tc = scio_tcase_new("openssl-oom", 600);
  tcase_add_test(tc, openssl_allocation_failures);
  tcase_add_test(tc, context_allocation_failures);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_ossl_main(tls_suite, &pki); }
