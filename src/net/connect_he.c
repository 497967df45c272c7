/* Happy eyeballs (RFC 8305) on fds: the engine of scio_connect_tcp.
 *
 * One nursery holds everything the race runs: a lookup task per family
 * (AAAA and A in parallel: c-ares 1.18 with AF_UNSPEC would wait for both)
 * and a task per connection attempt.  The body of the nursery is the
 * referee: it sleeps until something changes (an answer, a failure, a
 * winner) or until the next timer (the 50 ms resolution delay, the
 * connection attempt delay), decides whether the next attempt may start,
 * and which address it takes.  When an attempt wins, or the caller is
 * cancelled, the referee cancels the nursery: every attempt still running
 * closes its socket, every lookup destroys its channel, and the nursery's
 * close waits for all of that before the engine returns.  The referee's
 * state lives on its stack; every task that sees it ends before it returns.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "connect.h"
#include "core/layer.h"
#include "resolver.h"

#define HE_DEFAULT_DELAY 0.25
#define HE_RESOLUTION_DELAY 0.05 /* RFC 8305 §3: AAAA's grace after A */

enum { F6 = 0, F4 = 1 };
enum { FAM_SKIP, FAM_PENDING, FAM_DONE };
enum { A_RUNNING, A_FAILED, A_WON, A_LOST };

typedef struct he he;

typedef struct he_addr {
  struct sockaddr_storage ss;
  socklen_t len;
  char text[80];
} he_addr;

typedef struct he_fam {
  he *st;
  int family;
  int state;
  int err;
  char msg[256];
  he_addr *addrs; /* allocated once, never moved: attempts point in */
  size_t n, next;
  double at;      /* when the answer came */
} he_fam;

typedef struct he_attempt {
  he *st;
  const he_addr *addr;
  int family;
  int state;
  int err;
  int fd;
} he_attempt;

struct he {
  const char *host;
  uint16_t port;
  char hp[300];        /* "host:port" ("[v6]:port") for messages */
  const scio_connect_opts *opts;
  scio__he_env env;
  double delay;
  double t0;
  scio_nursery n;
  scio__task *referee; /* parked in wait_change */
  he_fam fam[2];
  he_attempt **att;
  size_t natt, cap;
  size_t nrunning;
  size_t nomem;        /* addresses skipped: no memory for their attempt */
  int last_err;        /* of the attempt that failed last */
  int last_family;     /* of the latest attempt; 0 before the first */
  int latest_failed;
  double last_start;
  he_attempt *winner;
  int stopping;
  struct sockaddr_storage local;
  socklen_t locallen;
};

/* ---- small things ---- */

static void emit(he *st, int kind, int family, const he_addr *a, int err,
                 int count) {
  if (!st->opts || !st->opts->on_event)
    return;
  scio_connect_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.family = family;
  ev.addr = a ? (const struct sockaddr *)&a->ss : NULL;
  ev.addrlen = a ? a->len : 0;
  ev.addr_text = a ? a->text : "";
  ev.error = err;
  ev.error_text = err ? scio__connect_error_text(err) : "";
  ev.count = count;
  ev.elapsed = scio_now() - st->t0;
  st->opts->on_event(st->opts->on_event_arg, &ev);
}

/* Something changed: let the referee look again.  If it is not parked it
 * is runnable already and will look anyway. */
static void kick(he *st) {
  if (st->referee) {
    scio__task *t = st->referee;
    st->referee = NULL;
    scio__task_wake(t, 0);
  }
}

static void abort_wait(scio__task *t, void *ctx) {
  (void)t;
  ((he *)ctx)->referee = NULL;
}

/* Park until kicked or until `when`.  0, or SCIO_ECANCELED when the caller
 * is cancelled. */
static int wait_change(he *st, double when) {
  scio_scope cs;
  int rc = scio_scope_open(&cs, when, 0);
  if (rc < 0)
    return rc;
  st->referee = scio__task_cur();
  rc = scio__park(abort_wait, st, "happy eyeballs");
  st->referee = NULL;
  scio_scope_close(&cs);
  if (rc == SCIO_ECANCELED && scio_scope_cancelled_caught(&cs))
    return 0; /* our own timer */
  return rc;
}

