/* evhttp_hello: the baseline of the HTTP benchmark (bench/http.sh): the
 * same "Hello, World!" answer as examples/http_hello, served by libevent's
 * own HTTP server (evhttp, in libevent_extra), one event loop.
 *
 *   evhttp_hello PORT     (0: a free port; prints "listening PORT") */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static void hello(struct evhttp_request *req, void *arg) {
  struct evbuffer *body = arg;
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain");
  evhttp_add_header(evhttp_request_get_output_headers(req), "Server",
                    "evhttp");
  /* evhttp_send_reply drains the buffer: hand it a copy of the body. */
  struct evbuffer *out = evbuffer_new();
  evbuffer_add_buffer_reference(out, body);
  evhttp_send_reply(req, HTTP_OK, "OK", out);
  evbuffer_free(out);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  struct event_config *cfg = event_config_new();
  event_config_require_features(cfg, 0);
  struct event_base *base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  struct evhttp *http = base ? evhttp_new(base) : NULL;
  if (!http) {
    fprintf(stderr, "evhttp_hello: no event base\n");
    return 1;
  }
  struct evbuffer *body = evbuffer_new();
  evbuffer_add(body, "Hello, World!", 13);
  evhttp_set_gencb(http, hello, body);
  struct evhttp_bound_socket *bs =
      evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
  if (!bs) {
    fprintf(stderr, "evhttp_hello: cannot bind port %d\n", port);
    return 1;
  }
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
  printf("listening %d\n", ntohs(sin.sin_port));
  fflush(stdout);
  event_base_dispatch(base);
  evhttp_free(http);
  evbuffer_free(body);
  event_base_free(base);
  return 0;
}
