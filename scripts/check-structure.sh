#!/usr/bin/env bash
# The layout rules of CONTRIBUTING.md that a script can check, over crates/*/src:
#   (a) no file outside tests (`tests.rs`, `tests/`) and generated code is over 1,000 lines;
#   (b) no two modules of one crate import each other: neither two top-level modules, nor
#       two sibling submodules one level down (a parent and its child may: `use super::…`);
#   (c) a module with children lives in `foo/mod.rs`, never `foo.rs` next to `foo/`
#       (here also in the crates' `tests/` and in the end-to-end crate under `tests/`).
# Prints each offender and exits 1 if there is any; exits 0 and prints nothing otherwise.
#   bash scripts/check-structure.sh
set -euo pipefail
cd "$(dirname "$0")/.."

max_lines=1000
failed=0
offend() {
  printf 'check-structure: %s\n' "$*"
  failed=1
}

is_test() {
  case "$1" in
    */tests.rs | */tests/*) return 0 ;;
  esac
  return 1
}

is_generated() {
  head -n 5 "$1" | grep -q '@generated'
}

# A source file's module path inside its crate, `/`-separated: `src/lib.rs` is the
# root (empty), `src/a.rs` and `src/a/mod.rs` are `a`, `src/a/b.rs` is `a/b`.
module_path() {
  local rel=${1#*/src/}
  rel=${rel%.rs}
  rel=${rel%/mod}
  case "$rel" in
    lib | main) rel="" ;;
  esac
  printf '%s' "$rel"
}

# The crate's non-test source files, one a line.
sources() {
  find "$1/src" -name '*.rs' | sort | while IFS= read -r f; do
    is_test "$f" || printf '%s\n' "$f"
  done
}

# (a) long files
check_lengths() {
  local f n
  while IFS= read -r f; do
    is_test "$f" && continue
    is_generated "$f" && continue
    n=$(wc -l <"$f")
    if [ "$n" -gt "$max_lines" ]; then
      offend "$f has $n lines: split it along a real seam (at most $max_lines outside tests and generated code)"
    fi
  done < <(find crates/*/src -name '*.rs' | sort)
}

# (c) `foo.rs` next to `foo/`
check_module_files() {
  local d
  while IFS= read -r d; do
    if [ -f "$d.rs" ]; then
      offend "$d.rs sits next to $d/: a module with children lives in $d/mod.rs"
    fi
  done < <({ find crates -mindepth 2 -type d; find tests -mindepth 1 -type d; } | grep -v '/target/' | sort)
}

# Prints the module edges of one file as `top <from> <to>` (between top-level modules)
# or `sub <parent> <from> <to>` (between siblings under <parent>). It reads the paths
# in `use` trees and the `crate::`/`super::`/`self::` paths in the code, skips comments
# and stops at an inline `#[cfg(test)] mod … {`.
# shellcheck disable=SC2016
file_edges_awk='
function resolve(path,   segs, n, base, nb, i, k, r1, r2, m) {
  n = split(path, segs, "::")
  if (segs[1] == "crate") { nb = 0; i = 2 }
  else if (segs[1] == "self") { nb = split(mod, base, "/"); if (mod == "") nb = 0; i = 2 }
  else if (segs[1] == "super") {
    nb = split(mod, base, "/"); if (mod == "") nb = 0
    i = 1
    while (i <= n && segs[i] == "super") { nb--; i++ }
    if (nb < 0) return
  } else return
  m = nb
  for (k = i; k <= n; k++) if (segs[k] != "self" && segs[k] != "") base[++m] = segs[k]
  if (m < 1) return
  r1 = base[1]; r2 = (m >= 2) ? base[2] : ""
  if (p1 != "" && r1 != p1 && (r1 in known)) print "top", p1, r1
  if (p2 != "" && r1 == p1 && r2 != "" && r2 != p2 && ((r1 "/" r2) in known)) print "sub", p1, p2, r2
}
# Expands a use tree without white space (`crate::{a::X,b::{c,d}}`) into its paths.
function expand(prefix, tree,   open, depth, i, c, start, head, inner, item) {
  open = index(tree, "{")
  if (open == 0) { resolve(prefix tree); return }
  head = substr(tree, 1, open - 1)
  inner = substr(tree, open + 1, length(tree) - open - 1)
  depth = 0; start = 1
  for (i = 1; i <= length(inner) + 1; i++) {
    c = (i <= length(inner)) ? substr(inner, i, 1) : ","
    if (c == "{") depth++
    else if (c == "}") depth--
    else if (c == "," && depth == 0) {
      item = substr(inner, start, i - start)
      if (item != "") expand(prefix head, item)
      start = i + 1
    }
  }
}
BEGIN {
  nk = split(modules, ks, " ")
  for (k = 1; k <= nk; k++) known[ks[k]] = 1
  np = split(mod, ps, "/"); if (mod == "") np = 0
  p1 = (np >= 1) ? ps[1] : ""; p2 = (np >= 2) ? ps[2] : ""
  text = ""; pending = 0
}
{
  line = $0
  if (pending && line ~ /^[ \t]*(pub(\([a-z]+\))? )?mod [A-Za-z0-9_]+ *\{/) exit
  pending = (line ~ /^[ \t]*#\[cfg\(test\)\]/)
  sub(/\/\/.*$/, "", line)
  text = text " " line
}
END {
  rest = text
  while (match(rest, /(^|[^A-Za-z0-9_])use [^;]*;/)) {
    stmt = substr(rest, RSTART, RLENGTH)
    rest = substr(rest, 1, RSTART - 1) " " substr(rest, RSTART + RLENGTH)
    sub(/^.*use /, "", stmt); sub(/;$/, "", stmt)
    gsub(/[ \t]+/, "", stmt)
    sub(/as[A-Za-z0-9_]+$/, "", stmt)
    expand("", stmt)
  }
  while (match(rest, /(crate|super|self)(::[A-Za-z0-9_]+)+/)) {
    resolve(substr(rest, RSTART, RLENGTH))
    rest = substr(rest, RSTART + RLENGTH)
  }
}
'

# (b) modules that import each other
check_cycles() {
  local crate f mods edges
  for crate in crates/*/; do
    crate=${crate%/}
    [ -d "$crate/src" ] || continue
    mods=$(sources "$crate" | while IFS= read -r f; do module_path "$f"; printf ' '; done)
    edges=$(sources "$crate" | while IFS= read -r f; do
      awk -v mod="$(module_path "$f")" -v modules="$mods" "$file_edges_awk" "$f"
    done | sort -u)
    [ -n "$edges" ] || continue
    while IFS= read -r pair; do
      [ -n "$pair" ] && offend "$crate: $pair"
    done < <(printf '%s\n' "$edges" | awk '
      { seen[$0] = 1; lines[NR] = $0 }
      END {
        for (i = 1; i <= NR; i++) {
          split(lines[i], e, " ")
          if (e[1] == "top") { back = "top " e[3] " " e[2]
            if ((back in seen) && e[2] < e[3]) print "modules " e[2] " and " e[3] " import each other"
          } else { back = "sub " e[2] " " e[4] " " e[3]
            if ((back in seen) && e[3] < e[4]) print "modules " e[2]"::"e[3] " and " e[2]"::"e[4] " import each other"
          }
        }
      }' | sort)
  done
}

check_lengths
check_module_files
check_cycles
exit "$failed"
