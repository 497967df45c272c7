/* Tests of the fd contract (src/core/layer.h) and of the public fd waits:
 * fd-number reuse, SCIO__FD_NOPARK, scio__fd_close, cancellation, EBUSY,
 * event sources and the polling cadence, foreign fds closed behind scio's
 * back, the blocking poll's timer, allocation failure.  Every test runs on
 * epoll, poll and select. */
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "scio/testing.h"
#include "support/oom.h"

void core_fd_tests(Suite *s);

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

static int is_epoll(void) { return strcmp(scio_backend(), "epoll") == 0; }

static void nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  CK_OK(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

typedef struct waiter {
  int fd;
  int dir;
  int layer; /* scio__fd_wait instead of the public call */
  int rc;
  int done;
} waiter;

static int wait_task(void *p) {
  waiter *w = p;
  if (w->layer)
    w->rc = scio__fd_wait(w->fd, w->dir);
  else
    w->rc = w->dir == SCIO__FD_READ ? scio_wait_readable(w->fd)
                                    : scio_wait_writable(w->fd);
  w->done = 1;
  return 0;
}

/* One round: a task parks on fds[0], the root writes once it is blocked,
 * and the task must wake (within a second of autojump time, or the round
 * fails instead of hanging). */
static void wake_round(int fds[2], int layer) {
  waiter w = {fds[0], SCIO__FD_READ, layer, 1, 0};
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(w.done, 0);
  ck_assert_int_eq(write(fds[1], "x", 1), 1);
  int crc = scio_nursery_close(&n);
  scio_scope_close(&cs);
  ck_assert_msg(w.done && crc == 0 && !scio_scope_cancelled_caught(&cs),
                "the wait on fd %d did not wake on %s (%s)", fds[0],
                scio_backend(), scio_err_name(crc));
  ck_assert_int_eq(w.rc, 0);
  char c;
  ck_assert_int_eq(read(fds[0], &c, 1), 1);
}

/* The bug of issue 8: a foreign fd waited on, closed without
 * scio_notify_closing; the next pipe gets the same numbers and its wait
 * must still wake. */
SCIO_TEST_AUTOJUMP(public_wait_survives_fd_number_reuse) {
  int a[2], b[2];
  CK_OK(pipe(a));
  wake_round(a, 0);
  close(a[0]);
  close(a[1]);
  CK_OK(pipe(b));
  ck_assert_int_eq(b[0], a[0]); /* the number is reused */
  wake_round(b, 0);
  wake_round(b, 0); /* and the fresh registration keeps working */
  /* Reused by a different kind of file: a socket. */
  close(b[0]);
  close(b[1]);
  int sv[2];
  CK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ck_assert_int_eq(sv[0], a[0]);
  wake_round(sv, 0);
  scio_notify_closing(sv[0]);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

/* Layer code closes through scio__fd_close: the reused number starts
 * clean, with no syscall on the wait path to repair anything. */
SCIO_TEST_AUTOJUMP(layer_close_makes_fd_number_reuse_safe) {
  int a[2], b[2];
  CK_OK(pipe(a));
  wake_round(a, 1);
  CK_OK(scio__fd_close(a[0]));
  CK_OK(scio__fd_close(a[1]));
  ck_assert(!fd_is_open(a[0]));
  CK_OK(pipe(b));
  ck_assert_int_eq(b[0], a[0]);
  wake_round(b, 1);
  CK_OK(scio__fd_close(b[0]));
  CK_OK(scio__fd_close(b[1]));
  /* Closing a closed fd reports close's error. */
  ck_assert_int_eq(scio__fd_close(b[0]), -EBADF);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "close"));
  return 0;
}

static int set_flag(void *p) {
  *(int *)p = 1;
  return 0;
}

/* SCIO__FD_NOPARK: an edge that arrived while nobody waited is reported as
 * "did not yield", so a receive can still meet the checkpoint rule. */
