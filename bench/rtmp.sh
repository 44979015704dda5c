#!/usr/bin/env bash
# RTMP fan-out and ingest, node vs nginx-rtmp (see bench/README.md):
#   bash bench/rtmp.sh [--players 1 100 500] [--publishers 20 100] [--seconds 20]
# Installs nginx-light, libnginx-mod-rtmp and ffmpeg with apt-get when missing
# (as root); builds build/mediaserver (BUILD=build) unless MS_BIN names one.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -z "${MS_BIN:-}" ]; then
    BUILD=${BUILD:-build}
    [ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target mediaserver -j2 >/dev/null
    export MS_BIN="$PWD/$BUILD/mediaserver"
fi
exec /usr/bin/python3 bench/rtmp.py "$@"
