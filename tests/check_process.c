/* Tests of include/scio/process.h: pipe streams, processes, signals.
 * Every async test runs once per backend (epoll, poll, select). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "scio/process.h"
#include "scio/testing.h"
#include "support/oom.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define CK_OK(expr) ck_assert_int_eq((expr), 0)
#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Open fds of the process, from /proc/self/fd (the directory's own fd not
 * counted). */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.')
      n++;
  if (d)
    closedir(d);
  return n - 1;
}

/* No child of ours is left, running or zombie. */
static void assert_no_children(void) {
  int st;
  pid_t p = waitpid(-1, &st, WNOHANG);
  ck_assert_msg(p < 0 && errno == ECHILD, "a child is left: waitpid %d",
                (int)p);
}

/* ---- pipe streams: the conformance kit ---- */

static int kit_pipe(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  return scio_pipe_stream_open(b, a);
}

/* A pipe whose buffer is full: a send on *a blocks until *b receives. */
static int kit_pipe_clogged(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  int fds[2];
  *a = *b = NULL;
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
    return -errno;
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
  static const char junk[4096];
  while (write(fds[1], junk, sizeof junk) > 0)
    ;
  while (write(fds[1], junk, 1) > 0)
    ;
  int rc = scio_pipe_stream_from_fd(fds[1], 0, a);
  if (rc < 0) {
    close(fds[0]);
    close(fds[1]);
    return rc;
  }
  if ((rc = scio_pipe_stream_from_fd(fds[0], 0, b)) < 0)
    close(fds[0]);
  return rc;
}

SCIO_TEST_AUTOJUMP(pipe_kit) {
  int before = count_fds();
  scio_stream_kit kit = {.make = kit_pipe, .make_clogged = kit_pipe_clogged};
  scio_check_one_way_stream(&kit);
  ck_assert_int_eq(count_fds(), before);
  return 0;
}

/* The one-way kit through a child: a pipe into `cat`, a pipe out of it.
 * The streams are ours (the child got the other ends through
 * SCIO_PROCESS_FD); the children are kept to be reaped after the kit. */
typedef struct cats {
  scio_process *p[64];
  int n;
} cats;

static int kit_cat(scio_stream **a, scio_stream **b, void *arg) {
  cats *c = arg;
  int in[2], out[2];
  *a = *b = NULL;
  if (c->n == 64 || pipe2(in, O_CLOEXEC) < 0)
    return -EMFILE;
  if (pipe2(out, O_CLOEXEC) < 0) {
    close(in[0]);
    close(in[1]);
    return -EMFILE;
  }
  scio_process_opts o = {.stdin_mode = SCIO_PROCESS_FD, .stdin_fd = in[0],
                         .stdout_mode = SCIO_PROCESS_FD, .stdout_fd = out[1],
                         .stderr_mode = SCIO_PROCESS_DEVNULL};
  int rc = scio_open_process(ARGV("cat"), &o, &c->p[c->n]);
  close(in[0]);
  close(out[1]);
  if (rc == 0) {
    c->n++;
    rc = scio_pipe_stream_from_fd(in[1], 0, a);
  }
  if (rc == 0 && (rc = scio_pipe_stream_from_fd(out[0], 0, b)) < 0)
    close(out[0]);
  if (rc < 0 && !*a)
    close(in[1]);
  return rc;
}

SCIO_TEST(pipe_kit_through_cat) {
  int before = count_fds();
  cats c = {.n = 0};
  scio_stream_kit kit = {.make = kit_cat, .arg = &c, .large = 1 << 20,
                         .timeout = 20};
  scio_check_one_way_stream(&kit);
  /* Every pair was closed: each cat saw EOF (or a broken pipe). */
  for (int i = 0; i < c.n; i++)
    CK_OK(scio_process_close(c.p[i]));
  ck_assert_int_eq(count_fds(), before);
  assert_no_children();
  return 0;
}

/* ---- pipe streams: construction ---- */