SCIO_TEST(fd_wait_reports_whether_it_parked) {
  int fds[2];
  CK_OK(pipe(fds));
  nonblocking(fds[0]);
  char c;
  /* First wait: nothing there, it parks and is woken. */
  waiter w = {fds[0], SCIO__FD_READ, 1, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(write(fds[1], "a", 1), 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, 0);
  ck_assert_int_eq(read(fds[0], &c, 1), 1);
  ck_assert_int_eq(read(fds[0], &c, 1), -1); /* drained: EAGAIN */
  /* Data arrives while nobody waits; the loop polls and sees it. */
  ck_assert_int_eq(write(fds[1], "b", 1), 1);
  CK_OK(scio_wait_all_tasks_blocked());
  int ran = 0;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, set_flag, &ran));
  int rc = scio__fd_wait(fds[0], SCIO__FD_READ);
  if (is_epoll()) {
    /* The remembered edge: back at once, without a switch. */
    ck_assert_int_eq(rc, SCIO__FD_NOPARK);
    ck_assert_int_eq(ran, 0);
  } else {
    /* Level-triggered: it parks and the poll wakes it at once. */
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ran, 1);
  }
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(read(fds[0], &c, 1), 1);
  ck_assert_int_eq(c, 'b');
  /* The edge was consumed: the next wait parks. */
  w.rc = 1;
  w.done = 0;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(w.done, 0);
  ck_assert_int_eq(write(fds[1], "c", 1), 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w.rc, 0);
  CK_OK(scio__fd_close(fds[0]));
  CK_OK(scio__fd_close(fds[1]));
  return 0;
}

/* scio__fd_close wakes both directions' waiters with SCIO_ECLOSED and
 * closes the fd; the loop's source count goes back to where it was. */
SCIO_TEST(fd_close_wakes_waiters_with_eclosed) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  int sv[2];
  CK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  nonblocking(sv[0]);
  char buf[4096];
  memset(buf, 'f', sizeof buf);
  while (write(sv[0], buf, sizeof buf) > 0) {
  }
  ck_assert_int_eq(errno, EAGAIN); /* sv[0] is not writable, nor readable */
  waiter r = {sv[0], SCIO__FD_READ, 1, 1, 0};
  waiter w = {sv[0], SCIO__FD_WRITE, 1, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &r));
  CK_OK(scio_start_soon(&n, wait_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert(!r.done && !w.done);
  ck_assert_uint_gt(l->nsources, base);
  CK_OK(scio__fd_close(sv[0]));
  ck_assert(!fd_is_open(sv[0]));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, SCIO_ECLOSED);
  ck_assert_int_eq(w.rc, SCIO_ECLOSED);
  ck_assert_uint_eq(l->nsources, base);
  CK_OK(scio__fd_close(sv[1]));
  /* scio__fd_forget hands an fd back open, waking with the value given. */
  int fds[2];
  CK_OK(pipe(fds));
  r.rc = 1;
  r.done = 0;
  r.fd = fds[0];
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  scio__fd_forget(l, fds[0], -EIO);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, -EIO);
  ck_assert(fd_is_open(fds[0]));
  ck_assert_uint_eq(l->nsources, base);
  CK_OK(scio__fd_close(fds[0]));
  CK_OK(scio__fd_close(fds[1]));
  return 0;
}

/* Cancellation: an fd wait is abortable; cancelled before or while parked,
 * it returns SCIO_ECANCELED, leaves no event behind, and the fd works
 * afterwards. */
