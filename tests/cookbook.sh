#!/bin/sh
# The cookbook's programs (docs/cookbook/*.c), each run and checked for what
# its recipe promises.  Run from the build directory.
set -eu
run() { # NAME EXPECTED-TEXT [ARGS...]
  name=$1 want=$2
  shift 2
  out=$(./docs/cookbook/"$name" "$@") || {
    echo "cookbook: $name $* failed"
    printf '%s\n' "$out"
    exit 1
  }
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -q "$want" || {
    echo "cookbook: $name $*: no \"$want\" in its output"
    exit 1
  }
}
run pipeline 'sum of squares 1..100 = 338350'
run pipeline 'ETIMEDOUT after 1.0 s' --slow
run first_responder 'us-east after 0.045 s; 2 others cancelled'
run job_runner '20 done\|17 done, 3 failed'
run line_protocol 'concurrency  -> 11'
run readiness 'server handled 3 requests'
