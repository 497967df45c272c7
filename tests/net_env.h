/* tests/net_env.h -- the real world for the resolver and connect tests: a
 * dnsmasq (and slowdns.py in front of it) started by the test on 127.0.0.1
 * at a free port and stopped by PID, a private network namespace with
 * test addresses and nft rules, and fd counting.
 *
 * A tool that is missing (dnsmasq, nft, ip, python3, unshare rights) fails
 * the test loudly: these tests never skip.
 */
#ifndef SCIO_TESTS_NET_ENV_H
#define SCIO_TESTS_NET_ENV_H

#include <sys/types.h>

typedef struct net_dns {
  pid_t dnsmasq, proxy;
  int port;        /* where clients ask: the proxy's, else dnsmasq's */
  int dnsmasq_port;
  char servers[64]; /* "127.0.0.1:PORT", for scio_dns_opts.servers */
  char conf[128];
} net_dns;

/* The zone every test sees (names under .test; other names are REFUSED):
 *   both.test     127.0.0.1, ::1
 *   v4only.test   127.0.0.1          v6only.test  ::1
 *   alias.test    CNAME both.test
 *   multi.test    127.0.0.2, 127.0.0.3, ::1
 *   v6hang.test   192.0.2.2, 2001:db8::2      (for the namespace tests)
 *   many.test     2001:db8::2, 2001:db8::3, 192.0.2.2, 192.0.2.3
 *   rev.test      192.0.2.77 (and its PTR record)
 * Start dnsmasq; with proxy_mode ("delay", "drop", "drop-aaaa") put
 * ../shared/testing/slowdns.py with delay_ms in front.  Fails the test on
 * error.  The processes die with the test process (PR_SET_PDEATHSIG). */
void net_dns_start(net_dns *d, const char *proxy_mode, int delay_ms);
/* The same on a given port (53 for the system-configuration tests), no
 * proxy. */
void net_dns_start_port(net_dns *d, int port);
void net_dns_stop(net_dns *d);

/* A free UDP (udp = 1) or TCP port on 127.0.0.1. */
int net_free_port(int udp);

/* Move the calling process (a forked Check test) into a private network
 * namespace (as root: CLONE_NEWNET; otherwise with a user namespace too)
 * and run the shell commands `setup` in it (lo is brought up first).
 * Fails the test loudly if anything is missing. */
void net_private_netns(const char *setup);

/* The test addresses of recipe 1.2 on lo, with SYNs to [2001:db8::2]:port
 * dropped (a silently hanging IPv6 address): both 2001:db8::2 and
 * 192.0.2.2 reach a listener bound to [::]:port. */
void net_netns_v6_hang(int port);

/* A private mount and network namespace in which /etc/resolv.conf and
 * /etc/hosts are the given texts (bind mounts of temporary files; the
 * real ones are untouched). */
void net_private_etc(const char *resolv_conf, const char *hosts);

/* A real-time tolerance, scaled by CK_TIMEOUT_MULTIPLIER (sanitizer and
 * valgrind runs set it). */
double net_slack(double seconds);

/* Open file descriptors of the process. */
int net_count_fds(void);

/* A listening TCP socket on addr ("::" is dual-stack) and port (0: free);
 * *port_out gets the port. */
int net_listen(const char *addr, int port, int *port_out);

#endif
