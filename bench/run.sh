#!/usr/bin/env bash
# Run every benchmark program and print their `bench NAME VALUE UNIT` lines,
# then the ratios of scio's figures to the libevent baseline of the same run.
# Usage: bench/run.sh BUILD_DIR
set -euo pipefail
dir=${1:-.}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$dir/bench/baseline_libevent" | tee -a "$out"
"$dir/bench/bench_core" | tee -a "$out"
# switch_shared: the same switch, linked with libscio.so as users link it.
"$dir/bench/bench_core_shared" | tee -a "$out"
"$dir/bench/bench_sync" | tee -a "$out"
"$dir/bench/bench_channel" | tee -a "$out"
"$dir/bench/bench_pipe" | tee -a "$out"
"$dir/bench/bench_lines" | tee -a "$out"
"$dir/bench/bench_fd" | tee -a "$out"
# to_thread and portal round trips against a pthread + eventfd hand-off
"$dir/bench/bench_thread" | tee -a "$out"
"$dir/bench/bench_process" | tee -a "$out"
# RFC 8305 fallback time in a private network namespace (target: <= 0.260 s)
"$dir/bench/he_fallback" | tee -a "$out"
# DTLS: round trips against plain UDP in the same run, handshakes/s
"$dir/bench/bench_dtls" | tee -a "$out"
awk '
  { v[$2] = $3 }
  END {
    if (v["libevent_dispatch"] > 0 && v["switch"] > 0)
      printf "bench switch_vs_libevent_dispatch %.2f ratio\n", v["switch"] / v["libevent_dispatch"]
    if (v["libevent_timer"] > 0 && v["scope"] > 0)
      printf "bench scope_vs_libevent_timer %.2f ratio\n", v["scope"] / v["libevent_timer"]
    if (v["libevent_new_free"] > 0 && v["spawn"] > 0)
      printf "bench spawn_vs_libevent_new_free %.2f ratio\n", v["spawn"] / v["libevent_new_free"]
    # A channel message or item costs two task switches (each operation
    # yields or blocks once); the hand-written libevent equivalent is two
    # callbacks, each activated by the other.
    if (v["libevent_dispatch"] > 0 && v["chan_pingpong"] > 0)
      printf "bench chan_pingpong_vs_2_libevent_dispatch %.2f ratio\n", v["chan_pingpong"] / (2 * v["libevent_dispatch"])
    if (v["libevent_dispatch"] > 0 && v["chan_throughput"] > 0)
      printf "bench chan_item_vs_2_libevent_dispatch %.2f ratio\n", (1000 / v["chan_throughput"]) / (2 * v["libevent_dispatch"])
  }' "$out"
