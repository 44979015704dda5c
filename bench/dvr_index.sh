#!/usr/bin/env bash
# DVR index benchmark (see bench/README.md): bash bench/dvr_index.sh
# Needs a build with -DMS_BENCH=ON (BUILD=build by default).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -x "$BUILD/bench_dvr_index" ] || cmake -S . -B "$BUILD" -DMS_BENCH=ON >/dev/null
cmake --build "$BUILD" --target bench_dvr_index -j2 >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "== one stream, 30 days of 2 s chunks"
mkdir "$dir/a" && "$BUILD/bench_dvr_index" "$dir/a" 1 30 2
echo "== 100 streams, 3 days of 10 s chunks (30 days = 26M rows: ~5 min and 16 GB, see bench/README.md)"
mkdir "$dir/b" && "$BUILD/bench_dvr_index" "$dir/b" 100 3 10
