/* Tests of include/scio/file.h: scio_file on the worker pool, and the file
 * read/write streams.  Every async test runs once per backend (epoll,
 * poll, select), on the real clock: the autojump clock would jump past
 * deadlines while a worker thread runs. */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scio/buffered.h"
#include "scio/file.h"
#include "scio/process.h"
#include "scio/testing.h"
#include "support/oom.h"

#define CK_OK(expr) ck_assert_int_eq((expr), 0)

/* ---- helpers ---- */

/* A fresh directory for one test; rm_tree removes it. */
static void tmpdir(char *dir, size_t len) {
  snprintf(dir, len, "/tmp/scio-file-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  remove(p);
  return 0;
}

static void rm_tree(const char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void join(char *out, size_t len, const char *dir, const char *name) {
  snprintf(out, len, "%s/%s", dir, name);
}

/* The whole content of a file, read without scio; *len its size. */
static char *slurp(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  struct stat st;
  ck_assert_int_eq(fstat(fd, &st), 0);
  char *buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    ck_assert_int_gt(n, 0);
    got += (size_t)n;
  }
  buf[got] = 0;
  close(fd);
  *len = got;
  return buf;
}

static void put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void assert_errmsg_has(const char *part) {
  ck_assert_msg(strstr(scio_errmsg(), part) != NULL,
                "scio_errmsg() \"%s\" lacks \"%s\"", scio_errmsg(), part);
}

static unsigned char pattern(size_t i) {
  return (unsigned char)((i * 131u + (i >> 12)) & 0xff);
}

static void *noop(void *arg) { return arg; }

/* Open fds of the process once the run's worker pool exists (its wake-up
 * eventfd is made on the first scio_to_thread and kept to the run's end). */
static int warm_fds(void) {
  CK_OK(scio_to_thread(noop, NULL, NULL, NULL));
  return scio_oom_count_fds();
}

/* ---- scio_file ---- */

SCIO_TEST(file_round_trip) {
  int before = warm_fds();
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "a");
  scio_file *f = (scio_file *)1;
  CK_OK(scio_file_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600, &f));
  ck_assert_int_ge(scio_file_fd(f), 0);
  ck_assert_int_eq(fcntl(scio_file_fd(f), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  CK_OK(scio_file_write(f, "hello, world", 12));
  CK_OK(scio_file_write(f, "", 0));
  int64_t pos = -1;
  CK_OK(scio_file_seek(f, 0, SEEK_CUR, &pos));
  ck_assert_int_eq(pos, 12);
  CK_OK(scio_file_seek(f, 0, SEEK_SET, &pos));
  ck_assert_int_eq(pos, 0);
  char buf[64];
  size_t got = 99;
  CK_OK(scio_file_read(f, buf, 5, &got));
  ck_assert_uint_eq(got, 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  CK_OK(scio_file_read(f, buf, sizeof buf, &got));
  ck_assert_uint_eq(got, 7);
  ck_assert_int_eq(memcmp(buf, ", world", 7), 0);
  /* End of file: got 0, repeatedly; max 0 reads nothing. */
  CK_OK(scio_file_read(f, buf, sizeof buf, &got));
  ck_assert_uint_eq(got, 0);
  CK_OK(scio_file_read(f, buf, sizeof buf, &got));
  ck_assert_uint_eq(got, 0);
  CK_OK(scio_file_read(f, NULL, 0, &got));
  ck_assert_uint_eq(got, 0);
  CK_OK(scio_file_close(f));
  size_t len;
  char *text = slurp(path, &len);
  ck_assert_str_eq(text, "hello, world");
  free(text);
  /* O_APPEND: writes go to the end whatever the offset. */
  CK_OK(scio_file_open(path, O_WRONLY | O_APPEND, 0, &f));
  CK_OK(scio_file_seek(f, 0, SEEK_SET, NULL));
  CK_OK(scio_file_write(f, "!", 1));
  CK_OK(scio_file_close(f));
  text = slurp(path, &len);
  ck_assert_str_eq(text, "hello, world!");
  free(text);
  ck_assert_int_eq(scio_file_close(NULL), 0);
  ck_assert_int_eq(scio_file_fd(NULL), -1);
  rm_tree(dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

SCIO_TEST(file_pread_pwrite) {
  int before = warm_fds();
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "p");
  scio_file *f;
  CK_OK(scio_file_open(path, O_RDWR | O_CREAT, 0600, &f));
  CK_OK(scio_file_write(f, "0123456789", 10));
  CK_OK(scio_file_pwrite(f, "abc", 3, 100));
  CK_OK(scio_file_pwrite(f, "XY", 2, 2));
  /* The offset did not move. */
  int64_t pos;
  CK_OK(scio_file_seek(f, 0, SEEK_CUR, &pos));
  ck_assert_int_eq(pos, 10);
  char buf[16];
  size_t got;
  CK_OK(scio_file_pread(f, buf, 3, 100, &got));
  ck_assert_uint_eq(got, 3);
  ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
  CK_OK(scio_file_pread(f, buf, 6, 0, &got));
  ck_assert_uint_eq(got, 6);
  ck_assert_int_eq(memcmp(buf, "01XY45", 6), 0);
  /* The hole reads as zeros; past the end reads 0 bytes. */
  CK_OK(scio_file_pread(f, buf, 4, 50, &got));
  ck_assert_uint_eq(got, 4);
  ck_assert_int_eq(memcmp(buf, "\0\0\0\0", 4), 0);
  CK_OK(scio_file_pread(f, buf, 4, 103, &got));
  ck_assert_uint_eq(got, 0);
  CK_OK(scio_file_seek(f, 0, SEEK_END, &pos));
  ck_assert_int_eq(pos, 103);
  ck_assert_int_eq(scio_file_pread(f, buf, 4, -1, &got), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_pwrite(f, buf, 4, -5), SCIO_EINVAL);
  CK_OK(scio_file_close(f));
  rm_tree(dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

SCIO_TEST(file_seek_truncate_sync) {
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "t");
  scio_file *f;
  CK_OK(scio_file_open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &f));
  char big[1000];
  memset(big, 'x', sizeof big);
  CK_OK(scio_file_write(f, big, sizeof big));
  CK_OK(scio_file_sync(f));
  CK_OK(scio_file_datasync(f));
  CK_OK(scio_file_truncate(f, 10));
  int64_t pos;
  CK_OK(scio_file_seek(f, 0, SEEK_END, &pos));
  ck_assert_int_eq(pos, 10);
  CK_OK(scio_file_truncate(f, 20));
  CK_OK(scio_file_seek(f, -20, SEEK_END, &pos));
  ck_assert_int_eq(pos, 0);
  CK_OK(scio_file_seek(f, 5, SEEK_CUR, &pos));
  ck_assert_int_eq(pos, 5);
  char buf[32];
  size_t got;
  CK_OK(scio_file_read(f, buf, sizeof buf, &got));
  ck_assert_uint_eq(got, 15);
  ck_assert_int_eq(memcmp(buf, "xxxxx\0\0\0\0\0\0\0\0\0\0", 15), 0);
  ck_assert_int_eq(scio_file_truncate(f, -1), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_seek(f, 0, 42, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_seek(f, -1, SEEK_SET, &pos), SCIO_EINVAL);
  assert_errmsg_has("seek ");
  CK_OK(scio_file_close(f));
  /* O_EXCL on an existing file. */
  ck_assert_int_eq(scio_file_open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &f),
                   SCIO_EEXIST);
  ck_assert_ptr_null(f);
  /* Truncating a read-only file. */
  CK_OK(scio_file_open(path, O_RDONLY, 0, &f));
  ck_assert_int_eq(scio_file_truncate(f, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_write(f, "a", 1), SCIO_EBADF);
  assert_errmsg_has("write ");
  assert_errmsg_has(path);
  CK_OK(scio_file_close(f));
  rm_tree(dir);
  return 0;
}

SCIO_TEST(file_errors) {
  int before = warm_fds();
  char dir[64], path[128], msg[256];
  tmpdir(dir, sizeof dir);
  scio_file *f = (scio_file *)1;
  join(path, sizeof path, dir, "nosuch");
  ck_assert_int_eq(scio_file_open(path, O_RDONLY, 0, &f), SCIO_ENOENT);
  ck_assert_ptr_null(f);
  snprintf(msg, sizeof msg, "open %s: no such file", path);
  assert_errmsg_has(msg);
  /* A directory opened for writing. */
  ck_assert_int_eq(scio_file_open(dir, O_WRONLY, 0, &f), SCIO_EISDIR);
  assert_errmsg_has("is a directory");
  /* A directory read with read(2). */
  CK_OK(scio_file_open(dir, O_RDONLY, 0, &f));
  char buf[8];
  size_t got;
  ck_assert_int_eq(scio_file_read(f, buf, sizeof buf, &got), SCIO_EISDIR);
  CK_OK(scio_file_close(f));
  /* A regular file used as a directory. */
  join(path, sizeof path, dir, "plain");
  put(path, "x");
  char below[160];
  snprintf(below, sizeof below, "%s/x", path);
  ck_assert_int_eq(scio_file_open(below, O_RDONLY, 0, &f), SCIO_ENOTDIR);
  assert_errmsg_has("not a directory");
  /* A FIFO cannot seek: ESPIPE.  O_RDWR opens it without a peer. */
  join(path, sizeof path, dir, "fifo");
  CK_OK(mkfifo(path, 0600));
  CK_OK(scio_file_open(path, O_RDWR, 0, &f));
  ck_assert_int_eq(scio_file_seek(f, 0, SEEK_SET, NULL), SCIO_ESPIPE);
  snprintf(msg, sizeof msg, "seek %s: not seekable", path);
  assert_errmsg_has(msg);
  ck_assert_int_eq(scio_file_pread(f, buf, 1, 0, &got), SCIO_ESPIPE);
  ck_assert_int_eq(scio_file_pwrite(f, "a", 1, 0), SCIO_ESPIPE);
  ck_assert_int_eq(scio_file_truncate(f, 0), SCIO_EINVAL);
  /* The FIFO carries bytes through the file calls all the same. */
  CK_OK(scio_file_write(f, "ab", 2));
  CK_OK(scio_file_read(f, buf, sizeof buf, &got));
  ck_assert_uint_eq(got, 2);
  CK_OK(scio_file_close(f));
  /* Bad arguments. */
  ck_assert_int_eq(scio_file_open(NULL, O_RDONLY, 0, &f), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_open(path, O_RDONLY, 0, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_from_fd(-1, &f), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_from_fd(0, NULL), SCIO_EINVAL);
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(fd);
  ck_assert_int_eq(scio_file_from_fd(fd, &f), SCIO_EBADF);
  ck_assert_int_eq(scio_file_read(NULL, buf, 1, &got), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_write(NULL, buf, 1), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_sync(NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_datasync(NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_truncate(NULL, 0), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_seek(NULL, 0, SEEK_SET, NULL), SCIO_EINVAL);
  rm_tree(dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* EACCES through mode 000.  Root passes mode bits (CAP_DAC_OVERRIDE), so as
 * root the check runs with the filesystem uid of nobody: a thread's
 * credentials are copied to the threads it creates, and this test's pool
 * has no worker yet, so its workers are made with fsuid 65534. */
SCIO_TEST(file_eacces) {
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  chmod(dir, 0755);
  join(path, sizeof path, dir, "secret");
  put(path, "x");
  CK_OK(chmod(path, 0));
  int root = geteuid() == 0;
  if (root)
    setfsuid(65534);
  int probe = open(path, O_RDONLY | O_CLOEXEC);
  if (probe >= 0) {
    close(probe);
    fprintf(stderr, "check_file: file_eacces: EACCES assertion skipped: "
                    "mode 000 does not stop this user\n");
  } else {
    scio_file *f;
    ck_assert_int_eq(scio_file_open(path, O_RDONLY, 0, &f), SCIO_EACCES);
    assert_errmsg_has("permission denied");
    scio_stream *s;
    ck_assert_int_eq(scio_file_read_stream_open(path, &s), SCIO_EACCES);
  }
  if (root)
    setfsuid(0);
  rm_tree(dir);
  return 0;
}

/* A call cancelled before it started never runs. */
SCIO_TEST(file_precancelled) {
  char dir[64], path[128], path2[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "c");
  join(path2, sizeof path2, dir, "never");
  put(path, "abc");
  scio_file *f;
  CK_OK(scio_file_open(path, O_RDWR, 0, &f));
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, -1));
  ck_assert_int_eq(scio_file_write(f, "XYZ", 3), SCIO_ECANCELED);
  ck_assert_int_eq(scio_file_pwrite(f, "XYZ", 3, 0), SCIO_ECANCELED);
  ck_assert_int_eq(scio_file_truncate(f, 0), SCIO_ECANCELED);
  ck_assert_int_eq(scio_file_seek(f, 2, SEEK_SET, NULL), SCIO_ECANCELED);
  ck_assert_int_eq(scio_file_sync(f), SCIO_ECANCELED);
  char buf[8];
  size_t got = 7;
  ck_assert_int_eq(scio_file_read(f, buf, sizeof buf, &got), SCIO_ECANCELED);
  ck_assert_uint_eq(got, 0);
  scio_file *g = (scio_file *)1;
  ck_assert_int_eq(scio_file_open(path2, O_WRONLY | O_CREAT, 0600, &g),
                   SCIO_ECANCELED);
  ck_assert_ptr_null(g);
  scio_stream *s = (scio_stream *)1;
  ck_assert_int_eq(scio_file_write_stream_open(path2, 0, &s), SCIO_ECANCELED);
  ck_assert_ptr_null(s);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  /* Nothing happened: the file is unchanged, its offset too, and the
   * other file was never created. */
  size_t len;
  char *text = slurp(path, &len);
  ck_assert_str_eq(text, "abc");
  free(text);
  ck_assert_int_eq(access(path2, F_OK), -1);
  CK_OK(scio_file_read(f, buf, sizeof buf, &got));
  ck_assert_uint_eq(got, 3);
  /* A cancelled close still closes (on the loop's thread). */
  int fd = scio_file_fd(f);
  CK_OK(scio_move_on_after(&cs, -1));
  ck_assert_int_eq(scio_file_close(f), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
  rm_tree(dir);
  return 0;
}

/* A write cancelled while its worker runs is finished, and reported:
 * returns 0 with every byte written; the cancellation comes at the next
 * checkpoint.  The write goes into a pipe, so that it provably blocks in
 * the worker until the test reads. */
#define BIG_WRITE (1 << 20)

typedef struct running {
  scio_file *f;
  scio_scope cs;
  int opened;
  int write_rc, next_rc, caught;
  char *data;
} running;

static int cancelled_writer(void *arg) {
  running *r = arg;
  scio_scope_open(&r->cs, SCIO_DEADLINE_NONE, 0);
  r->opened = 1;
  r->write_rc = scio_file_write(r->f, r->data, BIG_WRITE);
  r->next_rc = scio_checkpoint();
  scio_scope_close(&r->cs);
  r->caught = scio_scope_cancelled_caught(&r->cs);
  return 0;
}

/* Bytes waiting in a pipe. */
static int pipe_fill(int fd) {
  int n = 0;
  ioctl(fd, FIONREAD, &n);
  return n;
}

/* Drain BIG_WRITE bytes from fd (non-blocking) on the loop, checking them. */
static void drain(int fd, const char *data) {
  size_t got = 0;
  char *buf = malloc(65536);
  while (got < BIG_WRITE) {
    ssize_t n = read(fd, buf, 65536);
    if (n < 0 && errno == EAGAIN) {
      CK_OK(scio_wait_readable(fd));
      continue;
    }
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(memcmp(buf, data + got, (size_t)n), 0);
    got += (size_t)n;
  }
  free(buf);
}

SCIO_TEST(file_cancel_while_running) {
  int before = warm_fds();
  int p[2];
  CK_OK(pipe2(p, O_CLOEXEC));
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  running r = {.write_rc = 1, .next_rc = 1};
  r.data = malloc(BIG_WRITE);
  for (size_t i = 0; i < BIG_WRITE; i++)
    r.data[i] = (char)pattern(i);
  CK_OK(scio_file_from_fd(p[1], &r.f));
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, cancelled_writer, &r);
  /* Once the pipe is full the worker is blocked inside write(2). */
  while (pipe_fill(p[0]) < 4096)
    CK_OK(scio_sleep(0.005));
  scio_scope_cancel(&r.cs);
  CK_OK(scio_sleep(0.05));
  ck_assert_int_eq(r.write_rc, 1); /* still waiting, shielded */
  drain(p[0], r.data);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.write_rc, 0);
  ck_assert_int_eq(r.next_rc, SCIO_ECANCELED);
  ck_assert(r.caught);
  CK_OK(scio_file_close(r.f));
  scio_notify_closing(p[0]);
  close(p[0]);
  free(r.data);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* Closing a file while another task's call runs in a worker: the close
 * waits for it, calls made meanwhile get SCIO_ECLOSED. */
typedef struct closer_state {
  scio_file *f;
  int close_rc, done;
} closer_state;

static int closer(void *arg) {
  closer_state *c = arg;
  c->close_rc = scio_file_close(c->f);
  c->done = 1;
  return 0;
}

SCIO_TEST(file_close_while_running) {
  int before = warm_fds();
  int p[2];
  CK_OK(pipe2(p, O_CLOEXEC));
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  running r = {.write_rc = 1, .next_rc = 1};
  r.data = malloc(BIG_WRITE);
  memset(r.data, 'q', BIG_WRITE);
  CK_OK(scio_file_from_fd(p[1], &r.f));
  closer_state c = {.f = r.f, .close_rc = 1};
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, cancelled_writer, &r);
  while (pipe_fill(p[0]) < 4096)
    CK_OK(scio_sleep(0.005));
  scio_start_soon(&n, closer, &c);
  CK_OK(scio_sleep(0.05));
  ck_assert(!c.done);
  char buf[4];
  size_t got;
  ck_assert_int_eq(scio_file_write(r.f, "x", 1), SCIO_ECLOSED);
  assert_errmsg_has("the file is closed");
  ck_assert_int_eq(scio_file_read(r.f, buf, 1, &got), SCIO_ECLOSED);
  ck_assert_int_eq(scio_file_sync(r.f), SCIO_ECLOSED);
  drain(p[0], r.data);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(r.write_rc, 0);
  ck_assert_int_eq(c.close_rc, 0);
  scio_notify_closing(p[0]);
  close(p[0]);
  free(r.data);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* ---- file streams ---- */

#define LARGE (6u << 20)

SCIO_TEST(stream_large_round_trip) {
  int before = warm_fds();
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "big");
  unsigned char *data = malloc(LARGE);
  for (size_t i = 0; i < LARGE; i++)
    data[i] = pattern(i);
  scio_stream *w = (scio_stream *)1;
  CK_OK(scio_file_write_stream_open(path, 0, &w));
  char name[32];
  CK_OK(scio_stream_layer(w, name, sizeof name));
  ck_assert_str_eq(name, "file-write");
  char got_path[128];
  CK_OK(scio_stream_attr(w, SCIO_ATTR_PATH, got_path, sizeof got_path));
  ck_assert_str_eq(got_path, path);
  ck_assert_int_eq(scio_stream_attr(w, SCIO_ATTR_PATH, got_path, 4),
                   SCIO_ENOSPC);
  int fd = -1;
  CK_OK(scio_stream_fd(w, &fd));
  ck_assert_int_ge(fd, 0);
  /* Chunks of varying sizes, then one large send. */
  size_t off = 0, step = 1;
  while (off < LARGE / 2) {
    size_t k = step < LARGE / 2 - off ? step : LARGE / 2 - off;
    CK_OK(scio_send(w, data + off, k));
    off += k;
    step = step * 3 + 7;
    if (step > 300000)
      step = 1;
  }
  CK_OK(scio_send(w, data + off, LARGE - off));
  char buf[8];
  ck_assert_int_eq(scio_receive(w, buf, sizeof buf), SCIO_ENOSYS);
  CK_OK(scio_send_eof(w));
  ck_assert_int_eq(scio_send(w, "x", 1), SCIO_ECLOSED);
  ck_assert_int_eq(scio_wait_send_ready(w), SCIO_ECLOSED);
  CK_OK(scio_send_eof(w));
  ck_assert_int_eq(scio_stream_fd(w, &fd), SCIO_ENOENT);
  CK_OK(scio_close(w));

  scio_stream *r;
  CK_OK(scio_file_read_stream_open(path, &r));
  CK_OK(scio_stream_layer(r, name, sizeof name));
  ck_assert_str_eq(name, "file-read");
  CK_OK(scio_stream_attr(r, SCIO_ATTR_PATH, got_path, sizeof got_path));
  ck_assert_str_eq(got_path, path);
  ck_assert_int_eq(scio_send(r, "x", 1), SCIO_ENOSYS);
  CK_OK(scio_wait_receive_ready(r));
  /* Room for the last receive's max past the end. */
  unsigned char *back = malloc(LARGE + 70000);
  size_t total = 0;
  for (;;) {
    ssize_t n = scio_receive(r, back + total, 65536 + total % 7);
    if (n == SCIO_EOF)
      break;
    ck_assert_int_gt(n, 0);
    total += (size_t)n;
    ck_assert_uint_le(total, LARGE);
  }
  ck_assert_uint_eq(total, LARGE);
  ck_assert_int_eq(memcmp(back, data, LARGE), 0);
  ck_assert_int_eq(scio_receive(r, back, 10), SCIO_EOF);
  /* Seek back into the middle. */
  CK_OK(scio_file_read_stream_seek(r, LARGE / 3));
  ssize_t n = scio_receive(r, back, 4096);
  ck_assert_int_eq(n, 4096);
  ck_assert_int_eq(memcmp(back, data + LARGE / 3, 4096), 0);
  ck_assert_int_eq(scio_file_read_stream_seek(r, -1), SCIO_EINVAL);
  CK_OK(scio_close(r));

  /* Append. */
  CK_OK(scio_file_write_stream_open(path, 1, &w));
  CK_OK(scio_send(w, "tail", 4));
  CK_OK(scio_close(w));
  size_t len;
  char *text = slurp(path, &len);
  ck_assert_uint_eq(len, LARGE + 4);
  ck_assert_int_eq(memcmp(text + LARGE, "tail", 4), 0);
  free(text);
  /* Without append: truncated. */
  CK_OK(scio_file_write_stream_open(path, 0, &w));
  CK_OK(scio_close(w));
  text = slurp(path, &len);
  ck_assert_uint_eq(len, 0);
  free(text);
  free(back);
  free(data);
  rm_tree(dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

SCIO_TEST(stream_errors) {
  int before = warm_fds();
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  scio_stream *s = (scio_stream *)1;
  join(path, sizeof path, dir, "nosuch");
  ck_assert_int_eq(scio_file_read_stream_open(path, &s), SCIO_ENOENT);
  ck_assert_ptr_null(s);
  assert_errmsg_has(path);
  ck_assert_int_eq(scio_file_read_stream_open(dir, &s), SCIO_EISDIR);
  ck_assert_int_eq(scio_file_write_stream_open(dir, 0, &s), SCIO_EISDIR);
  join(path, sizeof path, dir, "nosuch/x");
  ck_assert_int_eq(scio_file_write_stream_open(path, 0, &s), SCIO_ENOENT);
  ck_assert_int_eq(scio_file_read_stream_open(NULL, &s), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_read_stream_open(dir, NULL), SCIO_EINVAL);
  ck_assert_int_eq(scio_file_read_stream_from_fd(-1, &s), SCIO_EINVAL);
  int dfd = open(dir, O_RDONLY | O_CLOEXEC);
  ck_assert_int_eq(scio_file_read_stream_from_fd(dfd, &s), SCIO_EINVAL);
  close(dfd);
  ck_assert_int_eq(scio_file_write_stream_from_fd(dfd, &s), SCIO_EBADF);
  /* Seek on what is not a file read stream. */
  ck_assert_int_eq(scio_file_read_stream_seek(NULL, 0), SCIO_EINVAL);
  scio_stream *a, *b;
  CK_OK(scio_pipe_stream_open(&a, &b));
  ck_assert_int_eq(scio_file_read_stream_seek(a, 0), SCIO_EINVAL);
  CK_OK(scio_close(a));
  CK_OK(scio_close(b));
  /* From an fd: a regular file, no SCIO_ATTR_PATH. */
  join(path, sizeof path, dir, "r");
  put(path, "some bytes");
  int fd = open(path, O_RDONLY);
  CK_OK(scio_file_read_stream_from_fd(fd, &s));
  ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  char p2[64];
  ck_assert_int_eq(scio_stream_attr(s, SCIO_ATTR_PATH, p2, sizeof p2),
                   SCIO_ENOENT);
  int got_fd;
  CK_OK(scio_stream_fd(s, &got_fd));
  ck_assert_int_eq(got_fd, fd);
  char buf[32];
  ck_assert_int_eq(scio_receive(s, buf, sizeof buf), 10);
  /* Cancelled seek: nothing moves. */
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, -1));
  ck_assert_int_eq(scio_file_read_stream_seek(s, 0), SCIO_ECANCELED);
  ck_assert_int_eq(scio_receive(s, buf, sizeof buf), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert_int_eq(scio_receive(s, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_file_read_stream_seek(s, 5));
  ck_assert_int_eq(scio_receive(s, buf, sizeof buf), 5);
  ck_assert_int_eq(memcmp(buf, "bytes", 5), 0);
  CK_OK(scio_close(s));
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
  /* A pre-cancelled send writes nothing. */
  fd = open(path, O_WRONLY | O_APPEND);
  CK_OK(scio_file_write_stream_from_fd(fd, &s));
  CK_OK(scio_move_on_after(&cs, -1));
  ck_assert_int_eq(scio_send(s, "XYZ", 3), SCIO_ECANCELED);
  ck_assert_int_eq(scio_send_eof(s), SCIO_ECANCELED);
  scio_scope_close(&cs);
  CK_OK(scio_send(s, "!", 1));
  CK_OK(scio_close(s));
  size_t len;
  char *text = slurp(path, &len);
  ck_assert_str_eq(text, "some bytes!");
  free(text);
  rm_tree(dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* A buffered layer over a file read stream reads lines; attributes walk
 * down to the file. */
SCIO_TEST(stream_lines_through_buffered) {
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "lines");
  put(path, "a\nbb\nccc\n");
  scio_stream *f, *b;
  CK_OK(scio_file_read_stream_open(path, &f));
  CK_OK(scio_buffered_open(f, NULL, &b));
  char got_path[128];
  CK_OK(scio_stream_attr(b, SCIO_ATTR_PATH, got_path, sizeof got_path));
  ck_assert_str_eq(got_path, path);
  int fd;
  CK_OK(scio_stream_fd(b, &fd));
  static const char *const want[] = {"a", "bb", "ccc"};
  char line[16];
  size_t len;
  int rc, i = 0;
  while ((rc = scio_receive_until(b, "\n", 1, line, sizeof line, &len)) ==
         0) {
    ck_assert_int_lt(i, 3);
    ck_assert_uint_eq(len, strlen(want[i]));
    ck_assert_int_eq(memcmp(line, want[i], len), 0);
    i++;
  }
  ck_assert_int_eq(rc, SCIO_EOF);
  ck_assert_int_eq(i, 3);
  CK_OK(scio_close(b));
  rm_tree(dir);
  return 0;
}

/* A read stream whose worker blocks (an eventfd is neither a pipe nor a
 * socket, so it goes through the pool): a second receiver gets SCIO_EBUSY;
 * a close waits for the worker, calls during it get SCIO_ECLOSED, and the
 * blocked receive returns SCIO_ECLOSED once its worker is back. */
typedef struct blocked_rx {
  scio_stream *s;
  ssize_t rc;
  int close_rc, closed;
} blocked_rx;

static int blocked_receiver(void *arg) {
  blocked_rx *b = arg;
  uint64_t v;
  b->rc = scio_receive(b->s, &v, sizeof v);
  return 0;
}

static int stream_closer(void *arg) {
  blocked_rx *b = arg;
  b->close_rc = scio_close(b->s);
  b->closed = 1;
  return 0;
}

SCIO_TEST(stream_worker_busy_and_close) {
  int before = warm_fds();
  int efd = eventfd(0, EFD_CLOEXEC);
  ck_assert_int_ge(efd, 0);
  blocked_rx b = {.rc = 1, .close_rc = 1};
  CK_OK(scio_file_read_stream_from_fd(efd, &b.s));
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, blocked_receiver, &b);
  CK_OK(scio_sleep(0.05));
  char buf[8];
  ck_assert_int_eq(scio_receive(b.s, buf, sizeof buf), SCIO_EBUSY);
  ck_assert_int_eq(scio_file_read_stream_seek(b.s, 0), SCIO_EBUSY);
  scio_start_soon(&n, stream_closer, &b);
  CK_OK(scio_sleep(0.05));
  ck_assert(!b.closed); /* waiting for the worker, shielded */
  ck_assert_int_eq(scio_receive(b.s, buf, sizeof buf), SCIO_ECLOSED);
  uint64_t one = 1;
  ck_assert_int_eq(write(efd, &one, sizeof one), (ssize_t)sizeof one);
  CK_OK(scio_nursery_close(&n));
  ck_assert_int_eq(b.rc, SCIO_ECLOSED);
  ck_assert_int_eq(b.close_rc, 0);
  ck_assert_int_eq(fcntl(efd, F_GETFD), -1);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* FIFO-backed streams are run on the loop by the pipe stream: a receive
 * blocked on an idle FIFO is cancelled at once (a worker would hold the
 * caller, shielded), and no seek. */
typedef struct fifo_pair {
  const char *path;
  scio_stream *r;
  int rc;
} fifo_pair;

static int open_reader(void *arg) {
  fifo_pair *p = arg;
  p->rc = scio_file_read_stream_open(p->path, &p->r);
  return 0;
}

/* Open both ends of the FIFO at path by path: each open waits in its
 * worker for the other. */
static int fifo_open_pair(const char *path, scio_stream **w,
                          scio_stream **r) {
  fifo_pair p = {.path = path, .rc = 1};
  *w = *r = NULL;
  scio_nursery n;
  scio_nursery_open(&n);
  scio_start_soon(&n, open_reader, &p);
  int rc = scio_file_write_stream_open(path, 0, w);
  int nrc = scio_nursery_close(&n);
  if (rc == 0 && nrc < 0)
    rc = nrc;
  if (rc == 0)
    rc = p.rc;
  if (rc < 0) {
    scio_close(*w);
    scio_close(p.r);
    *w = NULL;
    return rc;
  }
  *r = p.r;
  return 0;
}

SCIO_TEST(stream_fifo_on_loop) {
  int before = warm_fds();
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  join(path, sizeof path, dir, "fifo");
  CK_OK(mkfifo(path, 0600));
  scio_stream *w, *r;
  CK_OK(fifo_open_pair(path, &w, &r));
  char name[32], got_path[128];
  CK_OK(scio_stream_layer(r, name, sizeof name));
  ck_assert_str_eq(name, "file-read");
  CK_OK(scio_stream_attr(r, SCIO_ATTR_PATH, got_path, sizeof got_path));
  ck_assert_str_eq(got_path, path);
  int fd;
  CK_OK(scio_stream_fd(r, &fd));
  ck_assert_int_ne(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  /* No worker runs the receive: cancellation ends it at once. */
  char buf[16];
  scio_scope cs;
  CK_OK(scio_move_on_after(&cs, 0.05));
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), SCIO_ECANCELED);
  scio_scope_close(&cs);
  ck_assert(scio_scope_cancelled_caught(&cs));
  ck_assert_int_eq(scio_file_read_stream_seek(r, 0), SCIO_ESPIPE);
  CK_OK(scio_send(w, "hey", 3));
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), 3);
  CK_OK(scio_send_eof(w));
  ck_assert_int_eq(scio_send(w, "x", 1), SCIO_ECLOSED);
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), SCIO_EOF);
  CK_OK(scio_close(w));
  CK_OK(scio_close(r));
  /* A pipe given by fd is run on the loop too. */
  int p[2];
  CK_OK(pipe2(p, O_CLOEXEC));
  CK_OK(scio_file_read_stream_from_fd(p[0], &r));
  CK_OK(scio_file_write_stream_from_fd(p[1], &w));
  CK_OK(scio_move_on_after(&cs, 0.05));
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), SCIO_ECANCELED);
  scio_scope_close(&cs);
  CK_OK(scio_send(w, "ok", 2));
  ck_assert_int_eq(scio_receive(r, buf, sizeof buf), 2);
  CK_OK(scio_close(r));
  ck_assert_int_eq(scio_send(w, "x", 1), SCIO_EBROKEN);
  CK_OK(scio_close(w));
  rm_tree(dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* ---- the conformance kit, over FIFOs and pipes ---- */

typedef struct kit_dir {
  char dir[64];
  int n;
} kit_dir;

static int kit_fifo(scio_stream **a, scio_stream **b, void *arg) {
  kit_dir *k = arg;
  char path[128];
  snprintf(path, sizeof path, "%s/f%d", k->dir, k->n++);
  if (mkfifo(path, 0600) < 0)
    return -errno;
  int rc = fifo_open_pair(path, a, b);
  unlink(path);
  return rc;
}

/* Fill the pipe under the write stream *a so that a send blocks. */
static int clog_pipe(scio_stream *a) {
  int fd;
  int rc = scio_stream_fd(a, &fd);
  if (rc < 0)
    return rc;
  fcntl(fd, F_SETPIPE_SZ, 4096);
  static const char junk[4096];
  while (write(fd, junk, sizeof junk) > 0)
    ;
  while (write(fd, junk, 1) > 0)
    ;
  return 0;
}

static int kit_fifo_clogged(scio_stream **a, scio_stream **b, void *arg) {
  int rc = kit_fifo(a, b, arg);
  return rc < 0 ? rc : clog_pipe(*a);
}

static int kit_pipe_fd(scio_stream **a, scio_stream **b, void *arg) {
  (void)arg;
  int p[2];
  *a = *b = NULL;
  if (pipe2(p, O_CLOEXEC) < 0)
    return -errno;
  int rc = scio_file_write_stream_from_fd(p[1], a);
  if (rc < 0) {
    close(p[0]);
    close(p[1]);
    return rc;
  }
  if ((rc = scio_file_read_stream_from_fd(p[0], b)) < 0)
    close(p[0]);
  return rc;
}

static int kit_pipe_fd_clogged(scio_stream **a, scio_stream **b, void *arg) {
  int rc = kit_pipe_fd(a, b, arg);
  return rc < 0 ? rc : clog_pipe(*a);
}

SCIO_TEST(stream_kit_fifo) {
  int before = warm_fds();
  kit_dir k = {.n = 0};
  tmpdir(k.dir, sizeof k.dir);
  scio_stream_kit kit = {.make = kit_fifo, .make_clogged = kit_fifo_clogged,
                         .arg = &k, .large = 1 << 20, .timeout = 20};
  scio_check_one_way_stream(&kit);
  rm_tree(k.dir);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

SCIO_TEST(stream_kit_pipe_fd) {
  int before = warm_fds();
  scio_stream_kit kit = {.make = kit_pipe_fd,
                         .make_clogged = kit_pipe_fd_clogged,
                         .large = 1 << 20, .timeout = 20};
  scio_check_one_way_stream(&kit);
  ck_assert_int_eq(scio_oom_count_fds(), before);
  return 0;
}

/* ---- allocation failures ---- */

static char oom_dir[64];

static int oom_body(void *arg) {
  (void)arg;
  char path[128];
  join(path, sizeof path, oom_dir, "o");
  scio_stream *w;
  int rc = scio_file_write_stream_open(path, 0, &w);
  if (rc < 0)
    return rc;
  rc = scio_send(w, "hello", 5);
  int crc = scio_close(w);
  if (rc < 0 || crc < 0)
    return rc < 0 ? rc : crc;
  scio_file *f;
  if ((rc = scio_file_open(path, O_RDONLY, 0, &f)) < 0)
    return rc;
  char buf[8];
  size_t got = 0;
  rc = scio_file_read(f, buf, sizeof buf, &got);
  crc = scio_file_close(f);
  if (rc < 0 || crc < 0)
    return rc < 0 ? rc : crc;
  ck_assert_uint_eq(got, 5);
  scio_stream *r;
  if ((rc = scio_file_read_stream_open(path, &r)) < 0)
    return rc;
  ssize_t n = scio_receive(r, buf, sizeof buf);
  crc = scio_close(r);
  if (n < 0 || crc < 0)
    return n < 0 ? (int)n : crc;
  ck_assert_int_eq(n, 5);
  return 0;
}

START_TEST(file_allocation_failures) {
  tmpdir(oom_dir, sizeof oom_dir);
  scio_oom_install(SCIO_OOM_LIBEVENT);
  scio_oom_run r = {.fn = oom_body};
  r.opts.backend = scio_test_backend(_i);
  scio_oom_loop(scio_oom_run_op, &r, r.opts.backend, NULL);
  scio_oom_uninstall();
  rm_tree(oom_dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("file");
  TCase *tc = scio_tcase_new("file", 60);
  scio_tcase_add(tc, file_round_trip);
  scio_tcase_add(tc, file_pread_pwrite);
  scio_tcase_add(tc, file_seek_truncate_sync);
  scio_tcase_add(tc, file_errors);
  scio_tcase_add(tc, file_eacces);
  scio_tcase_add(tc, file_precancelled);
  scio_tcase_add(tc, file_cancel_while_running);
  scio_tcase_add(tc, file_close_while_running);
  suite_add_tcase(s, tc);
  tc = scio_tcase_new("stream", 120);
  scio_tcase_add(tc, stream_large_round_trip);
  scio_tcase_add(tc, stream_errors);
  scio_tcase_add(tc, stream_lines_through_buffered);
  scio_tcase_add(tc, stream_worker_busy_and_close);
  scio_tcase_add(tc, stream_fifo_on_loop);
  scio_tcase_add(tc, stream_kit_fifo);
  scio_tcase_add(tc, stream_kit_pipe_fd);
  suite_add_tcase(s, tc);
  tc = scio_tcase_new("oom", 120);
  scio_tcase_add(tc, file_allocation_failures);
  suite_add_tcase(s, tc);
  return scio_test_main(s);
}
