/* Private: pipe, FIFO and terminal fds as byte streams (fdstream.c), for
 * the process layer (a child's pipes) and the file layer (a FIFO or a
 * terminal opened by path). */
#ifndef SCIO_STREAMS_FDSTREAM_H
#define SCIO_STREAMS_FDSTREAM_H

#include "scio/stream.h"

/* Directions of a pipe stream. */
enum { SCIO__PIPE_READ = 1, SCIO__PIPE_WRITE = 2 };

/* Wrap fd (already non-blocking and close-on-exec) as a pipe stream of the
 * given directions; on success the stream owns fd.  0 or SCIO_ENOMEM. */
int scio__pipe_wrap(int fd, int dir, scio_stream **out);

#endif
