/* libFuzzer target for the server side of a TLS handshake
 * (src/tls/tls_stream.c, tls_bio.c over OpenSSL).
 *
 * Input: [0] chunk-size seed, then bytes that a "client" writes into a
 * memory pipe, in chunks of 1..256 bytes, followed by EOF.  A scio TLS
 * server wraps the other end (context made once per process, PKI made in
 * memory).  Whatever the bytes, the target checks that:
 *   - the wrap returns 0, or SCIO_ETLS / SCIO_EBROKEN (no other code, no
 *     crash, no hang: the input ends with EOF);
 *   - on success, receives end in SCIO_EOF, SCIO_EBROKEN or SCIO_ETLS;
 *   - OpenSSL's error queue is empty afterwards (scio clears it);
 * and ASan/LSan (libFuzzer builds) or valgrind catch memory errors and
 * leaks.  Seeds in fuzz/corpus/tls_server are real ClientHellos (TLS 1.3
 * and a TLS 1.2-only one) recorded from scio clients. */
#include <openssl/err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "scio.h"
#include "support/pki.h"

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "fuzz_tls_server: check failed: %s (line %d): %s\n",    \
              #cond, __LINE__, scio_errmsg());                                \
      abort();                                                                \
    }                                                                         \
  } while (0)

static scio_tls_ctx *server_ctx;

typedef struct input {
  const uint8_t *data;
  size_t len;
  unsigned seed;
  scio_stream *client_end;
} input;

static int feed(void *arg) {
  input *in = arg;
  size_t pos = 0;
  unsigned s = in->seed;
  while (pos < in->len) {
    s = s * 1103515245u + 12345u;
    size_t n = 1 + (s >> 8) % 256;
    if (n > in->len - pos)
      n = in->len - pos;
    if (scio_send(in->client_end, in->data + pos, n) < 0)
      break; /* the server gave up: fine */
    pos += n;
  }
  scio_send_eof(in->client_end);
  /* Drain what the server says (its flight, alerts) so it never blocks. */
  char sink[4096];
  while (scio_receive(in->client_end, sink, sizeof sink) > 0)
    ;
  return 0;
}

static int serve(void *arg) {
  input *in = arg;
  scio_stream *server_end, *tls;
  CHECK(scio_memory_pipe_open(&in->client_end, &server_end, NULL) == 0);
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, feed, in);
  scio_tls_opts o = {.close_timeout = -1};
  int rc = scio_tls_wrap(server_end, server_ctx, &o, &tls);
  CHECK(rc == 0 || rc == SCIO_ETLS || rc == SCIO_EBROKEN);
  if (rc == 0) {
    char buf[1024];
    ssize_t r;
    while ((r = scio_receive(tls, buf, sizeof buf)) > 0)
      ;
    CHECK(r == SCIO_EOF || r == SCIO_EBROKEN || r == SCIO_ETLS);
    scio_close(tls);
  } else {
    scio_close(server_end); /* a failed wrap leaves it with us */
  }
  CHECK(ERR_peek_error() == 0);
  scio_nursery_close(&n);
  scio_close(in->client_end);
  return 0;
}

static void setup(void) {
  static test_pki pki;
  if (test_pki_make(&pki) < 0)
    abort();
  scio_tls_ctx_opts co = {.role = SCIO_TLS_SERVER,
                          .cert_pem = pki.server,
                          .key_pem = pki.server_key,
                          .alpn = "h2,http/1.1"};
  CHECK(scio_tls_ctx_open(&co, &server_ctx) == 0);
  test_pki_free(&pki);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!server_ctx)
    setup();
  if (size < 1)
    return 0;
  input in = {data + 1, size - 1, data[0], NULL};
  scio_run_opts o = {.clock = SCIO_CLOCK_AUTOJUMP};
  CHECK(scio_run(serve, &in, &o) == 0);
  return 0;
}