SCIO_TEST(pipe_from_fd_bad) {
  scio_stream *s = (scio_stream *)1;
  ck_assert_int_eq(scio_pipe_stream_from_fd(-1, 0, &s), SCIO_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(scio_pipe_stream_from_fd(0, 0, NULL), SCIO_EINVAL);
  int fds[2];
  CK_OK(pipe(fds));
  ck_assert_int_eq(scio_pipe_stream_from_fd(fds[0], 1, &s), SCIO_EINVAL);
  close(fds[0]);
  close(fds[1]);
  ck_assert_int_eq(scio_pipe_stream_from_fd(fds[0], 0, &s), SCIO_EBADF);
  /* A socket, a regular file, a directory. */
  CK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
  ck_assert_int_eq(scio_pipe_stream_from_fd(fds[0], 0, &s), SCIO_EINVAL);
  ck_assert_ptr_null(s);
  close(fds[0]);
  close(fds[1]);
  int f = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(f, 0);
  ck_assert_int_eq(scio_pipe_stream_from_fd(f, 0, &s), SCIO_EINVAL);
  close(f);
  f = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_eq(scio_pipe_stream_from_fd(f, 0, &s), SCIO_EINVAL);
  close(f);
  ck_assert_int_eq(scio_pipe_stream_open(NULL, &s), SCIO_EINVAL);
  ck_assert_ptr_null(s);
  return 0;
}

/* The direction comes from the access mode; fds become non-blocking and
 * close-on-exec; the other direction is SCIO_ENOSYS. */
SCIO_TEST(pipe_from_fd_directions) {
  int fds[2];
  CK_OK(pipe(fds));
  scio_stream *r, *w;
  CK_OK(scio_pipe_stream_from_fd(fds[0], 0, &r));
  CK_OK(scio_pipe_stream_from_fd(fds[1], 0, &w));
  for (int i = 0; i < 2; i++) {
    ck_assert(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
  }
  char name[32], c;
  CK_OK(scio_stream_layer(r, name, sizeof name));
  ck_assert_str_eq(name, "pipe-read");
  CK_OK(scio_stream_layer(w, name, sizeof name));
  ck_assert_str_eq(name, "pipe-write");
  int fd;
  CK_OK(scio_stream_fd(r, &fd));
  ck_assert_int_eq(fd, fds[0]);
  ck_assert_int_eq(scio_send(r, "x", 1), SCIO_ENOSYS);
  ck_assert_int_eq(scio_receive(w, &c, 1), SCIO_ENOSYS);
  CK_OK(scio_send(w, "hi", 2));
  /* send_eof closes the write end: the reader gets the data, then EOF. */
  CK_OK(scio_send_eof(w));
  ck_assert_int_eq(scio_send(w, "x", 1), SCIO_ECLOSED);
  char buf[8];
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), 2);
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_close(w));
  CK_OK(scio_close(r));
  /* A FIFO opened read-write is both ways. */
  char path[64];
  snprintf(path, sizeof path, "/tmp/scio-proc-%d.fifo", (int)getpid());
  unlink(path);
  CK_OK(mkfifo(path, 0600));
  int f = open(path, O_RDWR | O_CLOEXEC);
  unlink(path);
  scio_stream *both;
  CK_OK(scio_pipe_stream_from_fd(f, 0, &both));
  CK_OK(scio_stream_layer(both, name, sizeof name));
  ck_assert_str_eq(name, "pipe");
  CK_OK(scio_send(both, "ab", 2));
  ck_assert_int_eq(scio_receive(both, buf, sizeof buf), 2);
  ck_assert_int_eq(scio_send_eof(both), SCIO_ENOSYS);
  CK_OK(scio_close(both));
  return 0;
}

/* A send to a pipe whose reader is gone fails with SCIO_EBROKEN and the
 * process is not killed by SIGPIPE (its default disposition). */
SCIO_TEST(pipe_broken_no_sigpipe) {
  struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
  sigaction(SIGPIPE, &dfl, &old);
  scio_stream *r, *w;
  CK_OK(scio_pipe_stream_open(&r, &w));
  CK_OK(scio_close(r));
  ck_assert_int_eq(scio_send(w, "x", 1), SCIO_EBROKEN);
  ck_assert_int_eq(scio_send(w, "x", 1), SCIO_EBROKEN);
  /* wait_send_ready returns: a send would fail at once. */
  CK_OK(scio_wait_send_ready(w));
  sigset_t pending;
  sigpending(&pending);
  ck_assert(!sigismember(&pending, SIGPIPE));
  CK_OK(scio_close(w));
  sigaction(SIGPIPE, &old, NULL);
  return 0;
}

/* A terminal (a pty's master, opened read-write) is a two-way "pipe". */
SCIO_TEST(pipe_terminal) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ck_assert_int_ge(m, 0);
  CK_OK(grantpt(m));
  CK_OK(unlockpt(m));
  int sl = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ck_assert_int_ge(sl, 0);
  struct termios t;
  CK_OK(tcgetattr(sl, &t));
  cfmakeraw(&t);
  CK_OK(tcsetattr(sl, TCSANOW, &t));
  scio_stream *s;
  CK_OK(scio_pipe_stream_from_fd(m, 0, &s));
  char name[16], buf[8];
  CK_OK(scio_stream_layer(s, name, sizeof name));
  ck_assert_str_eq(name, "pipe");
  ck_assert_int_eq(write(sl, "tty", 3), 3);
  ck_assert_int_eq(scio_receive(s, buf, sizeof buf), 3);
  ck_assert(memcmp(buf, "tty", 3) == 0);
  CK_OK(scio_send(s, "back", 4));
  ck_assert_int_eq(read(sl, buf, sizeof buf), 4);
  /* The other end closed: a terminal reads EIO, which is its EOF. */
  close(sl);
  ck_assert_int_eq(scio_receive(s, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_close(s));
  return 0;
}

static void pipe_tests(Suite *s) {
  TCase *tc = scio_tcase_new("pipe", 60);
  scio_tcase_add(tc, pipe_kit);
  scio_tcase_add(tc, pipe_kit_through_cat);
  scio_tcase_add(tc, pipe_from_fd_bad);
  scio_tcase_add(tc, pipe_from_fd_directions);
  scio_tcase_add(tc, pipe_broken_no_sigpipe);
  scio_tcase_add(tc, pipe_terminal);
  suite_add_tcase(s, tc);
}


/* ---- processes ---- */

extern int scio__process_no_pidfd;

static scio_process *open_ready(const char *script, double grace);

/* Run argv with opts; the result and the return code. */
static int run(const char *const *argv, const scio_process_opts *o,
               scio_process_result *r) {
  return scio_run_process(argv, o, r);
}


