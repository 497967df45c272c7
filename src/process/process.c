/* Child processes: open, wait, signal, close.
 *
 * Exit watching: a pidfd (pidfd_open, Linux 5.3) becomes readable when the
 * child exits; it is waited on through the fd contract like any stream fd
 * (one edge-triggered registration on epoll), then waitpid(WNOHANG) reaps.
 * Without pidfd (older kernels, other systems) the wait parks on SIGCHLD
 * through a signal receiver (sigwatch.c) and tries waitpid again after
 * every SIGCHLD.  Each waiting process holds a receiver while it waits,
 * so at most 32 processes can be waited on at once there.
 *
 * No zombies: the child is reaped by the wait, by a poll that sees it
 * exited, or by close, which kills it if need be.  The pid stays reserved
 * until then, so signals never reach a stranger; after reaping they are
 * no-ops. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "process_internal.h"

struct scio_process {
  pid_t pid;
  int pidfd; /* -1 when none (or once reaped) */
  int reaped, returncode, lost, waiting;
  double kill_grace;
  scio_stream *io[3];
  /* Without pidfd: a SIGCHLD receiver, opened before the waitpid that
   * found the child running, so its exit cannot slip in between. */
  scio_ostream *chld;
};

/* Tests set it to exercise the SIGCHLD path on a kernel with pidfd. */
int scio__process_no_pidfd;

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  if (scio__process_no_pidfd)
    return -1;
  /* The child is not reaped yet (only we reap it), so the pid is still
   * this child's; pidfd_open sets close-on-exec itself. */
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}

static void set_status(scio_process *p, int st) {
  p->returncode = WIFEXITED(st) ? WEXITSTATUS(st)
                  : WIFSIGNALED(st) ? -WTERMSIG(st)
                                    : -1;
  p->reaped = 1;
  /* Wakes a task receiving on it (SCIO_ECLOSED, then it sees reaped). */
  scio__ostream_close_nowait(p->chld);
  p->chld = NULL;
  if (p->pidfd >= 0) {
    int fd = p->pidfd;
    p->pidfd = -1;
    /* Wakes a task waiting on it (SCIO_ECLOSED, then it sees reaped). */
    scio__fd_close(fd);
  }
}

/* 1 reaped (now or before), 0 running, -ECHILD someone else reaped it. */
static int try_reap(scio_process *p) {
  if (p->reaped)
    return p->lost ? -ECHILD : 1;
  for (;;) {
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      set_status(p, st);
      return 1;
    }
    if (r == 0)
      return 0;
    if (errno == EINTR)
      continue;
    /* ECHILD: reaped behind our back (SIGCHLD ignored, waitpid(-1)). */
    set_status(p, 0);
    p->returncode = -1;
    p->lost = 1;
    return -ECHILD;
  }
}

static int lost_error(scio_process *p) {
  return scio__seterr(-ECHILD, "process %d: reaped by someone else (SIGCHLD "
                               "ignored, or waitpid(-1)): status lost",
                      (int)p->pid);
}

/* Park until the child has exited and reap it.  0 (reaped), or an error of
 * the wait (SCIO_ECANCELED ...), or -ECHILD.  *yielded |= whether it
 * parked. */
static int wait_exit(scio_process *p, int *yielded) {
  for (;;) {
    int rc = try_reap(p);
    if (rc < 0)
      return lost_error(p);
    if (rc == 1)
      return 0;
    if (p->pidfd >= 0) {
      rc = scio__fd_wait(p->pidfd, SCIO__FD_READ);
      if (rc == 0)
        *yielded = 1;
    } else if (!p->chld) {
      static const int sigchld = SIGCHLD;
      rc = scio_signal_receiver_open(&sigchld, 1, &p->chld);
      if (rc == 0)
        continue; /* waitpid again: the receiver sees any later exit */
    } else {
      int sig;
      rc = scio_ostream_receive(p->chld, &sig);
      *yielded = 1;
    }
    if (rc < 0 && !p->reaped)
      return rc;
  }
}

/* Blocking reap, for a killed child (it dies at once unless the kernel
 * holds it in an uninterruptible sleep). */
static void reap_blocking(scio_process *p) {
  int st;
  pid_t r;
  while ((r = waitpid(p->pid, &st, 0)) < 0 && errno == EINTR)
    ;
  if (r == p->pid) {
    set_status(p, st);
  } else if (!p->reaped) {
    set_status(p, 0);
    p->returncode = -1;
    p->lost = 1;
  }
}

/* Wait (shielded) until the child is reaped or `deadline` passes. */
static void wait_shielded(scio_process *p, double deadline) {
  scio_scope cs;
  if (scio_scope_open(&cs, deadline, SCIO_SCOPE_SHIELD) < 0)
    return;
  int yielded = 0;
  wait_exit(p, &yielded);
  scio_scope_close(&cs);
}

/* A cancelled wait: SIGTERM, grace period, SIGKILL, reap.  The caller's
 * cancellation detail is kept for its SCIO_ECANCELED. */
static int kill_and_reap(scio_process *p) {
  char why[256];
  snprintf(why, sizeof why, "%s", scio_errmsg());
  if (!p->reaped && p->kill_grace >= 0 && kill(p->pid, SIGTERM) == 0)
    wait_shielded(p, scio_now() + p->kill_grace);
  if (!p->reaped && kill(p->pid, SIGKILL) == 0)
    wait_shielded(p, SCIO_DEADLINE_NONE);
  if (!p->reaped)
    reap_blocking(p);
  return scio__seterr(SCIO_ECANCELED, "%s", why);
}

