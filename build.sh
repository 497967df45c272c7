#!/usr/bin/env bash
# build.sh -- build, test and benchmark scio on Debian (12, bookworm).
#
#   ./build.sh deps    install the Debian packages that are missing, nothing else
#   ./build.sh demo    deps, build (build/), run examples/demo, then the echo
#                      server and a happy-eyeballs client on loopback
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
# The network half of the demo: echo_server on 127.0.0.1 (port 0), then
# tcp_client --verbose localhost sends it one line and shows the attempts
# (where localhost also resolves to ::1, that attempt is refused and happy
# eyeballs falls back to 127.0.0.1) and the echo; SIGINT stops the server,
# which must exit 0.  Every wait is bounded, and a server left running on
# failure is killed by its PID.
demo_net() {
  local dir pid port line echoed i rc=0
  dir=$(mktemp -d) || return 1
  # 127.0.0.1 only, so that the client's ::1 attempt is refused and the
  # demo shows happy eyeballs falling back to IPv4.
  build/examples/echo_server --host 127.0.0.1 --port 0 \
    >"$dir/server.out" 2>"$dir/server.err" &
  pid=$!
  for ((i = 0; i < 100; i++)); do
    grep -q listening "$dir/server.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  line=$(grep -m1 listening "$dir/server.out" || true)
  port=${line##*:}
  if [[ ! $port =~ ^[0-9]+$ ]]; then
    cat "$dir/server.err" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    say "demo: echo_server did not report a port"
    return 1
  fi
  say "started echo_server (pid $pid): ${line#echo_server: }"
  say "running build/examples/tcp_client --verbose localhost $port"
  if echoed=$(echo "hello over scio, echoed" |
    timeout 10 build/examples/tcp_client --verbose localhost "$port" \
      2>"$dir/client.err"); then
    cat "$dir/client.err"
    say "echoed back: $echoed"
    [ "$echoed" = "hello over scio, echoed" ] || rc=1
  else
    cat "$dir/client.err"
    say "demo: tcp_client failed"
    rc=1
  fi
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "demo: echo_server ignored SIGINT, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rc=1
  fi
  local src=0
  wait "$pid" || src=$?
  cat "$dir/server.err"
  rm -rf "$dir"
  if [ "$src" -ne 0 ]; then
    say "demo: echo_server exited $src, expected 0"
    rc=1
  else
    say "echo_server stopped on SIGINT, exit status 0"
  fi
  return $rc
}

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

cmd=${1:-}
case $cmd in
  deps)  deps ;;
  demo)  deps; build; say "running build/examples/demo"; build/examples/demo
         demo_net ;;
  check) deps; build; check ;;
  bench) deps; build; make -C build bench ;;
  *)     usage ;;
esac
