/* Self-test for the context switch (ctx.c + back-end) and the stack pool.
 *
 * A plain program: exit code 0 means every check passed.  It is meant to be
 * run plain, under ASan/UBSan, under valgrind (without -q, grepping for
 * "switching stacks"), with the ucontext back-end, and on aarch64 via qemu.
 *
 * Guarded stacks come in two schemes (see stack.c): slab units with a guard
 * marker (MADV_GUARD_INSTALL) where the kernel has them, else a mapping per
 * stack with an mprotect guard.  The tests that depend on the scheme run
 * for both, the second forced with scio__stack_force_mprotect_guards.
 *
 * Environment:
 *   SCIO_SELFTEST_QUICK=1     skip the slow cases (the vm.max_map_count
 *                             exhaustion and the million stacks); they are
 *                             skipped under valgrind anyway.
 *   SCIO_SELFTEST_STACKS=N    how many stacks the million-stack case gets.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "ctx.h"
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif

/* Checks stay on under -DNDEBUG. */
#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,        \
              #cond);                                                         \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* ------------------------------------------------------------------------
 * A tiny coroutine on top of ctx + stack, the way the scheduler will use
 * them: the coroutine struct (and the ucontext storage) live in the stack's
 * user area.
 */
typedef struct coro coro;
struct coro {
  scio__ctx ctx;
  scio__stack *stack;
  void (*fn)(coro *);
  void *arg;
  long counter;
  int done;
};

static scio__ctx main_ctx;

static size_t coro_user_size(void)
{
  return (sizeof(coro) + 63) / 64 * 64 + scio__ctx_uc_size();
}

static void *coro_uc(coro *c)
{
  return scio__ctx_uc_size() ? (char *)c + (sizeof(coro) + 63) / 64 * 64
                             : NULL;
}

static void coro_entry(void *arg)
{
  coro *c = arg;

  c->fn(c);
  c->done = 1;
  scio__ctx_exit_to(&c->ctx, &main_ctx);
}

static coro *coro_on(scio__stack *s, void (*fn)(coro *), void *arg)
{
  coro *c = s->user;

  CHECK(((uintptr_t)c & 63) == 0);
  memset(c, 0, sizeof *c);
  c->stack = s;
  c->fn = fn;
  c->arg = arg;
  CHECK(scio__ctx_make(&c->ctx, s->lo, s->size, coro_entry, c,
                       coro_uc(c)) == 0);
  return c;
}

static coro *coro_new(scio__stack_pool *p, void (*fn)(coro *), void *arg)
{
  int err = 0;
  char msg[256];
  scio__stack *s = scio__stack_get(p, &err, msg, sizeof msg);

  if (s == NULL)
    fprintf(stderr, "stack_get: %d %s\n", err, msg);
  CHECK(s != NULL);
  return coro_on(s, fn, arg);
}

static void coro_free(scio__stack_pool *p, coro *c)
{
  scio__stack *s = c->stack;

  scio__ctx_release(&c->ctx);
  scio__stack_put(p, s);
}

static void yield_to_main(coro *c) { scio__ctx_switch(&c->ctx, &main_ctx); }
static void resume(coro *c) { scio__ctx_switch(&main_ctx, &c->ctx); }

static int slow_tests_allowed(void)
{
  const char *q = getenv("SCIO_SELFTEST_QUICK");

  return !RUNNING_ON_VALGRIND && (q == NULL || *q == '\0' || *q == '0');
}

static double now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------
 * /proc helpers.  They use open/read into static buffers, never malloc or
 * stdio, so that they do not create mappings of their own while counting.
 */
static char proc_buf[1 << 16];