/* ---- lookups ---- */

static int same_addr(const he_addr *a, const scio_addrinfo *ai) {
  return a->len == ai->addrlen && memcmp(&a->ss, ai->addr, a->len) == 0;
}

/* Keep the addresses of f's family, without duplicates, in the resolver's
 * order (RFC 6724 sorted by c-ares). */
static int take_addrs(he_fam *f, const scio_addrinfo *list) {
  size_t cnt = 0;
  for (const scio_addrinfo *ai = list; ai; ai = ai->next)
    cnt++;
  if (!cnt)
    return 0;
  f->addrs = scio__calloc(cnt, sizeof *f->addrs);
  if (!f->addrs)
    return SCIO_ENOMEM;
  for (const scio_addrinfo *ai = list; ai; ai = ai->next) {
    if (ai->family != f->family || ai->addrlen > sizeof f->addrs[0].ss)
      continue;
    int dup = 0;
    for (size_t i = 0; i < f->n; i++)
      dup |= same_addr(&f->addrs[i], ai);
    if (dup)
      continue;
    he_addr *a = &f->addrs[f->n++];
    memcpy(&a->ss, ai->addr, ai->addrlen);
    a->len = ai->addrlen;
    scio__sockaddr_text(ai->addr, a->text, sizeof a->text);
  }
  return 0;
}

static int lookup_task(void *arg) {
  he_fam *f = arg;
  he *st = f->st;
  scio_addrinfo *list = NULL;
  int rc = st->env.resolve(st->env.ctx, st->host, st->port, f->family,
                           st->opts ? &st->opts->dns : NULL, &list);
  if (rc == SCIO_ECANCELED && st->stopping)
    return 0;
  if (rc == 0 && (rc = take_addrs(f, list)) < 0)
    scio__seterr(rc, "resolve %s: out of memory", st->host);
  if (rc == 0 && f->n == 0)
    rc = scio__seterr(SCIO_ENOTFOUND, "resolve %s: no %s address", st->host,
                      f->family == AF_INET6 ? "IPv6" : "IPv4");
  scio_freeaddrinfo(list);
  f->err = rc;
  if (rc < 0)
    snprintf(f->msg, sizeof f->msg, "%s", scio_errmsg());
  f->state = FAM_DONE;
  f->at = scio_now();
  emit(st, SCIO_CONNECT_RESOLVED, f->family, NULL, rc, (int)f->n);
  kick(st);
  return 0;
}

static void start_lookup(he *st, he_fam *f) {
  f->state = FAM_PENDING;
  int rc = scio_start_soon_named(&st->n, lookup_task, f, "he lookup");
  if (rc < 0) {
    f->state = FAM_DONE;
    f->err = rc;
    snprintf(f->msg, sizeof f->msg, "resolve %s: %s", st->host,
             scio__connect_error_text(rc));
    f->at = scio_now();
  }
}

/* ---- attempts ---- */

static int attempt_task(void *arg) {
  he_attempt *a = arg;
  he *st = a->st;
  const struct sockaddr *local =
      st->locallen ? (const struct sockaddr *)&st->local : NULL;
  int fd = -1;
  int rc = st->env.connect(st->env.ctx, (const struct sockaddr *)&a->addr->ss,
                           a->addr->len, local, st->locallen, &fd);
  st->nrunning--;
  if (rc == 0 && !st->winner && !st->stopping) {
    a->state = A_WON;
    a->fd = fd;
    st->winner = a;
    emit(st, SCIO_CONNECT_CONNECTED, a->family, a->addr, 0, 0);
  } else if (rc == 0 || (rc == SCIO_ECANCELED && st->stopping)) {
    if (rc == 0)
      st->env.close(st->env.ctx, fd);
    a->state = A_LOST;
    emit(st, SCIO_CONNECT_ABANDONED, a->family, a->addr, 0, 0);
  } else {
    a->state = A_FAILED;
    a->err = rc;
    st->last_err = rc;
    if (st->att[st->natt - 1] == a)
      st->latest_failed = 1;
    emit(st, SCIO_CONNECT_FAILED, a->family, a->addr, rc, 0);
  }
  kick(st);
  return 0;
}

