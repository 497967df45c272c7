/* Signal receivers: delivered signal numbers as an object stream.
 *
 * One process-wide handler serves every receiver.  Each open receiver owns
 * a slot of a fixed table (no allocation, no lock in the handler): the set
 * of signals it watches, the set that arrived and was not yet received
 * (`pending`), and the write end of its self-pipe.  The handler sets the
 * signal's pending bit and writes the signal number as one byte to the
 * pipe, which wakes the receiving task through the fd contract and keeps
 * the order of arrival.  The bit is the truth: a receive takes a byte,
 * clears its bit and returns the signal if the bit was set (a byte whose
 * bit is already clear is a coalesced repeat).  When the pipe is full the
 * byte is dropped, but the bit stays, and a receive that finds the pipe
 * empty delivers any bits left.  So nothing is lost while the loop is
 * busy, and repeats coalesce per signal number, as in Trio.
 *
 * Closing a slot: its signal set and fd are cleared first, then the close
 * waits until no handler is inside the slot (`busy`, a handler in another
 * thread that loaded the fd before it was cleared), and only then closes
 * the pipe, so a handler never writes into a reused fd number.
 *
 * Dispositions are reference-counted per signal under a mutex: the first
 * receiver of a signal installs the handler and saves what was there, the
 * last one restores it.  A SIGCHLD that was ignored stays ignored in
 * effect: the handler is installed with SA_NOCLDWAIT. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "process_internal.h"

enum { MAX_RX = 32, MAX_SIG = 64 };

typedef struct slot {
  _Atomic uint64_t watch;   /* bit sig-1: watched */
  _Atomic uint64_t pending; /* bit sig-1: arrived, not yet received */
  _Atomic int wfd;          /* self-pipe write end, -1 when free */
  _Atomic int busy;         /* handlers running in this slot */
  int used;                 /* taken (under the mutex) */
} slot;

static slot slots[MAX_RX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int refs[MAX_SIG + 1];
static struct sigaction saved[MAX_SIG + 1];

typedef struct receiver {
  scio_ostream base; /* first: the stream head */
  slot *slot;
  int rfd;                  /* self-pipe read end, -1 once closed */
  unsigned char order[64];  /* bytes read, not yet looked at */
  unsigned head, count, receiving;
  uint64_t mask;            /* the watched set */
} receiver;

static uint64_t bit(int sig) { return (uint64_t)1 << (sig - 1); }

/* Async-signal-safe: atomics and write(2) only. */
static void on_signal(int sig) {
  int saved_errno = errno;
  uint64_t b = bit(sig);
  for (int i = 0; i < MAX_RX; i++) {
    slot *s = &slots[i];
    if (!(atomic_load(&s->watch) & b))
      continue;
    atomic_fetch_add(&s->busy, 1);
    int fd = atomic_load(&s->wfd);
    if (fd >= 0 && (atomic_load(&s->watch) & b)) {
      atomic_fetch_or(&s->pending, b);
      unsigned char c = (unsigned char)sig;
      ssize_t w = write(fd, &c, 1); /* full pipe: the bit is enough */
      (void)w;
    }
    atomic_fetch_sub(&s->busy, 1);
  }
  errno = saved_errno;
}

static int watchable(int sig) {
  return sig >= 1 && sig <= MAX_SIG && sig < NSIG && sig != SIGKILL &&
         sig != SIGSTOP && sig != SIGSEGV && sig != SIGBUS &&
         sig != SIGILL && sig != SIGFPE;
}

/* Drop one reference to each signal of mask; the last restores. */
static void unref_signals(uint64_t mask) {
  for (int sig = 1; sig <= MAX_SIG; sig++)
    if ((mask & bit(sig)) && --refs[sig] == 0)
      sigaction(sig, &saved[sig], NULL);
}

/* Take a reference to each signal of mask, installing the handler where
 * it is the first.  All or nothing.  Called under the mutex. */
static int ref_signals(uint64_t mask) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  for (int sig = 1; sig <= MAX_SIG; sig++) {
    if (!(mask & bit(sig)))
      continue;
    struct sigaction mine = sa;
    if (refs[sig] == 0 && sig == SIGCHLD) {
      /* Children of a process that ignores SIGCHLD are reaped by the
       * kernel.  A handler would make every child that exits while the
       * receiver is open a zombie nobody reaps, and make whether a
       * child's status is lost depend on when it exits.  SA_NOCLDWAIT
       * keeps the reaping; Linux still delivers SIGCHLD to the handler. */
      struct sigaction cur;
      if (sigaction(SIGCHLD, NULL, &cur) == 0 &&
          (cur.sa_handler == SIG_IGN || (cur.sa_flags & SA_NOCLDWAIT)))
        mine.sa_flags |= SA_NOCLDWAIT;
    }
    if (refs[sig] == 0 && sigaction(sig, &mine, &saved[sig]) < 0) {
      int e = errno;
      unref_signals(mask & (bit(sig) - 1));
      return scio__seterr(-e, "signal_receiver_open: sigaction %d: %s", sig,
                          strerror(e));
    }
    refs[sig]++;
  }
  return 0;
}

static slot *take_slot(void) {
  for (int i = 0; i < MAX_RX; i++)
    if (!slots[i].used) {
      slots[i].used = 1;
      return &slots[i];
    }
  return NULL;
}

/* Free the slot: no handler will look at it again once this returns. */
static void release_slot(slot *s, uint64_t mask) {
  atomic_store(&s->watch, 0);
  int wfd = atomic_exchange(&s->wfd, -1);
  while (atomic_load(&s->busy) > 0)
    sched_yield();
  if (wfd >= 0)
    close(wfd);
  atomic_store(&s->pending, 0);
  pthread_mutex_lock(&lock);
  unref_signals(mask);
  s->used = 0;
  pthread_mutex_unlock(&lock);
}

