/* chat: a line-based chat server on scio.
 *
 *   chat [--host H] [--port P] [--queue N]
 *
 * Every line a client sends goes to every other client as "NAME: line".
 * Clients start as "userN"; "/nick NAME" renames, "/quit" leaves.  Joins,
 * renames and departures are announced with lines starting "* ".
 * Prints "chat: listening on ADDR..." once it accepts connections, and
 * exits 0 on SIGINT or SIGTERM (every client is told, then closed).
 *
 * The shape of it:
 *   - one task per client reads lines with a buffered stream's
 *     scio_receive_until (a line is at most 4096 bytes);
 *   - each client has a bounded memory channel (N messages, default 64)
 *     and a writer task that drains it into the socket;
 *   - broadcasting never waits: it puts the message into each channel with
 *     scio_tx_send_nowait.  A client whose channel is full is too slow to
 *     keep up (it does not read): it is dropped, with a message to the
 *     others, instead of slowing them down or making the server buffer
 *     without bound;
 *   - dropping is cancelling the client's scope: its reader and writer stop
 *     at their next checkpoint, and its task cleans up.
 * A message is allocated once and shared by reference count, so a
 * broadcast to many clients copies a pointer per client, not the text. */
#include <errno.h>
#include <fcntl.h>
#include <scio.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE 4096

/* ---- messages ------------------------------------------------------------ */

typedef struct msg {
  int refs;
  size_t len;
  char text[];
} msg;

static msg *msg_new(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  msg *m = malloc(sizeof *m + (size_t)n + 1);
  if (!m)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(m->text, (size_t)n + 1, fmt, ap);
  va_end(ap);
  m->refs = 1;
  m->len = (size_t)n;
  return m;
}

static void msg_unref(msg *m) {
  if (m && --m->refs == 0)
    free(m);
}

/* ---- the room -------------------------------------------------------------- */

typedef struct client client;

typedef struct room {
  client *head;   /* every client that can be sent to */
  size_t queue;   /* capacity of each client's channel */
  unsigned ids;   /* for userN names */
  int closing;    /* shutting down: tell the clients */
  scio_listener *listener;
  scio_nursery nursery; /* the signal task, the accept loop, the clients */
} room;

struct client {
  client *prev, *next;
  room *room;
  scio_stream *sock; /* until the buffered stream owns it */
  scio_stream *s;    /* buffered, over sock */
  scio_tx *tx;       /* the client's queue: senders are the others */
  scio_rx *rx;       /* read by the writer task */
  scio_scope life;   /* cancelled to drop the client */
  const char *bye;   /* last words to the client, if any */
  int unread;        /* it may still be sending: linger before closing */
  int dropped;
  char name[32];
  char peer[64];
};

static void room_add(room *r, client *c) {
  c->prev = NULL;
  c->next = r->head;
  if (r->head)
    r->head->prev = c;
  r->head = c;
}

static void room_remove(room *r, client *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    r->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

/* Queue m for c, without waiting.  A full queue means c does not keep up:
 * drop it (its task sees the cancellation and leaves the room). */
static void deliver(client *c, msg *m) {
  if (c->dropped || !m)
    return;
  m->refs++;
  if (scio_tx_send_nowait(c->tx, &m) == 0)
    return;
  m->refs--;
  c->dropped = 1;
  c->bye = "* you were dropped: too slow\n";
  fprintf(stderr, "chat: dropping %s (%s): %zu messages behind\n", c->name,
          c->peer, c->room->queue);
  scio_scope_cancel_reason(&c->life, "too slow: its queue is full");
}

/* Send m to everybody but `from` (NULL: everybody).  Consumes m. */
static void broadcast(room *r, client *from, msg *m) {
  if (!m)
    return; /* out of memory: this message is lost, the room goes on */
  client *next;
  for (client *c = r->head; c; c = next) {
    next = c->next; /* deliver does not unlink, but stay safe */
    if (c != from)
      deliver(c, m);
  }
  msg_unref(m);
}

/* Send m to c alone.  Consumes m. */
static void tell(client *c, msg *m) {
  deliver(c, m);
  msg_unref(m);
}

/* ---- one client ------------------------------------------------------------ */

/* The channel -> socket half.  It takes every message already queued
 * (scio_rx_receive_nowait is not a checkpoint) and sends them in one go:
 * each receive and each send yields once, so a writer that sent one
 * message per round would fall behind a reader that produces one per
 * round, and a client that does read would be dropped. */
static int writer(void *arg) {
  client *c = arg;
  char batch[16384];
  msg *m = NULL;
  for (;;) {
    int rc = m ? 0 : scio_rx_receive(c->rx, &m);
    if (rc < 0)
      return rc;
    size_t used = 0;
    /* A message bigger than the batch goes out alone. */
    if (m->len > sizeof batch) {
      rc = scio_send(c->s, m->text, m->len);
      msg_unref(m);
      m = NULL;
      if (rc < 0)
        return rc;
      continue;
    }
    while (m && used + m->len <= sizeof batch) {
      memcpy(batch + used, m->text, m->len);
      used += m->len;
      msg_unref(m);
      if (scio_rx_receive_nowait(c->rx, &m) < 0)
        m = NULL;
    }
    /* m, if any, did not fit: it starts the next batch. */
    if ((rc = scio_send(c->s, batch, used)) < 0) {
      msg_unref(m);
      return rc;
    }
  }
}

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof ((client *)0)->name)
    return 0;
  for (; *s; s++)
    if (*s <= ' ' || *s == 0x7f)
      return 0;
  return 1;
}

