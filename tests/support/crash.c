/* Run code that must die in a child process: see crash.h. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash.h"

static void child(void (*fn)(void *), void *arg, int wfd) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core); /* a dump per test would be slow */
  dup2(wfd, STDERR_FILENO);
  close(wfd);
  fn(arg);
  fflush(stderr);
  _exit(0); /* not exit: the parent's atexit handlers and buffers are not ours */
}

void scio_crash_run(void (*fn)(void *arg), void *arg, scio_crash *out) {
  memset(out, 0, sizeof *out);
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(p[0]);
    child(fn, arg, p[1]);
  }
  close(p[1]);
  /* Read to EOF while the child runs, so a long message cannot block it. */
  size_t n = 0;
  for (;;) {
    ssize_t r = read(p[0], out->err + n, sizeof out->err - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
    if (n == sizeof out->err - 1) {
      char sink[512]; /* drain the rest */
      while (read(p[0], sink, sizeof sink) > 0)
        ;
      break;
    }
  }
  out->err[n] = 0;
  close(p[0]);
  while (waitpid(pid, &out->status, 0) < 0)
    ck_assert_int_eq(errno, EINTR);
  out->signal = WIFSIGNALED(out->status) ? WTERMSIG(out->status) : 0;
  out->exit_code = WIFEXITED(out->status) ? WEXITSTATUS(out->status) : -1;
}
