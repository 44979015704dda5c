#!/usr/bin/env bash
# MP4 export throughput (see bench/README.md): bash bench/mp4_export.sh [--record 60]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/mp4_export.py "$@"