/* One line from the client: a command or a message.  1 to go on, 0 to
 * leave. */
static int handle_line(client *c, char *line) {
  room *r = c->room;
  if (strncmp(line, "/nick ", 6) == 0) {
    if (!valid_name(line + 6)) {
      tell(c, msg_new("* names are 1 to 31 visible characters\n"));
      return 1;
    }
    broadcast(r, NULL, msg_new("* %s is now %s\n", c->name, line + 6));
    memcpy(c->name, line + 6, strlen(line + 6) + 1); /* valid_name: fits */
    return 1;
  }
  if (strcmp(line, "/quit") == 0)
    return 0;
  broadcast(r, c, msg_new("%s: %s\n", c->name, line));
  return 1;
}

/* The socket -> room half: lines until EOF, /quit, an error or a drop. */
static int reader(client *c) {
  char line[MAX_LINE + 1];
  for (;;) {
    size_t n;
    int rc = scio_receive_until(c->s, "\n", 1, line, MAX_LINE, &n);
    if (rc == SCIO_EOF)
      return 0;
    if (rc == SCIO_EDELIM) {
      c->bye = "* line too long\n";
      c->unread = 1;
      return 0;
    }
    if (rc < 0)
      return rc;
    if (n > 0 && line[n - 1] == '\r')
      n--;
    line[n] = '\0';
    if (!handle_line(c, line))
      return 0;
  }
}

/* The client's life in the room: join, read while the writer writes, and
 * leave.  Cancelling c->life (a drop, or the server's shutdown) ends it. */
static int session(client *c) {
  room *r = c->room;
  room_add(r, c);
  fprintf(stderr, "chat: %s joined from %s\n", c->name, c->peer);
  int others = -1;
  for (client *o = r->head; o; o = o->next)
    others++;
  tell(c, msg_new("* welcome, %s: %d other%s here; /nick NAME, /quit\n",
                     c->name, others, others == 1 ? " is" : "s are"));
  broadcast(r, c, msg_new("* %s joined\n", c->name));
  scio_nursery n;
  scio_nursery_open(&n);
  int rc = scio_start_soon(&n, writer, c);
  if (rc == 0)
    rc = reader(c);
  scio_nursery_cancel(&n); /* the writer, when the reader ended first */
  rc = scio_nursery_close_with(&n, rc);
  room_remove(r, c);
  return rc;
}

/* Last words, when there are any: shielded from the cancellation that is
 * ending the client, and bounded, since a dropped client does not read. */
static void say_bye(client *c) {
  if (!c->bye)
    return;
  scio_scope cs;
  if (scio_scope_open(&cs, scio_now() + (c->unread ? 2.0 : 0.5),
                      SCIO_SCOPE_SHIELD) < 0)
    return;
  scio_send(c->s, c->bye, strlen(c->bye));
  /* Closing a socket with unread bytes sends a reset, which may destroy
   * the last words before the client reads them: half-close, and drop
   * what still comes until the client closes (within the same bound). */
  if (c->unread && scio_send_eof(c->s) == 0) {
    char sink[4096];
    while (scio_receive(c->s, sink, sizeof sink) > 0) {
    }
  }
  scio_scope_close(&cs);
}

/* Give back what the channel still holds, then close it. */
static void drop_queue(client *c) {
  scio_tx_close_nowait(c->tx);
  msg *m;
  while (scio_rx_receive_nowait(c->rx, &m) == 0)
    msg_unref(m);
  scio_rx_close_nowait(c->rx);
}

