#!/usr/bin/env bash
# The TLS benchmarks of issue 10: scio's TLS server (bench/tls_scio_server)
# against a plain OpenSSL one over non-blocking sockets (bench/
# tls_openssl_server), both driven by one OpenSSL client (bench/tls_client),
# server on CPU 0 and client on CPU 1, the same certificate and key.
#
#   tls_bulk, tls_bulk_vs_openssl         TLS 1.3 AES-128-GCM, one
#       connection, MB/s of application data (client: best of 3 transfers)
#   tls_handshakes, tls_handshakes_vs_openssl   full TLS 1.3 handshakes/s
#       (no resumption), INFLIGHT client connections at a time
#   tls_handshake_server_cpu, tls_handshake_capacity   the server's CPU-µs
#       per handshake, and the handshakes/s one core of it would do
#       (1e6 / CPU-µs).  On a 2-core machine the client (about 550 µs of
#       CPU per handshake: it verifies a signature and makes a key share
#       too) costs more than either server (about 370 µs), so the wall-
#       clock rate above is the client's; the capacity is the server's.
# Baseline and scio runs alternate ROUNDS times; each figure is the median
# of its runs and each ratio the median of the per-round ratios (scio /
# OpenSSL: >= 1 means scio is as fast).  Because the machine is shared, the
# servers' CPU time is reported too (per handshake, per MiB received; from
# /proc/PID/task/*/schedstat, so waiting for a CPU does not count), and
# callgrind's instruction count per handshake (the difference between a
# run of N1 and one of N2 handshakes, so start-up cancels out).
#
# Usage: bench/tls.sh BUILD_DIR   (run by `make bench`)
# Environment: SCIO_BENCH_SERVER_CPU (0), SCIO_BENCH_LOAD_CPU (1),
#   SCIO_BENCH_SECONDS (2), SCIO_BENCH_TLS_ROUNDS (5), SCIO_BENCH_TLS_MIB
#   (256), SCIO_BENCH_TLS_INFLIGHT (8), SCIO_BENCH_CALLGRIND (1; 0 skips it),
#   SCIO_BENCH_TLS_ONLY (bulk, handshakes or callgrind: that part alone),
#   SCIO_BENCH_TLS_VERBOSE (set: each run's rate and CPU on stderr).
set -euo pipefail
dir=${1:-.}
b=$dir/bench
tmp=$(mktemp -d)
spid=
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
SCPU=${SCIO_BENCH_SERVER_CPU:-0}
LCPU=${SCIO_BENCH_LOAD_CPU:-1}
SECS=${SCIO_BENCH_SECONDS:-2}
ROUNDS=${SCIO_BENCH_TLS_ROUNDS:-5}
MIB=${SCIO_BENCH_TLS_MIB:-256}
INFLIGHT=${SCIO_BENCH_TLS_INFLIGHT:-8}
ONLY=${SCIO_BENCH_TLS_ONLY:-}
servers="tls_openssl_server tls_scio_server"

# One certificate and key for both servers (ECDSA P-256, as the servers'
# built-in one); without openssl(1) each server makes its own of the
# same kind.
certargs=()
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
     -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 \
     -subj /CN=localhost >/dev/null 2>&1; then
  certargs=("$tmp/cert.pem" "$tmp/key.pem")
fi

