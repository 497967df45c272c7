/* scio — async files (AnyIO's anyio.open_file / AsyncFile and
 * anyio.streams.file: FileReadStream, FileWriteStream; Trio's
 * trio.open_file).
 *
 * A scio_file wraps a file descriptor.  Each of its blocking calls (open,
 * read, write, seek, sync, truncate, close) runs on the worker pool of
 * <scio/thread.h> through scio_to_thread, so the loop goes on running other
 * tasks while the disk works.  The calls are checkpoints, with the rule of
 * scio_to_thread:
 *   - a call cancelled before its system call started (the calling task
 *     was already cancelled, or it was cancelled while it waited for a
 *     worker or a limiter token) never runs it and returns SCIO_ECANCELED:
 *     a pre-cancelled write leaves the file unchanged;
 *   - once the system call has started it is never abandoned: the caller
 *     waits for it, shielded, and the call returns its real result (0 and
 *     every byte written, or the error).  The cancellation is then seen at
 *     the caller's next checkpoint.  So no write is ever half-lost to a
 *     cancellation: it either never happened or it is reported.
 * A blocking fd (a pipe or FIFO given to scio_file_from_fd) can keep a
 * cancelled caller waiting until the other end moves; use the file streams
 * below for those, which run pipes on the loop.
 *
 * Several tasks may use one scio_file at once (a read and a pwrite, say);
 * the calls share the file's offset, as threads sharing an fd do.
 * scio_file_close waits for the calls still running in worker threads
 * before it closes the fd, so an fd number is never reused under them.
 *
 * Errors are negative errno values (SCIO_ENOENT, SCIO_EACCES, SCIO_EISDIR,
 * SCIO_ENOTDIR, SCIO_ESPIPE, SCIO_EFBIG, SCIO_EROFS, SCIO_ENOSPC, SCIO_EIO,
 * ...), and scio_errmsg() names the operation and the file: "open /x/y: no
 * such file", "seek fd 7: not seekable".
 *
 * File streams (scio_file_read_stream_open, ...) are byte streams of
 * <scio/stream.h> over a file: a read stream is receive-only, a write
 * stream send-only.  A regular file (or a block device) goes through the
 * worker pool as above; a FIFO, pipe, socket or terminal is run on the loop
 * by the pipe stream of <scio/process.h> (no thread, and cancellable at
 * any time).  They answer SCIO_ATTR_FD and, when opened by path,
 * SCIO_ATTR_PATH.
 *
 * Available since 0.3.
 *
 * Pointer arguments are borrowed: a function uses them during the call
 * only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_FILE_H
#define SCIO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scio/core.h"
#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Files                                                                     */

typedef struct scio_file scio_file;

/* Open `path` as open(2) does with `flags` (O_RDONLY, O_WRONLY | O_CREAT |
 * O_TRUNC, ...; O_CLOEXEC is always added) and `mode` (for O_CREAT), in a
 * worker thread.  On success *out (set to NULL first) is the caller's: it
 * owns the file and its fd until scio_file_close.  Opening a FIFO waits in
 * the worker until the other end is opened too (open(2)'s rule), and like
 * every started call it is not abandoned on cancellation.  A checkpoint:
 * cancelled before the open ran, nothing was opened; an open that ran
 * returns its file even if the caller was cancelled meanwhile.  Returns 0,
 * or:
 *   SCIO_ENOENT        no such file (or directory on the way);
 *   SCIO_EACCES        permission denied;
 *   SCIO_EISDIR        a directory opened for writing;
 *   SCIO_ENOTDIR       a component of the path is not a directory;
 *   SCIO_EEXIST        O_CREAT | O_EXCL and the file exists;
 *   SCIO_EROFS         writing on a read-only file system;
 *   SCIO_EMFILE, SCIO_ENFILE  no fds left;
 *   SCIO_ECANCELED     cancelled before the open ran;
 *   SCIO_EINVAL        path or out is NULL, or not inside a task;
 *   SCIO_ENOMEM        out of memory;
 *   SCIO_EAGAIN        no worker thread could be started;
 *   another negative errno of open(2). */
SCIO_API int scio_file_open(const char *path, int flags, mode_t mode,
                            scio_file **out);

/* Wrap the open fd `fd` as a scio_file that owns it from now on (it is
 * made close-on-exec, and scio_file_close closes it).  On success *out (set
 * to NULL first) is the caller's; on error fd stays the caller's.  Not a
 * checkpoint; may be called outside a task (the calls need one).  Returns
 * 0, or SCIO_EINVAL (out NULL, fd < 0), SCIO_EBADF (fd is not open),
 * SCIO_ENOMEM. */
SCIO_API int scio_file_from_fd(int fd, scio_file **out);

