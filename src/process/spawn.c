/* Starting a child with posix_spawn.
 *
 * glibc's posix_spawn runs the child on a vfork-like clone and reports an
 * exec (or chdir, or dup2) failure as its return value, so the parent
 * knows exactly why nothing started, and it resets signal handlers in the
 * child before anything of ours could run there.  Every fd scio makes is
 * close-on-exec; the child's stdin, stdout and stderr are dup2'd into
 * place by file actions (dup2 clears close-on-exec on the copy).
 *
 * Under valgrind that clone runs as a fork (no shared memory), so an exec
 * failure is not seen by the parent: the child exits with status 127.
 *
 * Hazard: a source fd below 3 (the parent has closed its own stdin, say,
 * so pipe2 returned 0) would be overwritten by an earlier dup2 or, when it
 * already is its target, keep its close-on-exec flag.  Every source is
 * therefore lifted to 3 or above first. */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>

#include "process_internal.h"

extern char **environ;

static void close_quiet(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* Move fd to a number >= 3 (close-on-exec), closing the old one. */
static int lift(int *fd) {
  if (*fd >= 3)
    return 0;
  int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  if (n < 0)
    return -errno;
  close(*fd);
  *fd = n;
  return 0;
}

/* The child end of stdio slot i (src[i]) and the parent end (ours[i]),
 * for each mode.  src[i] == -1: nothing to do (inherit). */
static int prepare_slot(int i, int mode, int user_fd, int src[3],
                        int ours[3], int *devnull) {
  switch (mode) {
  case SCIO_PROCESS_INHERIT:
    return 0;
  case SCIO_PROCESS_PIPE: {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
      return -errno;
    /* i == 0: the child reads p[0]; else it writes p[1]. */
    src[i] = i == 0 ? p[0] : p[1];
    ours[i] = i == 0 ? p[1] : p[0];
    int rc = lift(&src[i]);
    if (rc == 0)
      rc = lift(&ours[i]);
    if (rc == 0 && fcntl(ours[i], F_SETFL, O_NONBLOCK) < 0)
      rc = -errno;
    return rc;
  }
  case SCIO_PROCESS_DEVNULL:
    if (*devnull < 0) {
      *devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (*devnull < 0)
        return -errno;
      int rc = lift(devnull);
      if (rc < 0)
        return rc;
    }
    src[i] = fcntl(*devnull, F_DUPFD_CLOEXEC, 3);
    return src[i] < 0 ? -errno : 0;
  case SCIO_PROCESS_FD:
    if (user_fd < 0)
      return SCIO_EINVAL;
    src[i] = fcntl(user_fd, F_DUPFD_CLOEXEC, 3);
    return src[i] < 0 ? -errno : 0;
  default:
    return SCIO_EINVAL;
  }
}

static int check_modes(const int mode[3]) {
  for (int i = 0; i < 3; i++)
    if (mode[i] < SCIO_PROCESS_PIPE || mode[i] > SCIO_PROCESS_STDOUT ||
        (mode[i] == SCIO_PROCESS_STDOUT && i != 2))
      return scio__seterr(SCIO_EINVAL, "spawn: bad stdio mode %d for fd %d",
                          mode[i], i);
  return 0;
}

static int set_actions(posix_spawn_file_actions_t *fa, const int src[3],
                       int stderr_to_stdout, const char *cwd) {
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++)
    if (src[i] >= 0)
      rc = posix_spawn_file_actions_adddup2(fa, src[i], i);
  if (rc == 0 && stderr_to_stdout)
    rc = posix_spawn_file_actions_adddup2(fa, 1, 2);
  if (rc == 0 && cwd) {
#if defined(__GLIBC__) &&                                                     \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    rc = posix_spawn_file_actions_addchdir_np(fa, cwd);
#else
    rc = ENOSYS;
#endif
  }
  return -rc;
}

/* Signals: none blocked in the child, and SIGPIPE/SIGXFSZ at their
 * defaults even if the parent ignores them (a child writing to a closed
 * pipe should die as usual, not see EPIPE it never asked for); setsid
 * when asked. */
static int set_attrs(posix_spawnattr_t *at, int new_session) {
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_session) {
#ifdef POSIX_SPAWN_SETSID
    flags |= POSIX_SPAWN_SETSID;
#else
    return -ENOSYS;
#endif
  }
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  sigaddset(&def, SIGXFSZ);
  int rc = posix_spawnattr_setsigmask(at, &none);
  if (rc == 0)
    rc = posix_spawnattr_setsigdefault(at, &def);
  if (rc == 0)
    rc = posix_spawnattr_setflags(at, flags);
  return -rc;
}

static int spawn_error(int err, const char *prog, const char *cwd) {
  const char *what = err == ENOENT   ? "no such file"
                     : err == EACCES ? "permission denied"
                                     : strerror(err);
  if (cwd && (err == ENOENT || err == EACCES || err == ENOTDIR))
    return scio__seterr(-err, "spawn %s: %s (or cwd %s: %s)", prog, what,
                        cwd, what);
  return scio__seterr(-err, "spawn %s: %s", prog, what);
}

static int do_spawn(const char *const *argv, const scio_process_opts *o,
                    const int src[3], int err_to_out, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  if (posix_spawn_file_actions_init(&fa) != 0)
    return scio__seterr(SCIO_ENOMEM, "spawn: out of memory");
  if (posix_spawnattr_init(&at) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return scio__seterr(SCIO_ENOMEM, "spawn: out of memory");
  }
  int rc = set_actions(&fa, src, err_to_out, o->cwd);
  if (rc == 0)
    rc = set_attrs(&at, o->new_session);
  if (rc < 0) {
    rc = rc == -ENOSYS
             ? scio__seterr(SCIO_ENOSYS, "spawn: cwd or new_session is not "
                                         "supported here")
             : scio__seterr(rc, "spawn: %s", strerror(-rc));
  } else {
    char *const *env = o->env ? o->env : environ;
    char *const *av = (char *const *)argv;
    int e = strchr(argv[0], '/') ? posix_spawn(pid, argv[0], &fa, &at, av, env)
                                 : posix_spawnp(pid, argv[0], &fa, &at, av, env);
    if (e != 0)
      rc = spawn_error(e, argv[0], o->cwd);
  }
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  return rc;
}

int scio__proc_spawn(const char *const *argv, const scio_process_opts *o,
                const int defaults[3], pid_t *pid, int ours[3]) {
  int mode[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
  const int user_fd[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
  int src[3] = {-1, -1, -1}, devnull = -1;
  for (int i = 0; i < 3; i++) {
    ours[i] = -1;
    if (mode[i] == SCIO_PROCESS_DEFAULT)
      mode[i] = defaults[i];
  }
  int rc = check_modes(mode);
  for (int i = 0; i < 3 && rc == 0; i++)
    if (mode[i] != SCIO_PROCESS_STDOUT &&
        (rc = prepare_slot(i, mode[i], user_fd[i], src, ours, &devnull)) < 0)
      rc = rc == SCIO_EINVAL
               ? scio__seterr(rc, "spawn: SCIO_PROCESS_FD with fd %d for "
                                  "fd %d", user_fd[i], i)
               : scio__seterr(rc, "spawn: setting up fd %d: %s", i,
                              strerror(-rc));
  if (rc == 0)
    rc = do_spawn(argv, o, src, mode[2] == SCIO_PROCESS_STDOUT, pid);
  for (int i = 0; i < 3; i++) {
    close_quiet(&src[i]);
    if (rc < 0)
      close_quiet(&ours[i]);
  }
  close_quiet(&devnull);
  return rc;
}
