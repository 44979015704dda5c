#!/usr/bin/env bash
# MP4 export throughput (see bench/README.md): bash bench/mp4_export.sh [--record 60]
# The in-process figures need bench_mp4_export (-DMS_BENCH=ON); it is built
# in BUILD (build by default) unless MS_BENCH_MP4 names one.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ -z "${MS_BENCH_MP4:-}" ]; then
    [ -x "$BUILD/bench_mp4_export" ] || cmake -S . -B "$BUILD" -DMS_BENCH=ON >/dev/null
    cmake --build "$BUILD" --target bench_mp4_export -j2 >/dev/null
    export MS_BENCH_MP4="$PWD/$BUILD/bench_mp4_export"
fi
exec /usr/bin/python3 bench/mp4_export.py "$@"