static int client_task(void *arg) {
  client *c = arg;
  room *r = c->room;
  int rc = scio_buffered_open(c->sock, NULL, &c->s);
  if (rc < 0) {
    scio_close(c->sock);
    free(c);
    return 0;
  }
  c->sock = NULL; /* c->s owns it */
  if ((rc = scio_channel_open(sizeof(msg *), r->queue, &c->tx, &c->rx)) < 0) {
    scio_close(c->s);
    free(c);
    return 0;
  }
  snprintf(c->name, sizeof c->name, "user%u", ++r->ids);
  scio_scope_open(&c->life, SCIO_DEADLINE_NONE, 0);
  rc = session(c);
  rc = scio_scope_close_with(&c->life, rc);
  if (r->closing && !c->bye)
    c->bye = "* the server is shutting down\n";
  if (rc < 0 && rc != SCIO_ECANCELED)
    fprintf(stderr, "chat: %s: %s\n", c->name, scio_errmsg());
  fprintf(stderr, "chat: %s %s\n", c->name, c->dropped ? "dropped" : "left");
  if (!r->closing)
    broadcast(r, NULL,
              msg_new("* %s %s\n", c->name,
                      c->dropped ? "was dropped (too slow)" : "left"));
  say_bye(c);
  drop_queue(c);
  scio_close(c->s);
  free(c);
  return 0; /* a client's trouble is never the server's */
}

/* ---- accepting ------------------------------------------------------------- */

static int accept_loop(void *arg) {
  room *r = arg;
  for (;;) {
    scio_stream *conn;
    int rc = scio_listener_accept(r->listener, &conn);
    if (rc == SCIO_EMFILE || rc == SCIO_ENFILE || rc == SCIO_ENOMEM) {
      fprintf(stderr, "chat: accept: %s; pausing\n", scio_strerror(rc));
      if ((rc = scio_sleep(0.5)) < 0)
        return rc;
      continue;
    }
    if (rc < 0)
      return rc;
    client *c = calloc(1, sizeof *c);
    if (!c) {
      scio_close(conn);
      continue;
    }
    c->room = r;
    c->sock = conn;
    struct sockaddr_storage peer;
    if (scio_stream_remote_addr(conn, &peer) == 0)
      scio_sockaddr_format(&peer, c->peer, sizeof c->peer);
    if (scio_start_soon(&r->nursery, client_task, c) < 0) {
      scio_close(conn);
      free(c);
    }
  }
}

/* ---- signals and main ---------------------------------------------------- */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;
  if (write(sig_pipe[1], &c, 1) < 0) {
  }
  errno = saved;
}

static int signal_task(void *arg) {
  room *r = arg;
  int rc = scio_wait_readable(sig_pipe[0]);
  if (rc < 0)
    return rc;
  char c;
  if (read(sig_pipe[0], &c, 1) == 1)
    fprintf(stderr, "chat: %s, shutting down\n", strsignal(c));
  r->closing = 1;
  scio_nursery_cancel(&r->nursery);
  return 0;
}

static int print_addrs(scio_listener *l) {
  struct sockaddr_storage addrs[8];
  int n = scio_listener_addrs(l, addrs, 8);
  if (n < 0)
    return n;
  printf("chat: listening on");
  for (int i = 0; i < n && i < 8; i++) {
    char text[80];
    scio_sockaddr_format(&addrs[i], text, sizeof text);
    printf(" %s", text);
  }
  printf("\n");
  fflush(stdout);
  return 0;
}

typedef struct args {
  const char *host;
  unsigned port;
  room room;
} args;

static int main_task(void *arg) {
  args *a = arg;
  room *r = &a->room;
  int rc = scio_tcp_listen(a->host, (uint16_t)a->port, NULL, &r->listener);
  if (rc < 0)
    return rc;
  if ((rc = print_addrs(r->listener)) < 0) {
    scio_listener_close(r->listener);
    return rc;
  }
  scio_nursery_open(&r->nursery);
  scio_start_soon(&r->nursery, signal_task, r);
  scio_start_soon(&r->nursery, accept_loop, r);
  rc = scio_nursery_close(&r->nursery);
  scio_listener_close(r->listener);
  return rc;
}

static int usage(void) {
  fprintf(stderr, "usage: chat [--host H] [--port P] [--queue N]\n");
  return 2;
}

int main(int argc, char **argv) {
  args a;
  memset(&a, 0, sizeof a);
  a.room.queue = 64;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      a.host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v > 65535)
        return usage();
      a.port = (unsigned)v;
    } else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v == 0 || v > 1000000)
        return usage();
      a.room.queue = v;
    } else {
      return usage();
    }
  }
  if (pipe(sig_pipe) < 0) {
    perror("chat: pipe");
    return 1;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
    fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  int rc = scio_run(main_task, &a, NULL);
  close(sig_pipe[0]);
  close(sig_pipe[1]);
  if (rc < 0 && rc != SCIO_ECANCELED) {
    fprintf(stderr, "chat: %s: %s\n", scio_strerror(rc), scio_errmsg());
    return 1;
  }
  return 0;
}
