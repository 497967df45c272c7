/* bench_dtls: DTLS over loopback, both ends scio, one process.
 *
 *   udp_pingpong    µs per round trip of a 100-byte datagram over plain
 *                   connected UDP datagram streams (the baseline)
 *   dtls_pingpong   the same over a DTLS channel (ECDHE-ECDSA, AES-GCM)
 *   dtls_pingpong_vs_udp   ratio of the two
 *   dtls_handshakes full DTLS 1.2 handshakes per second (cookie round
 *                   included), client and server in this process, with
 *                   the process's CPU µs per handshake
 *
 * Usage: bench_dtls [FIGURE...] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include "bench.h"
#include "support/pki.h"

#define ROUNDS 5000
#define HANDSHAKES 100

static test_pki pki;
static scio_tls_ctx *sctx, *cctx;

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static int echo_ostream(scio_ostream *s) {
  char buf[2048];
  for (;;) {
    scio_datagram d = {.data = buf, .cap = sizeof buf};
    int rc = scio_ostream_receive(s, &d);
    if (rc < 0)
      return rc == SCIO_EOF || rc == SCIO_ECLOSED ? 0 : rc;
    if ((rc = scio_ostream_send(s, &d)) < 0)
      return rc == SCIO_ECLOSED ? 0 : rc;
  }
}

static double pingpong(scio_ostream *c) {
  char msg[100], buf[2048];
  memset(msg, 'p', sizeof msg);
  double t0 = bench_wall();
  for (int i = 0; i < ROUNDS; i++) {
    scio_datagram d = {.data = msg, .len = sizeof msg};
    bench_check(scio_ostream_send(c, &d), "send");
    scio_datagram r = {.data = buf, .cap = sizeof buf};
    bench_check(scio_ostream_receive(c, &r), "receive");
  }
  return (bench_wall() - t0) / ROUNDS * 1e6;
}

/* ---- plain UDP ---- */

static int udp_echo_task(void *p) { return echo_ostream(p); }

static struct sockaddr_storage loopback(uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ss;
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static double udp_once(void *arg) {
  (void)arg;
  /* Two connected UDP sockets: bind both, then connect each to the other. */
  struct sockaddr_storage la = loopback(0), lb, ra, rb;
  scio_udp *probe;
  bench_check(scio_udp_open("127.0.0.1", 0, NULL, &probe), "udp");
  scio_udp_local_addr(probe, &lb);
  scio_udp_close(probe);
  bench_check(scio_udp_open("127.0.0.1", 0, NULL, &probe), "udp");
  scio_udp_local_addr(probe, &la);
  scio_udp_close(probe);
  ra = loopback(port_of(&lb));
  rb = loopback(port_of(&la));
  scio_ostream *a, *b;
  bench_check(scio_datagram_connect(&ra, &la, &a), "connect a");
  bench_check(scio_datagram_connect(&rb, &lb, &b), "connect b");
  scio_nursery n;
  bench_check(scio_nursery_open(&n), "nursery");
  bench_check(scio_start_soon(&n, udp_echo_task, b), "spawn");
  double us = pingpong(a);
  scio_ostream_close(b);
  scio_ostream_close(a);
  bench_check(scio_nursery_close(&n), "nursery close");
  return us;
}

/* ---- DTLS ---- */

typedef struct dtls_world {
  scio_dtls_endpoint *sep, *cep;
  struct sockaddr_storage sa;
  scio_nursery n;
} dtls_world;

static int dtls_echo(scio_ostream *ch, void *arg) {
  (void)arg;
  return echo_ostream(ch);
}

static int serve_task(void *p) {
  dtls_world *w = p;
  return scio_dtls_serve(w->sep, sctx, dtls_echo, NULL, NULL, NULL);
}

static void world_open(dtls_world *w) {
  bench_check(scio_dtls_endpoint_open("127.0.0.1", 0, NULL, &w->sep), "ep");
  bench_check(scio_dtls_endpoint_open("127.0.0.1", 0, NULL, &w->cep), "ep");
  bench_check(scio_dtls_endpoint_local_addr(w->sep, &w->sa), "addr");
  bench_check(scio_nursery_open(&w->n), "nursery");
  bench_check(scio_start_soon(&w->n, serve_task, w), "spawn");
}

static void world_close(dtls_world *w) {
  scio_dtls_endpoint_close(w->cep);
  scio_dtls_endpoint_close(w->sep);
  bench_check(scio_nursery_close(&w->n), "nursery close");
}

static double dtls_once(void *arg) {
  (void)arg;
  dtls_world w;
  world_open(&w);
  scio_dtls_opts o = {.server_hostname = "localhost"};
  scio_ostream *ch;
  bench_check(scio_dtls_connect(w.cep, &w.sa, cctx, &o, &ch), "connect");
  double us = pingpong(ch);
  scio_ostream_close(ch);
  world_close(&w);
  return us;
}

static double cpu_per_handshake;

static double handshakes_once(void *arg) {
  (void)arg;
  dtls_world w;
  world_open(&w);
  scio_dtls_opts o = {.server_hostname = "localhost"};
  double t0 = bench_wall(), c0 = cpu_seconds();
  for (int i = 0; i < HANDSHAKES; i++) {
    scio_ostream *ch;
    bench_check(scio_dtls_connect(w.cep, &w.sa, cctx, &o, &ch), "connect");
    scio_ostream_close(ch);
  }
  double secs = bench_wall() - t0;
  double cpu = (cpu_seconds() - c0) / HANDSHAKES * 1e6;
  if (cpu_per_handshake == 0 || cpu < cpu_per_handshake)
    cpu_per_handshake = cpu;
  world_close(&w);
  return HANDSHAKES / secs;
}

int main(int argc, char **argv) {
  if (test_pki_make(&pki) < 0)
    return 1;
  scio_tls_ctx_opts so = {.role = SCIO_TLS_SERVER,
                          .cert_pem = pki.server,
                          .key_pem = pki.server_key};
  scio_tls_ctx_opts co = {.ca_pem = pki.ca};
  bench_check(scio_dtls_ctx_open(&so, &sctx), "server context");
  bench_check(scio_dtls_ctx_open(&co, &cctx), "client context");
  double udp = 0, dtls = 0;
  if (bench_wanted(argc, argv, "udp_pingpong") ||
      bench_wanted(argc, argv, "dtls_pingpong_vs_udp")) {
    udp = bench_run_best(udp_once, NULL, BENCH_LOWEST);
    bench_report("udp_pingpong", udp, "us");
  }
  if (bench_wanted(argc, argv, "dtls_pingpong") ||
      bench_wanted(argc, argv, "dtls_pingpong_vs_udp")) {
    dtls = bench_run_best(dtls_once, NULL, BENCH_LOWEST);
    bench_report("dtls_pingpong", dtls, "us");
  }
  if (udp > 0 && dtls > 0)
    bench_report("dtls_pingpong_vs_udp", dtls / udp, "ratio");
  if (bench_wanted(argc, argv, "dtls_handshakes")) {
    double hs = bench_run_best(handshakes_once, NULL, BENCH_HIGHEST);
    bench_report("dtls_handshakes", hs, "handshakes/s");
    bench_report("dtls_handshake_cpu", cpu_per_handshake, "us");
  }
  scio_tls_ctx_close(sctx);
  scio_tls_ctx_close(cctx);
  test_pki_free(&pki);
  return 0;
}
