/* Private: what the files of src/process share. */
#ifndef SCIO_PROCESS_INTERNAL_H
#define SCIO_PROCESS_INTERNAL_H

#include <errno.h>
#include <unistd.h>

#include "core/layer.h"
#include "scio/process.h"
#include "streams/fdstream.h"
#include "streams/stream_internal.h"

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

#endif