static int grow_attempts(he *st) {
  if (st->natt < st->cap)
    return 0;
  size_t cap = st->cap ? st->cap * 2 : 8;
  he_attempt **p = scio__realloc(st->att, cap * sizeof *p);
  if (!p)
    return SCIO_ENOMEM;
  st->att = p;
  st->cap = cap;
  return 0;
}

/* Start an attempt to f's next address.  Failing to start it (memory)
 * counts as a failed attempt, so the race goes on with the next address. */
static void start_attempt(he *st, he_fam *f) {
  const he_addr *addr = &f->addrs[f->next++];
  if (st->natt > 0) {
    he_attempt *prev = st->att[st->natt - 1];
    if (prev->state == A_RUNNING)
      emit(st, SCIO_CONNECT_SLOW, prev->family, prev->addr, 0, 0);
  }
  st->last_family = f->family;
  st->last_start = scio_now();
  st->latest_failed = 0;
  he_attempt *a = NULL;
  if (grow_attempts(st) < 0 || !(a = scio__calloc(1, sizeof *a))) {
    st->nomem++;
    st->latest_failed = 1;
    return;
  }
  a->st = st;
  a->addr = addr;
  a->family = f->family;
  a->fd = -1;
  a->state = A_RUNNING;
  st->att[st->natt++] = a;
  emit(st, SCIO_CONNECT_ATTEMPT, a->family, addr, 0, 0);
  int rc = scio_start_soon_named(&st->n, attempt_task, a, "he attempt");
  if (rc < 0) {
    a->state = A_FAILED;
    a->err = rc;
    st->last_err = rc;
    st->latest_failed = 1;
    emit(st, SCIO_CONNECT_FAILED, a->family, addr, rc, 0);
    return;
  }
  st->nrunning++;
}

/* ---- the referee's rules ---- */

static int remaining(const he_fam *f) { return f->next < f->n; }

/* The family whose next address may be tried now, or NULL; *wake gets the
 * time at which the answer may change without anything else happening. */
static he_fam *choose(he *st, double now, double *wake) {
  he_fam *v6 = &st->fam[F6], *v4 = &st->fam[F4];
  if (!remaining(v6) && !remaining(v4))
    return NULL;
  double t = -INFINITY;
  if (st->natt == 0 && st->nomem == 0) {
    /* Only A has answered: give AAAA the resolution delay (§3). */
    if (!remaining(v6) && v6->state == FAM_PENDING)
      t = v4->at + HE_RESOLUTION_DELAY;
  } else if (!st->latest_failed) {
    t = st->last_start + st->delay; /* §5: the connection attempt delay */
  }
  if (now < t) {
    if (t < *wake)
      *wake = t;
    return NULL;
  }
  /* §4: alternate families, IPv6 first. */
  he_fam *pref = st->last_family == AF_INET6 ? v4 : v6;
  return remaining(pref) ? pref : (pref == v6 ? v4 : v6);
}

static int finished(const he *st) {
  for (int i = 0; i < 2; i++)
    if (st->fam[i].state == FAM_PENDING || remaining(&st->fam[i]))
      return 0;
  return st->nrunning == 0;
}

static int referee(he *st) {
  for (;;) {
    if (st->winner || finished(st))
      return 0;
    double wake = SCIO_DEADLINE_NONE;
    he_fam *f = choose(st, scio_now(), &wake);
    if (f) {
      start_attempt(st, f);
      continue;
    }
    int rc = wait_change(st, wake);
    if (rc < 0)
      return rc;
  }
}

/* ---- the result ---- */

