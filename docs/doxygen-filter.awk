# doxygen-filter.awk -- Doxygen's INPUT_FILTER for the public headers
# (docs/Doxyfile.in).  Our headers carry plain C comments, written for people
# reading the header; this filter shows Doxygen which of them document what,
# so that the man pages are generated from exactly the text in the headers:
#
#   - the file's first comment documents the header (\file);
#   - the comment directly before a SCIO_API declaration or a static
#     inline scio_ function (no blank line in between) documents that
#     function; declarations that follow it without
#     a blank line (a group such as scio_condition_acquire/_release) share
#     it; so do the API's function-like macros (#define scio_start_soon(...)),
#     which may stand between the comment and the declaration;
#   - a comment directly above a type (typedef, struct, union, enum), an
#     API constant (#define SCIO_...), a member or an enumerator documents
#     it, and so does a comment after a member, an enumerator or a
#     constant on its own line (it becomes /**< ... */);
#   - every other comment stays a plain comment, which Doxygen ignores.
#
# A documenting comment becomes a \brief (its first sentence, escaped) and
# the whole comment, kept as written in \verbatim, because our comments are
# laid out as plain text (aligned error lists, tables) that Doxygen's
# Markdown and HTML handling would reflow or drop.  The output keeps one
# line per input line where it can, so Doxygen's warnings point at the
# header's own lines.
#
# For include/scio.h, the umbrella header, the filter also writes the
# overview page `scio' (man scio): the umbrella's comment and an index of
# every header it includes, with each header's first sentence and its
# functions, read from those headers here, so the index cannot go stale.
#
# Usage (Doxygen runs it as INPUT_FILTER): awk -f doxygen-filter.awk FILE

# The first sentence of a comment's text (already joined into one line),
# for \brief: up to the first full stop that ends a sentence.
function first_sentence(s,    i, n, rest, c) {
  n = length(s)
  for (i = 1; i <= n; i++) {
    c = substr(s, i, 1)
    if (c != "." && c != ":")
      continue
    rest = substr(s, i + 1, 1)
    if (rest != " " && rest != "" || substr(s, i + 1, 2) == " .")
      continue
    # "e.g. ", "i.e. ", "etc. " do not end a sentence.
    # Nor does a range "1 .. 10".
    if (c == "." && (substr(s, i - 1, 1) == "." || substr(s, 1, i) ~ /(e\.g|i\.e|etc|vs|cf)\.$/))
      continue
    if (c == ":" && rest == " ")
      continue
    return substr(s, 1, i)
  }
  return s
}

