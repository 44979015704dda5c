"""Live fMP4 over HTTP and the live snapshots, read by real clients:
ffmpeg decodes /{stream}/live.mp4 with no error line, several clients at
once; ffprobe decodes videoshot.jpg (full size), preview.jpg (320 wide at
most, even) and the one-frame preview.mp4. Private streams refuse these
without a token and serve them with one.

Needs the routes wired in the HTTP router (GET /{stream}/live.mp4,
videoshot.jpg, preview.jpg, preview.mp4)."""

import http.client
import threading
import time

from mslib import ffmpeg_decode, ffprobe


def test_live_mp4_decodes(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam2")})
    n.wait_active("cam", timeout=30)
    n.wait_hls("cam", segments=1)
    url = "%s/cam/live.mp4" % n.base
    results = [None] * 3

    def one(i):
        results[i] = ffmpeg_decode(url, 4)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in results:
        assert r is not None
        assert r.errors == [], r.errors[:10]
        assert r.frames >= 60, r


def test_snapshots(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam2")})
    n.wait_active("cam", timeout=30)
    n.wait_hls("cam", segments=1)
    st = n.status("cam")
    w, h = st["width"], st["height"]
    full = ffprobe("%s/cam/videoshot.jpg" % n.base)
    assert full[0]["codec_name"] == "mjpeg"
    assert (full[0]["width"], full[0]["height"]) == (w, h)
    prev = ffprobe("%s/cam/preview.jpg" % n.base)
    pw, ph = prev[0]["width"], prev[0]["height"]
    assert prev[0]["codec_name"] == "mjpeg"
    assert pw <= 320 and pw % 2 == 0 and ph % 2 == 0
    assert abs(pw / ph - w / h) < 0.05
    mp4 = ffprobe("%s/cam/preview.mp4" % n.base)
    assert mp4[0]["codec_type"] == "video"
    r = n.get("/cam/videoshot.jpg")
    assert r.status == 200 and r.headers.get("Content-Type", "").startswith("image/jpeg")
    assert r.body[:2] == b"\xff\xd8"


def test_private_stream_needs_token(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam2")}, access={"mode": "private", "whitelist": []})
    n.wait_active("cam", timeout=30)
    for path in ("/cam/live.mp4", "/cam/videoshot.jpg", "/cam/preview.jpg", "/cam/index.m3u8"):
        assert n.get(path).status == 404, path  # as an unknown stream (docs/access.md)
    tok = n.api("/api/v1/streams/cam/tokens", method="POST", body={"ttl_s": 600, "mode": "live"})
    assert tok.status in (200, 201), tok.text
    t = tok.json()["token"]
    assert n.get("/cam/videoshot.jpg?token=" + t[:-1] + ("A" if t[-1] != "A" else "B")).status == 404
    r = ffmpeg_decode("%s/cam/live.mp4?token=%s" % (n.base, t), 3)
    assert r.errors == [] and r.frames >= 40, r


def _hls_viewer(n, src, secs):
    """Plays the live HLS of "cam" from source address src for secs: the
    playlist and each new segment, like a player."""
    seen = set()
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=10, source_address=(src, 0))
        try:
            c.request("GET", "/cam/index.m3u8")
            r = c.getresponse()
            text = r.read().decode(errors="replace")
            for line in text.splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen.add(line)
                    c.request("GET", "/cam/" + line)
                    c.getresponse().read()
        finally:
            c.close()
        time.sleep(0.5)


def _read_status_while(n, name, clients, start_readers):
    """Starts readers, then polls the stream status until clients >= clients
    and output_kbps > 0 (bounded); returns the best status seen."""
    threads = start_readers()
    best = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = n.status(name)
            if best is None or st["clients"] > best["clients"]:
                best = st
            if st["clients"] >= clients and st["output_kbps"] > 0:
                return st
            time.sleep(0.3)
        return best
    finally:
        for t in threads:
            t.join(60)


def test_clients_counted(node, shared_cam):
    """live.mp4 viewers count while connected; HLS viewers (distinct
    client addresses) count through the client table; output_kbps reflects what
    they read."""
    n = node(streams={"cam": shared_cam.url("cam3")})
    n.wait_active("cam", timeout=30)
    # Ready without fetching anything (a playlist fetch is a viewer).
    n.wait_status("cam", lambda s: s.get("hls_ready"), timeout=30, what="hls_ready")
    time.sleep(1.5)  # a few GOPs in the live fMP4 output too
    assert n.status("cam")["clients"] == 0

    def readers(kind):
        def start():
            ts = []
            for i in range(3):
                if kind == "mp4":
                    args = ("%s/cam/live.mp4" % n.base, 6)
                    kw = {}
                    t = threading.Thread(target=ffmpeg_decode, args=args, kwargs=kw)
                else:
                    # one viewer per client address (api/clients.c)
                    t = threading.Thread(target=_hls_viewer, args=(n, "127.0.0.%d" % (2 + i), 6))
                t.start()
                ts.append(t)
            return ts
        return start

    st = _read_status_while(n, "cam", 3, readers("mp4"))
    assert st["clients"] >= 3 and st["output_kbps"] > 0, st
    # live.mp4 viewers are gone once their connection closes.
    deadline = time.monotonic() + 10
    while n.status("cam")["clients"] != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert n.status("cam")["clients"] == 0
    st = _read_status_while(n, "cam", 3, readers("hls"))
    assert st["clients"] >= 3 and st["output_kbps"] > 0, st
