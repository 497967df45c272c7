/* scio_run_process: a child run to completion with its output captured.
 *
 * Three pumps run at once in a nursery (feed stdin, drain stdout, drain
 * stderr) while the body waits for the exit: a child that fills one pipe
 * while we would be reading the other (or writing its stdin) never stalls.
 * Any failure of a pump cancels the nursery, so the body's wait is
 * cancelled and kills the child; a cancellation from outside does the
 * same.  The pumps end at EOF, which a dead child's pipes reach unless a
 * grandchild still holds them open (as in Trio). */
#include <stdio.h>
#include <string.h>

#include "process_internal.h"

typedef struct pump {
  scio_stream *s;
  char *buf;
  size_t len, cap;
} pump;

/* Room for at least 64 KiB more (and the final NUL), doubling. */
static int grow(pump *pm) {
  size_t want = pm->len + 65536 + 1;
  if (want <= pm->cap)
    return 0;
  size_t cap = pm->cap ? pm->cap : 65536;
  while (cap < want)
    cap *= 2;
  char *b = scio__realloc(pm->buf, cap);
  if (!b)
    return scio__seterr(SCIO_ENOMEM, "run_process: out of memory for %zu "
                                     "bytes of output", cap);
  pm->buf = b;
  pm->cap = cap;
  return 0;
}

static int drain(void *arg) {
  pump *pm = arg;
  for (;;) {
    int rc = grow(pm);
    if (rc < 0)
      return rc;
    ssize_t n = scio_receive(pm->s, pm->buf + pm->len, pm->cap - pm->len - 1);
    if (n == SCIO_EOF)
      break;
    if (n < 0)
      return (int)n;
    pm->len += (size_t)n;
  }
  pm->buf[pm->len] = '\0';
  return 0;
}

typedef struct feeder {
  scio_stream *s;
  const void *data;
  size_t len;
} feeder;

/* A child that exits without reading all its input breaks the pipe: not an
 * error of ours (Trio ignores it too). */
static int feed(void *arg) {
  feeder *f = arg;
  int rc = scio_send(f->s, f->data, f->len);
  if (rc == 0 || rc == SCIO_EBROKEN)
    rc = scio_send_eof(f->s);
  return rc == SCIO_EBROKEN ? 0 : rc;
}

static int status_error(const char *prog, int code) {
  if (code >= 0)
    return scio__seterr(SCIO_EPROCESS, "process %s: exit status %d", prog,
                        code);
  return scio__seterr(SCIO_EPROCESS, "process %s: killed by signal %d (%s)",
                      prog, -code, strsignal(-code));
}

/* Run the pumps and the wait; 0 or the first error. */
static int pump_all(scio_process *p, const scio_process_opts *o,
                    pump out[2], int *code) {
  feeder f = {scio_process_stdin(p), o->input, o->input_len};
  scio_nursery n;
  int rc = scio_nursery_open(&n);
  if (rc < 0)
    return rc;
  if (f.s)
    rc = scio_start_soon(&n, feed, &f);
  for (int i = 0; i < 2 && rc == 0; i++)
    if (out[i].s)
      rc = scio_start_soon(&n, drain, &out[i]);
  if (rc == 0)
    rc = scio_process_wait(p, code);
  else
    scio_nursery_cancel(&n);
  return scio_nursery_close_with(&n, rc);
}

static void free_pumps(pump out[2]) {
  for (int i = 0; i < 2; i++) {
    scio__free(out[i].buf);
    out[i].buf = NULL;
  }
}

SCIO_API int scio_run_process(const char *const *argv,
                              const scio_process_opts *opts,
                              scio_process_result *result) {
  if (result)
    memset(result, 0, sizeof *result);
  if (!argv || !argv[0] || !result)
    return scio__seterr(SCIO_EINVAL, "run_process: %s is NULL",
                        !result ? "result" : "argv");
  static const scio_process_opts none;
  const scio_process_opts *o = opts ? opts : &none;
  if (!o->input && o->input_len)
    return scio__seterr(SCIO_EINVAL, "run_process: input is NULL");
  const int defaults[3] = {
      o->input ? SCIO_PROCESS_PIPE : SCIO_PROCESS_DEVNULL, SCIO_PROCESS_PIPE,
      SCIO_PROCESS_PIPE};
  scio_process *p = NULL; /* set by open on success; LTO cannot see it */
  int rc = scio__process_open(argv, o, defaults, &p);
  if (rc < 0)
    return rc;
  pump out[2] = {{.s = scio_process_stdout(p)}, {.s = scio_process_stderr(p)}};
  int code = 0;
  rc = pump_all(p, o, out, &code);
  /* The child is reaped now (the wait killed it if anything failed), and
   * every pump has ended: this close does not wait. */
  scio_process_close_nowait(p);
  if (rc < 0) {
    free_pumps(out);
    return rc;
  }
  result->returncode = code;
  result->out = out[0].buf;
  result->out_len = out[0].len;
  result->err = out[1].buf;
  result->err_len = out[1].len;
  if (o->check && code != 0)
    return status_error(argv[0], code);
  return 0;
}

SCIO_API void scio_process_result_free(scio_process_result *r) {
  if (!r)
    return;
  scio__free(r->out);
  scio__free(r->err);
  memset(r, 0, sizeof *r);
}
