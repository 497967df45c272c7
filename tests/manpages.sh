#!/bin/sh
# The reference documentation test (`make check'; Makefile.am, "Man pages").
#
# 1. The header comments: every function declared SCIO_API in a public
#    header, and every header-only one (static inline scio_..., as in
#    <scio/testing.h>), has a comment that follows the rules of docs/internals.md
#    ("Header comments"): it is directly above the declaration (or above the
#    group of declarations and macros it belongs to), says whether the call
#    is a checkpoint, names every error (SCIO_E...) or says "Never fails"
#    (void functions may say "Returns nothing"), and, when the function
#    hands out or takes over a pointer, says who owns it.  Each header's
#    first comment says that other pointer arguments are borrowed.
# 2. The exports: every scio_ function libscio.so exports (nm -D) is declared
#    SCIO_API in a header (and so has a comment, and a page).
# 3. The man pages (when configure built them): Doxygen gave no warning;
#    every header has its page, scio.3 (the overview and index) exists, and
#    every declared or exported function, static inline ones included, has
#    a page, which man(1) finds;
#    every page renders without a roff warning (groff, where installed).
#
# Failures name the header, the line, the function and what is missing.
# Environment: srcdir (set by the test harness; default .), NM (default nm).
set -u

srcdir=${srcdir:-.}
NM=${NM:-nm}
man3=docs/doxygen/man/man3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

