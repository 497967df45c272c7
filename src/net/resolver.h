/* Private: one c-ares channel driven by the calling task.
 *
 * c-ares 1.18 cannot cancel one query of a shared channel (ares_cancel
 * ends them all) and has no clock hook, so each lookup gets a channel of
 * its own, created for the call and destroyed before the call returns:
 * cancellation is then ares_destroy, synchronous, and no c-ares callback
 * can run after the caller's frame is gone.  The channel's sockets are
 * made and closed through scio (ares_set_socket_functions; close is
 * scio__fd_close); each has one persistent libevent event, counted with
 * scio__loop_source_add/remove, whose callback only wakes the task; the
 * task calls ares_process_fd itself, so c-ares callbacks run on the task's
 * stack.  c-ares's timeouts become the deadline of a cancel scope around
 * the task's wait.
 */
#ifndef SCIO_NET_RESOLVER_H
#define SCIO_NET_RESOLVER_H

#include <sys/select.h> /* ares.h 1.18 uses fd_set without including it */

#include <ares.h>

#include "scio/net.h"

#include "core/layer.h"

typedef struct scio__dns_sock scio__dns_sock;

typedef struct scio__dns {
  ares_channel ch;
  scio__loop *loop;
  scio__dns_sock *socks;  /* sockets c-ares asked us to watch */
  scio__task *waiter;     /* the task parked in scio__dns_run */
  int pending;            /* queries whose callback has not run yet */
  int oom;                /* a socket could not be watched */
  int yielded;            /* scio__dns_run parked at least once */
  unsigned long nomem0;   /* c-ares allocation failures before the open */
} scio__dns;

/* A lookup's final c-ares status: ARES_ENOMEM instead of a failure if
 * c-ares ran out of memory meanwhile (1.18 sometimes turns that into a
 * dropped answer and a timeout). */
int scio__dns_status(scio__dns *d, int status);

/* Create d's channel with options o (NULL: the system's).  `what` starts
 * error messages ("resolve db.test").  Returns 0, or SCIO_EINVAL (bad
 * options or server list), SCIO_ENOMEM, SCIO_EDNS (c-ares could not
 * initialise, e.g. an unreadable resolv.conf). */
int scio__dns_open(scio__dns *d, const scio_dns_opts *o, const char *what);

/* Drive the channel until d->pending is 0 (every query callback has run,
 * each decrementing it).  Returns 0, SCIO_ECANCELED (the caller must then
 * scio__dns_close, which ends the queries) or SCIO_ENOMEM. */
int scio__dns_run(scio__dns *d);

/* Destroy the channel: pending queries end (their callbacks run now, with
 * ARES_EDESTRUCTION), every socket is closed.  Not a checkpoint. */
void scio__dns_close(scio__dns *d);

/* The scio code for a c-ares status, with the detail "what: reason" set
 * for scio_errmsg(). */
int scio__dns_error(int status, const char *what);

/* The checkpoint rule for a lookup that is over: yield once if the
 * channel never parked (an answer from /etc/hosts or a numeric host). */
void scio__dns_finish_checkpoint(scio__dns *d);

/* Resolve host for one family (AF_INET6 or AF_INET) for TCP on port, as
 * happy eyeballs needs it: scio_getaddrinfo with that family.  Same
 * contract as scio_getaddrinfo. */
int scio__resolve_family(const char *host, uint16_t port, int family,
                         const scio_dns_opts *dns, scio_addrinfo **out);

#endif
