/* SHIM -- DELETE AT MERGE.
 *
 * The resolver and happy-eyeballs code (src/net/resolver*.c, connect*.c) is
 * written against the fd contract of branch `fdio` (core/layer.h):
 * scio__fd_close, scio__loop_source_add/remove and SCIO__FD_NOPARK.  Today's
 * core does not have them yet; this header provides exactly those names over
 * it so the branch builds and tests on its own.  When fdio is merged, the
 * lead deletes this file and replaces its includes by "core/layer.h"
 * (nothing else changes: no code here is used under any other name).
 */
#ifndef SCIO_NET_FDCOMPAT_RESOLVER_H
#define SCIO_NET_FDCOMPAT_RESOLVER_H

#include <errno.h>
#include <unistd.h>

#include "core/internal.h"

#ifndef SCIO__FD_NOPARK
#define SCIO__FD_NOPARK 1
#endif

/* Forget fd's registration (waking its waiters with SCIO_ECLOSED), then
 * close it.  0 or the negative errno of close (EINTR counts as closed). */
static inline int scio__fd_close(int fd) {
  scio__loop *l = scio__loop_current();
  if (l)
    scio__fd_forget(l, fd, SCIO_ECLOSED);
  if (close(fd) < 0 && errno != EINTR)
    return -errno;
  return 0;
}

/* Count a libevent event that became pending / stopped being pending, so
 * the scheduler polls I/O while it exists. */
static inline void scio__loop_source_add(scio__loop *l) {
  l->nfd_events++;
  scio__tick_needed(l);
}

static inline void scio__loop_source_remove(scio__loop *l) { l->nfd_events--; }

#endif
