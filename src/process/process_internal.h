/* Private: what the files of src/process share. */
#ifndef SCIO_PROCESS_INTERNAL_H
#define SCIO_PROCESS_INTERNAL_H

#include <errno.h>
#include <unistd.h>

#include "core/layer.h"
#include "scio/process.h"

/* Directions of a pipe stream (fdstream.c). */
enum { SCIO__PIPE_READ = 1, SCIO__PIPE_WRITE = 2 };

/* Wrap fd (already non-blocking and close-on-exec) as a pipe stream of the
 * given directions; on success the stream owns fd.  0 or SCIO_ENOMEM. */
int scio__pipe_wrap(int fd, int dir, scio_stream **out);

/* Start argv as opts says (spawn.c).  defaults[i] replaces
 * SCIO_PROCESS_DEFAULT for fd i.  On success *pid is the child and ours[i]
 * our non-blocking close-on-exec end of fd i's pipe (-1 when fd i is not
 * a pipe).  0 or a negative error (detail set; nothing left open). */
int scio__proc_spawn(const char *const *argv, const scio_process_opts *o,
                const int defaults[3], pid_t *pid, int ours[3]);

/* scio_open_process with defaults[i] for SCIO_PROCESS_DEFAULT (process.c);
 * arguments already checked. */
int scio__process_open(const char *const *argv, const scio_process_opts *o,
                       const int defaults[3], scio_process **out);

/* scio_ostream_close without the checkpoint (sigwatch.c). */
void scio__ostream_close_nowait(scio_ostream *s);

/* scio_close without the checkpoint, for a stream the process owns: the
 * same effects (the free deferred while a call is inside it).  A stream
 * already being closed is left to that close. */
void scio__stream_close_nowait(scio_stream *s);

#endif