static void check_exit_codes(void) {
  scio_process_result r;
  CK_OK(run(ARGV("true"), NULL, &r));
  ck_assert_int_eq(r.returncode, 0);
  ck_assert_uint_eq(r.out_len, 0);
  ck_assert_ptr_nonnull(r.out);
  ck_assert_str_eq(r.out, "");
  scio_process_result_free(&r);
  CK_OK(run(ARGV("false"), NULL, &r));
  ck_assert_int_eq(r.returncode, 1);
  scio_process_result_free(&r);
  CK_OK(run(ARGV("/bin/sh", "-c", "echo out; echo err >&2; exit 3"), NULL,
            &r));
  ck_assert_int_eq(r.returncode, 3);
  ck_assert_str_eq(r.out, "out\n");
  ck_assert_uint_eq(r.out_len, 4);
  ck_assert_str_eq(r.err, "err\n");
  scio_process_result_free(&r);
  CK_OK(run(ARGV("/bin/sh", "-c", "kill -9 $$"), NULL, &r));
  ck_assert_int_eq(r.returncode, -SIGKILL);
  scio_process_result_free(&r);
}

SCIO_TEST(process_exit_codes) {
  int before = count_fds();
  check_exit_codes();
  ck_assert_int_eq(count_fds(), before);
  assert_no_children();
  return 0;
}

/* The same through the SIGCHLD path (no pidfd). */
SCIO_TEST(process_exit_codes_sigchld) {
  int before = count_fds();
  scio__process_no_pidfd = 1;
  check_exit_codes();
  scio__process_no_pidfd = 0;
  ck_assert_int_eq(count_fds(), before);
  assert_no_children();
  return 0;
}

SCIO_TEST(process_check) {
  scio_process_result r;
  scio_process_opts o = {.check = 1};
  ck_assert_int_eq(run(ARGV("false"), &o, &r), SCIO_EPROCESS);
  ck_assert_str_eq(scio_errmsg(), "process false: exit status 1");
  ck_assert_int_eq(r.returncode, 1);
  scio_process_result_free(&r);
  ck_assert_int_eq(run(ARGV("/bin/sh", "-c", "kill -TERM $$"), &o, &r),
                   SCIO_EPROCESS);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "killed by signal 15"));
  scio_process_result_free(&r);
  CK_OK(run(ARGV("true"), &o, &r));
  scio_process_result_free(&r);
  assert_no_children();
  return 0;
}

/* Valgrind runs glibc's posix_spawn child (clone with CLONE_VM and
 * CLONE_VFORK) as a forked process, so the exec error that the child
 * writes into the parent's memory never arrives: there the failure looks
 * like a child that exited 127, and this test only checks for leaks. */
SCIO_TEST(process_exec_failure) {
  if (RUNNING_ON_VALGRIND) {
    scio_process_result r;
    CK_OK(run(ARGV("nosuch"), NULL, &r));
    ck_assert_int_eq(r.returncode, 127);
    scio_process_result_free(&r);
    assert_no_children();
    return 0;
  }
  int before = count_fds();
  scio_process_result r;
  scio_process *p = (scio_process *)1;
  ck_assert_int_eq(scio_open_process(ARGV("nosuch"), NULL, &p), SCIO_ENOENT);
  ck_assert_str_eq(scio_errmsg(), "spawn nosuch: no such file");
  ck_assert_ptr_null(p);
  ck_assert_int_eq(run(ARGV("/nonexistent/prog"), NULL, &r), SCIO_ENOENT);
  ck_assert_ptr_null(r.out);
  ck_assert_int_eq(run(ARGV("/etc/passwd"), NULL, &r), SCIO_EACCES);
  scio_process_opts o = {.cwd = "/nonexistent-dir"};
  ck_assert_int_eq(run(ARGV("true"), &o, &r), SCIO_ENOENT);
  ck_assert_int_eq(count_fds(), before);
  assert_no_children();
  return 0;
}

