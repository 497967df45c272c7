/* See pki.h.  ECDSA P-256 keys; certificates with the extensions a real
 * verifier checks (basic constraints, key usage, SAN). */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"

static char *pem_of(int (*write)(BIO *, void *), void *obj) {
  BIO *b = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (b && write(b, obj) == 1) {
    char *p;
    long n = BIO_get_mem_data(b, &p);
    out = malloc((size_t)n + 1);
    if (out) {
      memcpy(out, p, (size_t)n);
      out[n] = '\0';
    }
  }
  BIO_free(b);
  return out;
}

static int write_cert(BIO *b, void *x) { return PEM_write_bio_X509(b, x); }
static int write_key(BIO *b, void *k) {
  return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ex)
    return 0;
  int ok = X509_add_ext(cert, ex, -1);
  X509_EXTENSION_free(ex);
  return ok;
}

typedef struct spec {
  const char *cn;
  const char *san;   /* NULL: none */
  int ca;
  const char *eku;   /* NULL: none */
  long from, to;     /* validity, seconds from now */
} spec;

/* A certificate for `key`, signed by issuer/issuer_key (self-signed when
 * issuer is NULL). */
static X509 *make_cert(const spec *s, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key) {
  static long serial = 1;
  X509 *x = X509_new();
  if (!x)
    return NULL;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), s->from);
  X509_gmtime_adj(X509_getm_notAfter(x), s->to);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)s->cn, -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509 *iss = issuer ? issuer : x;
  int ok = 1;
  if (s->ca) {
    ok &= add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
    ok &= add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    ok &= add_ext(x, iss, NID_subject_key_identifier, "hash");
  } else {
    ok &= add_ext(x, iss, NID_basic_constraints, "CA:FALSE");
    ok &= add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
  }
  if (s->eku)
    ok &= add_ext(x, iss, NID_ext_key_usage, s->eku);
  if (s->san)
    ok &= add_ext(x, iss, NID_subject_alt_name, s->san);
  if (!ok || !X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) {
    X509_free(x);
    return NULL;
  }
  return x;
}

static char *cert_pem(const spec *s, EVP_PKEY *key, X509 *issuer,
                      EVP_PKEY *issuer_key, X509 **keep) {
  X509 *x = make_cert(s, key, issuer, issuer_key);
  if (!x)
    return NULL;
  char *pem = pem_of(write_cert, x);
  if (keep)
    *keep = x;
  else
    X509_free(x);
  return pem;
}

int test_pki_make(test_pki *p) {
  memset(p, 0, sizeof *p);
  EVP_PKEY *cak = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256"),
           *ck = EVP_EC_gen("P-256"), *ssk = EVP_EC_gen("P-256"),
           *rk = EVP_EC_gen("P-256");
  X509 *ca = NULL, *rogue = NULL;
  const long day = 86400;
  const char *san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  const spec ca_s = {"Test CA", NULL, 1, NULL, -day, 3650 * day};
  const spec rogue_s = {"Rogue CA", NULL, 1, NULL, -day, 3650 * day};
  const spec srv = {"localhost", san, 0, "serverAuth,clientAuth", -day,
                    825 * day};
  const spec wrong = {"other.test", "DNS:other.test", 0, "serverAuth", -day,
                      825 * day};
  const spec old = {"localhost", san, 0, "serverAuth", -30 * day, -day};
  const spec cli = {"client", NULL, 0, "clientAuth", -day, 825 * day};
  if (cak && sk && ck && ssk && rk) {
    p->ca = cert_pem(&ca_s, cak, NULL, NULL, &ca);
    p->rogue_ca = cert_pem(&rogue_s, rk, NULL, NULL, &rogue);
  }
  if (ca && rogue) {
    p->server = cert_pem(&srv, sk, ca, cak, NULL);
    p->wronghost = cert_pem(&wrong, sk, ca, cak, NULL);
    p->expired = cert_pem(&old, sk, ca, cak, NULL);
    p->client = cert_pem(&cli, ck, ca, cak, NULL);
    p->selfsigned = cert_pem(&srv, ssk, NULL, NULL, NULL);
    p->rogue = cert_pem(&srv, sk, rogue, rk, NULL);
    p->server_key = pem_of(write_key, sk);
    p->client_key = pem_of(write_key, ck);
    p->selfsigned_key = pem_of(write_key, ssk);
  }
  X509_free(ca);
  X509_free(rogue);
  EVP_PKEY_free(cak);
  EVP_PKEY_free(sk);
  EVP_PKEY_free(ck);
  EVP_PKEY_free(ssk);
  EVP_PKEY_free(rk);
  char **all[] = {&p->ca, &p->server, &p->server_key, &p->wronghost,
                  &p->expired, &p->client, &p->client_key, &p->selfsigned,
                  &p->selfsigned_key, &p->rogue_ca, &p->rogue};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (!*all[i]) {
      fprintf(stderr, "test_pki_make: could not make certificate %zu\n", i);
      ERR_print_errors_fp(stderr);
      test_pki_free(p);
      return -1;
    }
  ERR_clear_error();
  return 0;
}

void test_pki_free(test_pki *p) {
  char *all[] = {p->ca, p->server, p->server_key, p->wronghost, p->expired,
                 p->client, p->client_key, p->selfsigned, p->selfsigned_key,
                 p->rogue_ca, p->rogue};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]);
  memset(p, 0, sizeof *p);
}
