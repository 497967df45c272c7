#!/usr/bin/env bash
# build.sh -- build, test and benchmark scio on Debian (12, bookworm).
#
#   ./build.sh deps    install the Debian packages that are missing, nothing else
#   ./build.sh demo    deps, build (build/), run examples/demo, then on loopback
#                      TLS echo, happy eyeballs, http_hello + scio-fetch, a summary
#   ./build.sh check   deps, build, then every test phase:
#                        1. make check              (build/)
#                        2. make check, ASan+UBSan  (build-asan/)
#                        2b. check_thread, check_core under TSan (build-tsan/)
#                        3. make check-valgrind     (build/)
#                        4. make distcheck          (build/; includes installcheck)
#                      and a last line "check: N passed, N failed" (test programs
#                      over all phases); the exit status is non-zero on any failure.
#   ./build.sh bench   deps, build, make bench
#
# The main build is out of tree in build/, configured with --enable-werror.
set -euo pipefail

# Debian packages the build, the tests and the tools around them need.  Later
# layers add theirs here (openssl, dnsmasq-base, iproute2, nftables,
# gnutls-bin, python3, ...).
DEB_PACKAGES=(
  build-essential autoconf automake libtool pkg-config
  libevent-dev libc-ares-dev libssl-dev
  check valgrind clang g++
  doxygen
  strace
  dnsmasq-base nftables iproute2 python3 bind9-dnsutils
  openssl gnutls-bin curl
)

MAIN_CONFIGURE_FLAGS=(--enable-werror)
ASAN_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
TSAN_FLAGS="-O1 -g -fsanitize=thread"
CHECK_JOBS=2

cd "$(dirname "${BASH_SOURCE[0]}")"
TOP=$PWD
# The project's shared test data and scripts (../shared beside the
# checkout); the tests look here first, so that `make distcheck', which
# builds from an unpacked tarball elsewhere, finds them too.
if [ -d "$TOP/../shared" ]; then
  SCIO_SHARED_DIR=$(cd "$TOP/../shared" && pwd)
  export SCIO_SHARED_DIR
fi
JOBS=$(nproc 2>/dev/null || echo 2)

say() { printf 'build.sh: %s\n' "$*"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
deps() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system: make sure these (or their equivalents) are installed: ${DEB_PACKAGES[*]}"
    return 0
  fi
  local p status missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == *"install ok installed"* ]] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "deps: all ${#DEB_PACKAGES[@]} packages are installed"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      die "missing packages (${missing[*]}), and not root and no sudo to install them"
    sudo=(sudo)
  fi
  say "deps: installing ${missing[*]}"
  local try
  for try in 1 2 3; do
    "${sudo[@]}" apt-get update && break
    [ "$try" -lt 3 ] || die "apt-get update failed"
    sleep 5
  done
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
}

