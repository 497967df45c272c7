/* Cookbook: a line protocol.
 *
 * A tiny request/response protocol over any byte stream: the client sends
 * lines, the server answers each with its length, and "quit" ends the
 * session.  The server reads with a buffered stream's receive_until, so
 * lines may arrive in any chunks; a clean end of stream between lines is
 * SCIO_EOF ("no more lines"), while bytes then EOF (a truncated last line)
 * is SCIO_EINCOMPLETE.  Here the two ends are a memory pipe; over TCP only
 * the line that opens the stream changes.
 */
#include <scio.h>
#include <stdio.h>
#include <string.h>

static int serve_lines(void *arg) {
  scio_stream *b = NULL;
  int rc = scio_buffered_open(arg, NULL, &b);  /* b owns the pipe end */
  if (rc < 0)
    return rc;
  char line[256], reply[64];
  size_t n;
  while ((rc = scio_receive_until(b, "\n", 1, line, sizeof line, &n)) == 0) {
    line[n] = '\0';
    if (strcmp(line, "quit") == 0)
      break;
    int len = snprintf(reply, sizeof reply, "%zu\n", n);
    if ((rc = scio_send(b, reply, (size_t)len)) < 0)
      break;
  }
  scio_close(b);
  return rc == SCIO_EOF ? 0 : rc;
}

static int client(void *arg) {
  scio_stream *b = NULL;
  int rc = scio_buffered_open(arg, NULL, &b);
  if (rc < 0)
    return rc;
  const char *words[] = {"hello", "structured", "concurrency"};
  char reply[64];
  size_t n;
  for (size_t i = 0; i < 3 && rc == 0; i++) {
    char req[64];
    int len = snprintf(req, sizeof req, "%s\n", words[i]);
    if ((rc = scio_send(b, req, (size_t)len)) < 0 ||
        (rc = scio_receive_until(b, "\n", 1, reply, sizeof reply - 1, &n)) < 0)
      break;
    reply[n] = '\0';
    printf("line protocol: %-12s -> %s\n", words[i], reply);
  }
  if (rc == 0)
    rc = scio_send(b, "quit\n", 5);
  scio_close(b);
  return rc;
}

static int app(void *arg) {
  (void)arg;
  scio_stream *a, *b;
  int rc = scio_memory_pipe_open(&a, &b, NULL);
  if (rc < 0)
    return rc;
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, serve_lines, a);
  scio_start_soon(&n, client, b);
  return scio_nursery_close(&n);
}

int main(void) { return scio_run(app, NULL, NULL) == 0 ? 0 : 1; }
