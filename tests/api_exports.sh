#!/bin/sh
# Compare the public API with what a shared libscio exports, both ways:
# every function (or object) declared SCIO_API in the given headers must be
# a defined dynamic symbol of the library, and every scio_ symbol the
# library exports must be declared SCIO_API in one of them.  The first
# catches a declared function whose definition went missing (the blocking
# calls' entry points are emitted by a macro, resume.h); the second, an
# export nobody documented.
#
# Usage: api_exports.sh LIBSCIO.so HEADER...
#   HEADER is a name as included (scio/core.h).  The environment gives CC,
#   NM, and SCIO_CFLAGS (to find the installed headers).  Run by
#   `make installcheck' (Makefile.am).
#
# Each header is preprocessed on its own with SCIO_API defined as a marker
# (the headers define it only #ifndef), so macros and line breaks cannot
# hide a declaration.  A declared name is the first scio_ identifier
# followed by '(' after the marker (after string literals are removed), or,
# for an object, by '[', '=' or the end of the declaration.
set -eu

so=$1
shift
: "${CC:=cc}" "${NM:=nm}" "${SCIO_CFLAGS:=}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mark=SCIO_API_DECLARED_HERE

: >"$tmp/declared"
for h in "$@"; do
  printf '#include <%s>\n' "$h" >"$tmp/hdr.c"
  # shellcheck disable=SC2086  # SCIO_CFLAGS is a list of flags
  $CC -E -P -D"SCIO_API=$mark" $SCIO_CFLAGS "$tmp/hdr.c" >"$tmp/hdr.i"
  tr '\n' ' ' <"$tmp/hdr.i" | tr ';{}' '\n\n\n' | awk -v mark="$mark" -v h="$h" '
    index($0, mark) {
      s = substr($0, index($0, mark) + length(mark))
      gsub(/"([^"\\]|\\.)*"/, "", s)
      if (match(s, /scio_[A-Za-z0-9_]*[ \t]*\(/) ||
          match(s, /scio_[A-Za-z0-9_]*[ \t]*(\[|=|$)/)) {
        name = substr(s, RSTART, RLENGTH)
        sub(/[ \t]*[[(=]?$/, "", name)
        print name
      } else {
        printf "api_exports.sh: %s: cannot read the name in: %s\n", h, s > "/dev/stderr"
        exit 1
      }
    }' >>"$tmp/declared"
done
sort -u "$tmp/declared" >"$tmp/declared.sorted"

$NM -D --defined-only "$so" | awk 'NF >= 3 && $NF ~ /^scio_/ { print $NF }' |
  sed 's/@.*//' | sort -u >"$tmp/exported"

rc=0
missing=$(comm -23 "$tmp/declared.sorted" "$tmp/exported")
extra=$(comm -13 "$tmp/declared.sorted" "$tmp/exported")
if test -n "$missing"; then
  echo "api_exports.sh: declared SCIO_API but not exported by $so:" $missing >&2
  rc=1
fi
if test -n "$extra"; then
  echo "api_exports.sh: exported by $so but declared SCIO_API in no header:" $extra >&2
  rc=1
fi
if test $rc -eq 0; then
  echo "api_exports.sh: the $(wc -l <"$tmp/exported") scio_ symbols $so exports are exactly those declared SCIO_API"
fi
exit $rc