SCIO_API int scio_process_wait(scio_process *p, int *returncode) {
  if (returncode)
    *returncode = 0;
  if (!p)
    return scio__seterr(SCIO_EINVAL, "process_wait: p is NULL");
  if (p->waiting)
    return scio__seterr(SCIO_EBUSY, "process_wait: another task is waiting "
                                    "on process %d", (int)p->pid);
  p->waiting = 1;
  int yielded = 0, rc = scio_checkpoint_if_cancelled();
  if (rc == 0)
    rc = wait_exit(p, &yielded);
  if (rc == SCIO_ECANCELED)
    rc = kill_and_reap(p);
  else if (rc == 0 && !yielded)
    scio_cancel_shielded_checkpoint();
  p->waiting = 0;
  if (rc == 0 && returncode)
    *returncode = p->returncode;
  return rc;
}

SCIO_API int scio_process_poll(scio_process *p, int *returncode) {
  if (returncode)
    *returncode = 0;
  if (!p)
    return scio__seterr(SCIO_EINVAL, "process_poll: p is NULL");
  int rc = try_reap(p);
  if (rc < 0)
    return lost_error(p);
  if (rc == 1 && returncode)
    *returncode = p->returncode;
  return rc;
}

SCIO_API int scio_process_send_signal(scio_process *p, int sig) {
  if (!p || sig <= 0 || sig >= NSIG)
    return scio__seterr(SCIO_EINVAL, "process_send_signal: bad argument");
  /* A zombie that nobody reaped yet still holds its pid: kill() is safe
   * and does nothing to it.  Once reaped, the pid may be another's. */
  if (p->reaped)
    return 0;
  if (kill(p->pid, sig) < 0)
    return scio__seterr(-errno, "process_send_signal: kill %d: %s",
                        (int)p->pid, strerror(errno));
  return 0;
}

SCIO_API int scio_process_terminate(scio_process *p) {
  return scio_process_send_signal(p, SIGTERM);
}

SCIO_API int scio_process_kill(scio_process *p) {
  return scio_process_send_signal(p, SIGKILL);
}

SCIO_API pid_t scio_process_pid(const scio_process *p) {
  return p ? p->pid : -1;
}

SCIO_API scio_stream *scio_process_stdin(scio_process *p) {
  return p ? p->io[0] : NULL;
}

SCIO_API scio_stream *scio_process_stdout(scio_process *p) {
  return p ? p->io[1] : NULL;
}

SCIO_API scio_stream *scio_process_stderr(scio_process *p) {
  return p ? p->io[2] : NULL;
}

static void free_process(scio_process *p) {
  scio__ostream_close_nowait(p->chld);
  if (p->pidfd >= 0)
    scio__fd_close(p->pidfd);
  scio__free(p);
}

SCIO_API int scio_process_close(scio_process *p) {
  if (!p)
    return 0;
  int crc = 0;
  for (int i = 0; i < 3; i++) {
    scio_stream *s = p->io[i];
    p->io[i] = NULL;
    int rc = s ? scio_close(s) : 0;
    if (rc == SCIO_ECANCELED)
      crc = rc;
  }
  /* A close cancelled in its checkpoint leaves the cancellation pending:
   * the wait sees it at once and kills the child. */
  int rc = scio_process_wait(p, NULL);
  /* A wait that failed otherwise (SCIO_ENOMEM registering the pidfd)
   * still must not leave a zombie. */
  if (!p->reaped) {
    kill(p->pid, SIGKILL);
    reap_blocking(p);
  }
  free_process(p);
  return rc < 0 ? rc : crc;
}

SCIO_API int scio_process_close_nowait(scio_process *p) {
  if (!p)
    return 0;
  for (int i = 0; i < 3; i++) {
    scio__stream_close_nowait(p->io[i]);
    p->io[i] = NULL;
  }
  if (try_reap(p) == 0) {
    kill(p->pid, SIGKILL);
    reap_blocking(p);
  }
  free_process(p);
  return 0;
}

/* The streams over our pipe ends; on error every fd is closed. */
static int wrap_pipes(scio_process *p, int ours[3]) {
  int rc = 0;
  for (int i = 0; i < 3; i++) {
    if (ours[i] < 0)
      continue;
    if (rc == 0)
      rc = scio__pipe_wrap(ours[i],
                           i == 0 ? SCIO__PIPE_WRITE : SCIO__PIPE_READ,
                           &p->io[i]);
    if (rc < 0 || !p->io[i])
      close(ours[i]);
  }
  return rc;
}

int scio__process_open(const char *const *argv, const scio_process_opts *o,
                       const int defaults[3], scio_process **out) {
  scio_process *p = scio__calloc(1, sizeof *p);
  if (!p)
    return scio__seterr(SCIO_ENOMEM, "open_process: out of memory");
  p->kill_grace = o->kill_grace == 0 ? SCIO_PROCESS_KILL_GRACE : o->kill_grace;
  p->pidfd = -1;
  int ours[3];
  int rc = scio__proc_spawn(argv, o, defaults, &p->pid, ours);
  if (rc < 0) {
    scio__free(p);
    return rc;
  }
  p->pidfd = open_pidfd(p->pid);
  if ((rc = wrap_pipes(p, ours)) < 0) {
    scio_process_close_nowait(p);
    return scio__seterr(rc, "open_process: out of memory");
  }
  *out = p;
  return 0;
}

SCIO_API int scio_open_process(const char *const *argv,
                               const scio_process_opts *opts,
                               scio_process **out) {
  if (out)
    *out = NULL;
  if (!argv || !argv[0] || !out)
    return scio__seterr(SCIO_EINVAL, "open_process: %s is NULL",
                        !out ? "out" : "argv");
  static const scio_process_opts none;
  static const int defaults[3] = {SCIO_PROCESS_PIPE, SCIO_PROCESS_PIPE,
                                  SCIO_PROCESS_PIPE};
  return scio__process_open(argv, opts ? opts : &none, defaults, out);
}
