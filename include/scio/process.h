/* scio — subprocesses, OS pipes and signals (Trio's trio.lowlevel.FdStream,
 * open_process / run_process and open_signal_receiver; AnyIO's
 * anyio.open_process, anyio.run_process and anyio.open_signal_receiver).
 *
 * Pipe streams wrap a pipe, FIFO or terminal fd as a byte stream.  A read
 * end is a receive-only stream, a write end a send-only stream (the other
 * direction's calls answer SCIO_ENOSYS); an fd opened for reading and
 * writing (a terminal) is both.  The stream owns its fd and closes it.
 *
 * Every fd scio makes here is close-on-exec, so a child started by another
 * thread (or by scio_open_process for another child) inherits none of them.
 *
 * Available since 0.1.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_PROCESS_H
#define SCIO_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "scio/core.h"
#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Pipe streams                                                              */

/* Wrap `fd`, a pipe, FIFO or character device (terminal), as a byte stream
 * that owns it.  The direction comes from the fd's access mode: read-only
 * makes a receive stream ("pipe-read"), write-only a send stream
 * ("pipe-write") whose scio_send_eof closes the fd (the reader then sees
 * EOF), read-write a stream that does both ("pipe").  The fd is made
 * non-blocking and close-on-exec; O_NONBLOCK is a property of the open file
 * description, so a process sharing it (a parent's inherited stdin) sees it
 * too.  A send to a pipe whose reader is gone fails with SCIO_EBROKEN; no
 * SIGPIPE reaches the process.  SCIO_ATTR_FD answers the fd.  On success
 * *out is the caller's (close it with scio_close, which closes fd); on
 * error the fd is still the caller's.  Not a checkpoint.  Returns 0, or:
 *   SCIO_EINVAL  out is NULL, fd < 0, flags not 0, or fd is a socket,
 *                a regular file or a directory (use scio_socket_stream_from_fd
 *                for sockets);
 *   SCIO_EBADF   fd is not open;
 *   SCIO_ENOMEM  out of memory.
 * On error *out (if out is not NULL) is NULL. */
SCIO_API int scio_pipe_stream_from_fd(int fd, unsigned flags,
                                      scio_stream **out);

/* Make an OS pipe (pipe2, non-blocking and close-on-exec): *r receives what
 * is sent on *w.  Both are the caller's; close both.  Not a checkpoint.
 * Returns 0, or SCIO_EINVAL (r or w NULL), SCIO_EMFILE / SCIO_ENFILE (no
 * fds left), SCIO_ENOMEM.  On error *r and *w (if not NULL) are NULL. */
SCIO_API int scio_pipe_stream_open(scio_stream **r, scio_stream **w);

/* ------------------------------------------------------------------------ */
/* Processes                                                                 */

/* Where a child's stdin, stdout or stderr goes (scio_process_opts). */
enum scio_process_stdio {
  /* 0: the call's default: scio_open_process makes a pipe for each;
   * scio_run_process captures stdout and stderr through pipes and gives
   * stdin a pipe when there is input, else /dev/null. */
  SCIO_PROCESS_DEFAULT = 0,
  SCIO_PROCESS_PIPE = 1,    /* a pipe whose other end is a stream */
  SCIO_PROCESS_INHERIT = 2, /* the parent's own fd 0, 1 or 2 */
  SCIO_PROCESS_DEVNULL = 3, /* /dev/null */
  SCIO_PROCESS_FD = 4,      /* the fd in stdin_fd / stdout_fd / stderr_fd,
                               which stays the caller's */
  SCIO_PROCESS_STDOUT = 5   /* stderr only: wherever stdout goes */
};

/* The default grace period between SIGTERM and SIGKILL, seconds. */
#define SCIO_PROCESS_KILL_GRACE 5.0

/* Options for scio_open_process and scio_run_process; all-zero (or a NULL
 * pointer) means every default. */
typedef struct scio_process_opts {
  int stdin_mode, stdout_mode, stderr_mode; /* enum scio_process_stdio */
  int stdin_fd, stdout_fd, stderr_fd;       /* for SCIO_PROCESS_FD */
  /* The child's working directory; NULL: the parent's. */
  const char *cwd;
  /* The child's environment ("NAME=value" strings, NULL-terminated);
   * NULL: the parent's.  A program name without '/' is looked up in the
   * parent's PATH. */
  char *const *env;
  /* When a wait is cancelled: seconds between SIGTERM and SIGKILL.
   * 0: SCIO_PROCESS_KILL_GRACE; negative: SIGKILL at once. */
  double kill_grace;
  /* scio_run_process only: bytes fed to the child's stdin (then closed). */
  const void *input;
  size_t input_len;
  /* scio_run_process only: a non-zero exit status (or death by a signal)
   * is the error SCIO_EPROCESS. */
  int check;
  /* Non-zero: the child starts a new session (setsid), so it is the leader
   * of its own process group and has no controlling terminal: a terminal's
   * Ctrl-C does not reach it, and kill(-pid, sig) reaches the group
   * (Trio's and AnyIO's start_new_session). */
  int new_session;
} scio_process_opts;

typedef struct scio_process scio_process;