SCIO_TEST(fd_waits_are_cancellable) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  int fds[2];
  CK_OK(pipe(fds));
  /* Cancelled before the wait. */
  scio_scope cs;
  CK_OK(scio_scope_open(&cs, INFINITY, 0));
  scio_scope_cancel(&cs);
  ck_assert_int_eq(scio__fd_wait(fds[0], SCIO__FD_READ), SCIO_ECANCELED);
  ck_assert_int_eq(scio_wait_readable(fds[0]), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  /* Cancelled while parked, on both paths. */
  for (int layer = 0; layer < 2; layer++) {
    waiter w = {fds[0], SCIO__FD_READ, layer, 1, 0};
    scio_nursery n;
    CK_OK(scio_nursery_open(&n));
    CK_OK(scio_start_soon(&n, wait_task, &w));
    CK_OK(scio_wait_all_tasks_blocked());
    scio_nursery_cancel(&n);
    CK_OK(scio_nursery_close(&n));
    ck_assert_int_eq(w.rc, SCIO_ECANCELED);
    /* No level-triggered event left pending; on epoll only the one
     * persistent registration of the fd counts. */
    ck_assert_uint_eq(l->nsources, base + (is_epoll() ? 1 : 0));
    /* The direction is free again, and the fd wakes its next waiter. */
    int a[2] = {fds[0], fds[1]};
    wake_round(a, layer);
  }
  CK_OK(scio__fd_close(fds[0]));
  CK_OK(scio__fd_close(fds[1]));
  ck_assert_uint_eq(l->nsources, base);
  return 0;
}

/* One waiting task per direction: a second gets SCIO_EBUSY, the other
 * direction is independent. */
SCIO_TEST(second_waiter_is_ebusy) {
  int sv[2];
  CK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  waiter r = {sv[0], SCIO__FD_READ, 1, 1, 0};
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &r));
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert_int_eq(scio__fd_wait(sv[0], SCIO__FD_READ), SCIO_EBUSY);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "already waiting"));
  ck_assert_int_eq(scio_wait_readable(sv[0]), SCIO_EBUSY);
  /* Writable now: the other direction does not conflict. */
  int rc = scio__fd_wait(sv[0], SCIO__FD_WRITE);
  ck_assert(rc == 0 || rc == SCIO__FD_NOPARK);
  CK_OK(scio_wait_writable(sv[0]));
  ck_assert_int_eq(r.done, 0);
  ck_assert_int_eq(write(sv[1], "r", 1), 1);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.rc, 0);
  ck_assert_int_eq(scio__fd_wait(-1, SCIO__FD_READ), -EBADF);
  ck_assert_int_eq(scio_wait_readable(-1), -EBADF);
  CK_OK(scio__fd_close(sv[0]));
  CK_OK(scio__fd_close(sv[1]));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Event sources and the polling cadence */

typedef struct src_state {
  int fired;
  long yields;
} src_state;

static void src_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  src_state *st = arg;
  st->fired = 1;
  scio__loop_source_remove(scio__loop_current()); /* not persistent */
}

/* Yield until the event fired; fail after far more rounds than the
 * cadence allows (at least every 64 rounds, or 100 µs of them). */
static void yield_until_fired(src_state *st) {
  while (!st->fired && st->yields < 1000000) {
    CK_OK(scio_checkpoint());
    st->yields++;
  }
  ck_assert_msg(st->fired, "the source's event never ran while a task "
                           "kept yielding");
}

/* A libevent event added by layer code (here: a pipe with data, and a
 * timer, as c-ares would add) is seen by the scheduler's poll even while
 * a task keeps yielding, because it is counted as a source. */
SCIO_TEST(counted_sources_are_polled_while_tasks_yield) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  struct event_base *eb = scio__loop_base(l);
  int fds[2];
  CK_OK(pipe(fds));
  ck_assert_int_eq(write(fds[1], "s", 1), 1);
  src_state st = {0, 0};
  struct event *ev = event_new(eb, fds[0], EV_READ, src_cb, &st);
  ck_assert_ptr_nonnull(ev);
  CK_OK(event_add(ev, NULL));
  scio__loop_source_add(l);
  yield_until_fired(&st);
  ck_assert_uint_eq(l->nsources, base);
  event_free(ev);
  /* A timer source. */
  src_state st2 = {0, 0};
  struct event *tev = evtimer_new(eb, src_cb, &st2);
  ck_assert_ptr_nonnull(tev);
  struct timeval tv = {0, 1000};
  CK_OK(evtimer_add(tev, &tv));
  scio__loop_source_add(l);
  yield_until_fired(&st2);
  ck_assert_uint_eq(l->nsources, base);
  event_free(tev);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