SCIO_TEST(process_bad_args) {
  scio_process *p = (scio_process *)1;
  scio_process_result r;
  ck_assert_int_eq(scio_open_process(NULL, NULL, &p), SCIO_EINVAL);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(scio_open_process(ARGV("true"), NULL, NULL), SCIO_EINVAL);
  const char *empty[] = {NULL};
  ck_assert_int_eq(scio_open_process(empty, NULL, &p), SCIO_EINVAL);
  scio_process_opts o = {.stdin_mode = SCIO_PROCESS_STDOUT};
  ck_assert_int_eq(scio_open_process(ARGV("true"), &o, &p), SCIO_EINVAL);
  o = (scio_process_opts){.stdout_mode = 99};
  ck_assert_int_eq(scio_open_process(ARGV("true"), &o, &p), SCIO_EINVAL);
  o = (scio_process_opts){.stdout_mode = SCIO_PROCESS_FD, .stdout_fd = -1};
  ck_assert_int_eq(scio_open_process(ARGV("true"), &o, &p), SCIO_EINVAL);
  ck_assert_int_eq(run(ARGV("true"), NULL, NULL), SCIO_EINVAL);
  o = (scio_process_opts){.input_len = 3};
  ck_assert_int_eq(run(ARGV("true"), &o, &r), SCIO_EINVAL);
  ck_assert_int_eq(scio_process_wait(NULL, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_process_poll(NULL, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_process_kill(NULL), SCIO_EINVAL);
  CK_OK(scio_process_close(NULL));
  CK_OK(scio_process_close_nowait(NULL));
  scio_process_result_free(NULL);
  assert_no_children();
  return 0;
}

SCIO_TEST(process_cwd_env_stdio) {
  scio_process_result r;
  scio_process_opts o = {.cwd = "/tmp"};
  CK_OK(run(ARGV("/bin/sh", "-c", "pwd"), &o, &r));
  ck_assert_str_eq(r.out, "/tmp\n");
  scio_process_result_free(&r);
  char *env[] = {"FOO=bar", NULL};
  o = (scio_process_opts){.env = env};
  CK_OK(run(ARGV("/bin/sh", "-c", "echo $FOO"), &o, &r));
  ck_assert_str_eq(r.out, "bar\n");
  scio_process_result_free(&r);
  /* stderr into stdout; stdout not captured means NULL. */
  o = (scio_process_opts){.stderr_mode = SCIO_PROCESS_STDOUT};
  CK_OK(run(ARGV("/bin/sh", "-c", "echo a; echo b >&2"), &o, &r));
  ck_assert_str_eq(r.out, "a\nb\n");
  ck_assert_ptr_null(r.err);
  scio_process_result_free(&r);
  o = (scio_process_opts){.stdout_mode = SCIO_PROCESS_DEVNULL};
  CK_OK(run(ARGV("/bin/sh", "-c", "echo a"), &o, &r));
  ck_assert_ptr_null(r.out);
  scio_process_result_free(&r);
  /* A new session: the child is its session's leader (field 6 of its
   * /proc stat is the session id), and without the option it is not. */
  const char *const *leader = ARGV(
      "/bin/sh", "-c", "test \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$");
  o = (scio_process_opts){.new_session = 1};
  CK_OK(run(leader, &o, &r));
  ck_assert_int_eq(r.returncode, 0);
  scio_process_result_free(&r);
  CK_OK(run(leader, NULL, &r));
  ck_assert_int_eq(r.returncode, 1);
  scio_process_result_free(&r);
  /* Without input, stdin is /dev/null: cat ends at once. */
  CK_OK(run(ARGV("cat"), NULL, &r));
  ck_assert_uint_eq(r.out_len, 0);
  scio_process_result_free(&r);
  /* A given fd: the caller keeps it. */
  int fds[2];
  CK_OK(pipe2(fds, O_CLOEXEC));
  o = (scio_process_opts){.stdout_mode = SCIO_PROCESS_FD, .stdout_fd = fds[1]};
  CK_OK(run(ARGV("/bin/sh", "-c", "echo via-fd"), &o, &r));
  scio_process_result_free(&r);
  close(fds[1]);
  char buf[32];
  ck_assert_int_eq(read(fds[0], buf, sizeof buf), 7);
  ck_assert(memcmp(buf, "via-fd\n", 7) == 0);
  close(fds[0]);
  /* Everything of ours is close-on-exec: a child sees as many fds while
   * we hold pipes and another child (its pipes and pidfd) as without. */
  const char *const *count = ARGV("ls", "/proc/self/fd");
  CK_OK(run(count, NULL, &r));
  char baseline[256];
  snprintf(baseline, sizeof baseline, "%s", r.out);
  scio_process_result_free(&r);
  scio_stream *pr, *pw;
  CK_OK(scio_pipe_stream_open(&pr, &pw));
  scio_process *other = open_ready("echo ready; exec sleep 100", -1);
  CK_OK(run(count, NULL, &r));
  ck_assert_str_eq(r.out, baseline);
  scio_process_result_free(&r);
  CK_OK(scio_process_close_nowait(other));
  CK_OK(scio_close(pr));
  CK_OK(scio_close(pw));
  assert_no_children();
  return 0;
}

/* MBs on stdout and stderr at once, and MBs of input: nothing stalls. */
SCIO_TEST(process_write_a_lot) {
  scio_process_result r;
  CK_OK(run(ARGV("/bin/sh", "-c",
                 "head -c 3000000 /dev/zero >&2 & "
                 "head -c 4000000 /dev/zero; wait"),
            NULL, &r));
  ck_assert_int_eq(r.returncode, 0);
  ck_assert_uint_eq(r.out_len, 4000000);
  ck_assert_uint_eq(r.err_len, 3000000);
  scio_process_result_free(&r);
  size_t n = 3u << 20;
  char *in = malloc(n);
  for (size_t i = 0; i < n; i++)
    in[i] = (char)(i * 7 + (i >> 13));
  scio_process_opts o = {.input = in, .input_len = n};
  CK_OK(run(ARGV("cat"), &o, &r));
  ck_assert_uint_eq(r.out_len, n);
  ck_assert(memcmp(r.out, in, n) == 0);
  scio_process_result_free(&r);
  /* A child that reads none of its input: not an error. */
  CK_OK(run(ARGV("true"), &o, &r));
  scio_process_result_free(&r);
  free(in);
  assert_no_children();
  return 0;
}

/* Streams of an open process: send, receive, EOF, wait. */
SCIO_TEST(process_open_streams) {
  int before = count_fds();
  scio_process *p;
  CK_OK(scio_open_process(ARGV("cat"), NULL, &p));
  ck_assert_int_gt(scio_process_pid(p), 0);
  int code = -1;
  ck_assert_int_eq(scio_process_poll(p, &code), 0);
  CK_OK(scio_send(scio_process_stdin(p), "hello", 5));
  CK_OK(scio_send_eof(scio_process_stdin(p)));
  char buf[16];
  size_t got = 0;
  ssize_t n;
  while ((n = scio_receive(scio_process_stdout(p), buf + got,
                           sizeof buf - got)) > 0)
    got += (size_t)n;
  ck_assert_int_eq(n, SCIO_EOF);
  ck_assert_uint_eq(got, 5);
  ck_assert(memcmp(buf, "hello", 5) == 0);
  ck_assert_int_eq(scio_receive(scio_process_stderr(p), buf, sizeof buf),
                   SCIO_EOF);
  CK_OK(scio_process_wait(p, &code));
  ck_assert_int_eq(code, 0);
  /* Reaped: wait again returns at once, signals are no-ops. */
  CK_OK(scio_process_wait(p, &code));
  ck_assert_int_eq(scio_process_poll(p, &code), 1);
  CK_OK(scio_process_kill(p));
  CK_OK(scio_process_close(p));
  /* Modes other than pipes have no stream. */
  scio_process_opts o = {.stdin_mode = SCIO_PROCESS_DEVNULL,
                         .stdout_mode = SCIO_PROCESS_DEVNULL,
                         .stderr_mode = SCIO_PROCESS_INHERIT};
  CK_OK(scio_open_process(ARGV("true"), &o, &p));
  ck_assert_ptr_null(scio_process_stdin(p));
  ck_assert_ptr_null(scio_process_stdout(p));
  ck_assert_ptr_null(scio_process_stderr(p));
  CK_OK(scio_process_close(p));
  ck_assert_int_eq(count_fds(), before);
  assert_no_children();
  return 0;
}

/* A child that is ready once it printed its line; the line is read. */
static scio_process *open_ready(const char *script, double grace) {
  scio_process *p;
  scio_process_opts o = {.stdin_mode = SCIO_PROCESS_DEVNULL,
                         .kill_grace = grace};
  CK_OK(scio_open_process(ARGV("/bin/sh", "-c", script), &o, &p));
  char buf[16];
  ck_assert_int_eq(scio_receive(scio_process_stdout(p), buf, sizeof buf), 6);
  return p;
}

static void check_signals(void) {
  scio_process *p = open_ready("echo ready; exec sleep 100", 0);
  int code;
  CK_OK(scio_process_terminate(p));
  CK_OK(scio_process_wait(p, &code));
  ck_assert_int_eq(code, -SIGTERM);
  CK_OK(scio_process_close(p));
  p = open_ready("echo ready; exec sleep 100", 0);
  CK_OK(scio_process_send_signal(p, SIGUSR1));
  CK_OK(scio_process_wait(p, &code));
  ck_assert_int_eq(code, -SIGUSR1);
  ck_assert_int_eq(scio_process_send_signal(p, 0), SCIO_EINVAL);
  CK_OK(scio_process_close(p));
}

SCIO_TEST(process_signals) {
  check_signals();
  scio__process_no_pidfd = 1;
  check_signals();
  scio__process_no_pidfd = 0;
  assert_no_children();
  return 0;
}

/* A cancelled wait terminates the child (real clock: the child dies of
 * SIGTERM well within the grace period), or kills it at once. */
static void check_cancelled_wait(void) {
  scio_process *p = open_ready("echo ready; exec sleep 100", 60);
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  int code = 7;
  ck_assert_int_eq(scio_process_wait(p, &code), SCIO_ECANCELED);
  ck_assert_int_eq(code, 0);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "cancelled"));
  scio_scope_close(&cs);
  ck_assert_int_eq(scio_process_poll(p, &code), 1);
  ck_assert_int_eq(code, -SIGTERM);
  CK_OK(scio_process_close(p));
  p = open_ready("echo ready; exec sleep 100", -1);
  CK_OK(scio_move_on_after(&cs, 0.05));
  ck_assert_int_eq(scio_process_wait(p, &code), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_int_eq(scio_process_poll(p, &code), 1);
  ck_assert_int_eq(code, -SIGKILL);
  CK_OK(scio_process_close(p));
}

SCIO_TEST(process_cancelled_wait) {
  int before = count_fds();
  check_cancelled_wait();
  scio__process_no_pidfd = 1;
  check_cancelled_wait();
  scio__process_no_pidfd = 0;
  ck_assert_int_eq(count_fds(), before);
  assert_no_children();
  return 0;
}

/* A child that ignores SIGTERM: the cancelled wait escalates to SIGKILL
 * after the grace period (autojump clock: no real time). */
SCIO_TEST_AUTOJUMP(process_ignores_sigterm) {
  scio_process *p = open_ready("trap '' TERM; echo ready; exec sleep 100", 0);
  double t0 = scio_now();
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1));
  int code;
  ck_assert_int_eq(scio_process_wait(p, &code), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_double_ge(scio_now() - t0, 1 + SCIO_PROCESS_KILL_GRACE);
  ck_assert_int_eq(scio_process_poll(p, &code), 1);
  ck_assert_int_eq(code, -SIGKILL);
  CK_OK(scio_process_close(p));
  assert_no_children();
  return 0;
}

