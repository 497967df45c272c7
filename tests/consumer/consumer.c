/* A program built by `make installcheck' against the installed scio only,
 * with the flags of `pkg-config --cflags --libs scio' (and once more with
 * `--static', linked with libscio.a), to prove that the installed headers,
 * libraries and scio.pc work together.  Besides the version it runs a
 * small scio program (a task that echoes through a memory pipe and a
 * channel under a deadline), so a static link needs everything scio.pc's
 * private fields list: libevent, c-ares, OpenSSL, pthreads. */
#include <scio.h>

#include <stdio.h>
#include <string.h>

static int echo_task(void *arg) {
  scio_stream *b = arg;
  char buf[16];
  ssize_t n = scio_receive(b, buf, sizeof buf);
  if (n < 0)
    return (int)n;
  return scio_send(b, buf, (size_t)n);
}

static int root(void *arg) {
  (void)arg;
  scio_stream *a, *b;
  int rc = scio_memory_pipe_open(&a, &b, NULL);
  if (rc < 0)
    return rc;
  scio_scope cs;
  scio_fail_after(&cs, 10.0);
  scio_nursery n;
  scio_nursery_open(&n);
  rc = scio_start_soon(&n, echo_task, b);
  char buf[16] = {0};
  if (rc == 0)
    rc = scio_send(a, "hello", 5);
  ssize_t got = rc == 0 ? scio_receive(a, buf, sizeof buf - 1) : rc;
  rc = scio_nursery_close_with(&n, got < 0 ? (int)got : 0);
  rc = scio_scope_close_with(&cs, rc);
  scio_close(a);
  scio_close(b);
  if (rc == 0 && (got != 5 || memcmp(buf, "hello", 5) != 0))
    rc = scio_seterr(SCIO_EPROTO, "echo gave %zd bytes: '%s'", got, buf);
  if (rc == 0)
    printf("echo through a memory pipe: %s\n", buf);
  return rc;
}

int main(void)
{
  const char *msg = scio_strerror(SCIO_ECANCELED);

  printf("scio %s (headers %s)\n", scio_version_string(), SCIO_VERSION_STRING);
  printf("SCIO_ECANCELED: %s\n", msg);
  if (strcmp(scio_version_string(), SCIO_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: library and headers disagree on the version\n");
    return 1;
  }
  if (msg == NULL || msg[0] == '\0') {
    fprintf(stderr, "consumer: scio_strerror gave no text\n");
    return 1;
  }
  int rc = scio_run(root, NULL, NULL);
  if (rc < 0) {
    fprintf(stderr, "consumer: scio_run: %s: %s\n", scio_err_name(rc), scio_errmsg());
    return 1;
  }
  return 0;
}
