#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root): installs what is
# needed, builds, starts a demo RTSP camera (GStreamer, loopback) and one
# mediaserver node pulling it, then prints the URLs to open. Ctrl-C stops both.
#
# Environment: DEMO_DIR (default: a new temporary directory), HTTP_PORT (8080),
# RTSP_PORT (8554), CAMERA_PORT (8560), RAFT_PORT (7000: a single-node
# cluster, so the REST API can manage streams too).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

DEMO_DIR=${DEMO_DIR:-$(mktemp -d -t mediaserver-demo.XXXXXX)}
HTTP_PORT=${HTTP_PORT:-8080}
RTSP_PORT=${RTSP_PORT:-8554}
CAMERA_PORT=${CAMERA_PORT:-8560}
RAFT_PORT=${RAFT_PORT:-7000}
mkdir -p "$DEMO_DIR/data" "$DEMO_DIR/streams" "$DEMO_DIR/home"

cat > "$DEMO_DIR/node.json" <<JSON
{
  "name": "demo",
  "data_dir": "$DEMO_DIR/data",
  "threads": 2,
  "listen": {"address": "0.0.0.0", "http": $HTTP_PORT, "rtsp": $RTSP_PORT, "rtmp": 0, "raft": $RAFT_PORT},
  "admin": {"user": "admin", "password": "admin"},
  "streams_dir": "$DEMO_DIR/streams"
}
JSON
cat > "$DEMO_DIR/streams/demo.json" <<JSON
{
  "name": "demo",
  "url": "rtsp://127.0.0.1:$CAMERA_PORT/demo",
  "channels": ["video", "audio"],
  "hls": {"segment_ms": 1000}
}
JSON

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

HOME="$DEMO_DIR/home" XDG_CACHE_HOME="$DEMO_DIR/home/.cache" \
  /usr/bin/python3 tests/camera/camera.py --port "$CAMERA_PORT" --mount demo \
  --video h264 --audio aac --cache "$DEMO_DIR/clips" > "$DEMO_DIR/camera.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q READY "$DEMO_DIR/camera.log" 2>/dev/null && break
  sleep 0.2
done
grep -q READY "$DEMO_DIR/camera.log" || { echo "demo camera did not start:"; cat "$DEMO_DIR/camera.log"; exit 1; }

./build/mediaserver --config "$DEMO_DIR/node.json" &
pids+=($!)
sleep 2
cat <<TXT

mediaserver is running (config and data in $DEMO_DIR).
  live HLS      http://127.0.0.1:$HTTP_PORT/demo/index.m3u8
  live RTSP     rtsp://127.0.0.1:$RTSP_PORT/demo
  live MP4      http://127.0.0.1:$HTTP_PORT/demo/live.mp4
  snapshot      http://127.0.0.1:$HTTP_PORT/demo/videoshot.jpg
  stream API    curl -u admin:admin http://127.0.0.1:$HTTP_PORT/api/v1/streams/demo
  system API    curl -u admin:admin http://127.0.0.1:$HTTP_PORT/api/v1/system
  metrics       http://127.0.0.1:$HTTP_PORT/metrics
  try           ffplay http://127.0.0.1:$HTTP_PORT/demo/index.m3u8
Ctrl-C stops the node and the demo camera.
TXT
wait
