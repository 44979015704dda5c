#!/usr/bin/env bash
# Installs every Debian package the project needs to build, run and test.
# Idempotent: when everything is present it only checks and exits (a few seconds).
# Must run as root on Debian 12 (bookworm). libraft >= 0.18 comes from
# bookworm-backports; the suite is added by reusing the URIs of the machine's
# existing Debian apt source (no host name is written here).
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config git clang clang-format libclang-rt-14-dev
  # libraries
  libuv1-dev libsqlite3-dev libmicrohttpd-dev libjansson-dev libssl-dev
  liblua5.4-dev libavcodec-dev libavutil-dev libswscale-dev libcmocka-dev
  # integration tests: real camera, real players
  python3 python3-pytest python3-yaml python3-jsonschema
  python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  ffmpeg chromium curl procps iproute2 sqlite3
  # wall-clock camera (tests/camera/camera.py --qr-clock) and reading it back
  python3-qrcode zbar-tools
  # RTMP peers with the simple handshake, FLV checker (tests/integration/test_rtmp.py)
  rtmpdump flvmeta
  # an independent RTMP server for push (tests/integration/test_rtmp_push.py)
  nginx-light libnginx-mod-rtmp
  # install path: make deb (dpkg-shlibdeps), the playbook and its lint,
  # systemd-analyze verify of the unit (tests/integration/test_ansible.py)
  dpkg-dev ansible-core ansible-lint systemd
)
# node and npm: Debian's, unless the machine already has a node with npm
# (another vendor's nodejs package conflicts with Debian's npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi
BACKPORTS_PKGS=(libraft-dev)

log() { printf '[setup] %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}" "${BACKPORTS_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
raft_ok=0
if dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null | grep -Eq '^0\.(1[89]|[2-9][0-9])'; then
  raft_ok=1
fi

if [ ${#missing[@]} -eq 0 ] && [ $raft_ok = 1 ]; then
  log "all packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# bookworm-backports: derive the mirror from the existing Debian source.
bp_file=/etc/apt/sources.list.d/mediaserver-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ; then
  uris=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: the URIs of the stanza whose Suites holds plain "bookworm"
    uris=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && !/security/ {
                 if (match($0, /URIs:[^\n]*/)) { print substr($0, RSTART+6, RLENGTH-6); exit } }' \
           /etc/apt/sources.list.d/debian.sources | xargs)
  fi
  if [ -z "$uris" ] && [ -f /etc/apt/sources.list ]; then
    uris=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  if [ -z "$uris" ]; then
    echo "setup.sh: cannot find the Debian bookworm apt source to derive bookworm-backports from" >&2
    exit 1
  fi
  log "adding bookworm-backports from $uris"
  cat > "$bp_file" <<SRC
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

log "apt-get update"
apt-get update -q
log "installing: ${missing[*]:-(libraft upgrade)}"
apt-get install -y -q --no-install-recommends "${PKGS[@]}"
apt-get install -y -q --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"

v=$(dpkg-query -W -f='${Version}' libraft-dev)
log "libraft-dev $v"