/* The cross-thread wake-up is a source too: a post from another thread is
 * run while a task keeps yielding. */
static void posted_fire(void *arg) { ((src_state *)arg)->fired = 1; }

static void *post_from_thread(void *arg) {
  void **a = arg;
  if (scio__loop_post(a[0], posted_fire, a[1]) != 0)
    abort();
  return NULL;
}

SCIO_TEST(wakeup_is_a_source) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  CK_OK(scio__loop_enable_wakeup(l));
  ck_assert_uint_eq(l->nsources, base + 1);
  src_state st = {0, 0};
  void *a[2] = {l, &st};
  pthread_t th;
  CK_OK(pthread_create(&th, NULL, post_from_thread, a));
  pthread_join(th, NULL);
  yield_until_fired(&st);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Foreign fds closed behind scio's back */

SCIO_TEST(closed_foreign_fd_is_ebadf_and_forgotten) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  int fds[2];
  CK_OK(pipe(fds));
  wake_round(fds, 0);
  /* Closed without scio_notify_closing, number not reused. */
  close(fds[0]);
  ck_assert_int_eq(scio_wait_readable(fds[0]), -EBADF);
  ck_assert_ptr_nonnull(strstr(scio_errmsg(), "not open"));
  /* What the registration held is gone with it. */
  ck_assert_uint_eq(l->nsources, base);
  close(fds[1]);
  return 0;
}

/* Bounded waits (scio__fd_wait_bounded): with no edge, each ends with
 * SCIO__FD_EXPIRED between SCIO__FD_BOUND and twice that after it began,
 * whenever it began; one woken by an edge, cancelled or closed leaves the
 * sweep's list at once, and the others still expire on time; the sweep
 * stops when no bounded wait is left, and level-triggered events are
 * undone (sources back where they were). */
typedef struct bwaiter {
  int fd;
  double start, end;
  int rc;
} bwaiter;

static int bounded_task(void *p) {
  bwaiter *w = p;
  w->start = scio_now();
  w->rc = scio__fd_wait_bounded(w->fd, SCIO__FD_READ);
  w->end = scio_now();
  return 0;
}

SCIO_TEST_AUTOJUMP(bounded_fd_waits_expire_and_leave_on_wake) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  enum { N = 6 };
  int fds[N][2];
  bwaiter w[N];
  for (int i = 0; i < N; i++) {
    CK_OK(pipe(fds[i]));
    nonblocking(fds[i][0]);
    w[i] = (bwaiter){fds[i][0], 0, 0, 1};
  }
  scio_scope cancel_one;
  scio_nursery n, inner;
  CK_OK(scio_nursery_open(&n));
  /* Waits begin at 0, 0.03 and 0.07: before and after the first sweep. */
  for (int i = 0; i < N; i++) {
    if (i == 2)
      CK_OK(scio_sleep(0.03));
    if (i == 4)
      CK_OK(scio_sleep(0.04));
    if (i == 1) { /* this one is cancelled while it waits */
      CK_OK(scio_scope_open(&cancel_one, INFINITY, 0));
      CK_OK(scio_nursery_open(&inner));
      CK_OK(scio_start_soon(&inner, bounded_task, &w[i]));
      continue;
    }
    CK_OK(scio_start_soon(&n, bounded_task, &w[i]));
  }
  CK_OK(scio_wait_all_tasks_blocked());
  ck_assert(!scio__list_empty(&l->fd_bounded));
  /* An edge for 2, a close for 3, a cancel for 1; 0, 4 and 5 expire. */
  ck_assert_int_eq(write(fds[2][1], "x", 1), 1);
  CK_OK(scio__fd_close(fds[3][0]));
  scio_scope_cancel(&cancel_one);
  CK_OK(scio_nursery_close(&inner));
  scio_scope_close(&cancel_one);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[1].rc, SCIO_ECANCELED);
  ck_assert_int_eq(w[2].rc, 0);
  ck_assert_int_eq(w[3].rc, SCIO_ECLOSED);
  for (int i = 0; i < N; i++) {
    if (i >= 1 && i <= 3)
      continue;
    ck_assert_msg(w[i].rc == SCIO__FD_EXPIRED, "wait %d returned %d", i,
                  w[i].rc);
    double took = w[i].end - w[i].start;
    ck_assert_msg(took >= SCIO__FD_BOUND - 1e-9 &&
                      took <= 2 * SCIO__FD_BOUND + 1e-9,
                  "wait %d took %g s", i, took);
  }
  ck_assert(scio__list_empty(&l->fd_bounded));
  /* No bounded wait left: the sweep fires at most once more, then stops. */
  CK_OK(scio_sleep(3 * SCIO__FD_BOUND));
  ck_assert(!scio__hnode_in_heap(&l->timers, &l->fd_sweep));
  ck_assert_uint_eq(l->nsources, base + (is_epoll() ? N - 1 : 0));
  /* Waiting again on 2 with its byte unread: level-triggered, the poll
   * reports it at once; edge-triggered, the edge was spent on the first
   * wait, and the bound is what ends this one (the case it exists for). */
  w[2].rc = 1;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, bounded_task, &w[2]));
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(w[2].rc, is_epoll() ? SCIO__FD_EXPIRED : 0);
  for (int i = 0; i < N; i++) {
    if (i != 3)
      CK_OK(scio__fd_close(fds[i][0]));
    close(fds[i][1]);
  }
  ck_assert_uint_eq(l->nsources, base);
  return 0;
}

