#!/usr/bin/env bash
# Builds mediaserver_<version>_<arch>.deb from a staged tree with dpkg-deb.
#   scripts/build-deb.sh BUILD_DIR [OUT_DIR]
# BUILD_DIR holds the built daemon (BUILD_DIR/mediaserver); the .deb is written
# to OUT_DIR (default BUILD_DIR) and its path printed on stdout.
# Version: project(mediaserver VERSION x.y.z) of CMakeLists.txt (the same string
# `mediaserver --version` prints). Depends: computed by dpkg-shlibdeps from the
# libraries the binary links.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: build-deb.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$BUILD}
BIN="$BUILD/mediaserver"
[ -x "$BIN" ] || { echo "build-deb.sh: $BIN not built" >&2; exit 1; }

VERSION=$(sed -nE 's/^project\(mediaserver VERSION ([0-9][0-9.]*).*/\1/p' "$ROOT/CMakeLists.txt")
[ -n "$VERSION" ] || { echo "build-deb.sh: no version in CMakeLists.txt" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/pkg"
install -d -m 0755 "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/lib/systemd/system" \
  "$PKG/etc/mediaserver/streams" "$PKG/usr/share/doc/mediaserver"
install -m 0755 -s "$BIN" "$PKG/usr/bin/mediaserver"
install -m 0644 "$ROOT/scripts/mediaserver.service" "$PKG/lib/systemd/system/mediaserver.service"
install -m 0644 "$ROOT/scripts/deb/node.json" "$PKG/etc/mediaserver/node.json"
install -m 0644 "$ROOT/docs/install.md" "$PKG/usr/share/doc/mediaserver/install.md"
for s in postinst prerm postrm; do
  install -m 0755 "$ROOT/scripts/deb/$s" "$PKG/DEBIAN/$s"
done
echo /etc/mediaserver/node.json > "$PKG/DEBIAN/conffiles"

# dpkg-shlibdeps wants a debian/control next to the tree it analyses.
mkdir -p "$STAGE/debian"
printf 'Source: mediaserver\n\nPackage: mediaserver\nArchitecture: any\n' > "$STAGE/debian/control"
DEPENDS=$(cd "$STAGE" && dpkg-shlibdeps -O -e pkg/usr/bin/mediaserver 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CTL
Package: mediaserver
Version: $VERSION
Architecture: $ARCH
Maintainer: mediaserver developers <mediaserver@localhost>
Installed-Size: $SIZE
Depends: adduser, $DEPENDS
Section: video
Priority: optional
Description: clustered media server for IP cameras
 Captures RTSP cameras, records a DVR archive, serves live and archived
 video (HLS, RTSP, MP4, JPEG) and keeps the cluster state in a
 Raft-replicated SQLite database. libraft comes from bookworm-backports.
CTL

mkdir -p "$OUT"
DEB="$OUT/mediaserver_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