static int second_wait(void *arg) {
  int code;
  ck_assert_int_eq(scio_process_wait(arg, &code), SCIO_EBUSY);
  return 0;
}

/* Cancellation at each checkpoint: wait (above), close, run_process
 * before it starts and while it runs; a second waiter is SCIO_EBUSY. */
SCIO_TEST_AUTOJUMP(process_cancel_points) {
  int before = count_fds();
  scio_process *p = open_ready("echo ready; exec sleep 100", -1);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, second_wait, p));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_process_wait(p, NULL), SCIO_ECANCELED);
  scio_scope_close(&cs);
  CK_OK(scio_nursery_close(&n));
  CK_OK(scio_process_close(p));
  /* A cancelled close still kills, reaps and frees. */
  p = open_ready("echo ready; exec sleep 100", -1);
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_process_close(p), SCIO_ECANCELED);
  scio_scope_close(&cs);
  assert_no_children();
  /* run_process pre-cancelled, and cancelled while the child runs. */
  scio_process_result r;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(run(ARGV("sleep", "100"), NULL, &r), SCIO_ECANCELED);
  ck_assert_ptr_null(r.out);
  scio_scope_close(&cs);
  assert_no_children();
  scio_process_opts o = {.kill_grace = -1};
  CK_OK(scio_move_on_after(&cs, 2));
  ck_assert_int_eq(run(ARGV("sleep", "100"), &o, &r), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  assert_no_children();
  /* close_nowait kills a running child and reaps it. */
  p = open_ready("echo ready; exec sleep 100", 0);
  CK_OK(scio_process_close_nowait(p));
  assert_no_children();
  ck_assert_int_eq(count_fds(), before);
  return 0;
}

