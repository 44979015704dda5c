#!/usr/bin/env bash
# LL-HLS part latency benchmark (see bench/README.md): bash bench/llhls.sh [--streams 4] [--seconds 60]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/llhls.py "$@"
