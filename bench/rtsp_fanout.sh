#!/usr/bin/env bash
# RTSP fan-out benchmark (see bench/README.md): bash bench/rtsp_fanout.sh [--players 1 100 500] [--seconds 15]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/rtsp_fanout.py "$@"
