/* scio — name resolution (c-ares, on the run's loop) and happy-eyeballs TCP
 * connect (RFC 8305).
 *
 * (Branch `resolver`: the lead folds this header into scio/net.h at merge.)
 *
 * Every call here must be made from inside a task of a scio_run.  The
 * resolver is c-ares driven by the run's event loop: its sockets are scio's
 * sockets and its timeouts are scheduler deadlines, so a lookup blocks only
 * the calling task.  Each lookup uses a c-ares channel of its own, created
 * for the call and destroyed before it returns: nothing (memory, sockets,
 * callbacks) outlives a call, cancelled or not.  On first use scio routes
 * c-ares's allocations through scio's allocator (ares_library_init_mem):
 * programs that use c-ares themselves must not install an allocator of
 * their own in c-ares.
 *
 * Errors, in addition to those listed per call:
 *   SCIO_ENOTFOUND  the name does not exist (NXDOMAIN), or has no address
 *                   of the requested family;
 *   SCIO_EDNS       the DNS servers could not give an answer: no reply
 *                   within the timeout and tries, refused, server failure;
 *   SCIO_ECANCELED  an enclosing cancel scope was cancelled;
 *   SCIO_ENOMEM     out of memory.
 * scio_errmsg() carries the resolver's reason, e.g.
 * "resolve db.test: no such host".
 */
#ifndef SCIO_NET_CONNECT_H
#define SCIO_NET_CONNECT_H

#include <stdint.h>
#include <sys/socket.h>

#include "scio/core.h"
#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes of the resolver (the lead moves them into SCIO_ERRNO_MAP of
 * scio/error.h at merge, which gives them names and texts). */
enum {
  SCIO_ENOTFOUND = -4020, /* "no such host" */
  SCIO_EDNS = -4021       /* "DNS lookup failed" */
};

/* Which DNS servers to ask, and how patiently.  All-zero: the system's
 * configuration (/etc/resolv.conf; c-ares defaults where it says nothing).
 * /etc/hosts is always consulted first. */
typedef struct scio_dns_opts {
  /* Comma-separated servers, each "host" or "host:port", IPv6 as
   * "[2001:db8::53]:5353": e.g. "127.0.0.1:5353,[::1]:53".  NULL: the
   * system's servers. */
  const char *servers;
  /* Seconds to wait for an answer to one try (c-ares doubles it on later
   * rounds); 0: the system's (5 s).  Negative or NaN is SCIO_EINVAL. */
  double timeout;
  /* How many rounds of tries over the servers; 0: the system's (4). */
  int tries;
} scio_dns_opts;

/* One address of a lookup's result. */
typedef struct scio_addrinfo {
  struct scio_addrinfo *next;
  int family;             /* AF_INET or AF_INET6 */
  int socktype;           /* from the options (0 if none was asked for) */
  int protocol;           /* from the options */
  int ttl;                /* seconds the DNS answer may be cached; 0 for
                             /etc/hosts and numeric hosts */
  socklen_t addrlen;
  struct sockaddr *addr;  /* points into this node */
  char *canonname;        /* first node only, with SCIO_AI_CANONNAME */
} scio_addrinfo;

enum scio_ai_flags {
  SCIO_AI_CANONNAME = 1u << 0,   /* fill the first node's canonname */
  SCIO_AI_NUMERICHOST = 1u << 1, /* host must be a numeric address */
  SCIO_AI_NUMERICSERV = 1u << 2, /* service must be a port number */
  SCIO_AI_NOSORT = 1u << 3       /* keep the servers' order (no RFC 6724
                                    sorting) */
};

typedef struct scio_addrinfo_opts {
  int family;    /* AF_UNSPEC (0: both, waiting for both), AF_INET, AF_INET6 */
  int socktype;  /* e.g. SOCK_STREAM; 0: any */
  int protocol;  /* e.g. IPPROTO_TCP; 0: any */
  unsigned flags; /* enum scio_ai_flags */
  scio_dns_opts dns;
} scio_addrinfo_opts;

/* Resolve `host` (a name, or a numeric IPv4/IPv6 address) and `service`
 * (a port number or a name from /etc/services; NULL: port 0) to a list of
 * addresses, /etc/hosts first, then DNS.  opts may be NULL (defaults).
 * On success *out is a list of at least one node, owned by the caller and
 * freed with scio_freeaddrinfo(); on error *out is NULL.  A checkpoint: it
 * yields at least once; a cancelled lookup frees everything it had started
 * before it returns.  Returns 0 or:
 *   SCIO_EINVAL     host NULL or empty, out NULL, bad options, bad server
 *                   list, unknown service, misformed name;
 *   SCIO_ENOTFOUND, SCIO_EDNS, SCIO_ECANCELED, SCIO_ENOMEM (see above). */
SCIO_API int scio_getaddrinfo(const char *host, const char *service,
                              const scio_addrinfo_opts *opts,
                              scio_addrinfo **out);

/* Free a list from scio_getaddrinfo (NULL is allowed).  Not a checkpoint;
 * may be called outside a run. */
SCIO_API void scio_freeaddrinfo(scio_addrinfo *ai);

enum scio_ni_flags {
  SCIO_NI_NUMERICHOST = 1u << 0, /* the numeric form of the address */
  SCIO_NI_NUMERICSERV = 1u << 1, /* the port number, not a service name */
  SCIO_NI_NAMEREQD = 1u << 2,    /* SCIO_ENOTFOUND if there is no name */
  SCIO_NI_NOFQDN = 1u << 3,      /* only the first label of local names */
  SCIO_NI_DGRAM = 1u << 4        /* service names of UDP, not TCP */
};

