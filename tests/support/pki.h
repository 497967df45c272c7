/* A throw-away PKI made in memory with OpenSSL, for TLS tests and benches:
 * no files, no openssl(1), the same in every run's shape (fresh keys each
 * time).  Every PEM string is heap memory owned by the test_pki. */
#ifndef SCIO_TEST_PKI_H
#define SCIO_TEST_PKI_H

typedef struct test_pki {
  char *ca;            /* "Test CA": signs everything below but `rogue` */
  char *server;        /* CN localhost, SAN DNS:localhost, IP:127.0.0.1, ::1 */
  char *server_key;    /* the key of server, wronghost and expired */
  char *wronghost;     /* SAN DNS:other.test */
  char *expired;       /* SAN localhost, expired a day ago */
  char *client;        /* CN client, clientAuth */
  char *client_key;
  char *selfsigned;    /* SAN localhost, self-signed (its own key below) */
  char *selfsigned_key;
  char *rogue_ca;      /* another CA nobody trusts */
  char *rogue;         /* SAN localhost, signed by rogue_ca; key: server_key */
} test_pki;

/* 0, or -1 with a message on stderr. */
int test_pki_make(test_pki *p);
void test_pki_free(test_pki *p);

#endif
