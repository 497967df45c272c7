/* bench/he_fallback.c -- `he_fallback`: seconds from the start of a
 * happy-eyeballs connect to connected, for a name whose IPv6 address
 * silently drops SYNs (RFC 8305's case).  Target: the 0.25 s delay + 10 ms.
 *
 * The program moves itself into a private network namespace (as root:
 * unshare(CLONE_NEWNET); otherwise with a user namespace), puts 2001:db8::2
 * and 192.0.2.2 on lo with an nft rule dropping SYNs to [2001:db8::2]:8000,
 * listens on [::]:8000 and serves the name from a dnsmasq it starts in the
 * namespace (stopped by PID at exit).  Needs iproute2, nftables and
 * dnsmasq-base.
 *
 * It times scio__connect_tcp_fd, the engine of scio_connect_tcp (the
 * public call adds only the wrapping of the fd in a stream; it links once
 * branch `sockets` is merged).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#include "core/internal.h"
#include "net/connect.h"
#include "core/layer.h"

#define PORT 8000
#define DNS_PORT 5353

static void die(const char *what) {
  fprintf(stderr, "he_fallback: %s\n", what);
  exit(1);
}

static void sh(const char *cmd) {
  int st = system(cmd);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "he_fallback: failed: %s\n", cmd);
    exit(1);
  }
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    die(path);
  close(fd);
}

static void private_netns(void) {
  if (geteuid() == 0) {
    if (unshare(CLONE_NEWNET) < 0)
      die("unshare(CLONE_NEWNET) failed");
  } else {
    char map[64];
    unsigned uid = geteuid(), gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
      die("unshare(CLONE_NEWUSER|CLONE_NEWNET) failed");
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", gid);
    write_file("/proc/self/gid_map", map);
  }
  sh("ip link set lo up && "
     "ip addr add 2001:db8::2/128 dev lo nodad && "
     "ip addr add 192.0.2.2/32 dev lo && "
     "nft add table inet he && "
     "nft add chain inet he input '{ type filter hook input priority 0; }' && "
     "nft add rule inet he input ip6 daddr 2001:db8::2 tcp dport 8000 "
     "tcp flags syn drop");
}

static pid_t start_dnsmasq(void) {
  char conf[64];
  snprintf(conf, sizeof conf, "/tmp/scio-he-bench-%d.conf", getpid());
  FILE *f = fopen(conf, "w");
  if (!f)
    die("cannot write the dnsmasq configuration");
  fprintf(f, "port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\n"
             "no-hosts\nlocal=/test/\nkeep-in-foreground\nlog-facility=-\n"
             "pid-file=\nuser=root\ngroup=\n"
             "host-record=v6hang.test,192.0.2.2,2001:db8::2\n",
          DNS_PORT);
  fclose(f);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    char arg[96];
    snprintf(arg, sizeof arg, "--conf-file=%s", conf);
    execlp("dnsmasq", "dnsmasq", arg, (char *)NULL);
    _exit(127);
  }
  /* ready once it has bound its port */
  for (int i = 0; i < 500; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(DNS_PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int taken = bind(fd, (struct sockaddr *)&a, sizeof a) < 0;
    close(fd);
    if (taken) {
      unlink(conf);
      return pid;
    }
    if (waitpid(pid, NULL, WNOHANG) == pid)
      die("dnsmasq did not start (Debian: dnsmasq-base)");
    usleep(10000);
  }
  die("dnsmasq did not bind its port");
  return -1;
}

static int listen_dual(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0), zero = 0, one = 1;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(PORT)};
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0)
    die("cannot listen on [::]:8000");
  return fd;
}

static int accept_all(int lfd) {
  int c;
  while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
    close(c);
  return 0;
}

static int lfd;

/* One connect, timed from its start to connected. */
static double once(void *arg) {
  (void)arg;
  scio_connect_opts o;
  memset(&o, 0, sizeof o);
  char servers[32];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", DNS_PORT);
  o.dns.servers = servers;
  int fd = -1;
  double t0 = bench_wall();
  bench_check(scio__connect_tcp_fd("v6hang.test", PORT, &o, &fd),
              "connect v6hang.test");
  double dt = bench_wall() - t0;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getpeername(fd, (struct sockaddr *)&ss, &len);
  if (ss.ss_family != AF_INET)
    die("connected over IPv6: the SYN drop is not in place");
  scio__fd_close(fd);
  accept_all(lfd);
  return dt;
}

int main(int argc, char **argv) {
  if (!bench_wanted(argc, argv, "he_fallback"))
    return 0;
  private_netns();
  pid_t dns = start_dnsmasq();
  lfd = listen_dual();
  fcntl(lfd, F_SETFL, O_NONBLOCK);
  bench_report("he_fallback", bench_run_best(once, NULL, BENCH_LOWEST), "s");
  kill(dns, SIGTERM);
  waitpid(dns, NULL, 0);
  close(lfd);
  return 0;
}
