#!/usr/bin/env bash
# Ingest benchmark (see bench/README.md): bash bench/ingest.sh [--cameras 50 100 200] [--seconds 30]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/ingest.py "$@"
