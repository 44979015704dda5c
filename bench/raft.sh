#!/usr/bin/env bash
# Raft cluster benchmark (see bench/README.md): bash bench/raft.sh [--writes 500] [--kills 20]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/raft.py "$@"
