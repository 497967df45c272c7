#!/usr/bin/env bash
# examples/echo_server end to end: it says where it listens, echoes, and
# exits 0 on SIGINT and on SIGTERM (with a client still connected).
set -eu
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

start() {
  ./examples/echo_server "$@" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q listening "$dir/out" && break
    sleep 0.05
  done
  cat "$dir/out"
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p; s/.*0\.0\.0\.0:\([0-9]*\).*/\1/p' "$dir/out" | head -n1)
  test -n "$port"
}

# SIGINT, after two echoes.
start --host 127.0.0.1 --port 0
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello scio\n' >&3
read -r line <&3
test "$line" = "hello scio"
printf 'second\n' >&3
read -r line <&3
test "$line" = "second"
exec 3>&-
kill -INT "$pid"
wait "$pid"
echo "echo_server: exit 0 on SIGINT"

# SIGTERM with a client connected; every interface (dual stack).
start
grep -q '0\.0\.0\.0:' "$dir/out"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'x\n' >&3
read -r line <&3
test "$line" = "x"
kill -TERM "$pid"
wait "$pid"
# The server closed our connection: EOF.
if read -r line <&3; then echo "expected EOF, got $line" >&2; exit 1; fi
exec 3>&-
echo "echo_server: exit 0 on SIGTERM with a client connected"
