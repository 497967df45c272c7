#!/bin/sh
# Replay every fuzz corpus through the replay programs (fuzz_replay_main.c
# linked with each target), so that `make check' runs them with any compiler.
# Run from the build directory; automake sets $srcdir.
set -e
srcdir=${srcdir:-.}
for t in receive_until utf8 tls_server; do
  ./fuzz/replay_$t "$srcdir"/fuzz/corpus/$t/*
done