/* Append to buf (always NUL-terminated, truncated with "..."). */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
  if (*len >= cap - 1)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= cap - *len) {
    *len = cap - 1;
    memcpy(buf + cap - 4, "...", 4);
  } else {
    *len += (size_t)n;
  }
}

/* No address at all: report the lookups. */
static int lookup_failure(he *st, char *msg, size_t cap, size_t *len) {
  int rc = 0;
  const char *prev = NULL;
  for (int i = 0; i < 2; i++) {
    he_fam *f = &st->fam[i];
    if (f->state == FAM_SKIP || f->err == 0)
      continue;
    /* the most telling code: memory, then DNS failure, then not found */
    if (rc == 0 || f->err == SCIO_ENOMEM ||
        (rc == SCIO_ENOTFOUND && f->err != SCIO_ENOTFOUND))
      rc = f->err;
    if (prev && strcmp(prev, f->msg) == 0)
      continue;
    append(msg, cap, len, "%s%s", prev ? "; " : "", f->msg);
    prev = f->msg;
  }
  if (rc == 0) {
    append(msg, cap, len, "no address of the local address's family");
    rc = SCIO_ENOTFOUND;
  }
  return rc;
}

static int attempts_failure(he *st, char *msg, size_t cap, size_t *len) {
  size_t total = st->natt + st->nomem;
  append(msg, cap, len, "%zu attempt%s failed: ", total,
         total == 1 ? "" : "s");
  int rc = st->last_err;
  for (size_t i = 0; i < st->natt; i++) {
    he_attempt *a = st->att[i];
    append(msg, cap, len, "%s%s %s", i ? "; " : "", a->addr->text,
           scio__connect_error_text(a->err));
    if (a->err == SCIO_ENOMEM)
      rc = SCIO_ENOMEM;
  }
  if (st->nomem) {
    append(msg, cap, len, "%s%zu not started: out of memory",
           st->natt ? "; " : "", st->nomem);
    rc = SCIO_ENOMEM;
  }
  return rc;
}

static int failure(he *st) {
  char msg[1024];
  size_t len = 0;
  msg[0] = 0;
  append(msg, sizeof msg, &len, "connect %s: ", st->hp);
  int rc = st->natt + st->nomem == 0 ? lookup_failure(st, msg, sizeof msg, &len)
                                     : attempts_failure(st, msg, sizeof msg,
                                                        &len);
  return scio__seterr(rc, "%s", msg);
}

/* ---- setting up ---- */

static int setup(he *st, const char *host, uint16_t port,
                 const scio_connect_opts *o, const scio__he_env *env) {
  memset(st, 0, sizeof *st);
  st->host = host;
  st->port = port;
  st->opts = o;
  st->env = env ? *env : scio__he_env_real;
  st->delay = HE_DEFAULT_DELAY;
  st->fam[F6].family = AF_INET6;
  st->fam[F4].family = AF_INET;
  for (int i = 0; i < 2; i++)
    st->fam[i].st = st;
  if (!host || !*host)
    return scio__seterr(SCIO_EINVAL, "connect: no host");
  int v6 = strchr(host, ':') && host[0] != '[';
  snprintf(st->hp, sizeof st->hp, "%s%s%s:%u", v6 ? "[" : "", host,
           v6 ? "]" : "", (unsigned)port);
  if (!scio__task_cur())
    return scio__seterr(SCIO_EINVAL, "connect %s: not inside a task", st->hp);
  if (!o)
    return 0;
  double d = o->happy_eyeballs_delay;
  if (isnan(d) || d < 0)
    return scio__seterr(SCIO_EINVAL, "connect %s: bad happy_eyeballs_delay %g",
                        st->hp, d);
  if (d > 0)
    st->delay = d;
  if (o->layer && !o->layer->wrap)
    return scio__seterr(SCIO_EINVAL, "connect %s: a layer without a wrap "
                                     "function", st->hp);
  if (o->local_address &&
      !scio__parse_ip_literal(o->local_address, 0, &st->local, &st->locallen))
    return scio__seterr(SCIO_EINVAL, "connect %s: local address \"%s\" is "
                                     "not a numeric IP address",
                        st->hp, o->local_address);
  return 0;
}