/* Read up to `max` bytes at the file's offset into the caller's `buf` (one
 * read(2)); *got (set to 0 first) receives the count, 0 meaning end of
 * file.  max 0 reads nothing (a checkpoint all the same).  A checkpoint
 * (see the cancellation rule above: bytes read by a started call are
 * returned).  Returns 0, or SCIO_ECANCELED (nothing read), SCIO_EINVAL
 * (f or got NULL, buf NULL with max > 0), SCIO_ECLOSED (f is being
 * closed), SCIO_EISDIR (a directory), SCIO_EBADF (not open for reading),
 * SCIO_EIO, SCIO_ENOMEM, SCIO_EAGAIN (no worker thread), or another
 * negative errno of read(2). */
SCIO_API int scio_file_read(scio_file *f, void *buf, size_t max,
                            size_t *got);

/* Write all `len` bytes of the caller's `buf` at the file's offset (or at
 * its end with O_APPEND), looping over short writes.  A checkpoint:
 * cancelled before it started, nothing is written (SCIO_ECANCELED); once
 * started, it writes everything (or fails) and returns that result.  A
 * write that fails part-way (SCIO_ENOSPC) may have written a prefix, which
 * scio_errmsg() counts.  Returns 0, or SCIO_ECANCELED, SCIO_EINVAL (f
 * NULL, buf NULL with len > 0), SCIO_ECLOSED, SCIO_EBADF (not open for
 * writing), SCIO_ENOSPC, SCIO_EFBIG (past the size limit), SCIO_EIO,
 * SCIO_EPIPE (a pipe without reader), SCIO_ENOMEM, SCIO_EAGAIN (no worker
 * thread), or another negative errno of write(2). */
SCIO_API int scio_file_write(scio_file *f, const void *buf, size_t len);

/* Read up to `max` bytes at `offset` (pread(2): the file's offset does not
 * move) into the caller's `buf`; *got (set to 0 first) receives the count,
 * 0 at or past the end.  A checkpoint, as scio_file_read.  Returns 0, or
 * the errors of scio_file_read, and SCIO_EINVAL (negative offset),
 * SCIO_ESPIPE (a pipe, FIFO or socket). */
SCIO_API int scio_file_pread(scio_file *f, void *buf, size_t max,
                             int64_t offset, size_t *got);

/* Write all `len` bytes of the caller's `buf` at `offset` (pwrite(2): the
 * file's offset does not move).  A checkpoint, as scio_file_write (all or
 * nothing with respect to cancellation).  Returns 0, or the errors of
 * scio_file_write, and SCIO_EINVAL (negative offset), SCIO_ESPIPE (a pipe,
 * FIFO or socket). */
SCIO_API int scio_file_pwrite(scio_file *f, const void *buf, size_t len,
                              int64_t offset);

/* Move the file's offset (lseek(2)): `whence` is SEEK_SET, SEEK_CUR or
 * SEEK_END; *newpos (if newpos is not NULL) receives the new offset.  A
 * checkpoint.  Returns 0, or SCIO_ECANCELED (not moved), SCIO_EINVAL (f
 * NULL, a bad whence, a resulting offset below 0), SCIO_ECLOSED,
 * SCIO_ESPIPE (a pipe, FIFO or socket), SCIO_ENOMEM, SCIO_EAGAIN (no
 * worker thread). */
SCIO_API int scio_file_seek(scio_file *f, int64_t offset, int whence,
                            int64_t *newpos);

/* Flush the file's data and metadata to its device (fsync(2)).  A
 * checkpoint.  Returns 0, or SCIO_ECANCELED (not flushed), SCIO_EINVAL (f
 * NULL, or an fd that cannot be synced: a pipe), SCIO_ECLOSED, SCIO_EIO,
 * SCIO_ENOSPC, SCIO_EROFS, SCIO_ENOMEM, SCIO_EAGAIN (no worker thread). */
SCIO_API int scio_file_sync(scio_file *f);

/* Flush the file's data, and only the metadata needed to read it back
 * (fdatasync(2)).  A checkpoint.  Returns the codes of scio_file_sync:
 * 0, SCIO_ECANCELED, SCIO_EINVAL, SCIO_ECLOSED, SCIO_EIO, SCIO_ENOSPC,
 * SCIO_EROFS, SCIO_ENOMEM, SCIO_EAGAIN. */
SCIO_API int scio_file_datasync(scio_file *f);

/* Set the file's size to `length` bytes (ftruncate(2): cut, or extended
 * with zeros); the offset does not move.  A checkpoint.  Returns 0, or
 * SCIO_ECANCELED (unchanged), SCIO_EINVAL (f NULL, negative length, not a
 * regular file or not open for writing), SCIO_ECLOSED, SCIO_EFBIG,
 * SCIO_EIO, SCIO_EROFS, SCIO_ENOMEM, SCIO_EAGAIN (no worker thread). */
SCIO_API int scio_file_truncate(scio_file *f, int64_t length);

