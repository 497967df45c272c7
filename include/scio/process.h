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

#ifdef __cplusplus
}
#endif
#endif /* SCIO_PROCESS_H */