# ---------------------------------------------------------------------------
# autoreconf only when configure is missing or older than what it is made from.
bootstrap() {
  local f need=no
  if [ ! -x configure ]; then
    need=yes
  else
    for f in configure.ac Makefile.am include/scio/version.h m4/*.m4; do
      [ -e "$f" ] && [ "$f" -nt configure ] && need=yes
    done
  fi
  if [ $need = yes ]; then
    say "autoreconf -fi"
    autoreconf -fi
  fi
}

# configure_in DIR ARGS...: (re)configure DIR when it has never been
# configured, or was configured with other arguments.
configure_in() {
  local dir=$1; shift
  local stamp="$dir/.build-sh-configure-args"
  mkdir -p "$dir"
  if [ ! -f "$dir/config.status" ] || [ ! -f "$stamp" ] ||
     [ "$(cat "$stamp")" != "$*" ]; then
    say "configure in $dir: $*"
    rm -f "$stamp"
    (cd "$dir" && "$TOP/configure" "$@")
    printf '%s' "$*" >"$stamp"
  fi
}

build() {
  bootstrap
  configure_in build "${MAIN_CONFIGURE_FLAGS[@]}"
  say "make -j$JOBS (build/)"
  make -C build -j"$JOBS"
}

# ---------------------------------------------------------------------------
# The check phases.  Each one's output goes to the terminal and to
# build/phase-NAME.out; its test counts are read from that output.
PASSED=0
FAILED=0
PHASES=()

# count_harness LOG: "PASSED FAILED" from the Automake harness summary.
count_harness() {
  awk '/^# (PASS|XFAIL): +[0-9]+$/ { p += $3 }
       /^# (FAIL|XPASS|ERROR): +[0-9]+$/ { f += $3 }
       END { printf "%d %d\n", p, f }' "$1"
}

# count_valgrind LOG: "PASSED FAILED" from check-valgrind's summary line.
count_valgrind() {
  awk '/^# valgrind: [0-9]+ passed, [0-9]+ failed$/ { p += $3; f += $5 }
       END { printf "%d %d\n", p, f }' "$1"
}

# phase NAME COUNTER DIR CMD...: run CMD in DIR, record how it went.
phase() {
  local name=$1 counter=$2 dir=$3; shift 3
  local log="$TOP/build/phase-$name.out" rc p f
  mkdir -p "$TOP/build"
  say "=== phase $name: $*"
  set +e
  (cd "$dir" && "$@") 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  read -r p f < <("$counter" "$log")
  # A phase that failed without a failing test (a build error, a dirty
  # distclean, ...) still counts as one failure.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then rc=1; fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if [ "$rc" -eq 0 ]; then
    PHASES+=("  ok    $name ($p passed)")
  else
    PHASES+=("  FAIL  $name ($p passed, $f failed; log: build/phase-$name.out)")
  fi
  return "$rc"
}

# show_suite_log FILE: print a harness test-suite.log (the failing tests'
# logs), indented so that its "# PASS:" lines are not counted twice.
show_suite_log() {
  [ -f "$1" ] || return 0
  echo "---- $1"
  sed 's/^/| /' "$1"
}

# make check, printing the failing tests' logs on failure.
make_check() {
  make -j"$CHECK_JOBS" check && return 0
  local rc=$?
  show_suite_log test-suite.log
  return $rc
}

# make distcheck (it runs make check and installcheck on the tarball), with
# CI's warnings-are-errors configuration.
distcheck() {
  make -j"$CHECK_JOBS" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror && return 0
  local rc=$? f
  for f in scio-*/_build/sub/test-suite.log; do show_suite_log "$f"; done
  return $rc
}