/* Start argv[0] with arguments argv (NULL-terminated) as a child process.
 * Every fd scio holds is close-on-exec, so the child gets exactly its
 * stdin, stdout and stderr as opts says (default: three pipes); signal
 * dispositions the parent changed to "ignore" for SIGPIPE are reset, and
 * the child starts with no signal blocked.  An exec failure is reported
 * here, by its errno ("spawn nosuch: no such file"): then no process was
 * started.  On success *out is the caller's: finish it with
 * scio_process_close (or _close_nowait), which reaps the child.
 * argv and opts are only read during the call.  Not a checkpoint.
 * Returns 0, or:
 *   SCIO_EINVAL   argv or out is NULL, argv[0] is NULL, a bad mode, or
 *                 SCIO_PROCESS_STDOUT for stdin or stdout;
 *   SCIO_ENOENT   no such program (or no such cwd);
 *   SCIO_EACCES   the program (or cwd) is not accessible;
 *   SCIO_EMFILE, SCIO_ENFILE  no fds left;
 *   SCIO_ENOMEM   out of memory;
 *   another negative errno of posix_spawn (-ENOEXEC, ...).
 * On error *out (if out is not NULL) is NULL. */
SCIO_API int scio_open_process(const char *const *argv,
                               const scio_process_opts *opts,
                               scio_process **out);

/* The child's stdin as a send stream when it is a pipe, else NULL.
 * Borrowed: the process owns it and scio_process_close closes it; do not
 * scio_close it yourself.  scio_send_eof on it closes the pipe early (the
 * child reads EOF).  Not a checkpoint.  Never fails (NULL for a NULL
 * process). */
SCIO_API scio_stream *scio_process_stdin(scio_process *p);
/* The child's stdout as a receive stream when it is a pipe, else NULL.
 * Borrowed, as scio_process_stdin.  Not a checkpoint.  Never fails (NULL
 * for a NULL process). */
SCIO_API scio_stream *scio_process_stdout(scio_process *p);
/* The child's stderr as a receive stream when it is a pipe, else NULL.
 * Borrowed, as scio_process_stdin.  Not a checkpoint.  Never fails (NULL
 * for a NULL process). */
SCIO_API scio_stream *scio_process_stderr(scio_process *p);

/* The child's process id (p is borrowed); it stays the child's (not
 * reused) until the child is reaped by scio_process_wait, _poll or _close.
 * Not a checkpoint.  Never fails (-1 for a NULL process). */
SCIO_API pid_t scio_process_pid(const scio_process *p);

/* Wait until the child exits and reap it; *returncode (if not NULL) gets
 * its exit status (0..255), or minus the signal number that killed it
 * (Trio's returncode).  After the child was reaped it returns at once.
 * A checkpoint.  Cancellation kills the child: if the task is cancelled
 * before or while waiting, the child gets SIGTERM, then SIGKILL after
 * opts.kill_grace seconds if it has not exited, and is reaped (shielded:
 * this part waits however the task is cancelled); the call then returns
 * SCIO_ECANCELED.  Returns 0, or:
 *   SCIO_ECANCELED  cancelled (the child was killed and reaped);
 *   SCIO_EINVAL     p is NULL;
 *   SCIO_EBUSY      another task is waiting on p;
 *   SCIO_ENOSPC     (only where there is no pidfd) the 32 signal
 *                   receivers are taken, one per waiting process;
 *   SCIO_ECHILD     someone else reaped the child (a SIGCHLD set to
 *                   SIG_IGN, a waitpid(-1)): its status is lost. */
SCIO_API int scio_process_wait(scio_process *p, int *returncode);

/* Reap the child if it has exited, without waiting.  Not a checkpoint.
 * Returns 1 (exited: *returncode, if not NULL, as scio_process_wait),
 * 0 (still running), or SCIO_EINVAL (p NULL) or SCIO_ECHILD (as above). */
SCIO_API int scio_process_poll(scio_process *p, int *returncode);

/* Send signal `sig` to the child.  Once the child was reaped this does
 * nothing and returns 0 (its pid may belong to another process by then).
 * p is borrowed.  Not a checkpoint.  Returns 0, or SCIO_EINVAL (p NULL,
 * sig not a valid signal number), or the negative errno of kill(2)
 * (SCIO_EPERM). */
SCIO_API int scio_process_send_signal(scio_process *p, int sig);
/* scio_process_send_signal(p, SIGTERM).  Not a checkpoint.  Returns 0, or
 * SCIO_EINVAL (p NULL), or SCIO_EPERM as above. */
SCIO_API int scio_process_terminate(scio_process *p);
/* scio_process_send_signal(p, SIGKILL).  Not a checkpoint.  Returns 0, or
 * SCIO_EINVAL (p NULL), or SCIO_EPERM as above. */
SCIO_API int scio_process_kill(scio_process *p);

/* Close the child's pipes (stdin first: the child reads EOF), wait for it
 * to exit as scio_process_wait does (killing it if the wait is cancelled),
 * reap it and free p, always, even when it returns an error.  p must not
 * be used afterwards, and no other task may be inside scio_process_wait on
 * it (tasks blocked on its streams are fine: they are woken with
 * SCIO_ECLOSED); NULL is a no-op returning 0.  A checkpoint.  Returns
 * 0 or SCIO_ECANCELED (the child was killed, reaped and p released) or
 * SCIO_ECHILD as scio_process_wait. */