/* An fd closed behind scio's back while a task waits on it (misuse: call
 * scio_notify_closing first).  poll reports POLLNVAL, which wakes the
 * waiter (its next syscall fails with EBADF); select fails for the whole
 * set, and the loop then wakes that waiter with -EBADF instead of spinning;
 * epoll forgets a closed fd silently, so only a deadline or a cancel ends
 * that wait (what docs/internals.md and core.h warn about). */
SCIO_TEST_AUTOJUMP(fd_closed_under_a_waiter) {
  scio__loop *l = scio__loop_current();
  size_t base = l->nsources;
  int fds[2];
  CK_OK(pipe(fds));
  waiter w = {fds[0], SCIO__FD_READ, 0, 1, 0};
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 1.0));
  scio_nursery n;
  CK_OK(scio_nursery_open(&n));
  CK_OK(scio_start_soon(&n, wait_task, &w));
  CK_OK(scio_wait_all_tasks_blocked());
  close(fds[0]);
  int crc = scio_nursery_close(&n);
  scio_scope_close(&cs);
  if (is_epoll()) {
    /* The waiter saw the deadline and swallowed it (wait_task returns 0):
     * nothing propagates out of the nursery (Trio's rule). */
    CK_OK(crc);
    ck_assert(!scio_scope_cancelled_caught(&cs));
    ck_assert_int_eq(w.rc, SCIO_ECANCELED);
  } else {
    CK_OK(crc);
    ck_assert(!scio_scope_cancelled_caught(&cs));
    ck_assert_msg(w.rc == 0 || w.rc == -EBADF, "%s", scio_err_name(w.rc));
  }
  scio_notify_closing(fds[0]);
  ck_assert_uint_eq(l->nsources, base);
  close(fds[1]);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The blocking poll: no timer without a deadline, no timeout-0 poll before
 * it when nobody waits for "all tasks blocked" (real clock). */

typedef struct io_counts {
  int zero, infinite, finite;
} io_counts;

static void count_io(void *c, double timeout) {
  io_counts *k = c;
  if (timeout == 0)
    k->zero++;
  else if (isinf(timeout))
    __atomic_add_fetch(&k->infinite, 1, __ATOMIC_SEQ_CST);
  else
    k->finite++;
}

typedef struct writer {
  int fd;
  io_counts *k;
} writer;

/* Write once the loop has started to block (or after 5 s: the test then
 * fails on its counts, not by hanging). */
static void *write_when_blocked(void *p) {
  writer *w = p;
  for (int i = 0; i < 5000; i++) {
    if (__atomic_load_n(&w->k->infinite, __ATOMIC_SEQ_CST) > 0)
      break;
    usleep(1000);
  }
  ssize_t n = write(w->fd, "t", 1);
  (void)n;
  return NULL;
}

