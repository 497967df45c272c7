/* tests/net_env.c -- see net_env.h. */
#include "net_env.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char zone[] =
    "listen-address=127.0.0.1\n"
    "bind-interfaces\n"
    "no-resolv\n"
    "no-hosts\n"
    "local=/test/\n"
    "keep-in-foreground\n"
    "log-facility=-\n"
    "pid-file=\n"
    "cache-size=0\n"
    "local-ttl=60\n"
    /* stay root: inside a user namespace changing group fails */
    "user=root\n"
    "group=\n"
    "host-record=both.test,127.0.0.1,::1\n"
    "host-record=v4only.test,127.0.0.1\n"
    "host-record=v6only.test,::1\n"
    "cname=alias.test,both.test\n"
    "address=/multi.test/127.0.0.2\n"
    "address=/multi.test/127.0.0.3\n"
    "address=/multi.test/::1\n"
    "host-record=v6hang.test,192.0.2.2,2001:db8::2\n"
    "address=/many.test/2001:db8::2\n"
    "address=/many.test/2001:db8::3\n"
    "address=/many.test/192.0.2.2\n"
    "address=/many.test/192.0.2.3\n"
    "host-record=rev.test,192.0.2.77\n";

int net_free_port(int udp) {
  int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* Bound by someone else yet?  (The server is ready once it has bound: a
 * query sent after that waits in its socket buffer.) */
static int udp_port_taken(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int taken = bind(fd, (struct sockaddr *)&a, sizeof a) < 0 &&
              errno == EADDRINUSE;
  close(fd);
  return taken;
}

static pid_t spawn(char *const argv[]) {
  pid_t parent = getpid();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    if (!getenv("NET_ENV_VERBOSE"))
      dup2(null, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* 0 once pid has bound the UDP port; the exit status (>= 0) if it exited
 * first.  Fails the test if it neither binds nor exits within 5 s. */
static int wait_bound_or_exit(pid_t pid, int port, const char *what) {
  for (int i = 0; i < 500; i++) {
    if (udp_port_taken(port))
      return -1;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return st;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  ck_abort_msg("%s did not bind 127.0.0.1:%d within 5 s", what, port);
  return -1;
}

static void wait_bound(pid_t pid, int port, const char *what) {
  int st = wait_bound_or_exit(pid, port, what);
  if (st >= 0)
    ck_abort_msg("%s exited at start (status 0x%x): is it installed? "
                 "(Debian: dnsmasq-base, python3)",
                 what, (unsigned)st);
}

/* ../shared/testing/NAME relative to the project root: $SCIO_SHARED_DIR
 * when set (build.sh sets it, so that `make distcheck', which builds from
 * an unpacked tarball elsewhere, finds it too), else beside the tests'
 * srcdir (which the automake harness exports) or the configure-time path. */
static void shared_file(const char *name, char *buf, size_t cap) {
  const char *dir = getenv("SCIO_SHARED_DIR");
  if (dir) {
    snprintf(buf, cap, "%s/testing/%s", dir, name);
    if (access(buf, R_OK) == 0)
      return;
  }
  const char *roots[] = {getenv("srcdir"), SCIO_TEST_TOP_SRCDIR};
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
    if (!roots[i])
      continue;
    snprintf(buf, cap, "%s/../shared/testing/%s", roots[i], name);
    if (access(buf, R_OK) == 0)
      return;
  }
  ck_abort_msg("../shared/testing/%s not found beside the project root", name);
}

static void start_proxy(net_dns *d, const char *proxy_mode, int delay_ms);

/* dnsmasq on a free port.  The port is free for UDP when picked, but
 * dnsmasq binds TCP on it too, where a connection of another test may
 * hold it by then ("Address already in use"): try other ports. */
static int dns_try_port(net_dns *d, int port);

void net_dns_start(net_dns *d, const char *proxy_mode, int delay_ms) {
  int st = 0;
  for (int tries = 0; tries < 10; tries++)
    if ((st = dns_try_port(d, net_free_port(1))) < 0)
      break;
  if (st >= 0)
    ck_abort_msg("dnsmasq exited at start 10 times (status 0x%x): is it "
                 "installed? (Debian: dnsmasq-base)",
                 (unsigned)st);
  if (proxy_mode)
    start_proxy(d, proxy_mode, delay_ms);
}

void net_dns_start_port(net_dns *d, int port) {
  int st = dns_try_port(d, port);
  if (st >= 0)
    ck_abort_msg("dnsmasq exited at start (status 0x%x): is it installed? "
                 "(Debian: dnsmasq-base)",
                 (unsigned)st);
}

/* -1 when dnsmasq runs on `port`, else its exit status. */
static int dns_try_port(net_dns *d, int port) {
  memset(d, 0, sizeof *d);
  d->dnsmasq_port = port;
  snprintf(d->conf, sizeof d->conf, "/tmp/scio-dnsmasq-%d.conf", getpid());
  FILE *f = fopen(d->conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "port=%d\n%s", d->dnsmasq_port, zone);
  fclose(f);
  char conf_arg[160];
  snprintf(conf_arg, sizeof conf_arg, "--conf-file=%s", d->conf);
  char *dargv[] = {"dnsmasq", conf_arg, NULL};
  d->dnsmasq = spawn(dargv);
  int st = wait_bound_or_exit(d->dnsmasq, d->dnsmasq_port, "dnsmasq");
  unlink(d->conf); /* read at start: nothing is left behind if the test dies */
  if (st >= 0) {
    d->dnsmasq = 0;
    return st;
  }
  d->port = d->dnsmasq_port;
  snprintf(d->servers, sizeof d->servers, "127.0.0.1:%d", d->port);
  return -1;
}

static void start_proxy(net_dns *d, const char *proxy_mode, int delay_ms) {
  {
    char script[512], lp[16], up[16], ms[16];
    shared_file("slowdns.py", script, sizeof script);
    d->port = net_free_port(1);
    snprintf(lp, sizeof lp, "%d", d->port);
    snprintf(up, sizeof up, "%d", d->dnsmasq_port);
    snprintf(ms, sizeof ms, "%d", delay_ms);
    char *pargv[] = {"python3", script, lp, up, ms, (char *)proxy_mode, NULL};
    d->proxy = spawn(pargv);
    wait_bound(d->proxy, d->port, "slowdns.py");
  }
  snprintf(d->servers, sizeof d->servers, "127.0.0.1:%d", d->port);
}

static void stop(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
}

void net_dns_stop(net_dns *d) {
  stop(d->proxy);
  stop(d->dnsmasq);
  unlink(d->conf);
  d->proxy = d->dnsmasq = 0;
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void sh(const char *cmd) {
  int st = system(cmd);
  ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "namespace setup failed (status 0x%x): %s\n"
                "(needs iproute2 and nftables; Debian: iproute2 nftables)",
                (unsigned)st, cmd);
}

void net_private_netns(const char *setup) {
  if (geteuid() == 0) {
    ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s",
                  strerror(errno));
  } else {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    ck_assert_msg(unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0,
                  "unshare(CLONE_NEWUSER|CLONE_NEWNET): %s "
                  "(user namespaces disabled?)",
                  strerror(errno));
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    write_file("/proc/self/gid_map", map);
  }
  sh("ip link set lo up");
  if (setup)
    sh(setup);
}

void net_netns_v6_hang(int port) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "ip addr add 2001:db8::2/128 dev lo nodad && "
           "ip addr add 2001:db8::3/128 dev lo nodad && "
           "ip addr add 192.0.2.2/32 dev lo && "
           "ip addr add 192.0.2.3/32 dev lo && "
           "nft add table inet he && "
           "nft add chain inet he input '{ type filter hook input priority 0; }' "
           "&& nft add rule inet he input ip6 daddr 2001:db8::2 tcp dport %d "
           "tcp flags syn drop",
           port);
  net_private_netns(cmd);
}

