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
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

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

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files -co --exclude-standard 'util/*.[ch]' 'media/*.[ch]' 'dvr/*.[ch]' \
    'raft/*.[ch]' 'node/*.[ch]' 'api/*.[ch]')
else
  files=$(find util media dvr raft node api -name '*.[ch]')
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