# The ASan+UBSan phase, run from the top directory.  Its environment stays in
# the phase's subshell.  Afterwards the logs must not hold the warnings that
# mean a coroutine switch was not announced to ASan
# (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber).
asan_check() {
  export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  export CK_TIMEOUT_MULTIPLIER="${CK_TIMEOUT_MULTIPLIER:-3}"
  # The million-stack case already ran in the plain phase; under ASan its
  # shadow memory makes it slow and large.
  export SCIO_SELFTEST_QUICK=1
  # The OpenSSL allocation-failure loops of check_tls: every third point.
  export SCIO_TLS_OOM_STRIDE=3
  configure_in build-asan --disable-shared --disable-lto CFLAGS="$ASAN_FLAGS" LDFLAGS="$ASAN_FLAGS" || return
  cd build-asan
  make -j"$JOBS" || return
  local rc=0
  make_check || rc=$?
  if grep -E '__asan_handle_no_return|False positive' tests/*.log 2>/dev/null; then
    echo "ASan: a stack switch was not annotated (in the logs named above)"
    rc=1
  fi
  return $rc
}

# ThreadSanitizer over the code that threads touch: the worker pool,
# from-thread calls and portals (check_thread) and the cross-thread wake-up
# of the core (check_core, whose coroutine switches TSan follows through
# the fiber annotations in src/core/ctx.c).  Only these two programs are
# built, to keep the phase short.
TSAN_TESTS="tests/check_thread tests/check_core"
tsan_check() {
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  export CK_TIMEOUT_MULTIPLIER="${CK_TIMEOUT_MULTIPLIER:-5}"
  configure_in build-tsan --disable-shared --disable-lto CFLAGS="$TSAN_FLAGS" LDFLAGS="$TSAN_FLAGS" || return
  cd build-tsan
  make -j"$JOBS" libscio_internal.la || return
  make -j"$CHECK_JOBS" check TESTS="$TSAN_TESTS" check_PROGRAMS="$TSAN_TESTS" \
    check_DATA= && return 0
  local rc=$?
  show_suite_log test-suite.log
  return $rc
}

check() {
  export AM_COLOR_TESTS=no
  local ok=yes
  phase make-check count_harness build make_check || ok=no
  phase asan count_harness . asan_check || ok=no
  phase tsan count_harness . tsan_check || ok=no
  phase valgrind count_valgrind build make -j"$CHECK_JOBS" check-valgrind || ok=no
  phase distcheck count_harness build distcheck || ok=no

  echo
  echo "Phases:"
  printf '%s\n' "${PHASES[@]}"
  echo "check: $PASSED passed, $FAILED failed"
  [ $ok = yes ] && [ "$FAILED" -eq 0 ]
}

# ---------------------------------------------------------------------------
# The network half of the demo, all on loopback, every wait bounded, every
# server stopped by its PID (SIGINT: each must exit 0):
#   1. a throw-away CA and a certificate for localhost (mkpki.sh from
#      ../shared/testing when present, else one self-signed openssl req);
#   2. examples/tls_echo_server on 127.0.0.1, and tcp_client --verbose --tls
#      to `localhost': happy eyeballs tries ::1 (refused: the server is on
#      IPv4 only) and falls back to 127.0.0.1, the certificate is verified,
#      two lines go through TLS and back, and a timeout ends the session
#      (TLS has no half-close, so the client closes once the server has
#      been quiet for 0.5 s: a cancel scope whose deadline moves);
#   3. examples/http_hello and scio-fetch --verbose http://localhost:PORT/;
#   4. a summary.
DEMO_DIR=
DEMO_PIDS=()
DEMO_RESULTS=()
demo_cleanup() {
  local p
  for p in "${DEMO_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "$DEMO_DIR" ] && rm -rf "$DEMO_DIR"
  return 0
}
demo_result() { DEMO_RESULTS+=("$(printf '  %-4s %s' "$1" "$2")"); }

# demo_start NAME ARGS...: start build/examples/NAME, wait (at most 10 s)
# for its "listening" line; sets DEMO_PID and DEMO_PORT (the 127.0.0.1 one).
demo_start() {
  local name=$1 i line; shift
  "build/examples/$name" "$@" >"$DEMO_DIR/$name.out" 2>"$DEMO_DIR/$name.err" &
  DEMO_PID=$!
  DEMO_PIDS+=("$DEMO_PID")
  for ((i = 0; i < 100; i++)); do
    grep -q listening "$DEMO_DIR/$name.out" 2>/dev/null && break
    kill -0 "$DEMO_PID" 2>/dev/null || break
    sleep 0.1
  done
  line=$(grep -m1 listening "$DEMO_DIR/$name.out" || true)
  DEMO_PORT=$(printf '%s' "$line" | sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p')
  if [[ ! $DEMO_PORT =~ ^[0-9]+$ ]]; then
    cat "$DEMO_DIR/$name.err" >&2
    say "demo: $name did not report a port"
    return 1
  fi
  say "started $name (pid $DEMO_PID): ${line#*: }"
}

# demo_stop NAME PID: SIGINT, at most 5 s, then SIGKILL; 0 if it exited 0.
demo_stop() {
  local name=$1 pid=$2 i rc=0
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "demo: $name ignored SIGINT, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  if [ "$rc" -eq 0 ]; then
    say "$name stopped on SIGINT, exit status 0"
  else
    sed 's/^/    /' "$DEMO_DIR/$name.err"
    say "demo: $name exited $rc, expected 0"
  fi
  return "$rc"
}

demo_pki() {
  local mkpki="${SCIO_SHARED_DIR:-}/testing/mkpki.sh"
  if [ -n "${SCIO_SHARED_DIR:-}" ] && [ -r "$mkpki" ] &&
     sh "$mkpki" "$DEMO_DIR/pki" >/dev/null 2>&1; then
    say "made a throw-away CA and a localhost certificate ($mkpki)"
    return 0
  fi
  mkdir -p "$DEMO_DIR/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DEMO_DIR/pki/server.key" -out "$DEMO_DIR/pki/server.pem" \
    -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >/dev/null 2>&1 ||
    { say "demo: openssl could not make a certificate"; return 1; }
  cp "$DEMO_DIR/pki/server.pem" "$DEMO_DIR/pki/ca.pem"
  say "made a throw-away self-signed certificate for localhost (openssl req)"
}

demo_tls() {
  local echoed rc=0 pid
  demo_start tls_echo_server --cert "$DEMO_DIR/pki/server.pem" \
    --key "$DEMO_DIR/pki/server.key" --host 127.0.0.1 --port 0 || return 1
  pid=$DEMO_PID
  say "running tcp_client --verbose --tls --cacert ca.pem localhost $DEMO_PORT"
  # c-ares 1.18 leaks a little when it answers from /etc/hosts; an ASan
  # build of the demo should not fail for that.
  if echoed=$(printf 'hello over TLS\nsecond line\n' |
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout 20 build/examples/tcp_client --verbose --tls --linger 0.5 \
      --cacert "$DEMO_DIR/pki/ca.pem" localhost "$DEMO_PORT" 2>"$DEMO_DIR/client.err"); then
    sed 's/^/    /' "$DEMO_DIR/client.err"
    say "echoed back through TLS: $(printf '%s' "$echoed" | tr '\n' '|')"
    [ "$echoed" = "$(printf 'hello over TLS\nsecond line')" ] || rc=1
  else
    sed 's/^/    /' "$DEMO_DIR/client.err"
    say "demo: tcp_client failed"
    rc=1
  fi
  demo_stop tls_echo_server "$pid" || rc=1
  if [ $rc -eq 0 ]; then
    if grep -q 'refused' "$DEMO_DIR/client.err"; then
      demo_result ok "happy eyeballs to localhost: ::1 refused, 127.0.0.1 connected"
    else
      demo_result ok "happy eyeballs to localhost: $(grep -m1 '^connected to' "$DEMO_DIR/client.err")"
    fi
    demo_result ok "TLS: $(grep -m1 '^tls ' "$DEMO_DIR/client.err" | sed 's/^tls //'); 2 lines echoed"
    demo_result ok "timeout: closed after the server was quiet for 0.5 s"
  else
    demo_result FAIL "TLS echo over happy eyeballs (see above)"
  fi
  return $rc
}

demo_http() {
  local body rc=0 pid
  demo_start http_hello --host 127.0.0.1 --port 0 || return 1
  pid=$DEMO_PID
  say "running scio-fetch --verbose http://localhost:$DEMO_PORT/"
  if body=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout 20 build/examples/scio-fetch --verbose --timeout 10 \
      "http://localhost:$DEMO_PORT/" 2>"$DEMO_DIR/fetch.err"); then
    sed 's/^/    /' "$DEMO_DIR/fetch.err"
    say "the page: $body"
    [ "$body" = "Hello, World!" ] || rc=1
  else
    sed 's/^/    /' "$DEMO_DIR/fetch.err"
    say "demo: scio-fetch failed"
    rc=1
  fi
  demo_stop http_hello "$pid" || rc=1
  if [ $rc -eq 0 ]; then
    demo_result ok "scio-fetch from http_hello: \"$body\""
  else
    demo_result FAIL "scio-fetch from http_hello (see above)"
  fi
  return $rc
}

demo_net() {
  local rc=0
  DEMO_DIR=$(mktemp -d) || return 1
  trap demo_cleanup EXIT
  if demo_pki; then
    demo_tls || rc=1
  else
    demo_result FAIL "no certificate, no TLS demo"
    rc=1
  fi
  demo_http || rc=1
  echo
  say "demo summary (all on loopback):"
  printf '%s\n' "${DEMO_RESULTS[@]}"
  return $rc
}

demo() {
  say "running build/examples/demo (tasks, a timeout, the task tree)"
  if build/examples/demo; then
    demo_result ok "core: a nursery of jobs, a 2 s timeout cancelled the slow one, scio_dump_tasks"
  else
    demo_result FAIL "core demo (examples/demo)"
    demo_net || true
    return 1
  fi
  echo
  demo_net
}

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

cmd=${1:-}
case $cmd in
  deps)  deps ;;
  demo)  deps; build; demo ;;
  check) deps; build; check ;;
  bench) deps; build; make -C build bench ;;
  *)     usage ;;
esac