start_server() { # NAME [WRAPPER...]
  local name=$1
  shift
  : >"$tmp/srv.out"
  taskset -c "$SCPU" "$@" "$b/$name" 0 "${certargs[@]}" >"$tmp/srv.out" 2>"$tmp/srv.err" &
  spid=$!
  for _ in $(seq 3000); do
    grep -q listening "$tmp/srv.out" && break
    kill -0 "$spid" 2>/dev/null || { cat "$tmp/srv.err" >&2; exit 1; }
    sleep 0.02
  done
  sport=$(awk '/listening/ { print $2 }' "$tmp/srv.out")
}
stop_server() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; spid=; }
client() { taskset -c "$LCPU" "$b/tls_client" "$@"; }
# CPU nanoseconds the server has run so far (all its threads).
cpu_ns() { cat /proc/"$spid"/task/*/schedstat | awk '{ s += $1 } END { print s }'; }

median() { sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) { print "nan"; exit }
  print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A runs # "KIND:SERVER" -> lines "rate cpu"
for kind in bulk handshakes; do
  [ -n "$ONLY" ] && [ "$ONLY" != "$kind" ] && continue
  for round in $(seq "$ROUNDS"); do
    for server in $servers; do
      start_server "$server"
      c0=$(cpu_ns)
      if [ "$kind" = bulk ]; then
        rate=$(client bulk 127.0.0.1 "$sport" "$MIB")
        # server CPU-µs per MiB (three transfers of MIB each)
        cpu=$(awk -v a="$c0" -v z="$(cpu_ns)" -v m="$MIB" 'BEGIN { printf "%.1f", (z - a) / 1e3 / (3 * m) }')
      else
        read -r rate count < <(client handshakes 127.0.0.1 "$sport" "$SECS" "$INFLIGHT")
        cpu=$(awk -v a="$c0" -v z="$(cpu_ns)" -v n="$count" 'BEGIN { printf "%.1f", (z - a) / 1e3 / n }')
      fi
      stop_server
      runs[$kind:$server]+="$rate $cpu"$'\n'
      [ -n "${SCIO_BENCH_TLS_VERBOSE:-}" ] && echo "# round $round $kind $server $rate $cpu" >&2
    done
  done
done

ratio_median() { # KIND FIELD INVERT: median over rounds of scio/openssl
  paste <(printf '%s' "${runs[$1:tls_scio_server]}") <(printf '%s' "${runs[$1:tls_openssl_server]}") |
    awk -v f="$2" -v inv="$3" '{ s = $f; o = $(f + 2); if (s > 0 && o > 0) print inv ? o / s : s / o }' | median
}
field_median() { printf '%s' "${runs[$1:$2]}" | awk -v f="$3" '{ print $f }' | median; }

report() { printf 'bench %s %s %s\n' "$1" "$2" "$3"; }
if [ -n "${runs[bulk:tls_scio_server]:-}" ]; then
  report tls_bulk "$(field_median bulk tls_scio_server 1)" MB/s
  report tls_bulk_openssl "$(field_median bulk tls_openssl_server 1)" MB/s
  report tls_bulk_vs_openssl "$(ratio_median bulk 1 0)" ratio
  report tls_bulk_server_cpu "$(field_median bulk tls_scio_server 2)" us/MiB
  report tls_bulk_server_cpu_openssl "$(field_median bulk tls_openssl_server 2)" us/MiB
  report tls_bulk_cpu_vs_openssl "$(ratio_median bulk 2 1)" ratio
fi
if [ -n "${runs[handshakes:tls_scio_server]:-}" ]; then
  report tls_handshakes "$(field_median handshakes tls_scio_server 1)" /s
  report tls_handshakes_openssl "$(field_median handshakes tls_openssl_server 1)" /s
  report tls_handshakes_vs_openssl "$(ratio_median handshakes 1 0)" ratio
  report tls_handshake_server_cpu "$(field_median handshakes tls_scio_server 2)" us
  report tls_handshake_server_cpu_openssl "$(field_median handshakes tls_openssl_server 2)" us
  report tls_handshake_cpu_vs_openssl "$(ratio_median handshakes 2 1)" ratio
  report tls_handshake_capacity "$(field_median handshakes tls_scio_server 2 | awk '{ printf "%.0f", 1e6 / $1 }')" /s/core
  report tls_handshake_capacity_openssl "$(field_median handshakes tls_openssl_server 2 | awk '{ printf "%.0f", 1e6 / $1 }')" /s/core
fi

# Instructions per handshake under callgrind: (I(N2) - I(N1)) / (N2 - N1).
callgrind_ir() { # SERVER N: total instructions of a server run of N handshakes
  start_server "$1" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    --dump-line=no --compress-strings=no
  client handshakes 127.0.0.1 "$sport" 600 4 "$2" >/dev/null
  stop_server
  awk '/^summary:/ { print $2 }' "$tmp/cg.out"
}
if [ "${SCIO_BENCH_CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null &&
   { [ -z "$ONLY" ] || [ "$ONLY" = callgrind ]; }; then
  N1=${SCIO_BENCH_CALLGRIND_N1:-50} N2=${SCIO_BENCH_CALLGRIND_N2:-250}
  declare -A ir
  for server in $servers; do
    a=$(callgrind_ir "$server" "$N1")
    z=$(callgrind_ir "$server" "$N2")
    ir[$server]=$(awk -v a="$a" -v z="$z" -v n=$((N2 - N1)) 'BEGIN { printf "%.0f", (z - a) / n }')
  done
  report tls_handshake_instr "${ir[tls_scio_server]}" Ir
  report tls_handshake_instr_openssl "${ir[tls_openssl_server]}" Ir
  report tls_handshake_instr_vs_openssl \
    "$(awk -v s="${ir[tls_scio_server]}" -v o="${ir[tls_openssl_server]}" 'BEGIN { printf "%.3f", o / s }')" ratio
fi
report tls_loadavg "$(cut -d' ' -f1 /proc/loadavg)" load
