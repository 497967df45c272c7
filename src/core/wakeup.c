/* Cross-thread posts to a loop: the only part of the core that other
 * threads may touch.  A mutex-protected list plus an eventfd that the loop
 * polls; the functions posted run on the loop's scheduler context. */
#include <event2/event.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

typedef struct post {
  struct post *next;
  void (*fn)(void *);
  void *arg;
} post;

struct scio__wakeup {
  pthread_mutex_t mu;
  int efd;
  struct event *ev;
  post *head, **tail;
  int closed;
};

static void drain_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  scio__wakeup *w = arg;
  uint64_t v;
  while (read(fd, &v, sizeof v) > 0) {
  }
  pthread_mutex_lock(&w->mu);
  post *p = w->head;
  w->head = NULL;
  w->tail = &w->head;
  pthread_mutex_unlock(&w->mu);
  while (p) {
    post *next = p->next;
    p->fn(p->arg);
    scio__free(p);
    p = next;
  }
}

int scio__loop_enable_wakeup(scio__loop *l) {
  if (l->wakeup)
    return 0;
  scio__wakeup *w = scio__calloc(1, sizeof *w);
  if (!w)
    return scio__seterr(SCIO_ENOMEM, "wakeup: out of memory");
  w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->efd < 0) {
    int e = errno;
    scio__free(w);
    return scio__seterr(-e, "wakeup: eventfd failed");
  }
  w->ev = event_new(l->base, w->efd, EV_READ | EV_PERSIST, drain_cb, w);
  if (!w->ev || event_add(w->ev, NULL) < 0) {
    if (w->ev)
      event_free(w->ev);
    close(w->efd);
    scio__free(w);
    return scio__seterr(SCIO_ENOMEM, "wakeup: cannot register the eventfd");
  }
  pthread_mutex_init(&w->mu, NULL);
  w->tail = &w->head;
  l->wakeup = w;
  scio__loop_source_add(l); /* the eventfd's persistent event */
  return 0;
}

int scio__loop_post(scio__loop *l, void (*fn)(void *), void *arg) {
  scio__wakeup *w = l->wakeup;
  post *p = scio__malloc(sizeof *p);
  if (!p)
    return SCIO_ENOMEM;
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  pthread_mutex_lock(&w->mu);
  if (w->closed) {
    pthread_mutex_unlock(&w->mu);
    scio__free(p);
    return SCIO_ECLOSED;
  }
  *w->tail = p;
  w->tail = &p->next;
  pthread_mutex_unlock(&w->mu);
  uint64_t one = 1;
  ssize_t n = write(w->efd, &one, sizeof one);
  (void)n; /* EAGAIN only when the counter is saturated: already signalled */
  return 0;
}

void scio__wakeup_free(scio__loop *l) {
  scio__wakeup *w = l->wakeup;
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  w->closed = 1;
  post *p = w->head;
  w->head = NULL;
  pthread_mutex_unlock(&w->mu);
  while (p) {
    post *next = p->next;
    scio__free(p);
    p = next;
  }
  event_free(w->ev);
  scio__loop_source_remove(l);
  close(w->efd);
  pthread_mutex_destroy(&w->mu);
  scio__free(w);
  l->wakeup = NULL;
}
