/* Tests of the cross-thread wake-up handle (src/core/wakeup.c, layer.h):
 * threads that keep posting while the loop ends get SCIO_ECLOSED and touch
 * no freed memory (run this under TSan and ASan); every accepted post runs
 * exactly once; caller-embedded nodes; at-exit functions; a post wakes a
 * loop blocked in its poll.  Every test runs on epoll, poll and select. */
#include <sched.h>
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include "core/internal.h"
#include "scio/testing.h"

void core_wakeup_tests(Suite *s);

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* ---- threads posting while the loop ends ---- */

enum { NPOSTERS = 4 };

typedef struct race {
  scio__wakeup *h[NPOSTERS];
  long accepted[NPOSTERS]; /* written by each poster */
  int last_rc[NPOSTERS];
  long ran;                /* written by the loop thread (atomic) */
  long ran_after_end;      /* posts run by the loop's close */
  int ended;               /* loop thread: the root returned */
  scio__task *root;
  int go;                  /* atomic: posters start */
} race;

typedef struct poster_arg {
  race *r;
  int i;
} poster_arg;

static void race_posted(void *arg) {
  race *r = arg;
  long ran = __atomic_add_fetch(&r->ran, 1, __ATOMIC_RELAXED);
  if (r->ended)
    r->ran_after_end++;
  if (ran == 2000 && r->root)
    scio__task_wake(r->root, 0);
}

static void *race_poster(void *p) {
  poster_arg *a = p;
  race *r = a->r;
  while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
    sched_yield();
  int rc;
  long n = 0;
  while ((rc = scio__wakeup_post(r->h[a->i], race_posted, r)) == 0) {
    /* Why: far ahead of the loop (valgrind runs one thread at a time), the
     * posts pile up in memory without end; let the loop catch up. */
    if (++n - __atomic_load_n(&r->ran, __ATOMIC_RELAXED) > 4096)
      sched_yield();
  }
  r->accepted[a->i] = n;
  r->last_rc[a->i] = rc;
  /* Posting again after the end keeps saying so. */
  if (scio__wakeup_post(r->h[a->i], race_posted, r) != SCIO_ECLOSED)
    r->last_rc[a->i] = -1;
  scio__wakeup_unref(r->h[a->i]);
  return NULL;
}

static race the_race;
static pthread_t race_threads[NPOSTERS];
static poster_arg race_args[NPOSTERS];

static void race_at_exit(void *arg) {
  race *r = arg;
  r->ended = 1;
}

static int race_body(void *arg) {
  (void)arg;
  race *r = &the_race;
  r->root = scio__task_cur();
  for (int i = 0; i < NPOSTERS; i++) {
    r->h[i] = scio__wakeup_ref(NULL);
    ck_assert_ptr_nonnull(r->h[i]);
    race_args[i] = (poster_arg){r, i};
    CK_OK(pthread_create(&race_threads[i], NULL, race_poster, &race_args[i]));
  }
  CK_OK(scio__loop_at_exit(scio__loop_current(), race_at_exit, r));
  __atomic_store_n(&r->go, 1, __ATOMIC_RELEASE);
  CK_OK(scio__park(NULL, NULL, "test: 2000 posts"));
  r->root = NULL;
  return 0; /* the loop ends while the posters still post */
}

START_TEST(threads_post_while_the_loop_ends) {
  memset(&the_race, 0, sizeof the_race);
  int fds0 = count_fds();
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  CK_OK(scio_run(race_body, NULL, &o));
  long accepted = 0;
  for (int i = 0; i < NPOSTERS; i++) {
    pthread_join(race_threads[i], NULL);
    ck_assert_int_eq(the_race.last_rc[i], SCIO_ECLOSED);
    accepted += the_race.accepted[i];
  }
  /* The last handle let go: the eventfd is closed. */
  ck_assert_int_eq(count_fds(), fds0);
  /* Every accepted post ran exactly once, some at the loop's close. */
  ck_assert_int_eq(the_race.ran, accepted);
  ck_assert_int_ge(the_race.ran, 2000);
}
END_TEST

/* ---- nodes, order, a sleeping loop ---- */

typedef struct node_rec {
  scio__post node;
  int seq;
  int *log;
  int *nlog;
  scio__task *wake;
} node_rec;

static void node_ran(void *arg) {
  node_rec *n = arg;
  n->log[(*n->nlog)++] = n->seq;
  if (n->wake)
    scio__task_wake(n->wake, 5);
}

typedef struct node_thread {
  scio__wakeup *h;
  node_rec recs[100];
} node_thread;

static void *node_poster(void *p) {
  node_thread *nt = p;
  usleep(20000); /* the loop is (very likely) asleep in its poll by now */
  for (int i = 0; i < 100; i++)
    if (scio__wakeup_post_node(nt->h, &nt->recs[i].node) != 0)
      abort();
  scio__wakeup_unref(nt->h);
  return NULL;
}