headers=$(ls "$srcdir"/include/scio.h "$srcdir"/include/scio/*.h)

# --- 1. the comments --------------------------------------------------------
# One awk run per header.  It appends the declared names to the names file
# (SCIO_API functions) or the inlines file (static inline functions, which
# are not exported) and prints failures to stdout.
for h in $headers; do
  rel=${h#"$srcdir"/}
  awk -v file="$rel" -v names="$tmp/names" -v inlines="$tmp/inlines" '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    function strip(line) {
      sub(/^[ \t]*\/\*+[ \t]?/, "", line)
      sub(/[ \t]*\*+\/[ \t]*$/, "", line)
      sub(/^[ \t]*\*[ \t]?/, "", line)
      return line
    }
    function bad(line, name, what) {
      printf "%s:%d: %s: %s\n", file, line, name, what
      nbad++
    }
    # The rules of docs/internals.md, "Header comments".
    function check(line, decl, doc,    name, ret, params, ptr_out, takes) {
      if (!match(decl, /scio_[A-Za-z0-9_]*[ \t]*\(/)) {
        bad(line, "?", "cannot read the function name in: " decl)
        return
      }
      name = substr(decl, RSTART, RLENGTH)
      sub(/[ \t]*\($/, "", name)
      ret = trim(substr(decl, 1, RSTART - 1))
      sub(/^SCIO_API[ \t]*/, "", ret)
      sub(/^static[ \t]+inline[ \t]*/, "", ret)
      params = substr(decl, RSTART + RLENGTH)
      sub(/\{.*/, "", params)
      print name >> (decl ~ /^static/ ? inlines : names)
      if (params ~ /\*/) takes_ptr = 1
      if (doc == "") {
        bad(line, name, "no comment directly above the declaration (or its group)")
        return
      }
      if (doc !~ /(^|[^A-Za-z])(A|Not a|not a|Not|Never a|never a|is a|is not a|are|are not) checkpoints?([^A-Za-z_]|$)/ &&
          doc !~ /[(:;,] *a checkpoint([^A-Za-z_]|$)/ && doc !~ /(^|[.] +)Checkpoints[.;:]/)
        bad(line, name, "the comment does not say whether it is a checkpoint (\"A checkpoint.\" or \"Not a checkpoint.\")")
      if (doc !~ /SCIO_E[A-Z0-9_]+/ && doc !~ /[Nn]ever fails/ &&
          !(ret == "void" && doc ~ /[Rr]eturns nothing/))
        bad(line, name, "the comment names no error (SCIO_E...) and does not say \"Never fails\"" \
            (ret == "void" ? " or \"Returns nothing\"" : ""))
      # Who owns what: a pointer handed out (returned, or through an out
      # parameter), or an object made, wrapped, taken over or released.
      ptr_out = (ret ~ /\*/) || (params ~ /\*\*/)
      takes = (name ~ /_(open|init|wrap|unwrap|close|destroy|free[a-z]*|from_fd)$/) || (name ~ /_open_/)
      if ((ptr_out || takes) && doc !~ OWN)
        bad(line, name, "the comment does not say who owns " \
            (ptr_out ? "the pointer it hands out" : "what it makes, takes over or releases") \
            " (one of: owns, owned, the caller\047s, borrowed, copies, keeps, valid until/while, outlive, frees, releases)")
    }
    BEGIN {
      OWN = "([Oo]wn(s|ed|er|ership)?|[Cc]aller.s|[Bb]orrow(s|ed)?|[Cc]op(y|ies|ied)|[Kk]eeps|[Kk]ept|[Rr]etain(s|ed)?|[Vv]alid (until|while|as long)|[Oo]utlives?|[Ff]ree(s|d)|[Rr]eleases?d?)"
      top = ""; ntop = 0; doc = ""; cdoc = ""; group = 0; incomment = 0
    }
    incomment {
      cdoc = cdoc " " strip($0)
      if ($0 ~ /\*\//) { incomment = 0; if (!ntop) { top = cdoc; ntop = 1; cdoc = "" } }
      next
    }
    /^[ \t]*\/\*/ && !/\*\/.*[^ \t]/ {
      cdoc = strip($0); group = 0
      if ($0 !~ /\*\//) incomment = 1
      else if (!ntop) { top = cdoc; ntop = 1; cdoc = "" }
      next
    }
    # A declaration ends at its ";", a static inline definition at "{".
    indecl {
      decl = decl " " $0
      if ($0 ~ /[;{]/) { indecl = 0; check(dline, decl, doc) }
      next
    }
    # A header-only function must have its name on its first line (the
    # man pages filter and the link pages read it there).
    /^static[ \t]+inline[ \t]/ && !/[^A-Za-z0-9_]scio_[A-Za-z0-9_]*[ \t]*\(/ {
      if ($0 !~ /\(/) bad(FNR, "?", "a static inline function whose name is not on its first line")
    }
    /^SCIO_API/ || /^#define scio_[A-Za-z0-9_]*\(/ ||
    /^static[ \t]+inline[ \t][^(]*[^A-Za-z0-9_]scio_[A-Za-z0-9_]*[ \t]*\(/ {
      if (cdoc != "") { doc = cdoc; cdoc = ""; group = 1 }
      else if (!group) doc = ""
      if ($0 !~ /^#define/) {
        decls++
        decl = $0; dline = FNR
        if ($0 ~ /[;{]/) check(dline, decl, doc); else indecl = 1
      }
      next
    }
    /^[ \t]*$/ { group = 0; cdoc = "" ; next }
    { cdoc = "" }
    END {
      if (takes_ptr && top !~ /borrowed/)
        bad(1, "(header)", "the first comment does not say that pointer arguments are borrowed unless a function says otherwise")
      exit nbad > 0
    }' "$h" || fail=1
done
sort -u "$tmp/names" >"$tmp/declared"
touch "$tmp/inlines"
sort -u -o "$tmp/inlines" "$tmp/inlines"
echo "manpages.sh: $(wc -l <"$tmp/declared") functions declared SCIO_API and $(wc -l <"$tmp/inlines") static inline in $(echo $headers | wc -w) headers"

# --- 2. the exports -------------------------------------------------------
so=
for f in .libs/libscio.so libscio.so; do test -f "$f" && { so=$f; break; }; done
if test -n "$so"; then
  $NM -D --defined-only "$so" | awk 'NF >= 3 && $NF ~ /^scio_/ { print $NF }' |
    sed 's/@.*//' | sort -u >"$tmp/exported"
  for n in $(comm -13 "$tmp/declared" "$tmp/exported"); do
    echo "$so: $n: exported, but no header declares it SCIO_API (so it has no comment and no page)"
    fail=1
  done
  for n in $(comm -23 "$tmp/declared" "$tmp/exported"); do
    echo "$so: $n: declared SCIO_API but not exported"
    fail=1
  done
  cat "$tmp/exported" >>"$tmp/declared"
  sort -u -o "$tmp/declared" "$tmp/declared"
else
  echo "manpages.sh: no shared libscio here (static-only build): exports not compared"
fi

# --- 3. the pages ----------------------------------------------------------
# The header-only functions need their pages as much as the exported ones.
cat "$tmp/inlines" >>"$tmp/declared"
sort -u -o "$tmp/declared" "$tmp/declared"
if test ! -d "$man3"; then
  if grep '^SCIO_ENABLE_MAN = yes' Makefile >/dev/null 2>&1; then
    echo "manpages.sh: $man3 is missing: run make first"
    exit 1
  fi
  echo "manpages.sh: man pages disabled (configure --disable-man): pages not checked"
  exit $fail
fi
if test -s docs/doxygen/warnings.log; then
  sed 's/^/doxygen: /' docs/doxygen/warnings.log
  fail=1
fi
test -f "$man3/scio.3" || { echo "$man3/scio.3: missing (the overview, man scio)"; fail=1; }
for h in $headers; do
  b=$(basename "$h")
  test -f "$man3/$b.3" || { echo "${h#"$srcdir"/}: no page $man3/$b.3"; fail=1; }
done
# A function's page is a link (.so) to its header's page, which must
# document it (a section of its own, as Doxygen writes for each function it
# extracted): a link alone would show a page without it.
missing=0
while read -r n; do
  if test ! -f "$man3/$n.3"; then
    echo "$man3/$n.3: missing: $n has no man page"
    fail=1; missing=$((missing + 1))
    continue
  fi
  target=$(sed -n 's|^\.so man3/||p' "$man3/$n.3")
  if test -n "$target" &&
     ! grep "^\.SS \".*[^A-Za-z0-9_]$n[ (]" "$man3/$target" >/dev/null; then
    echo "$man3/$n.3: links to $target, which does not document $n"
    fail=1; missing=$((missing + 1))
  fi
done <"$tmp/declared"
echo "manpages.sh: $(ls "$man3" | wc -l) pages; $missing of $(wc -l <"$tmp/declared") functions without one"

# Every page renders without a roff warning (a text line that roff took for
# a request loses its text), "can't break line" aside.
if command -v groff >/dev/null 2>&1; then
  for f in "$man3"/*.3; do
    head -n 1 "$f" | grep '^\.so ' >/dev/null && continue
    groff -k -man -Tutf8 -z -ww "$f" 2>&1 | grep -v "can't break line" |
      sed "s|^|$f: roff: |" >"$tmp/roff"
    if test -s "$tmp/roff"; then cat "$tmp/roff"; fail=1; fi
  done
fi

# man(1) resolves the link pages (.so) and finds the overview.
if command -v man >/dev/null 2>&1; then
  for n in scio scio_receive scio_run $(sed -n '1p;$p' "$tmp/declared"); do
    if ! MANWIDTH=80 man -M docs/doxygen/man 3 "$n" 2>"$tmp/man.err" | grep . >/dev/null; then
      echo "man -M docs/doxygen/man 3 $n: no page shown: $(cat "$tmp/man.err")"
      fail=1
    fi
  done
  MANWIDTH=80 man -M docs/doxygen/man 3 scio_receive 2>/dev/null | grep 'scio_receive' >/dev/null ||
    { echo "man scio_receive does not show scio_receive"; fail=1; }
fi
test $fail -eq 0 && echo "manpages.sh: all good"
exit $fail
