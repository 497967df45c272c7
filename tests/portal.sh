#!/usr/bin/env bash
# examples/portal end to end: a synchronous program that does a timed wait
# and a TCP echo round trip on loopback through a blocking portal, and
# stops it; it must print "portal: ok" and exit 0.
set -eu
out=$(timeout 60 ./examples/portal)
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -q '^portal: echoed "hello, portal"$'
printf '%s\n' "$out" | grep -q '^portal: ok$'