/* A numeric host: one address, no lookup. */
static int setup_literal(he *st, const struct sockaddr_storage *ss,
                         socklen_t len) {
  he_fam *f = &st->fam[ss->ss_family == AF_INET6 ? F6 : F4];
  if (st->locallen && st->local.ss_family != ss->ss_family)
    return scio__seterr(SCIO_EINVAL, "connect %s: the local address is "
                                     "not of the host's family", st->hp);
  f->addrs = scio__calloc(1, sizeof *f->addrs);
  if (!f->addrs)
    return scio__seterr(SCIO_ENOMEM, "connect %s: out of memory", st->hp);
  memcpy(&f->addrs[0].ss, ss, len);
  f->addrs[0].len = len;
  scio__sockaddr_text((const struct sockaddr *)ss, f->addrs[0].text,
                      sizeof f->addrs[0].text);
  f->n = 1;
  f->state = FAM_DONE;
  return 0;
}

static void teardown(he *st) {
  for (size_t i = 0; i < st->natt; i++)
    scio__free(st->att[i]);
  scio__free(st->att);
  for (int i = 0; i < 2; i++)
    scio__free(st->fam[i].addrs);
}

/* The race itself, inside the nursery. */
static int race(he *st, int literal) {
  int rc = scio_nursery_open(&st->n);
  if (rc < 0)
    return rc;
  if (!literal) {
    for (int i = 0; i < 2; i++)
      if (!st->locallen || st->local.ss_family == st->fam[i].family)
        start_lookup(st, &st->fam[i]);
  }
  rc = referee(st);
  st->stopping = 1;
  scio_nursery_cancel(&st->n);
  int crc = scio_nursery_close(&st->n);
  return rc < 0 ? rc : crc;
}

int scio__connect_tcp_fd_env(const char *host, uint16_t port,
                             const scio_connect_opts *opts,
                             const scio__he_env *env, int *fd) {
  if (!fd)
    return scio__seterr(SCIO_EINVAL, "connect: fd is NULL");
  *fd = -1;
  he st;
  int rc = setup(&st, host, port, opts, env);
  if (rc < 0)
    return rc;
  if ((rc = scio_checkpoint_if_cancelled()) < 0)
    return rc;
  st.t0 = scio_now();
  struct sockaddr_storage ss;
  socklen_t len;
  int literal = scio__parse_ip_literal(host, port, &ss, &len);
  if (literal && (rc = setup_literal(&st, &ss, len)) < 0)
    return rc;
  rc = race(&st, literal);
  if (rc == 0 && st.winner) {
    *fd = st.winner->fd;
  } else if (rc < 0) {
    if (st.winner)
      st.env.close(st.env.ctx, st.winner->fd);
    rc = scio__seterr(rc, "connect %s: %s", st.hp,
                      scio__connect_error_text(rc));
  } else {
    rc = failure(&st);
  }
  teardown(&st);
  return rc;
}

/* ---- the real world ---- */

static int real_resolve(void *ctx, const char *host, uint16_t port,
                        int family, const scio_dns_opts *dns,
                        scio_addrinfo **out) {
  (void)ctx;
  return scio__resolve_family(host, port, family, dns, out);
}

static int real_connect(void *ctx, const struct sockaddr *addr,
                        socklen_t addrlen, const struct sockaddr *local,
                        socklen_t locallen, int *fd) {
  (void)ctx;
  return scio__tcp_connect_addr(addr, addrlen, local, locallen, fd);
}

static void real_close(void *ctx, int fd) {
  (void)ctx;
  scio__fd_close(fd);
}

const scio__he_env scio__he_env_real = {real_resolve, real_connect,
                                        real_close, NULL};

int scio__connect_tcp_fd(const char *host, uint16_t port,
                         const scio_connect_opts *opts, int *fd) {
  return scio__connect_tcp_fd_env(host, port, opts, NULL, fd);
}
