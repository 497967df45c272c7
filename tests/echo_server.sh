#!/usr/bin/env bash
# examples/echo_server end to end: it says where it listens, echoes, and
# shuts down gracefully: the first SIGINT/SIGTERM stops accepting and gives
# open connections --grace seconds, then cuts them; a second signal cuts
# them at once; the exit status is 0 every time.  Every wait is bounded and
# the server is stopped by its PID.
set -eu
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

start() {
  ./examples/echo_server "$@" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 200); do
    grep -q listening "$dir/out" && break
    sleep 0.05
  done
  cat "$dir/out"
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p; s/.*0\.0\.0\.0:\([0-9]*\).*/\1/p' "$dir/out" | head -n1)
  test -n "$port"
}

# wait_err TEXT: until the server's stderr says TEXT (at most 20 s).
wait_err() {
  for _ in $(seq 400); do
    grep -q "$1" "$dir/err" && return 0
    sleep 0.05
  done
  echo "echo_server never said '$1'; stderr:" >&2
  cat "$dir/err" >&2
  return 1
}

# stop: wait (bounded) for the server to exit; it must exit 0.
stop() {
  for _ in $(seq 400); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  local rc=0
  wait "$pid" || rc=$?
  pid=
  cat "$dir/err"
  test "$rc" -eq 0
}

# echo_on FD TEXT: send a line on FD and read it back.
echo_on() {
  local line
  printf '%s\n' "$2" >&"$1"
  read -t 20 -r line <&"$1"
  test "$line" = "$2"
}

# expect_eof FD: the server closes FD (read fails without timing out).
expect_eof() {
  local line rc=0
  read -t 20 -r line <&"$1" || rc=$?
  if [ "$rc" -eq 0 ]; then echo "expected EOF, got $line" >&2; return 1; fi
  if [ "$rc" -gt 128 ]; then echo "expected EOF, timed out" >&2; return 1; fi
}

# SIGINT, after two echoes, nobody connected: exit 0 at once.
start --host 127.0.0.1 --port 0
exec 3<>"/dev/tcp/127.0.0.1/$port"
echo_on 3 "hello scio"
echo_on 3 "second"
exec 3>&-
kill -INT "$pid"
stop
echo "echo_server: exit 0 on SIGINT"

# SIGTERM with a client connected and --grace 0: the connection is cut at
# once; every interface (dual stack).
start --grace 0
grep -q '0\.0\.0\.0:' "$dir/out"
exec 3<>"/dev/tcp/127.0.0.1/$port"
echo_on 3 x
kill -TERM "$pid"
expect_eof 3
exec 3>&-
stop
grep -q '1 connection cut' "$dir/err"
echo "echo_server: exit 0 on SIGTERM with a client connected (--grace 0)"

# The grace period: A and B are open across SIGINT.  New connections are
# refused, A still gets its echo and closes by itself; B stays open and
# is cut when the grace period (5 s) ends.
start --host 127.0.0.1 --port 0 --grace 5
exec 3<>"/dev/tcp/127.0.0.1/$port"
exec 4<>"/dev/tcp/127.0.0.1/$port"
echo_on 3 "A before"
echo_on 4 "B before"
t0=$(date +%s.%N)
kill -INT "$pid"
wait_err "2 connections open, 5 s to finish"
if (exec 5<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "a new connection was accepted after SIGINT" >&2
  exit 1
fi
echo_on 3 "A during the grace period"
exec 3>&-
kill -0 "$pid" # B is still open: the server waits for it
expect_eof 4
t1=$(date +%s.%N)
exec 4>&-
stop
grep -q '1 connection cut' "$dir/err"
# B was cut by the deadline, not before it (and not much later).
awk -v a="$t0" -v b="$t1" 'BEGIN { d = b - a; print "B cut after " d " s";
  exit !(d >= 4.9 && d < 20) }'
echo "echo_server: A finished within the grace, B cut at its end, exit 0"

# A second signal during the grace period cuts at once.
start --host 127.0.0.1 --port 0 --grace 60
exec 3<>"/dev/tcp/127.0.0.1/$port"
echo_on 3 "C"
kill -TERM "$pid"
wait_err "1 connection open, 60 s to finish"
kill -INT "$pid"
expect_eof 3
exec 3>&-
stop
grep -q 'again: closing 1 connection now' "$dir/err"
echo "echo_server: a second signal cuts the grace period short, exit 0"
