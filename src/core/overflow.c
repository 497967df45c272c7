/* Naming the task whose stack overflowed.
 *
 * A task that overflows its stack touches the guard page below it and the
 * process dies by SIGSEGV, which says nothing about which task or what to
 * change.  While a run is active, and only if SIGSEGV's disposition was the
 * default when it started (the signal is the application's: a handler of
 * its own, a sanitizer's or SIG_IGN is left alone, and so is its alternate
 * stack), scio installs a handler that runs on an alternate signal stack
 * (the faulting stack has no room left).  If the fault address is in the
 * guard page of the running task's stack, it writes
 *
 *   scio: stack overflow in task NAME (stack 256 KiB); raise
 *   scio_run_opts.stack_size
 *
 * to stderr.  In every case it then restores the default disposition and
 * returns, so the faulting instruction runs again and the process dies by
 * SIGSEGV as it would have (core dump and exit status unchanged); a
 * SIGSEGV sent by kill() is raised again instead.
 *
 * The disposition is process-wide: the first run to start installs the
 * handler, the last to end restores the default, unless someone replaced
 * the handler meanwhile (then theirs stays).  The alternate stack is per
 * thread, set up by each run for its thread unless the thread has one.
 *
 * The handler is async-signal-safe: it reads the thread's loop pointer
 * (initial-exec TLS), compares addresses, formats with its own digits and
 * calls write(), sigaction() and raise().
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static int guard_users;     /* active runs relying on the handler */
static int guard_installed; /* the handler is (or was last seen) ours */
static size_t guard_page;   /* page size, read before any fault */

/* This thread's run uses the handler; its alternate stack, if it made one. */
static __thread int tls_active;
static __thread void *tls_altstack;
static __thread size_t tls_altstack_size;

/* ---- the handler ---- */

static size_t put(char *buf, size_t at, size_t cap, const char *s) {
  while (*s && at < cap)
    buf[at++] = *s++;
  return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, uintptr_t v,
                      unsigned base) {
  char digits[2 * sizeof v + 1];
  size_t n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (n && at < cap)
    buf[at++] = digits[--n];
  return at;
}

/* The task's name without dladdr (not async-signal-safe). */
static size_t put_name(char *buf, size_t at, size_t cap, const scio__task *t) {
  if (t->name)
    return put(buf, at, cap, t->name);
  if (t->namebuf[0])
    return put(buf, at, cap, t->namebuf);
  uintptr_t fn;
  memcpy(&fn, &t->fn, sizeof fn < sizeof t->fn ? sizeof fn : sizeof t->fn);
  at = put(buf, at, cap, "task@0x");
  return put_num(buf, at, cap, fn, 16);
}

/* The running task, if addr is in the guard page below its stack. */
static const scio__task *overflowed_task(const void *addr) {
  scio__loop *l = scio__tls_loop;
  if (!l || !l->stacks.guard)
    return NULL;
  const scio__task *t = l->current;
  if (!t || !t->stack)
    return NULL;
  uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)t->stack->lo;
  return a < lo && a >= lo - guard_page ? t : NULL;
}

static void report(const scio__task *t) {
  char msg[512];
  size_t cap = sizeof msg - 1, n = 0;
  n = put(msg, n, cap, "scio: stack overflow in task ");
  n = put_name(msg, n, cap, t);
  n = put(msg, n, cap, " (stack ");
  n = put_num(msg, n, cap, t->loop->stacks.stack_size / 1024, 10);
  n = put(msg, n, cap, " KiB); raise scio_run_opts.stack_size\n");
  ssize_t w = write(STDERR_FILENO, msg, n);
  (void)w;
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (si->si_code > 0) { /* a fault, not a kill() */
    const scio__task *t = overflowed_task(si->si_addr);
    if (t)
      report(t);
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  /* A fault recurs when we return; a sent signal must be sent again (it
   * stays pending, blocked, until the handler returns). */
  if (si->si_code <= 0)
    raise(sig);
}

/* ---- per run ---- */

static int is_default(const struct sigaction *sa) {
  return !(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == SIG_DFL;
}

static int is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_segv;
}

/* Give this thread an alternate signal stack unless it has one. */
static void altstack_setup(void) {
  stack_t cur;
  if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
    return;
  size_t size = 64 * 1024;
#ifdef _SC_SIGSTKSZ
  long want = sysconf(_SC_SIGSTKSZ);
  if (want > 0 && (size_t)want > size)
    size = (size_t)want;
#endif
  void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    return; /* the report is a courtesy: the run goes on without it */
  stack_t ss = {.ss_sp = mem, .ss_flags = 0, .ss_size = size};
  if (sigaltstack(&ss, NULL) != 0) {
    munmap(mem, size);
    return;
  }
  tls_altstack = mem;
  tls_altstack_size = size;
}

static void altstack_teardown(void) {
  if (!tls_altstack)
    return;
  stack_t ss = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
  sigaltstack(&ss, NULL);
  munmap(tls_altstack, tls_altstack_size);
  tls_altstack = NULL;
}

void scio__overflow_guard_enter(scio__loop *l) {
  if (!l->stacks.guard)
    return; /* no guard page, nothing to recognise */
  pthread_mutex_lock(&guard_lock);
  struct sigaction cur;
  if (sigaction(SIGSEGV, NULL, &cur) == 0) {
    if (is_default(&cur)) {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_sigaction = on_segv;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&sa.sa_mask);
      guard_page = (size_t)sysconf(_SC_PAGESIZE);
      guard_installed = sigaction(SIGSEGV, &sa, NULL) == 0;
    } else if (!is_ours(&cur)) {
      guard_installed = 0; /* replaced by the application: theirs now */
    }
  }
  tls_active = guard_installed;
  if (tls_active)
    guard_users++;
  pthread_mutex_unlock(&guard_lock);
  if (tls_active)
    altstack_setup();
}

void scio__overflow_guard_leave(void) {
  if (!tls_active)
    return;
  tls_active = 0;
  pthread_mutex_lock(&guard_lock);
  if (--guard_users == 0 && guard_installed) {
    struct sigaction cur;
    if (sigaction(SIGSEGV, NULL, &cur) == 0 && is_ours(&cur)) {
      struct sigaction dfl;
      memset(&dfl, 0, sizeof dfl);
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      sigaction(SIGSEGV, &dfl, NULL);
    }
    guard_installed = 0;
  }
  pthread_mutex_unlock(&guard_lock);
  /* After the disposition: a fault now is the default's, which needs no
   * alternate stack. */
  altstack_teardown();
}
