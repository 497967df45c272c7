#!/bin/sh
# The demo end to end, under the autojump clock so it takes no real time:
# it must print the task tree and finish with the slow job cancelled.
set -eu
out=$(./examples/demo --fast)
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -q 'task slow'
printf '%s\n' "$out" | grep -q 'nursery'
printf '%s\n' "$out" | grep -q 'timeout cancelled the slow job'
