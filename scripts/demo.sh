#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root): installs what is
# needed, builds, starts a demo RTSP camera (GStreamer, loopback) and one
# mediaserver node pulling it, then prints the URLs to open. Ctrl-C stops both.
#
# Environment: DEMO_DIR (default: a new temporary directory), HTTP_PORT (8080),
# RTSP_PORT (8554), CAMERA_PORT (8560), RAFT_PORT (7000: a single-node
# cluster, so the REST API can manage streams too), LISTEN_ADDRESS (127.0.0.1:
# only this machine can reach the demo; 0.0.0.0 opens it to the network),
# ADMIN_PASSWORD (default: generated and printed once). Example with other
# ports: HTTP_PORT=18080 RTSP_PORT=18554 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# Only the daemon: the unit tests are the test command's business.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mediaserver

DEMO_DIR=${DEMO_DIR:-$(mktemp -d -t mediaserver-demo.XXXXXX)}
HTTP_PORT=${HTTP_PORT:-8080}
RTSP_PORT=${RTSP_PORT:-8554}
CAMERA_PORT=${CAMERA_PORT:-8560}
RAFT_PORT=${RAFT_PORT:-7000}
LISTEN_ADDRESS=${LISTEN_ADDRESS:-127.0.0.1}
case $LISTEN_ADDRESS in 0.0.0.0 | ::) HOST=127.0.0.1 ;; *:*) HOST="[$LISTEN_ADDRESS]" ;; *) HOST=$LISTEN_ADDRESS ;; esac
ADMIN_PASSWORD=${ADMIN_PASSWORD:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
mkdir -p "$DEMO_DIR/data" "$DEMO_DIR/streams" "$DEMO_DIR/home"

cat > "$DEMO_DIR/node.json" <<JSON
{
  "name": "demo",
  "data_dir": "$DEMO_DIR/data",
  "threads": 2,
  "listen": {"address": "$LISTEN_ADDRESS", "http": $HTTP_PORT, "rtsp": $RTSP_PORT, "rtmp": 0, "raft": $RAFT_PORT},
  "admin": {"user": "admin", "password": "$ADMIN_PASSWORD"},
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

./build/mediaserver --config "$DEMO_DIR/node.json" 2> >(tee "$DEMO_DIR/node.log" >&2) &
node=$!
pids+=($node)
# Up means: the process is alive and its API answers (a port already taken
# makes the node exit at once; say so instead of printing URLs).
up=0
for _ in $(seq 1 100); do
  kill -0 "$node" 2>/dev/null || break
  if curl -fs -o /dev/null -u "admin:$ADMIN_PASSWORD" "http://$HOST:$HTTP_PORT/api/v1/system"; then
    up=1
    break
  fi
  sleep 0.2
done
if [ "$up" != 1 ]; then
  echo "mediaserver did not start (log: $DEMO_DIR/node.log); a port may be taken:" \
    "set HTTP_PORT, RTSP_PORT or RAFT_PORT (see the top of scripts/demo.sh)" >&2
  exit 1
fi
cat <<TXT

mediaserver is running (config and data in $DEMO_DIR, listening on $LISTEN_ADDRESS).
  admin         user admin, password $ADMIN_PASSWORD (generated for this run; in $DEMO_DIR/node.json)
  live HLS      http://$HOST:$HTTP_PORT/demo/index.m3u8
  live RTSP     rtsp://$HOST:$RTSP_PORT/demo
  live MP4      http://$HOST:$HTTP_PORT/demo/live.mp4
  snapshot      http://$HOST:$HTTP_PORT/demo/videoshot.jpg
  stream API    curl -u admin:$ADMIN_PASSWORD http://$HOST:$HTTP_PORT/api/v1/streams/demo
  system API    curl -u admin:$ADMIN_PASSWORD http://$HOST:$HTTP_PORT/api/v1/system
  metrics       http://$HOST:$HTTP_PORT/metrics
  try           ffplay http://$HOST:$HTTP_PORT/demo/index.m3u8
Other ports: HTTP_PORT=18080 RTSP_PORT=18554 RAFT_PORT=17000 bash scripts/demo.sh
Ctrl-C stops the node and the demo camera.
TXT
wait
