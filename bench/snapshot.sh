#!/usr/bin/env bash
# Snapshot benchmark (see bench/README.md): bash bench/snapshot.sh [--clients 100] [--seconds 10]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/snapshot.py "$@"
