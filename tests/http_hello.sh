#!/usr/bin/env bash
# examples/http_hello end to end: curl gets the page (and keeps the
# connection alive across requests), pipelined requests are answered in
# order, Connection: close and HTTP/1.0 close, bad requests get their
# status, a request body is skipped, --loops 2 serves on one port from two
# threads (--pin: each on one CPU), and SIGINT/SIGTERM stop it with exit 0.
# Every wait is bounded and the server is stopped by its PID.
set -eu
command -v curl >/dev/null || { echo "http_hello: curl is not installed (build.sh installs it)"; exit 1; }
command -v python3 >/dev/null || { echo "http_hello: python3 is not installed"; exit 1; }
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

start() {
  ./examples/http_hello "$@" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 200); do
    grep -q listening "$dir/out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$dir/out"
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/out" | head -n1)
  test -n "$port"
}
stop() { # SIGNAL
  kill "-$1" "$pid"
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  local rc=0
  wait "$pid" || rc=$?
  pid=
  cat "$dir/err"
  test "$rc" -eq 0
}
fetch() { curl -sS --max-time 20 "$@"; }

start --host 127.0.0.1 --port 0
url=http://127.0.0.1:$port

# The page, its headers, and keep-alive: curl fetches three URLs over one
# connection.
test "$(fetch "$url/")" = "Hello, World!"
fetch -D "$dir/h" -o /dev/null "$url/"
grep -q '^HTTP/1.1 200 OK' "$dir/h"
grep -qi '^Content-Length: 13' "$dir/h"
grep -qi '^Date: ' "$dir/h"
fetch -v "$url/" "$url/" "$url/" >"$dir/body" 2>"$dir/v"
test "$(cat "$dir/body")" = "Hello, World!Hello, World!Hello, World!"
test "$(grep -c 'Re-using existing connection\|Reusing existing connection' "$dir/v")" -eq 2
echo "http_hello: curl gets the page, three requests on one connection"

test "$(fetch -o /dev/null -w '%{http_code}' "$url/nope")" = 404
test "$(fetch -o /dev/null -w '%{http_code}' -X DELETE "$url/")" = 405
test "$(fetch -o /dev/null -w '%{http_code}' --data-binary 'abc' "$url/")" = 405
echo "http_hello: 404, 405"

# Raw requests over one socket: python3 sends, reads to EOF (or 10 s), and
# prints what came back.
raw() {
  python3 - "$port" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    out += b"<TIMEOUT>"
sys.stdout.write(out.decode("latin-1"))
EOF
}
# statuses: the status codes of the answers, in order, on one line.
statuses() { printf '%s' "$1" | grep -o 'HTTP/1\.1 [0-9][0-9][0-9]' | cut -d' ' -f2 | tr '\n' ' '; }

# Pipelining: three requests in one write, the last one closing; three
# answers in order, then EOF (no timeout).
out=$(raw 'GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
test "$(statuses "$out")" = "200 404 200 "
printf '%s' "$out" | grep -qi '^Connection: close'
! printf '%s' "$out" | grep -q TIMEOUT
echo "http_hello: pipelined requests answered in order; Connection: close closes"

# HEAD: the headers of GET, no body.
out=$(raw 'HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n')
printf '%s' "$out" | grep -qi '^Content-Length: 13'
! printf '%s' "$out" | grep -q 'Hello'
echo "http_hello: HEAD has no body"

# HTTP/1.0 closes by default, and stays open with keep-alive.
out=$(raw 'GET / HTTP/1.0\r\n\r\n')
printf '%s' "$out" | grep -q 'Hello, World!$'
! printf '%s' "$out" | grep -q TIMEOUT
out=$(raw 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n')
test "$(statuses "$out")" = "200 200 "
printf '%s' "$out" | grep -qi '^Connection: keep-alive'
! printf '%s' "$out" | grep -q TIMEOUT
echo "http_hello: HTTP/1.0 closes, or keeps alive when asked"

# A body with Content-Length is skipped, even split over reads; then the
# next request is answered.
out=$(raw 'POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nConnection: close\r\n\r\n')
test "$(statuses "$out")" = "405 200 "
echo "http_hello: a request body is skipped"

# Bad requests: 400 / 505 / 501 / 431, and the connection closes.
for case in 'garbage\r\n\r\n:400' 'GET / HTTP/2.0\r\n\r\n:505' \
  'GET / HTTP/1.1\r\nno colon here\r\n\r\n:400' \
  'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n:501' \
  'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n:400'; do
  req=${case%:*} want=${case##*:}
  out=$(raw "$req")
  test "$(statuses "$out")" = "$want " || { echo "for $req: $out" >&2; exit 1; }
  ! printf '%s' "$out" | grep -q TIMEOUT
done
big=$(head -c 9000 /dev/zero | tr '\0' a)
out=$(raw "GET / HTTP/1.1\\r\\nX-Big: $big\\r\\n\\r\\n")
test "$(statuses "$out")" = "431 "
echo "http_hello: 400, 505, 501, 431 close the connection"

# Still serving after all that.
test "$(fetch "$url/")" = "Hello, World!"
stop INT
echo "http_hello: exit 0 on SIGINT"

# many_gets N [pin]: N connections at once, each sending one GET with
# Connection: close; every one must get the page.  With "pin", N from each
# CPU this shell may use, in turn.
many_gets() {
  python3 - "$port" "$1" "${2:-}" <<'EOF'
import os, socket, sys
port, n, pin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "pin"
for cpu in sorted(os.sched_getaffinity(0)) if pin else [None]:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    for s in socks:
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"Hello, World!"), out
EOF
}

# Two loops on one port: many connections all get the page (each loop's
# listener is its own SO_REUSEPORT socket; the kernel spreads them).
start --host 127.0.0.1 --port 0 --loops 2
grep -q '(2 loops)' "$dir/out"
many_gets 40
echo "http_hello: 40 connections served by --loops 2"
test "$(ls "/proc/$pid/task" | wc -l)" -ge 3 # main + 2 loop threads
stop TERM
echo "http_hello: --loops 2 exits 0 on SIGTERM"

# --pin: each loop runs on one CPU, and clients on every CPU the server
# may use are served (each connection goes to the loop of the CPU it
# arrived on, or by hash where no loop matches).
start --host 127.0.0.1 --port 0 --loops 2 --pin
for t in $(ls "/proc/$pid/task"); do
  [ "$t" = "$pid" ] && continue
  cpus=$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$pid/task/$t/status")
  case $cpus in *[,-]*) echo "loop thread $t may run on $cpus: not pinned" >&2; exit 1 ;; esac
done
many_gets 8 pin
echo "http_hello: --pin serves clients on every CPU"
stop TERM
echo "http_hello: --loops 2 --pin pins its loops and exits 0"

# The port is taken: an error and exit 1, not a hang.
python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1]); sys.stdout.flush(); time.sleep(30)' >"$dir/busy" &
holder=$!
for _ in $(seq 100); do [ -s "$dir/busy" ] && break; sleep 0.05; done
rc=0
timeout 20 ./examples/http_hello --host 127.0.0.1 --port "$(cat "$dir/busy")" --loops 2 >/dev/null 2>"$dir/err" || rc=$?
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
cat "$dir/err"
test "$rc" -eq 1
grep -qi 'in use' "$dir/err"
echo "http_hello: a port in use is an error, exit 1"
