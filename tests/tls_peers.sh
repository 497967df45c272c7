#!/bin/bash
# scio's TLS against independent implementations, over loopback:
#   scio-fetch (client)      against openssl s_server and gnutls-serv;
#   tls_echo_server (server) against openssl s_client, gnutls-cli and curl;
#   bad certificates rejected by scio-fetch with the reason.
# The PKI is made by ../shared/testing/mkpki.sh.  Every server is started
# here and stopped by PID.  Run from the build directory.
set -u
shared=${SCIO_SHARED_DIR:-${srcdir:-.}/../shared}
mkpki=$shared/testing/mkpki.sh
for tool in openssl gnutls-serv gnutls-cli curl; do
  command -v $tool >/dev/null || { echo "tls_peers: $tool is not installed (build.sh installs it)"; exit 1; }
done
[ -r "$mkpki" ] || { echo "tls_peers: $mkpki not found"; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
sh "$mkpki" "$dir" >/dev/null 2>&1 || { echo "tls_peers: mkpki.sh failed"; exit 1; }
fail=0 pass=0
# c-ares 1.18.1 (Debian 12) leaks the name when it answers from /etc/hosts
# (c-ares issue 439, fixed in 1.19): scio-fetch resolving "localhost" would
# fail an ASan build's leak check for that alone.
fetch_env=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# --- scio-fetch against openssl s_server and gnutls-serv -------------------
fetch_from() { # NAME CERT KEY EXPECT-EXIT EXPECT-TEXT [FETCH-ARGS...]
  local name=$1 cert=$2 key=$3 want=$4 text=$5; shift 5
  local p; p=$(port)
  # -naccept 2: the readiness probe is one connection, scio-fetch the other.
  openssl s_server -accept $p -cert "$cert" -key "$key" -www -naccept 2 >/dev/null 2>&1 &
  pids+=($!)
  wait_port $p || { bad "$name: s_server did not start"; return; }
  out=$(timeout 20 "${fetch_env[@]}" ./examples/scio-fetch "$@" https://localhost:$p/ 2>&1)
  rc=$?
  if [ $rc -eq "$want" ] && printf '%s' "$out" | grep -q "$text"; then ok "$name"; else bad "$name (exit $rc): $out"; fi
}
fetch_from "scio-fetch <- s_server" "$dir/server.pem" "$dir/server.key" 0 "s_server" --cacert "$dir/ca.pem"
fetch_from "wrong host rejected" "$dir/wronghost.pem" "$dir/wronghost.key" 3 "hostname mismatch" --cacert "$dir/ca.pem"
fetch_from "expired rejected" "$dir/expired.pem" "$dir/expired.key" 3 "certificate has expired" --cacert "$dir/ca.pem"
fetch_from "unknown CA rejected" "$dir/server.pem" "$dir/server.key" 3 "unable to get local issuer"

p=$(port)
gnutls-serv --http -p $p --x509certfile "$dir/server.pem" --x509keyfile "$dir/server.key" >/dev/null 2>&1 &
pids+=($!)
if wait_port $p; then
  out=$(timeout 20 "${fetch_env[@]}" ./examples/scio-fetch --cacert "$dir/ca.pem" --verbose https://localhost:$p/ 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && printf '%s' "$out" | grep -qi "gnutls"; then ok "scio-fetch <- gnutls-serv"; else bad "scio-fetch <- gnutls-serv (exit $rc): $(printf '%s' "$out" | tail -3)"; fi
else
  bad "gnutls-serv did not start"
fi

# --- tls_echo_server against s_client, gnutls-cli, curl ----------------------
p=$(port)
./examples/tls_echo_server --cert "$dir/server.pem" --key "$dir/server.key" --host 127.0.0.1 --port $p >"$dir/srv.log" 2>&1 &
srv=$!
pids+=($srv)
wait_port $p || bad "tls_echo_server did not start"
for v in tls1_3 tls1_2; do
  out=$( (printf 'ping-%s\n' $v; sleep 1) | timeout 10 openssl s_client -quiet -$v -connect 127.0.0.1:$p -servername localhost -CAfile "$dir/ca.pem" -verify_return_error 2>/dev/null)
  if printf '%s' "$out" | grep -q "ping-$v"; then ok "s_client ($v) -> tls_echo_server"; else bad "s_client ($v): '$out'"; fi
done
out=$( (printf 'ping-gnutls\n'; sleep 1) | timeout 10 gnutls-cli --x509cafile "$dir/ca.pem" -p $p localhost 2>/dev/null)
if printf '%s' "$out" | grep -q "ping-gnutls"; then ok "gnutls-cli -> tls_echo_server"; else bad "gnutls-cli: '$(printf '%s' "$out" | tail -2)'"; fi
# The echo server returns curl's request as an HTTP/0.9 body (and never
# closes, so curl stops at --max-time): the request line proves the round trip.
out=$(curl -s --http0.9 --max-time 2 --cacert "$dir/ca.pem" https://localhost:$p/scio-check 2>&1)
if printf '%s' "$out" | grep -q "GET /scio-check HTTP/1.1"; then ok "curl -> tls_echo_server"; else bad "curl: '$out'"; fi
kill -INT $srv
wait $srv
rc=$?
if [ $rc -eq 0 ]; then ok "tls_echo_server exits 0 on SIGINT"; else bad "tls_echo_server exit $rc: $(tail -3 "$dir/srv.log")"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
