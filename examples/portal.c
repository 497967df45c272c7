/* examples/portal.c -- a plain synchronous C program that uses scio through
 * a blocking portal: no scio_run in main, no callbacks.
 *
 * It starts a portal (a scio loop in a thread of its own) and calls into
 * it like into any library:
 *   1. a timed wait: a sleep cut short by a 0.05 s deadline (a cancel
 *      scope), which reports how long it took;
 *   2. a TCP echo server on 127.0.0.1 (an ephemeral port), started as a
 *      background task of the portal;
 *   3. a round trip through it: connect, send a line, read the echo back,
 *      each step one blocking scio_portal_call;
 *   4. a stop that cancels the server.
 * Exits 0 and prints "portal: ok" when everything worked. */
#include <scio.h>
#include <stdio.h>
#include <string.h>

/* ---- 1. a timed wait ---- */

typedef struct timed {
  double took;
  int caught;
} timed;

static int sleep_with_deadline(void *arg) {
  timed *t = arg;
  double t0 = scio_now();
  scio_scope cs;
  int rc = scio_move_on_after(&cs, 0.05);
  if (rc < 0)
    return rc;
  rc = scio_sleep(10.0); /* cancelled by the deadline */
  int crc = scio_scope_close(&cs);
  if (rc != SCIO_ECANCELED || crc < 0)
    return crc < 0 ? crc : scio_seterr(-EPROTO, "sleep returned %d", rc);
  t->caught = scio_scope_cancelled_caught(&cs);
  t->took = scio_now() - t0;
  return 0;
}

/* ---- 2. an echo server ---- */

typedef struct server {
  scio_listener *listener;
  int port;
} server;

static int echo(scio_stream *conn, void *arg) {
  (void)arg;
  char buf[4096];
  for (;;) {
    ssize_t n = scio_receive(conn, buf, sizeof buf);
    if (n == SCIO_EOF)
      return 0;
    if (n < 0)
      return (int)n;
    int rc = scio_send(conn, buf, (size_t)n);
    if (rc < 0)
      return rc;
  }
}

static int listen_here(void *arg) {
  server *s = arg;
  int rc = scio_tcp_listen("127.0.0.1", 0, NULL, &s->listener);
  if (rc < 0)
    return rc;
  s->port = scio_listener_port(s->listener);
  return s->port < 0 ? s->port : 0;
}

/* The background task: serve until the portal stops (cancelled). */
static int serve(void *arg) {
  server *s = arg;
  int rc = scio_listener_serve(s->listener, echo, NULL, NULL, NULL);
  scio_listener_close(s->listener);
  return rc;
}

/* ---- 3. a client, one call per step ---- */

typedef struct client {
  int port;
  scio_stream *conn;
  char line[64];
  ssize_t got;
} client;

static int client_connect(void *arg) {
  client *c = arg;
  return scio_connect_tcp("127.0.0.1", (uint16_t)c->port, NULL, &c->conn);
}

static int client_send(void *arg) {
  client *c = arg;
  return scio_send(c->conn, "hello, portal\n", 14);
}

static int client_receive(void *arg) {
  client *c = arg;
  scio_scope cs; /* a deadline, so that a broken server cannot hang us */
  int rc = scio_fail_after(&cs, 5.0);
  if (rc < 0)
    return rc;
  size_t have = 0;
  while (have < 14) {
    ssize_t n = scio_receive(c->conn, c->line + have, 14 - have);
    if (n < 0) {
      scio_scope_close(&cs);
      return (int)n;
    }
    have += (size_t)n;
  }
  c->got = (ssize_t)have;
  return scio_scope_close(&cs);
}

static int client_close(void *arg) {
  client *c = arg;
  return scio_close(c->conn);
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "portal: %s: %s (%s)\n", what, scio_strerror(rc),
          scio_errmsg());
  return 1;
}

int main(void) {
  scio_portal *p;
  int rc = scio_portal_start(&p, NULL);
  if (rc < 0)
    return fail("start", rc);

  timed t = {0, 0};
  if ((rc = scio_portal_call(p, sleep_with_deadline, &t)) < 0)
    return fail("timed wait", rc);
  printf("portal: a 10 s sleep moved on after %.3f s (caught: %d)\n", t.took,
         t.caught);
  if (!t.caught || t.took < 0.04 || t.took > 5.0)
    return fail("timed wait", -ERANGE);

  server s = {NULL, 0};
  if ((rc = scio_portal_call(p, listen_here, &s)) < 0)
    return fail("listen", rc);
  if ((rc = scio_portal_start_task_soon(p, serve, &s)) < 0)
    return fail("serve", rc);
  printf("portal: echo server on 127.0.0.1:%d\n", s.port);

  client c;
  memset(&c, 0, sizeof c);
  c.port = s.port;
  if ((rc = scio_portal_call(p, client_connect, &c)) < 0)
    return fail("connect", rc);
  if ((rc = scio_portal_call(p, client_send, &c)) < 0)
    return fail("send", rc);
  if ((rc = scio_portal_call(p, client_receive, &c)) < 0)
    return fail("receive", rc);
  if ((rc = scio_portal_call(p, client_close, &c)) < 0)
    return fail("close", rc);
  if (c.got != 14 || memcmp(c.line, "hello, portal\n", 14) != 0)
    return fail("echo", -EPROTO);
  printf("portal: echoed \"%.13s\"\n", c.line);

  if ((rc = scio_portal_stop(p, 1)) < 0) /* cancels the server */
    return fail("stop", rc);
  scio_portal_free(p);
  printf("portal: ok\n");
  return 0;
}
