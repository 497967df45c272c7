/* Error codes, their text, and the per-task error detail. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errno_names.h"
#include "internal.h"

/* Could be a negative errno value: errno values stay below scio's own
 * range (4095 at most on Linux, where the kernel's error returns end). */
static int is_errno(int code) {
  return code < 0 && code > SCIO__ERR_RESERVED_HI;
}

static const char *table_text(int code) {
  switch (code) {
#define SCIO__ERR_TEXT(name, value, text)                                     \
  case value:                                                                 \
    return text;
    SCIO_ERRNO_MAP(SCIO__ERR_TEXT)
#undef SCIO__ERR_TEXT
  default:
    return NULL;
  }
}

SCIO_API const char *scio_strerror(int code) {
  const char *text = table_text(code);
  if (text)
    return text;
  if (code == 0)
    return "success";
  /* glibc's strerror returns static text for every errno it knows and
   * "Unknown error N" (thread-local) for the rest. */
  if (is_errno(code))
    return strerror(-code);
  return "unknown error";
}

static const char *table_name(int code) {
  switch (code) {
#define SCIO__ERR_NAME(name, value, text)                                     \
  case value:                                                                 \
    return #name;
    SCIO_ERRNO_MAP(SCIO__ERR_NAME)
#undef SCIO__ERR_NAME
  default:
    return NULL;
  }
}

#define SCIO__N_ERRNO_NAMES (sizeof scio__errno_names / sizeof *scio__errno_names)

SCIO_API const char *scio_err_name(int code) {
  const char *name = table_name(code);
  if (name)
    return name;
  if (code == 0)
    return "OK";
  /* Why a linear search: error paths only, and ~140 entries; aliases make
   * the values of a switch collide on some platforms. */
  if (is_errno(code))
    for (size_t i = 0; i < SCIO__N_ERRNO_NAMES; i++)
      if (scio__errno_names[i].value == -code)
        return scio__errno_names[i].name;
  return "UNKNOWN";
}

/* Outside any task the detail lives in the thread.  After a run it holds the
 * root task's last message (adopted, heap-owned).  A thread that exits
 * holding one frees it through a key's destructor: the key (created once
 * per process) carries the same pointer as tls_adopted. */
static __thread char tls_msg[512];
static __thread char *tls_adopted;

static pthread_key_t adopted_key;
static int adopted_key_ok;
static pthread_once_t adopted_once = PTHREAD_ONCE_INIT;

/* At thread exit (the key's value is the adopted message). */
static void adopted_free(void *msg) {
  scio__free(msg);
  if (tls_adopted == msg)
    tls_adopted = NULL;
}

static void adopted_key_create(void) {
  adopted_key_ok = pthread_key_create(&adopted_key, adopted_free) == 0;
}

/* Replace the adopted message (NULL: none), freeing the old one. */
static void set_adopted(char *msg) {
  if (msg == tls_adopted)
    return;
  scio__free(tls_adopted);
  tls_adopted = msg;
  pthread_once(&adopted_once, adopted_key_create);
  /* Without a key (creation failed: PTHREAD_KEYS_MAX reached) the message
   * is freed when replaced or cleared, not at thread exit. */
  if (adopted_key_ok)
    pthread_setspecific(adopted_key, msg);
}

void scio__errmsg_adopt(char *msg) {
  set_adopted(msg);
  tls_msg[0] = 0;
}

/* Store formatted text in the task's growable buffer. */
static void task_store(scio__task *t, const char *text, size_t len) {
  if (len + 1 > t->errcap) {
    size_t cap = len + 1 < 128 ? 128 : len + 1;
    char *p = scio__realloc(t->errmsg, cap);
    if (!p) {
      /* Keep what fits rather than nothing. */
      if (t->errcap == 0)
        return;
      len = t->errcap - 1;
    } else {
      t->errmsg = p;
      t->errcap = cap;
    }
  }
  memcpy(t->errmsg, text, len);
  t->errmsg[len] = 0;
}

void scio__task_free_errmsg(scio__task *t) {
  scio__free(t->errmsg);
  t->errmsg = NULL;
  t->errcap = 0;
}

int scio__vseterr(int code, const char *fmt, va_list ap) {
  scio__task *t = scio__task_cur();
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return code;
  }
  if (!t) {
    set_adopted(NULL);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap2);
    va_end(ap2);
    return code;
  }
  if ((size_t)n < sizeof small) {
    task_store(t, small, (size_t)n);
  } else {
    char *big = scio__malloc((size_t)n + 1);
    if (big) {
      vsnprintf(big, (size_t)n + 1, fmt, ap2);
      task_store(t, big, (size_t)n);
      scio__free(big);
    } else {
      task_store(t, small, sizeof small - 1);
    }
  }
  va_end(ap2);
  return code;
}

int scio__seterr(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  scio__vseterr(code, fmt, ap);
  va_end(ap);
  return code;
}

/* The public face of scio__seterr; NULL fmt clears the detail. */
SCIO_API int scio_vseterr(int code, const char *fmt, va_list ap) {
  if (!fmt) {
    scio_errmsg_clear();
    return code;
  }
  return scio__vseterr(code, fmt, ap);
}

SCIO_API int scio_seterr(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  scio_vseterr(code, fmt, ap);
  va_end(ap);
  return code;
}

SCIO_API const char *scio_errmsg(void) {
  scio__task *t = scio__task_cur();
  if (t)
    return t->errmsg ? t->errmsg : "";
  if (tls_adopted)
    return tls_adopted;
  return tls_msg;
}

SCIO_API void scio_errmsg_clear(void) {
  scio__task *t = scio__task_cur();
  if (t) {
    if (t->errmsg)
      t->errmsg[0] = 0;
    return;
  }
  set_adopted(NULL);
  tls_msg[0] = 0;
}

void scio__panic(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("scio: fatal misuse: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}