static long count_maps(void)
{
  long lines = 0;
  ssize_t n;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

  CHECK(fd >= 0);
  while ((n = read(fd, proc_buf, sizeof proc_buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      lines += proc_buf[i] == '\n';
  close(fd);
  return lines;
}

/* Leak check by mapping count.  valgrind's own mappings show up in
 * /proc/self/maps and come and go, so there only the exact-address checks
 * (is_mapped) count. */
static int maps_back_to(long before)
{
  return RUNNING_ON_VALGRIND || count_maps() <= before;
}

/* Permissions ("rw-p", "---p") of the mapping that starts exactly at addr,
 * or "" when none does. */
static void maps_perms(void *addr, char perms[5])
{
  char line[256];
  size_t len = 0;
  ssize_t n;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

  perms[0] = '\0';
  CHECK(fd >= 0);
  while ((n = read(fd, proc_buf, sizeof proc_buf)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      if (proc_buf[i] != '\n') {
        if (len < sizeof line - 1)
          line[len++] = proc_buf[i];
        continue;
      }
      line[len] = '\0';
      len = 0;
      unsigned long lo;
      char pr[5];
      if (sscanf(line, "%lx-%*x %4s", &lo, pr) == 2 &&
          lo == (uintptr_t)addr)
        memcpy(perms, pr, 5);
    }
  }
  close(fd);
}

static long vm_rss_kib(void)
{
  ssize_t n;
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  char *p;

  CHECK(fd >= 0);
  n = read(fd, proc_buf, sizeof proc_buf - 1);
  close(fd);
  CHECK(n > 0);
  proc_buf[n] = '\0';
  p = strstr(proc_buf, "VmRSS:");
  return p != NULL ? strtol(p + 6, NULL, 10) : -1;
}

/* 1 if the page holding addr is mapped, 0 if not. */
static int is_mapped(void *addr)
{
  unsigned char v;
  uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(getpagesize() - 1);

  if (mincore((void *)page, 1, &v) == 0)
    return 1;
  CHECK(errno == ENOMEM);
  return 0;
}

static int is_resident(void *addr)
{
  unsigned char v = 0;
  uintptr_t page = (uintptr_t)addr & ~(uintptr_t)(getpagesize() - 1);

  CHECK(mincore((void *)page, 1, &v) == 0);
  return v & 1;
}

/* Whether this kernel (or valgrind) does guard markers, asked on a mapping
 * of our own, independently of the pool: the pool must agree. */
static int markers;

/* SCIO_SELFTEST_EMULATED=1 (tests/cross/aarch64.sh): qemu-user accepts
 * MADV_GUARD_INSTALL and does nothing, so guard markers cannot be trusted;
 * the mprotect scheme, which qemu does emulate, is used throughout. */
static int emulated;

static void force_guards(int on)
{
  scio__stack_force_mprotect_guards(on || emulated);
}

static int probe_markers(void)
{
  size_t pg = (size_t)getpagesize();
  char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int ok;

  CHECK(m != MAP_FAILED);
  ok = madvise(m, pg, MADV_GUARD_INSTALL) == 0;
  CHECK(munmap(m, 2 * pg) == 0);
  return ok;
}

/* 1 if a write of one byte at addr kills a child process with SIGSEGV.
 * The child puts back the default action, which ASan would otherwise turn
 * into a report and exit(1), and dumps no core. */
static int write_faults(void *addr)
{
  int status;
  pid_t pid;

  fflush(NULL);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    struct rlimit no_core = {0, 0};

    (void)setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGSEGV, SIG_DFL);
    *(volatile char *)addr = 1;
    _exit(0);
  }
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

/* ------------------------------------------------------------------------
 * 1. Many coroutines ping-ponging with main, and a ring of direct switches.
 */
#define PING_N 64
#define PING_ROUNDS 1000

/* Locals that live across switches end up in callee-saved registers or
 * spill slots; the checksum catches either being clobbered. */
static void ping_fn(coro *c)
{
  long id = (long)(intptr_t)c->arg;
  unsigned long h = 1469598103934665603ul ^ (unsigned long)id;

  for (long i = 0; i < PING_ROUNDS; i++) {
    unsigned long before = h;
    c->counter++;
    yield_to_main(c);
    CHECK(h == before);
    h = (h ^ (unsigned long)i) * 1099511628211ul;
  }
  c->counter = (long)(h & 0x7fffffff) + 1;
}

static void test_pingpong(void)
{
  scio__stack_pool p;
  coro *cs[PING_N];

  CHECK(scio__stack_pool_init(&p, 64 * 1024, coro_user_size(), 1, 8) == 0);
  for (long i = 0; i < PING_N; i++)
    cs[i] = coro_new(&p, ping_fn, (void *)(intptr_t)i);
  for (long r = 0; r < PING_ROUNDS; r++)
    for (int i = 0; i < PING_N; i++) {
      resume(cs[i]);
      CHECK(cs[i]->counter == r + 1);
    }
  for (int i = 0; i < PING_N; i++) {
    resume(cs[i]); /* runs to the end */
    CHECK(cs[i]->done && cs[i]->counter > 0);
    coro_free(&p, cs[i]);
  }
  CHECK(p.live == 0 && p.cached == 8);
  scio__stack_pool_fini(&p);
  printf("ok  pingpong: %d coroutines x %d switches with main\n", PING_N,
         PING_ROUNDS);
}

#define RING_N 16
#define RING_LAPS 500
static coro *ring[RING_N];
static long ring_hops;

/* Each coroutine switches straight to the next one; the last one of each
 * lap goes back to main.  Exercises switches that never touch main. */
static void ring_fn(coro *c)
{
  long id = (long)(intptr_t)c->arg;

  for (int lap = 0; lap < RING_LAPS; lap++) {
    ring_hops++;
    if (id + 1 < RING_N)
      scio__ctx_switch(&c->ctx, &ring[id + 1]->ctx);
    else
      yield_to_main(c);
  }
}

static void test_ring(void)
{
  scio__stack_pool p;

  CHECK(scio__stack_pool_init(&p, 0, coro_user_size(), 0, 0) == 0);
  for (long i = 0; i < RING_N; i++)
    ring[i] = coro_new(&p, ring_fn, (void *)(intptr_t)i);
  for (int lap = 0; lap < RING_LAPS; lap++) {
    resume(ring[0]);
    CHECK(ring_hops == (long)(lap + 1) * RING_N);
  }
  for (int i = 0; i < RING_N; i++) {
    CHECK(!ring[i]->done);
    resume(ring[i]);
    CHECK(ring[i]->done);
    coro_free(&p, ring[i]);
  }
  scio__stack_pool_fini(&p);
  printf("ok  ring: %d coroutines passing control directly, %d laps\n",
         RING_N, RING_LAPS);
}

/* ------------------------------------------------------------------------
 * 2. setjmp/longjmp, malloc and deep stack use on a coroutine stack.
 */
static jmp_buf unwind_jb;

static __attribute__((noinline)) void unwind_deep(int depth, void **blocks)
{
  volatile char pad[256];

  pad[0] = (char)depth;
  blocks[depth] = malloc(64 + (size_t)depth);
  CHECK(blocks[depth] != NULL);
  memset(blocks[depth], depth, 64);
  if (depth == 49)
    longjmp(unwind_jb, 7);
  if (depth > 49) /* never: tells gcc the recursion has a way out */
    return;
  unwind_deep(depth + 1, blocks);
  pad[1] = pad[0];
}

/* setjmp in a function of its own: no local of the caller lives across it,
 * so none can be clobbered by the longjmp. */
static __attribute__((noinline)) void unwind_once(void)
{
  void *blocks[50];

  memset(blocks, 0, sizeof blocks);
  if (setjmp(unwind_jb) == 0)
    unwind_deep(0, blocks);
  for (int i = 0; i < 50; i++)
    free(blocks[i]);
}

static void unwind_fn(coro *c)
{
  volatile char big[96 * 1024]; /* most of a 128 KiB stack */

  for (int round = 0; round < 3; round++) {
    unwind_once();
    yield_to_main(c);
  }
  for (size_t i = 0; i < sizeof big; i += 4096)
    big[i] = (char)i;
  c->counter = big[4096] == (char)4096;
}

static void test_longjmp_malloc(void)
{
  scio__stack_pool p;
  coro *c;

  CHECK(scio__stack_pool_init(&p, 128 * 1024, coro_user_size(), 1, 0) == 0);
  c = coro_new(&p, unwind_fn, NULL);
  for (int i = 0; i < 3; i++)
    resume(c);
  resume(c);
  CHECK(c->done && c->counter == 1);
  coro_free(&p, c);
  scio__stack_pool_fini(&p);
  printf("ok  setjmp/longjmp + malloc on a coroutine stack\n");
}

/* ------------------------------------------------------------------------
 * 3. Floating-point control state is per context.
 *
 * Each context sets its own rounding mode and checks, after every switch,
 * both the control register(s) and the effect on arithmetic: 1/3 rounds
 * differently upward and downward.  On x86_64 the SSE unit (MXCSR) and the
 * x87 unit (control word, used by long double) are checked separately.
 */
enum { RM_NEAREST, RM_DOWN, RM_UP, RM_ZERO };

#if defined(__x86_64__)
#define FP_TESTS 1
static void set_rm(int rm)
{
  static const unsigned bits[] = {0, 1, 2, 3}; /* same order in both units */
  unsigned csr = __builtin_ia32_stmxcsr();
  unsigned short cw;

  __builtin_ia32_ldmxcsr((csr & ~0x6000u) | bits[rm] << 13);
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  cw = (unsigned short)((cw & ~0x0c00u) | bits[rm] << 10);
  __asm__ volatile("fldcw %0" : : "m"(cw));
}

static int get_rm_sse(void) { return (__builtin_ia32_stmxcsr() >> 13) & 3; }

static int get_rm_x87(void)
{
  unsigned short cw;

  __asm__ volatile("fnstcw %0" : "=m"(cw));
  return (cw >> 10) & 3;
}
#elif defined(__aarch64__)
#define FP_TESTS 1
/* FPCR.RMode (bits 23:22): 0 nearest, 1 toward +inf, 2 toward -inf, 3 zero. */
static const unsigned rm_to_fpcr[] = {0, 2, 1, 3};

static void set_rm(int rm)
{
  uint64_t fpcr;

  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  fpcr = (fpcr & ~(uint64_t)(3u << 22)) | (uint64_t)rm_to_fpcr[rm] << 22;
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}

static int get_rm_sse(void)
{
  uint64_t fpcr;

  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  for (int rm = 0; rm < 4; rm++)
    if (rm_to_fpcr[rm] == ((fpcr >> 22) & 3))
      return rm;
  return -1;
}

static int get_rm_x87(void) { return get_rm_sse(); }
#endif

#ifdef FP_TESTS
static volatile double fp_one = 1.0, fp_three = 3.0;
static volatile long double fp_lone = 1.0L, fp_lthree = 3.0L;
static double third_up, third_down;
static long double lthird_up, lthird_down;

static void fp_reference(void)
{
  set_rm(RM_UP);
  third_up = fp_one / fp_three;
  lthird_up = fp_lone / fp_lthree;
  set_rm(RM_DOWN);
  third_down = fp_one / fp_three;
  lthird_down = fp_lone / fp_lthree;
  set_rm(RM_NEAREST);
  /* valgrind computes in round-to-nearest whatever the mode says. */
  CHECK(RUNNING_ON_VALGRIND || third_up > third_down);
  CHECK(RUNNING_ON_VALGRIND || lthird_up > lthird_down);
}

/* The control registers and the arithmetic both agree with `rm`. */
static void fp_expect(int rm)
{
  double q = fp_one / fp_three;
  long double lq = fp_lone / fp_lthree;

  CHECK(get_rm_sse() == rm);
  CHECK(get_rm_x87() == rm);
  if (RUNNING_ON_VALGRIND)
    return;
  if (rm == RM_UP) {
    CHECK(q == third_up);
    CHECK(lq == lthird_up);
  } else if (rm == RM_DOWN) {
    CHECK(q == third_down);
    CHECK(lq == lthird_down);
  }
}

/* Doubles live across the switches: AArch64 keeps them in d8-d15, which
 * the switch must save; the other context dirties its own d registers. */
static void fp_fn(coro *c)
{
  int rm = (int)(intptr_t)c->arg;
  double a = fp_one * 1.5, b = fp_three * 2.5, d = a * b + 0.25;

  fp_expect(RM_UP); /* inherited from the maker, see test_fp */
  set_rm(rm);
  for (int i = 0; i < 200; i++) {
    yield_to_main(c);
    fp_expect(rm);
    a += 1.0;
    b -= 1.0;
    d += a * b;
  }
  c->counter = (long)d;
}

static long fp_expected(void)
{
  double a = 1.5, b = 7.5, d = a * b + 0.25;

  for (int i = 0; i < 200; i++) {
    a += 1.0;
    b -= 1.0;
    d += a * b;
  }
  return (long)d;
}

static void test_fp(void)
{
  scio__stack_pool p;
  coro *up, *down;
  long expect;

  fp_reference();
  CHECK(scio__stack_pool_init(&p, 0, coro_user_size(), 0, 0) == 0);
  set_rm(RM_UP); /* new contexts start with their maker's FP control */
  up = coro_new(&p, fp_fn, (void *)(intptr_t)RM_UP);
  down = coro_new(&p, fp_fn, (void *)(intptr_t)RM_DOWN);
  set_rm(RM_ZERO);
  for (int i = 0; i < 201; i++) {
    resume(up);
    fp_expect(RM_ZERO);
    resume(down);
    fp_expect(RM_ZERO);
  }
  set_rm(RM_NEAREST);
  CHECK(up->done && down->done);
  /* Both ran fp_fn's computation on exact values, so rounding cannot have
   * changed the result. */
  expect = fp_expected();
  CHECK(up->counter == expect && down->counter == expect);
  coro_free(&p, up);
  coro_free(&p, down);
  scio__stack_pool_fini(&p);
  printf("ok  FP control state (rounding mode, %s) is per context\n",
#if defined(__x86_64__)
         "MXCSR and x87 control word"
#else
         "FPCR"
#endif
  );
}
#else
static void test_fp(void)
{
  printf("skip FP control state: no test for this architecture\n");
}
#endif

/* ------------------------------------------------------------------------
 * 4. exit_to, then a new context on the same stack, many times.
 */
static void exit_fn(coro *c)
{
  volatile char buf[512];

  memset((char *)buf, (int)c->counter, sizeof buf);
  if (c->counter % 2)
    yield_to_main(c);
  c->counter += buf[7] == (char)c->counter;
}

static void test_exit_reuse(void)
{
  scio__stack_pool p;
  scio__stack *s;
  int err;
  char msg[256];

  CHECK(scio__stack_pool_init(&p, 32 * 1024, coro_user_size(), 1, 0) == 0);
  s = scio__stack_get(&p, &err, msg, sizeof msg);
  CHECK(s != NULL);
  for (long i = 0; i < 2000; i++) {
    coro *c = coro_on(s, exit_fn, NULL);
    c->counter = i;
    resume(c);
    if (i % 2)
      resume(c);
    CHECK(c->done && c->counter == i + 1);
    CHECK(c->ctx.sp == NULL); /* a finished context cannot be resumed */
    scio__ctx_release(&c->ctx);
  }
  scio__stack_put(&p, s);
  scio__stack_pool_fini(&p);
  printf("ok  exit_to + 2000 contexts made in turn on one stack\n");
}

/* ------------------------------------------------------------------------
 * 5. Guard pages, their absence, and where the user area is.
 */
static void check_layout(const scio__stack_pool *p, scio__stack *s)
{
  CHECK(((uintptr_t)s->user & 63) == 0);
  CHECK((char *)s->lo + s->size == (char *)s->user);
  CHECK(s->size >= p->stack_size);
  CHECK((char *)s >= (char *)s->user + p->user_size);
  CHECK((char *)s + sizeof *s <= (char *)s->map + s->map_size);
  /* Nothing but the bookkeeping (one 64-byte line) above the user area. */
  CHECK((char *)s->map + s->map_size - (char *)s->user <=
        (ptrdiff_t)p->user_size + 128);
}

static volatile long overflow_limit = 1L << 30;

static __attribute__((noinline)) long overflow(long n)
{
  volatile char pad[1024];

  pad[0] = (char)n;
  if (n == overflow_limit)
    return 0;
  return overflow(n + 1) + pad[0];
}

static void overflow_fn(coro *c)
{
  (void)c;
  overflow(0);
}

static scio__stack *segv_stack;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
  char *a = si->si_addr;

  (void)sig;
  (void)uc;
  _exit(a >= (char *)segv_stack->map && a < (char *)segv_stack->lo ? 42 : 43);
}

/* In a child: overflow a guarded coroutine stack and expect SIGSEGV with
 * the fault address inside the guard page. */
static void guard_overflow_child(scio__stack_pool *p)
{
  static char altstack[64 * 1024];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
  struct sigaction sa;
  coro *c = coro_new(p, overflow_fn, NULL);

  segv_stack = c->stack;
  CHECK(sigaltstack(&ss, NULL) == 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
  resume(c);
  _exit(44);
}

/* force: the mprotect scheme even where guard markers work. */
static void test_guard(int force)
{
  scio__stack_pool p;
  scio__stack *s;
  int err, status, light = markers && !force;
  char msg[256], perms[5];
  pid_t pid;

  force_guards(force);
  CHECK(scio__stack_pool_init(&p, 20000, coro_user_size(), 1, 4) == 0);
  CHECK(p.stack_size == 20480);
  s = scio__stack_get(&p, &err, msg, sizeof msg);
  CHECK(s != NULL && s->had_slab == light);
  check_layout(&p, s);
  CHECK((char *)s->lo == (char *)s->map + getpagesize());
  if (!light) {
    maps_perms(s->map, perms);
    CHECK(strcmp(perms, "---p") == 0);
    maps_perms(s->lo, perms);
    CHECK(strcmp(perms, "rw-p") == 0);
  }
  scio__stack_put(&p, s);
  if (!RUNNING_ON_VALGRIND) {
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
      guard_overflow_child(&p);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
  }
  scio__stack_pool_fini(&p);
  force_guards(0);
  printf("ok  guard page: %s below the stack%s\n",
         light ? "guard marker" : "PROT_NONE",
         RUNNING_ON_VALGRIND ? "" : ", overflow faults in it");
}

/* A write into the guard page faults, one at the lowest usable byte does
 * not (children of ours do the writing). */
static void check_guard_faults(scio__stack *s)
{
  CHECK(write_faults((char *)s->lo - 1));
  CHECK(write_faults(s->map));
  CHECK(!write_faults(s->lo));
}

/* Guard markers on slab units: the guard holds for a fresh stack, for one
 * back from the cache, for one reused while its pages were still pending,
 * and for one reused after its pages were dropped (MADV_DONTNEED must keep
 * the marker).  Stacks reused before the drop keep their contents, after
 * it they read as zeroes. */
static void test_guard_markers(void)
{
  enum { N = 6 };
  scio__stack_pool p;
  scio__stack *s[N], *keep;
  char *map[N];
  size_t map_size;
  int err;
  char msg[256];
  long maps0 = count_maps();

  if (!markers || RUNNING_ON_VALGRIND) {
    printf("skip guard markers: %s\n",
           markers ? "no fork tests under valgrind"
                   : "this kernel has no MADV_GUARD_INSTALL");
    return;
  }
  CHECK(scio__stack_pool_init(&p, 0, coro_user_size(), 1, 4) == 0);
  /* Live throughout: keeps the slab from being unmapped by the trim. */
  keep = scio__stack_get(&p, &err, msg, sizeof msg);
  CHECK(keep != NULL && keep->had_slab);
  for (int i = 0; i < N; i++) {
    CHECK((s[i] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    CHECK(s[i]->had_slab && s[i]->lo == s[i]->map + getpagesize());
    check_layout(&p, s[i]);
    map[i] = s[i]->map;
    memset((char *)s[i]->user - 4096, 0x5a, 4096);
  }
  map_size = s[0]->map_size;
  check_guard_faults(s[0]); /* fresh */
  for (int i = 0; i < N; i++)
    scio__stack_put(&p, s[i]);
  /* 4 in the cache, 2 back in the slab with their pages. */
  CHECK(p.cached == 4 && p.pending == 2);
  for (int i = 0; i < N; i++) {
    CHECK((s[i] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    CHECK(((unsigned char *)s[i]->user)[-1] == 0x5a);
  }
  check_guard_faults(s[0]); /* from the cache */
  check_guard_faults(s[N - 1]); /* from the slab, pending */
  for (int i = 0; i < N; i++)
    scio__stack_put(&p, s[i]);
  scio__stack_pool_trim(&p, 0);
  CHECK(p.cached == 0 && p.pending == 0);
  for (int i = 0; i < N; i++)
    CHECK(is_mapped(map[i] + map_size - 1) &&
          !is_resident(map[i] + map_size - 1));
  /* The dropped units are reused before any new one is carved. */
  for (int i = 0; i < N; i++) {
    int found = 0;
    CHECK((s[i] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    for (int j = 0; j < N; j++)
      found |= (char *)s[i]->map == map[j];
    CHECK(found);
    CHECK(((unsigned char *)s[i]->user)[-1] == 0);
  }
  for (int i = 0; i < N; i++)
    check_guard_faults(s[i]); /* recycled */
  for (int i = 0; i < N; i++)
    scio__stack_put(&p, s[i]);
  scio__stack_put(&p, keep);
  scio__stack_pool_fini(&p);
  CHECK(maps_back_to(maps0));
  printf("ok  guard markers: writes into the guard fault on fresh, cached "
         "and recycled stacks\n");
}

/* Guard markers cost no mapping: 100 000 guarded stacks (the mprotect
 * scheme tops out near 32 000) in a handful of slabs. */
static void test_guard_marker_maps(void)
{
  size_t n = RUNNING_ON_VALGRIND ? 5000 : 100000;
  scio__stack **ss = calloc(n, sizeof *ss);
  scio__stack_pool p;
  long maps0, maps1;
  int err = 0;
  char msg[512] = "";
  double t0, t1;

  CHECK(ss != NULL);
  if (!markers) {
    printf("skip guard marker mappings: this kernel has no "
           "MADV_GUARD_INSTALL\n");
    free(ss);
    return;
  }
  maps0 = count_maps();
  CHECK(scio__stack_pool_init(&p, 0, 256, 1, 256) == 0);
  t0 = now_s();
  for (size_t i = 0; i < n; i++) {
    ss[i] = scio__stack_get(&p, &err, msg, sizeof msg);
    if (ss[i] == NULL)
      fprintf(stderr, "stack %zu: %s\n", i, msg);
    CHECK(ss[i] != NULL && ss[i]->had_slab);
  }
  t1 = now_s();
  maps1 = count_maps();
  CHECK(RUNNING_ON_VALGRIND || maps1 - maps0 < 250);
  if (!RUNNING_ON_VALGRIND)
    check_guard_faults(ss[n / 2]);
  for (size_t i = 0; i < n; i++)
    scio__stack_put(&p, ss[i]);
  scio__stack_pool_fini(&p);
  CHECK(maps_back_to(maps0));
  free(ss);
  printf("ok  guard markers: %zu guarded stacks in %ld mappings (%.0f ns "
         "per stack), all unmapped after\n",
         n, maps1 - maps0, (t1 - t0) * 1e9 / (double)n);
}

static void test_noguard(void)
{
  enum { N = 3000 };
  static scio__stack *ss[N];
  scio__stack_pool p;
  long maps0 = count_maps(), maps1;
  int err;
  char msg[256];

  CHECK(scio__stack_pool_init(&p, 0, coro_user_size(), 0, 0) == 0);
  for (int i = 0; i < N; i++) {
    ss[i] = scio__stack_get(&p, &err, msg, sizeof msg);
    CHECK(ss[i] != NULL && ss[i]->had_slab);
    CHECK(ss[i]->lo == ss[i]->map);
    check_layout(&p, ss[i]);
    memset((char *)ss[i]->user - 1024, 0x5a, 1024 + p.user_size);
  }
  maps1 = count_maps();
  CHECK(RUNNING_ON_VALGRIND || maps1 - maps0 < 40); /* slabs */
  for (int i = 0; i < N; i++)
    CHECK(((unsigned char *)ss[i]->user)[-1] == 0x5a);
  for (int i = 0; i < N; i++)
    scio__stack_put(&p, ss[i]);
  CHECK(maps_back_to(maps0));
  scio__stack_pool_fini(&p);
  printf("ok  no guard: %d stacks in %ld mappings, all unmapped after\n", N,
         maps1 - maps0);
}

/* ------------------------------------------------------------------------
 * 6. Cache and trim.
 */
static void test_cache(int force)
{
  scio__stack_pool p;
  scio__stack *a, *b, *c;
  void *a_lo, *b_lo, *c_lo; /* the structs vanish with their mappings */
  int err;
  char msg[256];
  long maps0 = count_maps();

  force_guards(force);
  CHECK(scio__stack_pool_init(&p, 0, 128, 1, 2) == 0);
  a = scio__stack_get(&p, &err, msg, sizeof msg);
  b = scio__stack_get(&p, &err, msg, sizeof msg);
  c = scio__stack_get(&p, &err, msg, sizeof msg);
  CHECK(a && b && c && p.live == 3);
  a_lo = a->lo;
  b_lo = b->lo;
  c_lo = c->lo;
  scio__stack_put(&p, a);
  scio__stack_put(&p, b);
  scio__stack_put(&p, c); /* cache is full: c is released */
  CHECK(p.cached == 2 && p.live == 0);
  /* A slab unit waits, pending, for a batch; its slab stays anyway. */
  CHECK(a->had_slab == (markers && !force));
  CHECK(a->had_slab ? p.pending == 1 && is_mapped(c_lo) : !is_mapped(c_lo));
  CHECK(scio__stack_get(&p, &err, msg, sizeof msg) == b); /* LIFO */
  CHECK(scio__stack_get(&p, &err, msg, sizeof msg) == a);
  CHECK(p.cached == 0 && p.live == 2);
  scio__stack_put(&p, a);
  scio__stack_put(&p, b);
  scio__stack_pool_fini(&p);
  CHECK(!is_mapped(a_lo) && !is_mapped(b_lo) && !is_mapped(c_lo));
  CHECK(maps_back_to(maps0));
  force_guards(0);
  printf("ok  cache (%s): LIFO reuse, cache_max respected, fini unmaps\n",
         markers && !force ? "guard markers" : "mprotect guards");
}

static void test_trim_guard(int force)
{
  enum { N = 10 };
  scio__stack_pool p;
  scio__stack *s[N];
  char *lo[N], *top[N];
  int err, light = markers && !force;
  char msg[256];
  long maps0 = count_maps();

  force_guards(force);
  CHECK(scio__stack_pool_init(&p, 0, 0, 1, 100) == 0);
  for (int i = 0; i < N; i++) {
    CHECK((s[i] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    CHECK(s[i]->had_slab == light);
    lo[i] = s[i]->lo;
    top[i] = (char *)s[i]->user - 1;
    *top[i] = 1;
  }
  for (int i = 0; i < N; i++)
    scio__stack_put(&p, s[i]);
  CHECK(p.cached == N);
  scio__stack_pool_trim(&p, 3);
  CHECK(p.cached == 3 && p.pending == 0);
  /* The three most recently returned stay.  The others: unmapped, or with
   * guard markers, their pages dropped (slabs in use stay mapped). */
  for (int i = 0; i < N; i++)
    if (light)
      CHECK(is_mapped(top[i]) && is_resident(top[i]) == (i >= N - 3));
    else
      CHECK(is_mapped(lo[i]) == (i >= N - 3));
  scio__stack_pool_trim(&p, 0);
  CHECK(p.cached == 0 && maps_back_to(maps0));
  for (int i = 0; i < N; i++)
    CHECK(!is_mapped(lo[i]) && !is_mapped(top[i]));
  scio__stack_pool_fini(&p);
  force_guards(0);
  printf("ok  trim (%s): keeps the newest, releases the rest\n",
         light ? "guard markers" : "mprotect guards");
}

/* No guard: a partly free slab drops the pages of freed stacks; a slab
 * with nothing live or cached is unmapped. */
static void test_trim_slab(void)
{
  scio__stack_pool p;
  scio__stack *a, *b;
  char *deep, *slab_lo;
  int err;
  char msg[256];
  long maps0 = count_maps();

  CHECK(scio__stack_pool_init(&p, 0, 64, 0, 10) == 0);
  a = scio__stack_get(&p, &err, msg, sizeof msg);
  b = scio__stack_get(&p, &err, msg, sizeof msg);
  CHECK(a && b && a->had_slab && b->had_slab);
  slab_lo = (char *)(a->map < b->map ? a->map : b->map);
  deep = (char *)b->lo + 4096;
  memset(deep, 1, (size_t)((char *)b->user - deep));
  CHECK(is_resident(deep));
  scio__stack_put(&p, b);
  CHECK(is_resident(deep)); /* cached: kept warm */
  scio__stack_pool_trim(&p, 0);
  CHECK(is_mapped(deep) && !is_resident(deep));
  CHECK(scio__stack_get(&p, &err, msg, sizeof msg) == b); /* reused */
  CHECK(((char *)b->user)[-1] == 0); /* a dropped unit comes back zeroed */
  scio__stack_put(&p, a);
  scio__stack_put(&p, b);
  CHECK(p.cached == 2 && is_mapped(slab_lo));
  scio__stack_pool_trim(&p, 0);
  CHECK(!is_mapped(slab_lo) && maps_back_to(maps0));
  scio__stack_pool_fini(&p);
  printf("ok  trim (slabs): MADV_DONTNEED on partly free slabs, unmap of "
         "free ones\n");
}

/* Released in batches: past the cache at most cache_max units wait with
 * their pages; a batch drops exactly the released units (runs of them
 * coalesced into one madvise, so holes in the runs must survive) and
 * unmaps the slabs that have emptied. */
static void test_release_batches(void)
{
  enum { N = 200 };
  static char *top[N];
  scio__stack *s[N];
  scio__stack_pool p;
  int err;
  char msg[256];
  long maps0 = count_maps();

  CHECK(scio__stack_pool_init(&p, 0, 64, 0, 4) == 0);
  for (int i = 0; i < N; i++) {
    CHECK((s[i] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    top[i] = (char *)s[i]->user - 1;
    *top[i] = 1;
  }
  /* Two of every three, spread over every slab: none empties. */
  for (int i = 0; i < N; i++)
    if (i % 3 != 0) {
      scio__stack_put(&p, s[i]);
      CHECK(p.pending <= p.cache_max);
    }
  scio__stack_pool_trim(&p, 0);
  CHECK(p.cached == 0 && p.pending == 0);
  for (int i = 0; i < N; i++)
    CHECK(is_mapped(top[i]) && is_resident(top[i]) == (i % 3 == 0));
  for (int i = 0; i < N; i += 3) {
    scio__stack_put(&p, s[i]);
    CHECK(p.pending <= p.cache_max);
  }
  scio__stack_pool_trim(&p, 0);
  for (int i = 0; i < N; i++)
    CHECK(!is_mapped(top[i]));
  CHECK(maps_back_to(maps0));
  scio__stack_pool_fini(&p);
  printf("ok  release in batches: holes kept, emptied slabs unmapped\n");
}

/* ------------------------------------------------------------------------
 * 7. The fail_after hook: ENOMEM, a useful message, nothing leaked, and
 * the pool still works afterwards.
 */
/* call: the failed syscall as the message names it; hint: what else the
 * message must say for this scheme. */
static void expect_enomem(scio__stack_pool *p, const char *call,
                          const char *hint)
{
  char msg[512] = "";
  int err = 0;
  size_t live = p->live;
  long maps0 = count_maps();

  CHECK(scio__stack_get(p, &err, msg, sizeof msg) == NULL);
  CHECK(err == -ENOMEM);
  CHECK(strstr(msg, "vm.max_map_count") != NULL);
  CHECK(strstr(msg, hint) != NULL);
  CHECK(strstr(msg, call) != NULL);
  CHECK(p->live == live && maps_back_to(maps0));
}

/* mode 0: no guard; 1: guards (markers where the kernel has them);
 * 2: guards, mprotect scheme forced. */
static void test_fail_after_mode(int mode)
{
  scio__stack_pool p;
  scio__stack *s[3];
  int err, guard = mode != 0, light = mode == 1 && markers;
  const char *hint = light ? "cost no memory mappings"
                           : "SCIO_RUN_NO_GUARD_PAGES";
  char msg[256];
  long maps0 = count_maps();

  force_guards(mode == 2);
  CHECK(scio__stack_pool_init(&p, 0, 100, guard, 0) == 0);
  if (light) {
    /* The slab is mapped, then its first guard marker fails: the slab
     * must go again (expect_enomem counts the mappings). */
    scio__stack_fail_after(2);
    expect_enomem(&p, "madvise (guard page):", hint);
    CHECK(p.impl == NULL);
  }
  scio__stack_fail_after(1);
  expect_enomem(&p, guard && !light ? "mmap:" : "mmap (stack slab):", hint);
  CHECK((s[0] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
  CHECK(s[0]->had_slab == (!guard || light));
  if (guard) {
    /* Each guarded stack is a new mapping, or a new guard marker in the
     * slab: the third attempt fails. */
    scio__stack_fail_after(3);
    CHECK((s[1] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    CHECK((s[2] = scio__stack_get(&p, &err, msg, sizeof msg)) != NULL);
    expect_enomem(&p, light ? "madvise (guard page):" : "mmap:", hint);
    scio__stack_put(&p, s[1]);
    scio__stack_put(&p, s[2]);
  }
  scio__stack_put(&p, s[0]);
  CHECK(maps_back_to(maps0));
  scio__stack_fail_after(0);
  scio__stack_pool_fini(&p);
  force_guards(0);
  printf("ok  fail_after (%s): ENOMEM, message, nothing leaked\n",
         !guard ? "no guard" : light ? "guard markers" : "mprotect guards");
}

/* ------------------------------------------------------------------------
 * 8. Guarded stacks until vm.max_map_count runs out (the mprotect scheme,
 * forced: guard markers cost no mappings).
 *
 * Between the failure and the release nothing may allocate: the process
 * has no mappings left, and malloc (or ASan's allocator) may need one.
 */
#define MAXMAP_SLOTS 70000
static scio__stack *maxmap_stacks[MAXMAP_SLOTS];

static void test_max_map_count(void)
{
  scio__stack_pool p;
  char msg[512] = "";
  int err = 0;
  size_t n = 0;
  long maps0 = count_maps(), maps_full;
  double t0 = now_s();

  force_guards(1);
  CHECK(scio__stack_pool_init(&p, 0, 256, 1, 0) == 0);
  while (n < MAXMAP_SLOTS &&
         (maxmap_stacks[n] = scio__stack_get(&p, &err, msg, sizeof msg)))
    ((char *)maxmap_stacks[n++]->user)[-1] = 1;
  maps_full = count_maps();
  for (size_t i = 0; i < n; i++)
    scio__stack_put(&p, maxmap_stacks[i]);
  CHECK(n < MAXMAP_SLOTS);
  CHECK(err == -ENOMEM);
  CHECK(strstr(msg, "vm.max_map_count") != NULL);
  CHECK(strstr(msg, "SCIO_RUN_NO_GUARD_PAGES") != NULL);
  CHECK(maps_back_to(maps0));
  scio__stack_pool_fini(&p);
  force_guards(0);
  printf("ok  max_map_count: %zu guarded stacks (%ld mappings), then "
         "ENOMEM in %.2f s; all released\n     message: %s\n",
         n, maps_full, now_s() - t0, msg);
}

/* ------------------------------------------------------------------------
 * 9. Measurements.
 */
static void bench_fn(coro *c)
{
  for (;;)
    yield_to_main(c);
}

static void bench_switch(void)
{
  scio__stack_pool p;
  coro *c;
  long n = RUNNING_ON_VALGRIND ? 200000 : 10000000;
  double t;

  CHECK(scio__stack_pool_init(&p, 0, coro_user_size(), 1, 0) == 0);
  c = coro_new(&p, bench_fn, NULL);
  resume(c); /* first entry out of the measurement */
  t = now_s();
  for (long i = 0; i < n / 2; i++)
    resume(c);
  t = now_s() - t;
  printf("perf switch (%s): %.1f ns per switch (%ld switches)\n",
         scio__ctx_backend(), t * 1e9 / (double)n, n);
  /* bench_fn never returns: release without running it to the end. */
  coro_free(&p, c);
  scio__stack_pool_fini(&p);
}

static void bench_million(void)
{
  const char *e = getenv("SCIO_SELFTEST_STACKS");
  size_t n = e ? strtoul(e, NULL, 10) : 1000000;
  scio__stack **ss = malloc(n * sizeof *ss);
  scio__stack_pool p;
  long rss0, rss1, maps0 = count_maps(), maps1;
  int err = 0;
  char msg[512] = "";
  double t0, t1, t2;

  CHECK(ss != NULL);
  memset(ss, 0, n * sizeof *ss); /* fault the array in before measuring */
  CHECK(scio__stack_pool_init(&p, 0, 256, 0, 0) == 0);
  rss0 = vm_rss_kib();
  t0 = now_s();
  for (size_t i = 0; i < n; i++) {
    ss[i] = scio__stack_get(&p, &err, msg, sizeof msg);
    if (ss[i] == NULL)
      fprintf(stderr, "stack %zu: %s\n", i, msg);
    CHECK(ss[i] != NULL);
    ((volatile char *)ss[i]->user)[-1] = 1; /* top of the stack proper */
    ((volatile char *)ss[i]->user)[0] = 1;  /* the task struct */
  }
  t1 = now_s();
  rss1 = vm_rss_kib();
  maps1 = count_maps();
  for (size_t i = 0; i < n; i++)
    scio__stack_put(&p, ss[i]);
  scio__stack_pool_fini(&p);
  t2 = now_s();
  CHECK(maps_back_to(maps0));
  printf("perf %zu stacks of %zu KiB, no guard: get+touch %.2f s "
         "(%.0f ns each), RSS +%ld MiB (%.2f KiB/stack), %ld mappings; "
         "release all %.2f s\n",
         n, p.stack_size / 1024, t1 - t0, (t1 - t0) * 1e9 / (double)n,
         (rss1 - rss0) / 1024, (double)(rss1 - rss0) / (double)n,
         maps1 - maps0, t2 - t1);
  free(ss);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  emulated = getenv("SCIO_SELFTEST_EMULATED") != NULL;
  force_guards(0);
  markers = emulated ? 0 : probe_markers();
  printf("backend: %s%s; guard markers: %s\n", scio__ctx_backend(),
         RUNNING_ON_VALGRIND ? " (under valgrind)" : "",
         markers ? "yes" : "no (mprotect guards)");
  CHECK(scio__ctx_init_main(&main_ctx) == 0);
  CHECK(main_ctx.stack_lo != NULL && main_ctx.stack_size > 0);
  {
    /* Not the address of a local: with ASan's detect_stack_use_after_return
     * locals live on a heap "fake stack". */
    char *here = __builtin_frame_address(0);
    CHECK(here > (char *)main_ctx.stack_lo &&
          here < (char *)main_ctx.stack_lo + main_ctx.stack_size);
  }
  {
    scio__stack_pool p;
    CHECK(scio__stack_pool_init(&p, 12 * 1024, 0, 1, 0) == -EINVAL);
    CHECK(scio__stack_pool_init(&p, 0, 0, 1, 0) == 0 &&
          p.stack_size == 256 * 1024);
    scio__stack_pool_fini(&p);
  }
  test_pingpong();
  test_ring();
  test_longjmp_malloc();
  test_fp();
  test_exit_reuse();
  test_guard(0);
  test_guard(1);
  test_guard_markers();
  test_guard_marker_maps();
  test_noguard();
  test_cache(0);
  test_cache(1);
  test_trim_guard(0);
  test_trim_guard(1);
  test_trim_slab();
  test_release_batches();
  test_fail_after_mode(1);
  test_fail_after_mode(2);
  test_fail_after_mode(0);
  bench_switch();
  if (slow_tests_allowed()) {
    test_max_map_count();
    bench_million();
  } else {
    printf("skip max_map_count exhaustion and million stacks (%s)\n",
           RUNNING_ON_VALGRIND ? "valgrind" : "SCIO_SELFTEST_QUICK");
  }
  scio__ctx_fini_main(&main_ctx);
  printf("all ctx/stack self-tests passed\n");
  return 0;
}
