#!/usr/bin/env bash
# examples/chat end to end, with three python3 clients on loopback:
#   - alice, bob and carol join; bob's lines reach alice and carol;
#   - alice stops reading (and has a small receive buffer): while bob sends
#     a few thousand lines, carol gets every one of them in order, alice's
#     queue fills and she is dropped, bob and carol are told, and the room
#     goes on without her (bob and carol still talk);
#   - the server exits 0 on SIGTERM, telling the clients.
# Every wait is bounded, and the server is stopped by its PID.
set -eu
command -v python3 >/dev/null || { echo "chat: python3 is not installed (build.sh installs it)"; exit 1; }
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

./examples/chat --host 127.0.0.1 --port 0 --queue 16 >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 200); do
  grep -q listening "$dir/out" && break
  sleep 0.05
done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/out" | head -n1)
test -n "$port"

cat >"$dir/clients.py" <<'EOF'
import socket, sys, threading, queue, time

port = int(sys.argv[1])
DEADLINE = time.monotonic() + 60

class Client:
    def __init__(self, small_rcvbuf=False, read=True):
        self.s = socket.socket()
        if small_rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.s.connect(("127.0.0.1", port))
        self.lines = queue.Queue()
        if read:
            threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        f = self.s.makefile("rb")
        for raw in f:
            self.lines.put(raw.decode().rstrip("\n"))
        self.lines.put(None)  # EOF

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def expect(self, want, skip_others=True):
        """Lines until one equals (or, for a str ending in '*', starts
        with) want; the others are skipped when skip_others."""
        while True:
            left = DEADLINE - time.monotonic()
            if left <= 0:
                sys.exit("timed out waiting for %r" % want)
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                sys.exit("timed out waiting for %r" % want)
            if line is None:
                sys.exit("EOF while waiting for %r" % want)
            if line == want or (want.endswith("*") and line.startswith(want[:-1])):
                return line
            if not skip_others:
                sys.exit("expected %r, got %r" % (want, line))

alice = Client()
alice.expect("* welcome, user1: 0 others are here; /nick NAME, /quit")
alice.send("/nick alice")
alice.expect("* user1 is now alice")
bob = Client()
bob.expect("* welcome, user2: 1 other is here; /nick NAME, /quit")
bob.send("/nick bob")
bob.expect("* user2 is now bob")
carol = Client()
carol.expect("* welcome, user3: 2 others are here; /nick NAME, /quit")
carol.send("/nick carol")
carol.expect("* user3 is now carol")
bob.expect("* user3 is now carol")

bob.send("hello room")
carol.expect("bob: hello room", skip_others=False)
alice.expect("bob: hello room")
print("chat: broadcast reaches the others")

# The slow client: a small receive buffer, and it never reads.
slow = Client(small_rcvbuf=True, read=False)
slow.send("/nick slow")
carol.expect("* user4 is now slow")
bob.expect("* user4 is now slow")
alice.expect("* user4 is now slow")

# bob floods in batches; carol (and alice) must see each line, in order,
# while slow falls behind and is dropped.
DROPPED = "* slow was dropped (too slow)"
pad = "x" * 900
sent = 0
carol_saw_drop = bob_saw_drop = False
while not (carol_saw_drop and bob_saw_drop):
    if sent >= 20000:
        sys.exit("slow was never dropped after %d lines" % sent)
    for i in range(sent, sent + 100):
        bob.send("%d %s" % (i, pad))
    for i in range(sent, sent + 100):
        for reader in (carol, alice):
            while True:
                line = reader.expect("*")
                if line == DROPPED:
                    carol_saw_drop |= reader is carol
                    continue
                break
            if line != "bob: %d %s" % (i, pad):
                sys.exit("expected line %d, got %r" % (i, line[:40]))
    sent += 100
    while not bob_saw_drop and not bob.lines.empty():
        bob_saw_drop = bob.lines.get_nowait() == DROPPED
    if bob_saw_drop and not carol_saw_drop:
        carol.expect(DROPPED)
        carol_saw_drop = True
print("chat: slow dropped (bob had sent %d lines); alice and carol got every line in order" % sent)

# The room goes on.
bob.send("still here")
carol.expect("bob: still here", skip_others=False)
carol.send("me too")
bob.expect("carol: me too", skip_others=False)
alice.expect("carol: me too")
print("chat: the others go on talking after the drop")

# slow's connection is closed by the server: reading it all ends in EOF.
slow.s.settimeout(max(1, DEADLINE - time.monotonic()))
total = 0
while True:
    try:
        data = slow.s.recv(65536)
    except (ConnectionResetError, socket.timeout) as e:
        if isinstance(e, socket.timeout):
            sys.exit("slow: no EOF")
        break
    if not data:
        break
    total += len(data)
print("chat: slow's connection was closed (%d bytes were still on their way)" % total)

# Bad input: a name with a space is refused; a line over 4096 bytes ends
# the connection with a message.
rude = Client()
rude.expect("* welcome, user5*")
rude.send("/nick two words")
rude.expect("* names are 1 to 31 visible characters", skip_others=False)
rude.send("y" * 5000)
rude.expect("* line too long", skip_others=False)
if rude.lines.get(timeout=max(1, DEADLINE - time.monotonic())) is not None:
    sys.exit("rude: expected EOF after the long line")
carol.expect("* user5 left")
print("chat: a bad name is refused; an over-long line ends the connection")

# /quit is announced.
carol.send("/quit")
bob.expect("* carol left")
print("chat: /quit announced")
bob.s.shutdown(socket.SHUT_WR)
alice.expect("* bob left")
print("CLIENTS OK")
# alice stays connected for the shutdown test.
sys.stdout.flush()
input()  # wait for the shell to signal the server
alice.expect("* the server is shutting down")
line = alice.lines.get(timeout=max(1, DEADLINE - time.monotonic()))
if line is not None:
    sys.exit("alice: expected EOF after the shutdown notice, got %r" % line)
print("chat: shutdown told alice and closed her connection")
EOF

mkfifo "$dir/go"
timeout 90 python3 -u "$dir/clients.py" "$port" <"$dir/go" >"$dir/py.out" 2>&1 &
py=$!
exec 5>"$dir/go"
ok=
for _ in $(seq 1200); do
  if grep -q "CLIENTS OK" "$dir/py.out"; then ok=1; break; fi
  kill -0 "$py" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$ok" ]; then
  cat "$dir/py.out"; echo "---- server:"; cat "$dir/err"
  exit 1
fi
kill -TERM "$pid"
echo >&5
exec 5>&-
prc=0
wait "$py" || prc=$?
cat "$dir/py.out"
src=0
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
wait "$pid" || src=$?
pid=
echo "---- server:"
cat "$dir/err"
test "$prc" -eq 0
test "$src" -eq 0
grep -q "dropping slow" "$dir/err"
echo "chat: exit 0 on SIGTERM"
