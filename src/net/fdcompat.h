/* SHIM — the lead deletes this file at merge (branch fdio implements the fd
 * contract in the core: src/core/layer.h).  It provides exactly the
 * contract's names over today's core, so that every socket call in src/net
 * is written against the contract and needs no change after the merge:
 * replace `#include "fdcompat.h"` by `#include "core/layer.h"`.
 *
 * Differences from the real contract, today only:
 *   - scio__fd_wait never returns SCIO__FD_NOPARK: today it returns 0 also
 *     when it did not park (a remembered edge), so a receive that meets a
 *     remembered edge may skip its yield;
 *   - the source counting is today's nfd_events + scio__tick_needed. */
#ifndef SCIO_NET_FDCOMPAT_H
#define SCIO_NET_FDCOMPAT_H

#include <errno.h>
#include <unistd.h>

#include "core/internal.h"

#ifndef SCIO__FD_NOPARK
#define SCIO__FD_NOPARK 1

/* Forget fd's registration (waking its waiters with SCIO_ECLOSED), then
 * close it. */
static inline int scio__fd_close(int fd) {
  scio__loop *l = scio__loop_current();
  if (l)
    scio__fd_forget(l, fd, SCIO_ECLOSED);
  if (close(fd) < 0 && errno != EINTR)
    return -errno;
  return 0;
}

static inline void scio__loop_source_add(scio__loop *l) {
  l->nfd_events++;
  scio__tick_needed(l);
}

static inline void scio__loop_source_remove(scio__loop *l) {
  l->nfd_events--;
}
#endif

/* May a receive wait for readiness right after a short read (without
 * first reading to EAGAIN)?  Only if the wait cannot miss an end of
 * stream: a short TCP read can consume the peer's FIN together with the
 * last bytes (tcp_recvmsg eats a FIN that follows the data), after which
 * the socket stays readable but an edge-triggered registration never
 * fires again, so a wait would hang forever.  Level-triggered backends
 * report the EOF as readable, so there the shortcut is safe.  With epoll it
 * needs the registration to watch EPOLLRDHUP (libevent's EV_CLOSED) and the
 * wait to report that the peer's FIN was seen; the contract does not carry
 * that yet, so the shortcut is off on edge-triggered backends. */
#ifndef SCIO__FD_SHORT_READ_WAIT
#define SCIO__FD_SHORT_READ_WAIT() (!scio__loop_current()->edge_triggered)
#endif

#endif