typedef struct scio_nameinfo_opts {
  unsigned flags; /* enum scio_ni_flags */
  scio_dns_opts dns;
} scio_nameinfo_opts;

/* The name of an address (reverse DNS; /etc/hosts first) and of its port.
 * Pass host = NULL (or hostlen 0) to skip the name, serv = NULL to skip the
 * service.  Without SCIO_NI_NAMEREQD an address without a name gives its
 * numeric form.  Results are NUL-terminated and truncated to the buffers.
 * A checkpoint; a cancelled lookup frees everything before it returns.
 * Returns 0 or SCIO_EINVAL (bad address or arguments), SCIO_ENOTFOUND,
 * SCIO_EDNS, SCIO_ECANCELED, SCIO_ENOMEM. */
SCIO_API int scio_getnameinfo(const struct sockaddr *addr, socklen_t addrlen,
                              const scio_nameinfo_opts *opts, char *host,
                              size_t hostlen, char *serv, size_t servlen);

/* ------------------------------------------------------------------------ */
/* Happy eyeballs                                                            */

/* What a connect reports to its observer (scio_connect_opts.on_event), in
 * order of time. */
enum scio_connect_event_kind {
  SCIO_CONNECT_RESOLVED = 1, /* one family's lookup ended: count addresses,
                                or error (count 0) */
  SCIO_CONNECT_ATTEMPT,      /* an attempt to addr starts */
  SCIO_CONNECT_SLOW,         /* the attempt to addr has not finished within
                                the delay: the next one starts beside it */
  SCIO_CONNECT_FAILED,       /* the attempt to addr failed with error */
  SCIO_CONNECT_CONNECTED,    /* the attempt to addr won */
  SCIO_CONNECT_ABANDONED     /* the attempt to addr lost: closed */
};

typedef struct scio_connect_event {
  int kind;                    /* enum scio_connect_event_kind */
  int family;                  /* AF_INET6 or AF_INET */
  const struct sockaddr *addr; /* NULL for SCIO_CONNECT_RESOLVED */
  socklen_t addrlen;
  const char *addr_text;       /* "[2001:db8::2]:8000", "192.0.2.2:8000";
                                  "" for SCIO_CONNECT_RESOLVED */
  int error;                   /* FAILED, RESOLVED: 0 or a negative code */
  const char *error_text;      /* FAILED, RESOLVED: "connection refused" */
  int count;                   /* RESOLVED: addresses received */
  double elapsed;              /* seconds since the connect started */
} scio_connect_event;

/* An observer of a connect's progress.  It runs in one of the connect's
 * tasks: it must not block (no checkpoints); the pointers in ev are valid
 * during the call only. */
typedef void (*scio_connect_event_cb)(void *arg, const scio_connect_event *ev);

typedef struct scio_connect_opts {
  /* Bind every attempt to this local IP address (numeric; the port is
   * chosen at connect time).  Only addresses of its family are tried.
   * NULL: the kernel chooses. */
  const char *local_address;
  /* Seconds an attempt gets before the next one starts beside it (RFC 8305
   * "Connection Attempt Delay"); an attempt that fails starts the next at
   * once.  0: the default, 0.25 s.  INFINITY: one attempt at a time.
   * Negative or NaN is SCIO_EINVAL. */
  double happy_eyeballs_delay;
  scio_dns_opts dns;
  scio_connect_event_cb on_event; /* may be NULL */
  void *on_event_arg;
  /* Flags for the socket stream (as scio_socket_stream_from_fd); 0: the
   * defaults, TCP_NODELAY on. */
  unsigned stream_flags;
  /* Reserved for the TLS settings of the TLS layer; must be NULL. */
  const void *tls;
} scio_connect_opts;

/* Connect to host:port over TCP with happy eyeballs (RFC 8305): the AAAA
 * and A lookups run in parallel; connecting starts as soon as the first
 * usable answer arrives (IPv6 preferred: when A arrives first, AAAA gets
 * 50 ms more); addresses alternate between the families, IPv6 first;
 * each attempt gets happy_eyeballs_delay before the next one starts beside
 * it, and a failed attempt starts the next at once.  The first attempt to
 * connect wins and every other socket is closed.  A numeric host (IPv4,
 * IPv6, "[IPv6]") skips DNS.  opts may be NULL.
 * On success *out is a socket stream owned by the caller; on error NULL and
 * every socket opened is closed.  A checkpoint.  Returns 0 or:
 *   SCIO_EINVAL      host NULL/empty, out NULL, bad options;
 *   SCIO_ENOTFOUND, SCIO_EDNS  no address could be had (the lookups'
 *                    reasons are in scio_errmsg());
 *   the error of the attempt that failed last, when every attempt failed
 *   (SCIO_ENOMEM if any failed for want of memory), e.g.
 *   -ECONNREFUSED, SCIO_ETIMEDOUT, -ENETUNREACH; scio_errmsg() lists every
 *   attempt: "connect both.test:8000: 2 attempts failed: [2001:db8::2]:8000
 *   timed out; 192.0.2.2:8000 connection refused";
 *   SCIO_ECANCELED   cancelled; every socket opened so far is closed;
 *   SCIO_ENOMEM. */
SCIO_API int scio_connect_tcp(const char *host, uint16_t port,
                              const scio_connect_opts *opts,
                              scio_stream **out);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_NET_CONNECT_H */