static void bind_text(const char *text, const char *target) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/scio-etc-%d-XXXXXX", getpid());
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  ck_assert_msg(mount(path, target, "none", MS_BIND, NULL) == 0,
                "bind-mount over %s: %s", target, strerror(errno));
  unlink(path); /* the mount keeps it */
}

void net_private_etc(const char *resolv_conf, const char *hosts) {
  if (geteuid() == 0)
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s",
                  strerror(errno));
  net_private_netns(NULL);
  if (geteuid() != 0)
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s",
                  strerror(errno));
  ck_assert_int_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0);
  bind_text(resolv_conf, "/etc/resolv.conf");
  bind_text(hosts, "/etc/hosts");
}

double net_slack(double seconds) {
  const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
  double k = m ? atof(m) : 1;
  return seconds * (k > 1 ? k : 1);
}

int net_count_fds(void) {
  int n = 0;
  DIR *dir = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(dir);
  while (readdir(dir))
    n++;
  closedir(dir);
  return n - 3; /* ".", ".." and the DIR's own fd */
}

int net_listen(const char *addr, int port, int *port_out) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (void *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    ck_assert_int_eq(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
    len = sizeof *a;
  } else {
    struct sockaddr_in *a = (void *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    ck_assert_int_eq(inet_pton(AF_INET, addr, &a->sin_addr), 1);
    len = sizeof *a;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  ck_assert_msg(bind(fd, (struct sockaddr *)&ss, len) == 0, "bind %s:%d: %s",
                addr, port, strerror(errno));
  ck_assert_int_eq(listen(fd, 128), 0);
  if (port_out) {
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port_out = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  return fd;
}
