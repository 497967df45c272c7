/* Private: what the file streams (src/streams/filestream.c) use of
 * scio_file (src/thread/file.c). */
#ifndef SCIO_THREAD_FILE_INTERNAL_H
#define SCIO_THREAD_FILE_INTERNAL_H

#include <sys/stat.h>

#include "scio/file.h"

/* scio_file_open, with the file's fstat(2) taken in the same worker call
 * into *st.  Same results as scio_file_open. */
int scio__file_open_stat(const char *path, int flags, mode_t mode,
                         scio_file **out, struct stat *st);

/* Free f without closing its fd, and return the fd, now the caller's.  f
 * must have no call in flight. */
int scio__file_release(scio_file *f);

/* Whether an fd of this type is run on the loop (a FIFO, socket or
 * terminal) rather than through the worker pool. */
int scio__file_on_loop(int fd, const struct stat *st);

#endif