SCIO_API int scio_process_close(scio_process *p);

/* scio_process_close without a checkpoint, for error paths: close the
 * pipes, SIGKILL the child if it has not exited, reap it (blocking the
 * thread for the moment a killed process takes to die) and free p.  Not a
 * checkpoint.  Callable outside a task.  Never fails: returns 0; NULL is a
 * no-op. */
SCIO_API int scio_process_close_nowait(scio_process *p);

/* What scio_run_process collected.  Caller storage; free it with
 * scio_process_result_free. */
typedef struct scio_process_result {
  int returncode; /* as scio_process_wait */
  /* Captured stdout and stderr (NULL when not captured), each followed by
   * a NUL byte that the length does not count. */
  char *out;
  size_t out_len;
  char *err;
  size_t err_len;
} scio_process_result;

/* Run argv to completion (Trio's and AnyIO's run_process): start it as
 * scio_open_process, feed it opts.input (then close its stdin), capture
 * its stdout and stderr (both drained concurrently, so a child that
 * writes much to both never stalls), wait for it to exit and fill
 * *result.  Captured output grows in memory without a bound.  A
 * checkpoint.  Cancellation kills the child as scio_process_wait does and
 * returns SCIO_ECANCELED.  Returns 0 (*result filled; the caller frees it
 * with scio_process_result_free), or:
 *   SCIO_EPROCESS   opts.check was set and the child exited with a
 *                   non-zero status or was killed; *result is filled as on
 *                   success (free it), and scio_errmsg() says how it ended
 *                   ("process false: exit status 1");
 *   SCIO_ECANCELED  cancelled: the child was killed and reaped;
 *   SCIO_EINVAL     result is NULL, or as scio_open_process;
 *   SCIO_ENOMEM     out of memory (the child was killed and reaped);
 *   an error of scio_open_process, or of reading the pipes.
 * On any error but SCIO_EPROCESS, *result is empty (all zero, nothing to
 * free; zeroed before anything is checked). */
SCIO_API int scio_run_process(const char *const *argv,
                              const scio_process_opts *opts,
                              scio_process_result *result);

/* Free (release) the buffers a result owns and zero it; the struct itself
 * stays the caller's.  NULL is a no-op.  Not a
 * checkpoint.  Never fails. */
SCIO_API void scio_process_result_free(scio_process_result *result);

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */

/* Open a receiver of the signals signals[0..n-1] (Trio's
 * open_signal_receiver): an object stream whose items are ints, the
 * numbers of the signals delivered to the process since it opened, in the
 * order they arrived.  Receive them with scio_ostream_receive (a
 * checkpoint; it waits for the next signal); close it with
 * scio_ostream_close, which restores each signal's previous disposition
 * once no receiver of it is left.
 *
 * Coalescing, as in Trio: a signal that arrives again before the first
 * delivery of it was received is delivered once; so the stream tells that
 * a signal came, not how often.  No signal is lost while the loop is busy:
 * the handler records it (async-signal-safe: an atomic bit and a byte on a
 * self-pipe) and the next receive returns it.  Several receivers may watch
 * one signal: each gets it.  The handler is process-wide and runs in any
 * thread where the signal is not blocked; a signal blocked in every
 * thread is never delivered (scio does not change signal masks).  While a
 * receiver is open, the signal's disposition is scio's handler: SIGINT
 * then no longer ends the program, for example.  One exception keeps its
 * effect: if SIGCHLD was ignored (SIG_IGN or SA_NOCLDWAIT), the kernel
 * still reaps exited children while a SIGCHLD receiver is open (scio's
 * handler is installed with SA_NOCLDWAIT); the receiver hears of them,
 * but their status is gone, and no zombie is left.
 *
 * signals is only read during the call; *out is the caller's.  Not a
 * checkpoint.  Returns 0, or:
 *   SCIO_EINVAL  signals or out is NULL, n is 0, or a signal that cannot
 *                be watched: outside 1..64, SIGKILL, SIGSTOP, or a
 *                synchronous fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE);
 *   SCIO_ENOSPC  too many receivers are open (at most 32 in the process);
 *   SCIO_EMFILE, SCIO_ENFILE  no fds left for the self-pipe;
 *   SCIO_ENOMEM  out of memory.
 * On error *out (if out is not NULL) is NULL and no disposition changed.
 *
 * The stream: scio_ostream_receive returns 0 with the signal number in
 * *(int *)item, or SCIO_ECLOSED (closed, also while waiting),
 * SCIO_ECANCELED (nothing taken: the signal stays for the next receive),
 * SCIO_EBUSY (another task is receiving).  scio_ostream_send is
 * SCIO_ENOSYS.  SCIO_ATTR_LAYER is "signal-receiver". */
SCIO_API int scio_signal_receiver_open(const int *signals, size_t n,
                                       scio_ostream **out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_PROCESS_H */
