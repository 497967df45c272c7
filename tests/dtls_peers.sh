#!/bin/bash
# scio's DTLS against OpenSSL's command-line peers, over loopback:
#   tests/dtls_tool client  against openssl s_server -dtls (both ways);
#   openssl s_client -dtls  against tests/dtls_tool server (echo), also
#                           with a small MTU (fragmented handshake);
#   a wrong host name and an unknown CA are rejected with the reason.
# The PKI is made by ../shared/testing/mkpki.sh.  Every peer is started
# here and stopped by PID.  Run from the build directory.
set -u
shared=${SCIO_SHARED_DIR:-${srcdir:-.}/../shared}
mkpki=$shared/testing/mkpki.sh
command -v openssl >/dev/null || { echo "dtls_peers: openssl is not installed"; exit 1; }
[ -r "$mkpki" ] || { echo "dtls_peers: $mkpki not found"; exit 1; }
tool=./tests/dtls_tool
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
sh "$mkpki" "$dir" >/dev/null 2>&1 || { echo "dtls_peers: mkpki.sh failed"; exit 1; }
fail=0 pass=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# A free UDP port on loopback (a race with other programs is possible but
# harmless: the peer then fails to bind and the check fails loudly).
port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Wait until FILE contains TEXT (5 s at most).
wait_for() { for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# --- dtls_tool client -> openssl s_server -dtls --------------------------------
# s_server sends its stdin lines to the client once connected, and prints
# what it receives.  -naccept 1: it exits after this one client.
s_server() { # CERT KEY [extra s_server args]
  local cert=$1 key=$2; shift 2
  p=$(port)
  (printf 'from-s_server\n'; sleep 8) |
    openssl s_server -dtls1_2 -accept 127.0.0.1:$p -cert "$cert" -key "$key" -naccept 1 "$@" >"$dir/s_server.log" 2>&1 &
  srv=$!
  pids+=($srv)
  wait_for "$dir/s_server.log" ACCEPT || bad "s_server did not start: $(cat "$dir/s_server.log")"
}

s_server "$dir/server.pem" "$dir/server.key"
out=$(timeout 20 $tool client --port $p --cacert "$dir/ca.pem" --send hello-from-scio --expect 1 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "connected DTLSv1.2" &&
   printf '%s' "$out" | grep -q "received: from-s_server"; then
  ok "dtls_tool client <-> s_server: handshake, datagram from s_server"
else
  bad "dtls_tool client <-> s_server (exit $rc): $out"
fi
wait_for "$dir/s_server.log" hello-from-scio && ok "s_server received the client's datagram" ||
  bad "s_server did not print hello-from-scio: $(tail -5 "$dir/s_server.log")"
kill $srv 2>/dev/null

# Small MTU on both sides: the certificate flight is fragmented.
s_server "$dir/server.pem" "$dir/server.key" -mtu 400
out=$(timeout 20 $tool client --port $p --cacert "$dir/ca.pem" --mtu 300 --send small-mtu --expect 1 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "received: from-s_server"; then
  ok "dtls_tool client (mtu 300) <-> s_server (mtu 400)"
else
  bad "small MTU (exit $rc): $out"
fi
kill $srv 2>/dev/null

# Bad certificates are rejected, with the reason.
s_server "$dir/wronghost.pem" "$dir/wronghost.key"
out=$(timeout 20 $tool client --port $p --cacert "$dir/ca.pem" --timeout 10 2>&1)
rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "hostname mismatch"; then ok "wrong host rejected"; else bad "wrong host (exit $rc): $out"; fi
kill $srv 2>/dev/null
s_server "$dir/server.pem" "$dir/server.key"
out=$(timeout 20 $tool client --port $p --timeout 10 2>&1)
rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "unable to get local issuer"; then ok "unknown CA rejected"; else bad "unknown CA (exit $rc): $out"; fi
kill $srv 2>/dev/null

# --- openssl s_client -dtls -> dtls_tool server (echo) ----------------------------
server() { # [extra dtls_tool args]
  $tool server --cert "$dir/server.pem" --key "$dir/server.key" --port 0 --timeout 30 "$@" >"$dir/srv.log" 2>&1 &
  srv=$!
  pids+=($srv)
  wait_for "$dir/srv.log" listening || bad "dtls_tool server did not start: $(cat "$dir/srv.log")"
  p=$(sed -n 's/^listening //p' "$dir/srv.log")
}

server --count 1
out=$( (printf 'ping-dtls\n'; sleep 3) | timeout 15 openssl s_client -dtls1_2 -connect 127.0.0.1:$p -servername localhost \
        -CAfile "$dir/ca.pem" -verify_return_error -verify_hostname localhost -brief 2>&1)
if printf '%s' "$out" | grep -q "^ping-dtls"; then ok "s_client -dtls -> dtls_tool server: echo"; else bad "s_client -> dtls_tool server: '$out'"; fi
# s_client sends close_notify when its stdin ends: the server counts it
# and exits 0.
wait $srv
rc=$?
if [ $rc -eq 0 ] && grep -q "echo: ping-dtls" "$dir/srv.log"; then ok "dtls_tool server saw close_notify, exit 0"; else bad "dtls_tool server exit $rc: $(tail -3 "$dir/srv.log")"; fi

server --count 1
out=$( (printf 'ping-small-mtu\n'; sleep 3) | timeout 15 openssl s_client -dtls1_2 -mtu 400 -connect 127.0.0.1:$p -servername localhost \
        -CAfile "$dir/ca.pem" -verify_return_error -brief 2>&1)
if printf '%s' "$out" | grep -q "^ping-small-mtu"; then ok "s_client -dtls -mtu 400 -> dtls_tool server"; else bad "s_client small MTU: '$out'"; fi
wait $srv

# --- dtls_tool client -> dtls_tool server ------------------------------------------
server --count 1
out=$(timeout 20 $tool client --port $p --cacert "$dir/ca.pem" --send one --send two --expect 2 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "received: two"; then ok "dtls_tool client <-> dtls_tool server"; else bad "scio <-> scio (exit $rc): $out"; fi
wait $srv

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