# Doxygen treats \ @ & $ # % < > as special in running text.  A double
# quote would end a roff macro's argument in the man page's synopsis (and
# Doxygen's man output writes it as a single quote, which at the start of
# a line of roff makes a request of it): quotes become typographic ones.
function escape(s,    out, q) {
  gsub(/\\/, "\\\\", s)
  gsub(/[@&$#%<>]/, "\\\\&", s)
  out = ""; q = 0
  while (match(s, /"/)) {
    out = out substr(s, 1, RSTART - 1) (q++ % 2 ? "\342\200\235" : "\342\200\234")
    s = substr(s, RSTART + 1)
  }
  return out s
}

# Strip the comment markers of one line of a /* ... */ block.
function strip(line) {
  sub(/^[ \t]*\/\*+[ \t]?/, "", line)
  sub(/[ \t]*\*+\/[ \t]*$/, "", line)
  sub(/^[ \t]*\*[ \t]?/, "", line)
  return line
}

# The text of the buffered comment (cbuf[1..cn]), as lines and joined.
# Doxygen's man output writes a double quote as a single one, and a line of
# roff that starts with a quote (or a dot) is a control line whose text is
# lost: such a verbatim line gets one leading space.
function comment_text(    i, t) {
  t = ""
  for (i = 1; i <= cn; i++) {
    ctext[i] = strip(cbuf[i])
    t = t " " ctext[i]
    if (ctext[i] ~ /^["'.]/)
      ctext[i] = " " ctext[i]
  }
  gsub(/[ \t]+/, " ", t)
  sub(/^ /, "", t)
  return t
}

# Print the buffered comment as a Doxygen comment; `what' is "\\file" for
# the header's own comment, "" for a function's.
function print_doc(what,    i, joined, brief) {
  joined = comment_text()
  brief = first_sentence(joined)
  printf "/** %s\\brief %s\n", (what == "" ? "" : what "\n"), escape(brief)
  # A comment of one sentence is all brief (members, enumerators).
  if (brief != joined || what != "") {
    print "\\verbatim"
    for (i = 1; i <= cn; i++)
      print ctext[i]
    print "\\endverbatim"
  }
  if (what != "")
    print "\\par \"SEE ALSO\"\nscio(3): the overview, and the index of every header and function."
  print "*/"
  cn = 0
}

function print_plain(    i) {
  for (i = 1; i <= cn; i++)
    print cbuf[i]
  cn = 0
}

# `s' broken into lines of at most 78 columns; continuation lines start
# with `indent'.
function wrap(s, indent,    out, line, nw, w, i) {
  nw = split(s, w, " ")
  out = ""; line = ""
  for (i = 1; i <= nw; i++) {
    if (line == "")
      line = (out == "" ? "  " : indent) w[i]
    else if (length(line) + 1 + length(w[i]) > 78) {
      out = out line "\n"
      line = indent w[i]
    } else
      line = line " " w[i]
  }
  return out line
}

# One header's entry in the index: its first sentence and its names.
function index_header(h,    path, line, incomment, first, sent, names, n, name, width) {
  path = dir "/" h
  first = ""; incomment = 0; names = ""; n = 0
  while ((getline line < path) > 0) {
    if (first == "" && !incomment && line ~ /^\/\*/)
      incomment = 1
    if (incomment) {
      first = first " " strip(line)
      if (line ~ /\*\//)
        incomment = 2
      if (incomment == 2) {
        gsub(/[ \t]+/, " ", first)
        incomment = 0
        if (first == "") first = " "
      }
    }
    if (documented(line) && match(line, /scio_[A-Za-z0-9_]*[ \t]*\(/)) {
      name = substr(line, RSTART, RLENGTH - 1)
      sub(/[ \t]*$/, "", name)
      if (name in listed)
        continue
      listed[name] = 1
      # Wrapped at 76 columns.
      if (n == 0 || width + length(name) + 2 > 76) {
        names = names "\n    " name
        width = 4 + length(name)
      } else {
        names = names ", " name
        width += 2 + length(name)
      }
      n++
    }
  }
  close(path)
  sent = first_sentence(substr(first, 2))
  sub(/^scio [^ ]* /, "", sent)
  sub(/^[-:] */, "", sent)
  printf "\n%s", wrap("  " h ": " sent, "    ")
  if (n > 0)
    printf "%s", names
  print ""
}

# For the umbrella header: the page scio(3), its comment and the index of
# the headers it includes, then of the other installed headers beside them
# (<scio/testing.h>).
function umbrella_index(    i, h, cmd, others) {
  print "/** \\page scio scio"
  print "\\brief structured concurrency I/O for C: overview and index of the API"
  print "\\section scio_description DESCRIPTION"
  print "\\verbatim"
  for (i = 1; i <= cn; i++)
    print ctext[i]
  print ""
  print "Headers (man <header>, e.g. man core.h) and their functions and"
  print "function-like macros (man <function>, e.g. man scio_receive):"
  for (i = 1; i <= ninc; i++) {
    included[inc[i]] = 1
    index_header(inc[i])
  }
  others = 0
  cmd = "cd '" dir "' && ls scio/*.h 2>/dev/null"
  while ((cmd | getline h) > 0) {
    if (h in included)
      continue
    if (!others++) {
      print ""
      print "Installed too, but not included by <scio.h>:"
    }
    index_header(h)
  }
  close(cmd)
  print "\\endverbatim */"
}

# A line that starts what a comment documents: a SCIO_API declaration, a
# function-like macro of the API (scio_scope_open over scio_scope_open_loc),
# or a header-only function (static inline scio_..., <scio/testing.h>),
# whose name must be on its first line.
function documented(line) {
  return line ~ /^SCIO_API/ || line ~ /^#define scio_[A-Za-z0-9_]*\(/ ||
         line ~ /^static inline[ \t][^(]*[^A-Za-z0-9_]scio_[A-Za-z0-9_]*[ \t]*\(/
}

# A line that starts a type or an API constant: a comment directly above
# documents it.
function typeline(line) {
  return line ~ /^typedef[ \t]/ || line ~ /^(struct|union|enum)[ \t]+[A-Za-z_0-9]+[ \t]*\{/ ||
         line ~ /^#define SCIO_/
}

BEGIN {
  file = ARGV[1]
  dir = file
  sub(/\/[^\/]*$/, "", dir)
  umbrella = (file ~ /(^|\/)scio\.h$/)
  cn = 0; seen_top = 0; group = 0; ninc = 0; top_n = 0; keep_n = 0
}

# The rest of a trailing comment that documents a member.
intrail {
  t = $0
  tn++
  if (t ~ /\*\//) {
    intrail = 0
    body = t; sub(/\*\/.*$/, "", body)
    tbuf = tbuf " " body
    gsub(/[ \t]+/, " ", tbuf)
    print tpre escape(tbuf) "*/" substr(t, index(t, "*/") + 2)
    for (i = 0; i < tn; i++)
      print ""
  } else
    tbuf = tbuf " " t
  next
}

# Inside a comment: buffer it until its end.
incomment {
  cbuf[++cn] = $0
  if ($0 ~ /\*\//)
    incomment = 0
  next
}

# A comment that starts a line (and has no code after its end).
/^[ \t]*\/\*/ && !/\*\/.*[^ \t]/ {
  if (cn > 0) print_plain()
  cbuf[++cn] = $0
  incomment = ($0 !~ /\*\//)
  group = 0
  next
}

{
  if (umbrella && match($0, /^#include "scio\/[a-z_]+\.h"/))
    inc[++ninc] = substr($0, RSTART + 10, RLENGTH - 11)
  if (cn > 0 && !seen_top) {
    # The file's first comment documents the header.
    seen_top = 1
    if (umbrella) {
      comment_text()
      for (i = 1; i <= cn; i++) top[++top_n] = ctext[i]
    }
    print_doc("\\file")
  } else if (cn > 0 && documented($0)) {
    # Remember it for the declarations grouped with this one.
    for (i = 1; i <= cn; i++) keep[i] = cbuf[i]
    keep_n = cn
    print_doc("")
    group = 1
  } else if (cn > 0 && (typeline($0) || (inbody && $0 ~ /^[ \t]+[A-Za-z_]/))) {
    # A type, an API macro, a member or an enumerator.
    print_doc("")
  } else if (cn > 0) {
    print_plain()
  } else if (group && documented($0)) {
    for (i = 1; i <= keep_n; i++) cbuf[i] = keep[i]
    cn = keep_n
    print_doc("")
  }
  if (/^[ \t]*$/)
    group = 0
  line = $0
  # The body of a struct, union or enum, by its braces.
  if (!inbody && line ~ /^(typedef[ \t]+)?(struct|union|enum)[^;(]*\{/)
    { inbody = 1; depth = 0 }
  if (inbody) {
    t = line
    sub(/\/\*.*/, "", t)
    depth += gsub(/\{/, "{", t) - gsub(/\}/, "}", t)
  }
  # A comment after a member, an enumerator or an API macro documents it.
  if ((inbody || line ~ /^#define SCIO_/) && match(line, /[^ \t][ \t]*\/\*/)) {
    pre = substr(line, 1, RSTART + RLENGTH - 3)
    rest = substr(line, RSTART + RLENGTH)
    if (rest ~ /\*\//) {
      body = rest; sub(/\*\/.*$/, "", body)
      line = pre "/**< " escape(body) "*/" substr(rest, index(rest, "*/") + 2)
    } else {
      # Joined into one line when it ends: a continuation line would
      # start a line of roff, where a leading quote makes it a request.
      tpre = pre "/**< "; tbuf = rest; tn = 0
      intrail = 1
      next
    }
  }
  print line
  if (inbody && depth <= 0 && line ~ /\}/)
    inbody = 0
  next
}

END {
  if (cn > 0) print_plain()
  if (umbrella) {
    cn = top_n
    for (i = 1; i <= cn; i++) ctext[i] = top[i]
    umbrella_index()
  }
}