/* The next signal, without waiting: > 0, or 0 when none is pending. */
static int next_signal(receiver *r) {
  slot *s = r->slot;
  for (;;) {
    while (r->count > 0) {
      int sig = r->order[r->head];
      r->head++;
      r->count--;
      if (sig >= 1 && sig <= MAX_SIG &&
          (atomic_fetch_and(&s->pending, ~bit(sig)) & bit(sig)))
        return sig;
    }
    ssize_t n = read(r->rfd, r->order, sizeof r->order);
    if (n <= 0)
      break;
    r->head = 0;
    r->count = (unsigned)n;
  }
  /* The pipe is empty: bits whose bytes did not fit (lowest first). */
  uint64_t p = atomic_load(&s->pending);
  while (p) {
    int sig = __builtin_ctzll(p) + 1;
    if (atomic_fetch_and(&s->pending, ~bit(sig)) & bit(sig))
      return sig;
    p = atomic_load(&s->pending);
  }
  return 0;
}

static int rx_receive(scio_ostream *st, void *item) {
  receiver *r = (receiver *)st;
  if (r->receiving)
    return scio__seterr(SCIO_EBUSY, "ostream_receive: another task is "
                                    "receiving on this signal receiver");
  int rc = scio_checkpoint_if_cancelled();
  if (rc < 0)
    return rc;
  r->receiving = 1;
  int yielded = 0, sig;
  while ((sig = next_signal(r)) == 0) {
    rc = scio__fd_wait(r->rfd, SCIO__FD_READ);
    if (rc < 0 || r->base.closed)
      break;
    yielded |= rc != SCIO__FD_NOPARK;
  }
  r->receiving = 0;
  if (sig == 0)
    return rc == SCIO_ECLOSED || r->base.closed
               ? scio__seterr(SCIO_ECLOSED, "ostream_receive: signal "
                                            "receiver closed while waiting")
               : rc;
  if (!yielded)
    scio_cancel_shielded_checkpoint();
  memcpy(item, &sig, sizeof sig);
  return 0;
}

static int rx_close(scio_ostream *st) {
  receiver *r = (receiver *)st;
  if (r->slot) {
    release_slot(r->slot, r->mask);
    r->slot = NULL;
  }
  if (r->rfd >= 0) {
    int fd = r->rfd;
    r->rfd = -1;
    scio__fd_close(fd); /* wakes a blocked receive: SCIO_ECLOSED */
  }
  return 0;
}

static void rx_free(scio_ostream *st) { scio__free(st); }

static const scio_ostream_ops rx_ops = {
    .size = sizeof(scio_ostream_ops),
    .name = "signal-receiver",
    .do_receive = rx_receive,
    .do_close = rx_close,
    .do_free = rx_free,
};

static int mask_of(const int *signals, size_t n, uint64_t *mask) {
  *mask = 0;
  for (size_t i = 0; i < n; i++) {
    if (!watchable(signals[i]))
      return scio__seterr(SCIO_EINVAL, "signal_receiver_open: signal %d "
                                       "cannot be watched", signals[i]);
    *mask |= bit(signals[i]);
  }
  return 0;
}

/* Slot, dispositions and pipe for r; on error nothing is left. */
static int attach(receiver *r) {
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
    return scio__seterr(-errno, "signal_receiver_open: pipe: %s",
                        strerror(errno));
  pthread_mutex_lock(&lock);
  slot *s = take_slot();
  int rc = s ? ref_signals(r->mask)
             : scio__seterr(SCIO_ENOSPC, "signal_receiver_open: %d "
                                         "receivers are open already",
                            MAX_RX);
  if (rc == 0) {
    atomic_store(&s->pending, 0);
    atomic_store(&s->wfd, fds[1]);
    atomic_store(&s->watch, r->mask);
  } else if (s) {
    s->used = 0;
  }
  pthread_mutex_unlock(&lock);
  if (rc < 0) {
    close(fds[0]);
    close(fds[1]);
    return rc;
  }
  r->slot = s;
  r->rfd = fds[0];
  return 0;
}

SCIO_API int scio_signal_receiver_open(const int *signals, size_t n,
                                       scio_ostream **out) {
  if (out)
    *out = NULL;
  if (!signals || !n || !out)
    return scio__seterr(SCIO_EINVAL, "signal_receiver_open: %s",
                        !n ? "no signals" : "NULL argument");
  uint64_t mask;
  int rc = mask_of(signals, n, &mask);
  if (rc < 0)
    return rc;
  receiver *r = scio__calloc(1, sizeof *r);
  if (!r)
    return scio__seterr(SCIO_ENOMEM, "signal_receiver_open: out of memory");
  r->mask = mask;
  r->rfd = -1;
  if ((rc = attach(r)) < 0) {
    scio__free(r);
    return rc;
  }
  scio_ostream_init(&r->base, &rx_ops, NULL, sizeof(int));
  *out = &r->base;
  return 0;
}

/* scio_ostream_close minus its checkpoint (for the SIGCHLD waits of
 * process.c, which close on error paths). */
void scio__ostream_close_nowait(scio_ostream *s) {
  if (!s || s->closed)
    return;
  s->closed = 1;
  s->inflight++;
  if (s->ops->do_close)
    s->ops->do_close(s);
  s->free_pending = 1;
  if (--s->inflight == 0 && s->ops->do_free)
    s->ops->do_free(s);
}
