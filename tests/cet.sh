#!/bin/sh
# The library built with -fcf-protection (CET), as several distributions'
# compilers build everything by default.  Run by `make check' on x86_64
# with the assembly context switch; skipped (exit 77) with a message where
# that does not apply or the compiler lacks the flag.
#
# What must hold (resume.h, ctx_x86_64.S, README "CET"):
#   - every object of the library is marked IBT-compatible, so the linker
#     keeps the library's IBT marking (an object without the note, such as
#     a resume_x86_64.S that forgot it, drops it for the whole library);
#   - the library is never marked SHSTK-compatible: a task switch changes
#     stacks without call and return;
#   - the resume trampoline is left out (its indirect jump lands on return
#     addresses, which carry no endbr64), the blocking calls are plain C,
#     and they still work: tests/cet_smoke.c, over channels and checkpoints.
#
# The library is rebuilt here from the same source list as libscio (passed
# in tests/cet_check.env, written by the Makefile), unoptimised enough to
# stay cheap: about 4 s of CPU.
set -eu

. ./tests/cet_check.env
skip() {
  echo "cet.sh: SKIP: $*"
  exit 77
}

test "$CTX_X86_64" = yes ||
  skip "CET applies to the x86_64 assembly context switch, not built here"
d=tests/cet.tmp
rm -rf "$d"
mkdir -p "$d"
trap 'rm -rf "$d"' EXIT

printf 'int main(void) { return 0; }\n' >"$d/probe.c"
$CC -fcf-protection -o "$d/probe" "$d/probe.c" 2>/dev/null ||
  skip "$CC does not accept -fcf-protection"
printf '#if !defined(__CET__) || !(__CET__ & 1)\n#error no IBT\n#endif\n' >"$d/cet.c"
$CC -fcf-protection -c -o "$d/cet.o" "$d/cet.c" 2>/dev/null ||
  skip "$CC -fcf-protection does not define __CET__ with IBT"
report=
if $CC -fcf-protection -o "$d/probe" "$d/probe.c" -Wl,-z,cet-report=warning 2>/dev/null; then
  report=-Wl,-z,cet-report=warning
fi

CF="-fcf-protection -O1 -fPIC -fvisibility=hidden -include $CONFIG_H -I$TOP_SRCDIR/include -I$TOP_SRCDIR/src $DEPS_CFLAGS"
objs=
for s in $SRCS; do
  case $s in
  *.c | *.S) ;;
  *) continue ;;
  esac
  o=$d/$(echo "$s" | tr / _).o
  # shellcheck disable=SC2086  # CF is a list of flags
  $CC $CF -c -o "$o" "$TOP_SRCDIR/$s"
  objs="$objs $o"
done
# shellcheck disable=SC2086
$CC -fcf-protection -shared -o "$d/libscio.so" $objs $DEPS_LIBS $LIBS $report 2>"$d/ld.err" || {
  cat "$d/ld.err" >&2
  exit 1
}

fail=0
# The linker names each input that lacks a property; the C runtime's own
# startup files may (Debian 12's do), ours may not lack IBT.
if test -n "$report"; then
  if grep "$d/.*missing IBT" "$d/ld.err" >&2; then
    echo "cet.sh: FAIL: objects of the library above are not marked IBT-compatible" >&2
    fail=1
  fi
else
  echo "cet.sh: the linker has no -z cet-report: object notes not checked"
fi
notes=$(readelf -n "$d/libscio.so")
if printf '%s\n' "$notes" | grep 'x86 feature:.*SHSTK' >/dev/null; then
  echo "cet.sh: FAIL: libscio.so claims SHSTK, which task switches break" >&2
  fail=1
fi
# Whether the toolchain can mark a shared library at all: it cannot when
# its startup files carry no IBT note.
printf 'int f(void) { return 1; }\n' >"$d/f.c"
$CC -fcf-protection -shared -fPIC -o "$d/libf.so" "$d/f.c"
if readelf -n "$d/libf.so" | grep 'x86 feature:.*IBT' >/dev/null; then
  if printf '%s\n' "$notes" | grep 'x86 feature:.*IBT' >/dev/null; then
    echo "cet.sh: libscio.so is marked IBT (and not SHSTK)"
  else
    echo "cet.sh: FAIL: libscio.so lost the IBT marking that a trivial library keeps" >&2
    fail=1
  fi
else
  echo "cet.sh: this toolchain marks no shared library IBT (its startup files lack the note): object notes checked instead"
fi
if nm "$d/libscio.so" | grep -E ' (scio__resume_tramp|scio__rs_)' >&2; then
  echo "cet.sh: FAIL: the resume trampoline is built under CET" >&2
  fail=1
fi
for f in scio_checkpoint scio_cancel_shielded_checkpoint scio_tx_send scio_rx_receive; do
  nm -D --defined-only "$d/libscio.so" | grep " T $f\$" >/dev/null || {
    echo "cet.sh: FAIL: libscio.so does not export $f" >&2
    fail=1
  }
done

# shellcheck disable=SC2086
$CC -fcf-protection -O1 -I"$TOP_SRCDIR/include" -o "$d/cet_smoke" \
  "$TOP_SRCDIR/tests/cet_smoke.c" -L"$d" -lscio -Wl,-rpath,"$PWD/$d" $DEPS_LIBS $LIBS
"$d/cet_smoke" || fail=1
exit $fail
