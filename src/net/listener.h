/* Private: the listener object, shared by listener.c (accept, close),
 * tcp_listen.c, unix.c and serve.c. */
#ifndef SCIO_NET_LISTENER_H
#define SCIO_NET_LISTENER_H

#include <sys/types.h>

#include "net_internal.h"

typedef struct scio__lsock {
  int fd;
  int family;
  /* Do accepted TCP sockets inherit TCP_NODELAY and TCP_INQ from this
   * listening socket?  0 until the first accept finds out, then 1 or -1
   * (1: accepted streams need no setsockopt). */
  signed char inherits;
  unsigned char accepting;  /* a task accepts on this socket alone */
} scio__lsock;

struct scio__accept_wait;

struct scio_listener {
  scio__lsock *socks;
  int n;
  int next;                 /* where the next accept starts: fairness */
  unsigned stream_flags;    /* for accepted streams */
  struct scio__accept_wait *wait; /* the task blocked in accept, if any */
  unsigned inflight;        /* accept/serve calls running inside */
  int sock_accepting;       /* sockets with a task accepting on it alone */
  unsigned char closed, free_pending, accepting;
  /* A UNIX listener's socket file, removed on close if it is still ours. */
  char *path;
  dev_t dev;
  ino_t ino;
};

/* A listener over n sockets (fds -1 until set); NULL when out of memory. */
scio_listener *scio__listener_new(int n);
/* Free a listener that was never handed out, closing the sockets set. */
void scio__listener_discard(scio_listener *l);

/* socket + options + bind + listen: the fd, or a negative code (detail
 * set, nothing left open).  For AF_INET6, IPV6_V6ONLY is set. */
int scio__listen_socket(const struct sockaddr *sa, socklen_t len,
                        const scio_listen_opts *o, const char *what);

/* scio_listener_accept that also stores the peer's address, which
 * accept(2) gives for free, in *peer (zeroed first); serve reports it.
 * which >= 0 accepts on socket `which` alone (SCIO_EBUSY while a task
 * accepts on every socket, or another on this one); -1 on any. */
int scio__listener_accept_peer(scio_listener *l, int which, scio_stream **out,
                               struct sockaddr_storage *peer);

/* Serve and accept use these to keep the listener alive while inside. */
void scio__listener_enter(scio_listener *l);
void scio__listener_leave(scio_listener *l);

#endif