static int run_one(void *arg) {
  int i = (int)(intptr_t)arg;
  char script[32];
  snprintf(script, sizeof script, "sleep 0.0%d; exit %d", i, i);
  scio_process_result r;
  CK_OK(scio_run_process(ARGV("/bin/sh", "-c", script), NULL, &r));
  ck_assert_int_eq(r.returncode, i);
  scio_process_result_free(&r);
  return 0;
}

/* Several children waited on at once, with pidfds and through SIGCHLD
 * (every waiting process's receiver sees every SIGCHLD). */
SCIO_TEST(process_concurrent) {
  for (int mode = 0; mode < 2; mode++) {
    scio__process_no_pidfd = mode;
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    for (int i = 1; i <= 8; i++)
      CK_OK(scio_start_soon(&n, run_one, (void *)(intptr_t)i));
    CK_OK(scio_nursery_close(&n));
  }
  scio__process_no_pidfd = 0;
  assert_no_children();
  return 0;
}

/* SIGCHLD ignored: the kernel reaps children itself, so the status is
 * lost: SCIO_ECHILD, and no hang.  Whether the child exits before the
 * wait starts (`true`) or while it waits (`sleep`), with a pidfd or with a
 * SIGCHLD receiver: the receiver keeps the kernel reaping (SA_NOCLDWAIT),
 * so the answer does not depend on timing, and no zombie is left. */
SCIO_TEST(process_sigchld_ignored) {
  struct sigaction ign = {.sa_handler = SIG_IGN}, old, cur;
  sigaction(SIGCHLD, &ign, &old);
  const char *scripts[] = {"true", "sleep 0.2"};
  for (int mode = 0; mode < 2; mode++)
    for (int i = 0; i < 2; i++) {
      scio__process_no_pidfd = mode;
      scio_process *p;
      CK_OK(scio_open_process(ARGV("/bin/sh", "-c", scripts[i]), NULL, &p));
      int code = 5;
      ck_assert_msg(scio_process_wait(p, &code) == SCIO_ECHILD,
                    "mode %d, %s: the status was not lost", mode, scripts[i]);
      ck_assert_int_eq(code, 0);
      ck_assert_int_eq(scio_process_poll(p, &code), SCIO_ECHILD);
      ck_assert_int_eq(scio_process_close(p), SCIO_ECHILD);
      assert_no_children();
      sigaction(SIGCHLD, NULL, &cur);
      ck_assert_ptr_eq((void *)cur.sa_handler, (void *)SIG_IGN);
    }
  scio__process_no_pidfd = 0;
  sigaction(SIGCHLD, &old, NULL);
  return 0;
}

static void process_tests(Suite *s) {
  TCase *tc = scio_tcase_new("process", 60);
  scio_tcase_add(tc, process_exit_codes);
  scio_tcase_add(tc, process_exit_codes_sigchld);
  scio_tcase_add(tc, process_check);
  scio_tcase_add(tc, process_exec_failure);
  scio_tcase_add(tc, process_bad_args);
  scio_tcase_add(tc, process_cwd_env_stdio);
  scio_tcase_add(tc, process_write_a_lot);
  scio_tcase_add(tc, process_open_streams);
  scio_tcase_add(tc, process_signals);
  scio_tcase_add(tc, process_cancelled_wait);
  scio_tcase_add(tc, process_ignores_sigterm);
  scio_tcase_add(tc, process_cancel_points);
  scio_tcase_add(tc, process_concurrent);
  scio_tcase_add(tc, process_sigchld_ignored);
  suite_add_tcase(s, tc);
}

/* ---- signals ---- */

static int recv_sig(scio_ostream *rx) {
  int sig = 0;
  CK_OK(scio_ostream_receive(rx, &sig));
  return sig;
}

/* Nothing more arrives within a (jumped) second. */
static void assert_no_signal(scio_ostream *rx) {
  scio_scope cs;
  int sig;
  CK_OK(scio_move_on_after(&cs, 1));
  ck_assert_int_eq(scio_ostream_receive(rx, &sig), SCIO_ECANCELED);
  scio_scope_close(&cs);
}