SCIO_TEST(posted_nodes_run_in_order_and_wake_a_sleeping_loop) {
  static node_thread nt;
  int log[100], nlog = 0;
  nt.h = scio__wakeup_ref(NULL);
  ck_assert_ptr_nonnull(nt.h);
  for (int i = 0; i < 100; i++) {
    nt.recs[i] = (node_rec){{0}, i, log, &nlog, NULL};
    nt.recs[i].node.fn = node_ran;
    nt.recs[i].node.arg = &nt.recs[i];
  }
  nt.recs[99].wake = scio__task_cur();
  pthread_t th;
  CK_OK(pthread_create(&th, NULL, node_poster, &nt));
  /* Nothing else to do: the loop blocks in its poll until the post. */
  ck_assert_int_eq(scio__park(NULL, NULL, "test: posts"), 5);
  pthread_join(th, NULL);
  ck_assert_int_eq(nlog, 100);
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(log[i], i);
  return 0;
}

/* ---- posts from the loop's own thread while it is busy ---- */

static void own_posted(void *arg) { (*(int *)arg)++; }

SCIO_TEST(own_thread_posts_run_at_the_next_poll) {
  static int ran;
  ran = 0;
  scio__wakeup *h = scio__wakeup_ref(NULL);
  ck_assert_ptr_nonnull(h);
  for (int i = 0; i < 10; i++)
    CK_OK(scio__wakeup_post(h, own_posted, &ran));
  ck_assert_int_eq(ran, 0); /* not run inline */
  for (int i = 0; i < 1000 && ran < 10; i++)
    CK_OK(scio_checkpoint()); /* busy: picked up at the polling cadence */
  ck_assert_int_eq(ran, 10);
  scio__wakeup_unref(h);
  return 0;
}

/* ---- a busy loop gets posts with no eventfd write ---- */

typedef struct busy {
  scio__wakeup *h;
  int ran;   /* loop thread */
  int rc;
} busy;

static void busy_posted(void *arg) { ((busy *)arg)->ran++; }

static void *busy_poster(void *p) {
  busy *b = p;
  for (int i = 0; i < 1000; i++)
    if ((b->rc = scio__wakeup_post(b->h, busy_posted, b)) != 0)
      break;
  return NULL;
}

SCIO_TEST(posts_to_a_busy_loop_write_no_eventfd) {
  static busy b;
  memset(&b, 0, sizeof b);
  b.h = scio__wakeup_ref(NULL);
  ck_assert_ptr_nonnull(b.h);
  unsigned long w0 = scio__wakeup_writes(b.h);
  pthread_t th;
  CK_OK(pthread_create(&th, NULL, busy_poster, &b));
  /* Never idle: the root is always runnable, so the loop never sleeps in
   * its poll, and posters never need to wake it. */
  while (b.ran < 1000)
    CK_OK(scio_checkpoint());
  pthread_join(th, NULL);
  CK_OK(b.rc);
  ck_assert_int_eq(scio__wakeup_writes(b.h), w0);
  scio__wakeup_unref(b.h);
  return 0;
}

/* ---- at-exit: last registered first, posts accepted before still run ---- */

static int exit_log[4], nexit;

static void exit_fn(void *arg) { exit_log[nexit++] = (int)(intptr_t)arg; }

static void exit_post(void *arg) {
  (void)arg;
  exit_log[nexit++] = 99;
}

static void exit_posting(void *arg) {
  scio__wakeup *h = arg;
  exit_log[nexit++] = 3;
  /* Posted from an at-exit function: runs when the record closes. */
  CK_OK(scio__wakeup_post(h, exit_post, NULL));
  scio__wakeup_unref(h);
}

static int at_exit_body(void *arg) {
  (void)arg;
  scio__loop *l = scio__loop_current();
  CK_OK(scio__loop_at_exit(l, exit_fn, (void *)1));
  CK_OK(scio__loop_at_exit(l, exit_fn, (void *)2));
  scio__wakeup *h = scio__wakeup_ref(NULL);
  ck_assert_ptr_nonnull(h);
  CK_OK(scio__loop_at_exit(l, exit_posting, h));
  return 0;
}

START_TEST(at_exit_functions_run_last_first) {
  nexit = 0;
  scio_run_opts o = {0};
  o.backend = scio_test_backend(_i);
  CK_OK(scio_run(at_exit_body, NULL, &o));
  ck_assert_int_eq(nexit, 4);
  ck_assert_int_eq(exit_log[0], 3);
  ck_assert_int_eq(exit_log[1], 2);
  ck_assert_int_eq(exit_log[2], 1);
  ck_assert_int_eq(exit_log[3], 99);
}
END_TEST

void core_wakeup_tests(Suite *s) {
  TCase *tc = scio_tcase_new("wakeup", 30);
  tcase_add_loop_test(tc, threads_post_while_the_loop_ends, 0,
                      SCIO_TEST_NBACKENDS);
  scio_tcase_add(tc, posted_nodes_run_in_order_and_wake_a_sleeping_loop);
  scio_tcase_add(tc, own_thread_posts_run_at_the_next_poll);
  scio_tcase_add(tc, posts_to_a_busy_loop_write_no_eventfd);
  tcase_add_loop_test(tc, at_exit_functions_run_last_first, 0,
                      SCIO_TEST_NBACKENDS);
  suite_add_tcase(s, tc);
}
