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

#endif
