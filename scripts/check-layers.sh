#!/usr/bin/env bash
# Layer check (docs/architecture.md "Layers"): a source file may include the
# headers of its own layer and of the layers below it, never of a layer
# above.
#
#   util (0) < media (1) < dvr, raft (2) < node (3) < api (4) < node/main.c (5)
#
# dvr and raft are side by side: neither includes the other. Unit tests
# (*/tests/), fuzz/ and bench/ may include whatever they test; they are not
# checked. Only quoted includes of a layer directory ("node/config.h") count.
#
# Known violations that are not fixed yet are listed in ALLOW below, one
# "FILE -> HEADER" per line with the reason; the check fails on any other
# violation, and on an ALLOW line that no longer matches (so the list only
# shrinks). Runs in scripts/test.sh's format phase (make check-layers).
# Exit 0 clean, 1 violations, 2 usage.
#
#   scripts/check-layers.sh              check this checkout
#   scripts/check-layers.sh --self-test  check the checker on small made-up
#                                         trees (a violation, a peer include,
#                                         a clean tree); run by the format phase
# LAYERS_ROOT=DIR checks DIR instead of this checkout.
set -uo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

if [ "${1:-}" = "--self-test" ]; then
  t=$(mktemp -d) || exit 2
  trap 'rm -rf "$t"' EXIT
  mkdir -p "$t/util" "$t/node" "$t/dvr" "$t/raft" "$t/node/tests"
  printf '#include "util/a.h"\n' >"$t/node/b.h"
  printf '#include "node/b.h"\n#include "util/a.h"\n' >"$t/node/tests/test_b.c"
  printf '#include "node/b.h"\n#include "raft/r.h"\n' >"$t/node/c.c"
  : >"$t/util/a.h"
  : >"$t/raft/r.h"
  LAYERS_ROOT=$t "$SELF" >/dev/null || { echo "self-test: a clean tree fails"; exit 1; }
  printf '#include "node/b.h"\n' >"$t/util/a.c"
  out=$(LAYERS_ROOT=$t "$SELF") && { echo "self-test: util -> node passes"; exit 1; }
  [[ $out == *"util/a.c:1 includes node/b.h"* ]] || { echo "self-test: got: $out"; exit 1; }
  rm "$t/util/a.c"
  printf '\n#include "raft/r.h"\n' >"$t/dvr/d.c"
  out=$(LAYERS_ROOT=$t "$SELF") && { echo "self-test: dvr -> raft passes"; exit 1; }
  [[ $out == *"dvr/d.c:2 includes raft/r.h"* ]] || { echo "self-test: got: $out"; exit 1; }
  echo "check-layers: self-test ok"
  exit 0
fi

if [ -n "${LAYERS_ROOT:-}" ]; then
  cd "$LAYERS_ROOT" || exit 2
else
  cd "$(dirname "$0")/.." || exit 2
fi

# FILE -> HEADER   reason. Keep it empty, or explain why each line waits.
ALLOW=$(
  cat <<'EOF'
EOF
)

# rank PATH: sets R to the layer of PATH (-1: not a layer directory).
rank() {
  case "$1" in
  node/main.c) R=5 ;;
  util/*) R=0 ;;
  media/*) R=1 ;;
  dvr/* | raft/*) R=2 ;;
  node/*) R=3 ;;
  api/*) R=4 ;;
  *) R=-1 ;;
  esac
}

if [ -z "${LAYERS_ROOT:-}" ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files -co --exclude-standard 'util/*.[ch]' 'media/*.[ch]' 'dvr/*.[ch]' \
    'raft/*.[ch]' 'node/*.[ch]' 'api/*.[ch]')
else
  files=$(find util media dvr raft node api -name '*.[ch]' 2>/dev/null)
fi

allowed=$(sed -E 's/[[:space:]]{2,}.*$//' <<<"$ALLOW")
found=()
bad=0
# One grep over every file: "FILE:LINE:INCLUDE" lines.
while IFS=: read -r f line inc; do
  case "$f" in */tests/*) continue ;; esac
  itop=${inc%%/*}
  [ "$itop" != "$inc" ] || continue # "es.h": same directory
  rank "$inc"
  ir=$R
  [ "$ir" -ge 0 ] || continue # not a layer directory
  rank "$f"
  fr=$R
  ftop=${f%%/*}
  if [ "$ir" -gt "$fr" ] || { [ "$ir" -eq "$fr" ] && [ "$itop" != "$ftop" ] && [ "$fr" -ne 5 ]; }; then
    entry="$f -> $inc"
    found+=("$entry")
    if [[ $'\n'"$allowed"$'\n' != *$'\n'"$entry"$'\n'* ]]; then
      echo "layer violation: $f:$line includes $inc (layer $itop is not below $ftop;" \
        "docs/architecture.md \"Layers\")"
      bad=1
    fi
  fi
done < <(grep -sHnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' $files /dev/null |
  sed -E 's/^([^:]+):([0-9]+):.*"([^"]+)".*/\1:\2:\3/')

# Allowed entries that no longer occur: drop them from ALLOW.
while IFS= read -r a; do
  a=$(sed -E 's/[[:space:]]{2,}.*$//' <<<"$a")
  [ -n "$a" ] || continue
  hit=0
  for e in "${found[@]+"${found[@]}"}"; do
    [ "$e" = "$a" ] && hit=1
  done
  if [ $hit -eq 0 ]; then
    echo "check-layers: stale ALLOW entry (no longer a violation, remove it): $a"
    bad=1
  fi
done <<<"$ALLOW"

if [ $bad -eq 0 ]; then
  echo "check-layers: ok (${#found[@]} allowed violation(s))"
fi
exit $bad