/* Close the file and free it, always: `f` is gone when this returns,
 * whatever it returns.  Calls of other tasks still running in worker
 * threads are waited for first (shielded); calls that had not started get
 * SCIO_ECLOSED.  close(2) runs in a worker; if the caller is cancelled
 * before that, the fd is closed at once on the loop's thread instead and
 * SCIO_ECANCELED is returned (the file is released all the same).  A
 * checkpoint.  NULL is a no-op returning 0.  Returns 0, or close(2)'s
 * error (SCIO_EIO, SCIO_ENOSPC: data written earlier may be lost; the fd is
 * closed anyway), SCIO_ECANCELED (closed all the same), SCIO_ECLOSED (another
 * task is closing it already: that close releases it). */
SCIO_API int scio_file_close(scio_file *f);

/* The file's fd, still owned by the file (valid until scio_file_close;
 * do not close it), or -1 for NULL.  Not a checkpoint.  Never fails. */
SCIO_API int scio_file_fd(const scio_file *f);

/* ------------------------------------------------------------------------ */
/* File streams                                                              */

/* Open `path` for reading as a receive-only byte stream ("file-read"):
 * scio_receive returns the next bytes and SCIO_EOF at the end of the file;
 * a send is SCIO_ENOSYS.  The open runs in a worker thread (a FIFO waits
 * there for a writer).  Regular files are then read through the worker
 * pool (each receive a checkpoint as scio_file_read); a FIFO, socket or
 * terminal is read on the loop.  The stream answers SCIO_ATTR_FD and
 * SCIO_ATTR_PATH (a copy of path).  On success *out (set to NULL first) is
 * the caller's; scio_close closes the file.  A checkpoint.  Returns 0, or
 * the errors of scio_file_open: SCIO_ENOENT, SCIO_EACCES, SCIO_EISDIR
 * (reading a directory fails here, not at the first receive),
 * SCIO_ENOTDIR, SCIO_EMFILE, SCIO_ENFILE, SCIO_ECANCELED, SCIO_EINVAL,
 * SCIO_ENOMEM, SCIO_EAGAIN. */
SCIO_API int scio_file_read_stream_open(const char *path, scio_stream **out);

/* Wrap the open fd `fd` as a read stream (as scio_file_read_stream_open,
 * without SCIO_ATTR_PATH), which owns fd from now on (made close-on-exec;
 * a pipe, FIFO, socket or terminal is also made non-blocking); on error fd
 * stays the caller's.  On success *out (set to NULL first) is the caller's.
 * Not a checkpoint.  Returns 0, or SCIO_EINVAL (out NULL, fd < 0, or a
 * directory), SCIO_EBADF (fd not open), SCIO_ENOMEM. */
SCIO_API int scio_file_read_stream_from_fd(int fd, scio_stream **out);

/* Open `path` for writing as a send-only byte stream ("file-write"),
 * created (mode 0666 less the umask) if missing, and truncated unless
 * `append` is non-zero (then every send goes to the end).  Each scio_send
 * writes everything or fails; on a regular file a send is all-or-nothing
 * with respect to cancellation (see scio_file_write).  scio_send_eof closes
 * the file (its close error is returned: the data may not be on disk);
 * later sends are SCIO_ECLOSED.  A receive is SCIO_ENOSYS.  SCIO_ATTR_FD
 * (until send_eof) and SCIO_ATTR_PATH (a copy of path) are answered.  On
 * success *out (set to NULL first) is the caller's; scio_close closes the
 * file.  A checkpoint.  Returns 0, or the errors of scio_file_open:
 * SCIO_ENOENT (no such directory), SCIO_EACCES, SCIO_EISDIR, SCIO_ENOTDIR,
 * SCIO_EROFS, SCIO_EMFILE, SCIO_ENFILE, SCIO_ECANCELED, SCIO_EINVAL,
 * SCIO_ENOMEM, SCIO_EAGAIN. */
SCIO_API int scio_file_write_stream_open(const char *path, int append,
                                         scio_stream **out);

/* Wrap the open fd `fd` as a write stream (as scio_file_write_stream_open,
 * without SCIO_ATTR_PATH), which owns fd from now on (made close-on-exec;
 * a pipe, FIFO, socket or terminal is also made non-blocking); on error fd
 * stays the caller's.  On success *out (set to NULL first) is the caller's.
 * Not a checkpoint.  Returns 0, or SCIO_EINVAL (out NULL, fd < 0, or a
 * directory), SCIO_EBADF (fd not open), SCIO_ENOMEM. */
SCIO_API int scio_file_write_stream_from_fd(int fd, scio_stream **out);

/* Move the read position of a read stream over a regular file to byte
 * `offset` from the start (AnyIO's FileReadStream.seek); the next receive
 * reads from there.  Counts as a receive (SCIO_EBUSY while another task
 * receives).  A checkpoint.  Returns 0, or SCIO_ECANCELED (not moved),
 * SCIO_EINVAL (s NULL, not a file read stream, negative offset),
 * SCIO_ESPIPE (the stream reads a pipe, FIFO, socket or terminal),
 * SCIO_ECLOSED, SCIO_EBUSY, SCIO_ENOMEM, SCIO_EAGAIN (no worker thread). */
SCIO_API int scio_file_read_stream_seek(scio_stream *s, int64_t offset);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_FILE_H */
