#!/usr/bin/env bash
# Lua on_play overhead on live HLS (see bench/README.md): bash bench/lua_hook.sh [--seconds 2] [--rounds 8]
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/lua_hook.py "$@"