static void on_usr1(int sig) { (void)sig; }

/* Delivery, order, coalescing while the loop is busy, the previous
 * disposition restored. */
SCIO_TEST_AUTOJUMP(signal_basics) {
  int before = count_fds();
  struct sigaction mine = {.sa_handler = on_usr1}, cur;
  sigaction(SIGUSR1, &mine, NULL);
  int sigs[] = {SIGUSR1, SIGUSR2};
  scio_ostream *rx;
  CK_OK(scio_signal_receiver_open(sigs, 2, &rx));
  char name[32];
  CK_OK(scio_ostream_attr(rx, SCIO_ATTR_LAYER, name, sizeof name));
  ck_assert_str_eq(name, "signal-receiver");
  sigaction(SIGUSR1, NULL, &cur);
  ck_assert_ptr_ne((void *)cur.sa_handler, (void *)on_usr1);
  /* The loop does not run between these: each lands in the handler. */
  raise(SIGUSR2);
  raise(SIGUSR1);
  raise(SIGUSR2);
  kill(getpid(), SIGUSR1);
  ck_assert_int_eq(recv_sig(rx), SIGUSR2);
  ck_assert_int_eq(recv_sig(rx), SIGUSR1);
  assert_no_signal(rx);
  raise(SIGUSR1);
  ck_assert_int_eq(recv_sig(rx), SIGUSR1);
  int x = 1;
  ck_assert_int_eq(scio_ostream_send(rx, &x), SCIO_ENOSYS);
  CK_OK(scio_ostream_close(rx));
  sigaction(SIGUSR1, NULL, &cur);
  ck_assert_ptr_eq((void *)cur.sa_handler, (void *)on_usr1);
  sigaction(SIGUSR2, NULL, &cur);
  ck_assert_ptr_eq((void *)cur.sa_handler, (void *)SIG_DFL);
  ck_assert_int_eq(count_fds(), before);
  return 0;
}

/* More signals than the self-pipe holds: none is lost. */
SCIO_TEST(signal_pipe_overflow) {
  int sigs[] = {SIGUSR1, SIGUSR2};
  scio_ostream *rx;
  CK_OK(scio_signal_receiver_open(sigs, 2, &rx));
  for (int i = 0; i < 70000; i++)
    raise(SIGUSR2);
  raise(SIGUSR1); /* its byte does not fit: its bit is kept */
  ck_assert_int_eq(recv_sig(rx), SIGUSR2);
  ck_assert_int_eq(recv_sig(rx), SIGUSR1);
  CK_OK(scio_ostream_close(rx));
  return 0;
}

/* Two receivers of one signal both get it; the disposition stays until
 * the last closes. */
SCIO_TEST(signal_two_receivers) {
  int sig = SIGUSR1;
  scio_ostream *a, *b;
  CK_OK(scio_signal_receiver_open(&sig, 1, &a));
  CK_OK(scio_signal_receiver_open(&sig, 1, &b));
  raise(SIGUSR1);
  ck_assert_int_eq(recv_sig(a), SIGUSR1);
  ck_assert_int_eq(recv_sig(b), SIGUSR1);
  CK_OK(scio_ostream_close(a));
  raise(SIGUSR1); /* still ours: it does not kill the process */
  ck_assert_int_eq(recv_sig(b), SIGUSR1);
  CK_OK(scio_ostream_close(b));
  struct sigaction cur;
  sigaction(SIGUSR1, NULL, &cur);
  ck_assert_ptr_eq((void *)cur.sa_handler, (void *)SIG_DFL);
  return 0;
}

/* A signal sent by another process while the loop is busy running it. */
SCIO_TEST(signal_from_child) {
  int sig = SIGUSR1;
  scio_ostream *rx;
  CK_OK(scio_signal_receiver_open(&sig, 1, &rx));
  char script[64];
  snprintf(script, sizeof script, "kill -USR1 %d", (int)getpid());
  scio_process_result r;
  CK_OK(scio_run_process(ARGV("/bin/sh", "-c", script), NULL, &r));
  ck_assert_int_eq(r.returncode, 0);
  scio_process_result_free(&r);
  ck_assert_int_eq(recv_sig(rx), SIGUSR1);
  CK_OK(scio_ostream_close(rx));
  return 0;
}

static int blocked_receive(void *arg) {
  int sig;
  ck_assert_int_eq(scio_ostream_receive(arg, &sig), SCIO_ECLOSED);
  return 0;
}

static int second_receive(void *arg) {
  int sig;
  ck_assert_int_eq(scio_ostream_receive(arg, &sig), SCIO_EBUSY);
  return 0;
}

/* Cancelled receives lose nothing; a second receiver is busy; close wakes
 * a blocked receive. */
SCIO_TEST_AUTOJUMP(signal_cancel_close) {
  int before = count_fds();
  int sig = SIGUSR2;
  scio_ostream *rx;
  CK_OK(scio_signal_receiver_open(&sig, 1, &rx));
  assert_no_signal(rx);
  raise(SIGUSR2);
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, SCIO_DEADLINE_NONE, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio_ostream_receive(rx, &sig), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_int_eq(recv_sig(rx), SIGUSR2);
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, blocked_receive, rx));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_start_soon(&n, second_receive, rx));
  CK_OK(scio_wait_all_tasks_blocked());
  CK_OK(scio_ostream_close(rx));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(count_fds(), before);
  return 0;
}