SCIO_TEST(idle_loop_blocks_once_without_timer) {
  int fds[2];
  CK_OK(pipe(fds));
  io_counts k = {0, 0, 0};
  scio_instrument ins;
  memset(&ins, 0, sizeof ins);
  ins.before_io_wait = count_io;
  ins.ctx = &k;
  CK_OK(scio_instrument_add(&ins));
  pthread_t th;
  writer wr = {fds[1], &k};
  CK_OK(pthread_create(&th, NULL, write_when_blocked, &wr));
  /* The only task parks; the loop must block until the write, with no
   * deadline (INFINITY: no timer armed) and no timeout-0 poll first. */
  CK_OK(scio_wait_readable(fds[0]));
  pthread_join(th, NULL);
  CK_OK(scio_instrument_remove(&ins));
  ck_assert_int_eq(k.zero, 0);
  ck_assert_int_eq(k.infinite, 1);
  ck_assert_int_eq(k.finite, 0);
  /* With a deadline the block is bounded by it (long enough not to have
   * passed before the loop blocks, even under valgrind). */
  k.zero = k.infinite = k.finite = 0;
  CK_OK(scio_instrument_add(&ins));
  CK_OK(scio_sleep(0.1));
  CK_OK(scio_instrument_remove(&ins));
  ck_assert_int_ge(k.finite, 1);
  ck_assert_int_eq(k.infinite, 0);
  scio_notify_closing(fds[0]);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Allocation failure on the registration path: every failure is
 * SCIO_ENOMEM, with nothing leaked (blocks, fds, registrations). */

static int oom_fd_body(void *arg) {
  (void)arg;
  int rc = 0, crc = 0;
  for (int layer = 0; layer < 2 && rc == 0; layer++) {
    int fds[2];
    if (pipe(fds) < 0)
      return -errno;
    waiter w = {fds[0], SCIO__FD_READ, layer, 1, 0};
    scio_nursery n;
    scio_nursery_open(&n);
    rc = scio_start_soon(&n, wait_task, &w);
    if (rc == 0)
      rc = scio_wait_all_tasks_blocked();
    if (write(fds[1], "o", 1) != 1)
      rc = -EIO;
    crc = scio_nursery_close(&n);
    if (rc == 0)
      rc = crc;
    if (rc == 0 && w.rc != 0)
      rc = w.rc;
    scio__fd_close(fds[0]);
    scio__fd_close(fds[1]);
  }
  return rc;
}

START_TEST(fd_registration_allocation_failure) {
  if (!scio_oom_install(SCIO_OOM_LIBEVENT))
    return;
  scio_oom_run r = {.fn = oom_fd_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
}
END_TEST

void core_fd_tests(Suite *s) {
  TCase *tc = scio_tcase_new("fd contract", 20);
  scio_tcase_add(tc, public_wait_survives_fd_number_reuse);
  scio_tcase_add(tc, layer_close_makes_fd_number_reuse_safe);
  scio_tcase_add(tc, fd_wait_reports_whether_it_parked);
  scio_tcase_add(tc, fd_close_wakes_waiters_with_eclosed);
  scio_tcase_add(tc, fd_waits_are_cancellable);
  scio_tcase_add(tc, second_waiter_is_ebusy);
  scio_tcase_add(tc, counted_sources_are_polled_while_tasks_yield);
  scio_tcase_add(tc, wakeup_is_a_source);
  scio_tcase_add(tc, closed_foreign_fd_is_ebadf_and_forgotten);
  scio_tcase_add(tc, fd_closed_under_a_waiter);
  scio_tcase_add(tc, bounded_fd_waits_expire_and_leave_on_wake);
  scio_tcase_add(tc, idle_loop_blocks_once_without_timer);
  suite_add_tcase(s, tc);
  tc = scio_tcase_new("fd oom", 60);
  tcase_add_loop_test(tc, fd_registration_allocation_failure, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
}
