#!/usr/bin/env bash
# The context switch and the stack pool on aarch64, under qemu-user: builds
# tests/ctx_selftest.c with the cross compiler, once with our assembly and
# once with the ucontext fallback, and runs both (the million-stack cases
# are skipped: too slow under emulation).  Not part of `make check`; run it
# from the top of the tree: tests/cross/aarch64.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src="src/core/ctx.c src/core/ctx_ucontext.c src/core/stack.c tests/ctx_selftest.c"
flags="-std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Isrc -Isrc/core"
aarch64-linux-gnu-gcc $flags $src src/core/ctx_aarch64.S -lpthread -o "$out/asm"
aarch64-linux-gnu-gcc $flags -DSCIO_CTX_UCONTEXT $src -lpthread -o "$out/uc"
for t in asm uc; do
  echo "== aarch64 ($t)"
  SCIO_SELFTEST_QUICK=1 SCIO_SELFTEST_EMULATED=1 qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/$t"
done
echo "aarch64: 2 passed, 0 failed"