/* A SIGCHLD receiver while SIGCHLD is ignored: children exiting while it
 * is open are still reaped by the kernel (no zombie), the receiver still
 * hears of them, and SIG_IGN is back once it closes.  Without SIG_IGN the
 * child is left for its parent to reap, as usual. */
SCIO_TEST(signal_sigchld_ignored) {
  struct sigaction ign = {.sa_handler = SIG_IGN}, old, cur;
  for (int ignored = 0; ignored < 2; ignored++) {
    if (ignored)
      sigaction(SIGCHLD, &ign, &old);
    int sig = SIGCHLD;
    scio_ostream *rx;
    CK_OK(scio_signal_receiver_open(&sig, 1, &rx));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      _exit(3);
    ck_assert_int_eq(recv_sig(rx), SIGCHLD);
    int st;
    if (ignored) {
      /* The kernel reaps before it signals the parent. */
      assert_no_children();
    } else {
      ck_assert_int_eq(waitpid(pid, &st, 0), pid);
      ck_assert_int_eq(WEXITSTATUS(st), 3);
    }
    CK_OK(scio_ostream_close(rx));
    sigaction(SIGCHLD, NULL, &cur);
    ck_assert_ptr_eq((void *)cur.sa_handler,
                     (void *)(ignored ? SIG_IGN : SIG_DFL));
    if (ignored)
      sigaction(SIGCHLD, &old, NULL);
  }
  return 0;
}

SCIO_TEST(signal_bad_args) {
  scio_ostream *rx = (scio_ostream *)1;
  int bad[] = {0, 65, SIGKILL, SIGSTOP, SIGSEGV, SIGFPE, -1};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ck_assert_int_eq(scio_signal_receiver_open(&bad[i], 1, &rx), SCIO_EINVAL);
    ck_assert_ptr_null(rx);
  }
  int ok = SIGUSR1;
  ck_assert_int_eq(scio_signal_receiver_open(NULL, 1, &rx), SCIO_EINVAL);
  ck_assert_int_eq(scio_signal_receiver_open(&ok, 0, &rx), SCIO_EINVAL);
  ck_assert_int_eq(scio_signal_receiver_open(&ok, 1, NULL), SCIO_EINVAL);
  /* A bad signal after a good one changes no disposition. */
  int mixed[] = {SIGUSR1, SIGKILL};
  ck_assert_int_eq(scio_signal_receiver_open(mixed, 2, &rx), SCIO_EINVAL);
  struct sigaction cur;
  sigaction(SIGUSR1, NULL, &cur);
  ck_assert_ptr_eq((void *)cur.sa_handler, (void *)SIG_DFL);
  /* At most 32 receivers. */
  scio_ostream *many[33];
  int opened = 0;
  while (opened < 33 &&
         scio_signal_receiver_open(&ok, 1, &many[opened]) == 0)
    opened++;
  ck_assert_int_eq(opened, 32);
  ck_assert_int_eq(scio_signal_receiver_open(&ok, 1, &rx), SCIO_ENOSPC);
  for (int i = 0; i < opened; i++)
    CK_OK(scio_ostream_close(many[i]));
  return 0;
}

static void signal_tests(Suite *s) {
  TCase *tc = scio_tcase_new("signal", 60);
  scio_tcase_add(tc, signal_basics);
  scio_tcase_add(tc, signal_pipe_overflow);
  scio_tcase_add(tc, signal_two_receivers);
  scio_tcase_add(tc, signal_from_child);
  scio_tcase_add(tc, signal_cancel_close);
  scio_tcase_add(tc, signal_sigchld_ignored);
  scio_tcase_add(tc, signal_bad_args);
  suite_add_tcase(s, tc);
}

/* ---- allocation failures ---- */

static int oom_body(void *arg) {
  (void)arg;
  scio_process_result r;
  scio_process_opts o = {.input = "abc", .input_len = 3};
  int rc = scio_run_process(ARGV("/bin/sh", "-c", "cat; echo err >&2"), &o,
                            &r);
  if (rc < 0)
    return rc;
  ck_assert_str_eq(r.out, "abc");
  ck_assert_str_eq(r.err, "err\n");
  scio_process_result_free(&r);
  scio_process *p;
  if ((rc = scio_open_process(ARGV("true"), NULL, &p)) < 0)
    return rc;
  int code;
  rc = scio_process_wait(p, &code);
  int crc = scio_process_close(p);
  if (rc < 0 || crc < 0)
    return rc < 0 ? rc : crc;
  int sig = SIGUSR1;
  scio_ostream *rx;
  if ((rc = scio_signal_receiver_open(&sig, 1, &rx)) < 0)
    return rc;
  raise(SIGUSR1);
  rc = scio_ostream_receive(rx, &sig);
  scio_ostream_close(rx);
  return rc;
}

START_TEST(process_allocation_failures) {
  scio_oom_install(SCIO_OOM_LIBEVENT);
  scio_oom_run r = {.fn = oom_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
  assert_no_children();
}
END_TEST

static void oom_tests(Suite *s) {
  TCase *tc = scio_tcase_new("oom", 120);
  scio_tcase_add(tc, process_allocation_failures);
  suite_add_tcase(s, tc);
}

int main(void) {
  Suite *s = suite_create("process");
  pipe_tests(s);
  process_tests(s);
  signal_tests(s);
  oom_tests(s);
  return scio_test_main(s);
}
