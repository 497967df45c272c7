/* Cookbook: wait until a server is ready (scio_start).
 *
 * scio_start runs a child until it calls scio_started(value), then returns
 * that value to the caller, while the child goes on running in the target
 * nursery.  It is how a server says "I am listening, here is my address"
 * before anyone connects; an error before scio_started comes back from
 * scio_start itself, so "could not start" needs no extra signalling.
 */
#include <scio.h>
#include <stdio.h>

typedef struct server {
  scio_tx *requests;  /* clients send here */
  scio_rx *inbox;     /* the server reads here */
  int handled;
} server;

static int run_server(void *arg) {
  server *s = arg;
  int rc = scio_sleep(0.5);          /* stands for slow start-up work */
  if (rc < 0)
    return rc;
  rc = scio_channel_open(sizeof(int), 0, &s->requests, &s->inbox);
  if (rc < 0)
    return rc;                       /* scio_start returns this error */
  scio_started(s);                   /* ready: hand the caller our handle */
  int req;
  while ((rc = scio_rx_receive(s->inbox, &req)) == 0)
    s->handled++;
  scio_rx_close(s->inbox);
  return rc == SCIO_EOF ? 0 : rc;
}

static int app(void *arg) {
  (void)arg;
  server srv = {0};
  scio_nursery n;
  scio_nursery_open(&n);
  void *value = NULL;
  int rc = scio_start(&n, run_server, &srv, &value);
  if (rc == 0) {
    server *ready = value;
    printf("readiness: server ready after %.1f s\n", scio_now());
    for (int i = 0; i < 3 && rc == 0; i++)
      rc = scio_tx_send(ready->requests, &i);
    scio_tx_close(ready->requests);  /* the server sees SCIO_EOF and ends */
  }
  int crc = scio_nursery_close(&n);
  printf("readiness: server handled %d requests\n", srv.handled);
  return rc < 0 ? rc : crc < 0 ? crc : srv.handled == 3 ? 0 : -1;
}

int main(void) {
  scio_run_opts o = {.clock = SCIO_CLOCK_AUTOJUMP};
  return scio_run(app, NULL, &o) == 0 ? 0 : 1;
}
