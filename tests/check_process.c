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
#include <unistd.h>

#include "scio/process.h"
#include "scio/testing.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

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

static void pipe_tests(Suite *s) {
  TCase *tc = scio_tcase_new("pipe", 60);
  scio_tcase_add(tc, pipe_kit);
  scio_tcase_add(tc, pipe_from_fd_bad);
  scio_tcase_add(tc, pipe_from_fd_directions);
  scio_tcase_add(tc, pipe_broken_no_sigpipe);
  suite_add_tcase(s, tc);
}

int main(void) {
  Suite *s = suite_create("process");
  pipe_tests(s);
  (void)assert_no_children;
  return scio_test_main(s);
}
