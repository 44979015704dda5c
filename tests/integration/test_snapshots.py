"""Live JPEG snapshots from a real camera: sizes decoded by ffprobe, and one
decode per keyframe however many clients ask at once (the node's
ms_snapshot_decodes_total counter)."""

import http.client as httpclient
import re
import threading
import time

import pytest

from mslib import ffprobe, http


def decodes(n, stream):
    m = re.search(r'^ms_snapshot_decodes_total\{stream="%s"\} (\d+)' % stream, n.metrics(), re.M)
    assert m, "ms_snapshot_decodes_total missing from /metrics"
    return int(m.group(1))


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_snapshot_sizes(node, camera, codec):
    cam = camera(size="800x450", video=codec, audio="none", gop=25)
    n = node(streams={"cam": {"url": cam.url(), "channels": ["video"]}})
    n.wait_active("cam", timeout=30)
    n.wait_hls("cam", segments=1)
    full = ffprobe("%s/cam/videoshot.jpg" % n.base)
    assert full[0]["codec_name"] == "mjpeg"
    assert (full[0]["width"], full[0]["height"]) == (800, 450), full[0]
    prev = ffprobe("%s/cam/preview.jpg" % n.base)
    assert prev[0]["codec_name"] == "mjpeg"
    assert (prev[0]["width"], prev[0]["height"]) == (320, 180), prev[0]
    mp4 = ffprobe("%s/cam/preview.mp4" % n.base)
    assert mp4[0]["codec_type"] == "video" and (mp4[0]["width"], mp4[0]["height"]) == (800, 450)
    r = n.get("/cam/preview.jpg")
    assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    assert n.get("/nosuch/videoshot.jpg").status == 404
    # HEAD answers without a body.
    r = http(n.base + "/cam/videoshot.jpg", method="HEAD")
    assert r.status == 200 and r.body == b""


def test_snapshot_200_concurrent(node, camera):
    cam = camera(size="640x360", video="h264", audio="none", gop=25)  # one keyframe per second
    n = node(streams={"cam": {"url": cam.url(), "channels": ["video"]}})
    n.wait_active("cam", timeout=30)
    n.wait_hls("cam", segments=1)
    assert n.get("/cam/videoshot.jpg").status == 200
    before = decodes(n, "cam")
    results = [None] * 200
    start = threading.Barrier(200, timeout=30)

    def one(i):
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        path = "/cam/preview.jpg" if i % 2 else "/cam/videoshot.jpg"
        r = http(n.base + path, timeout=30)
        results[i] = (r.status, r.body[:2])

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    after = decodes(n, "cam")
    bad = [r for r in results if r != (200, b"\xff\xd8")]
    assert not bad, "%d of 200 failed, e.g. %r" % (len(bad), bad[:5])
    # One decode per keyframe at most: 1 keyframe/s while the requests ran
    # (+1 for the keyframe current at the start, +1 for timing slack).
    assert after - before <= int(elapsed) + 2, (before, after, elapsed)
    # Snapshot viewers are counted like HLS viewers and their bytes as output.
    # (output_kbps is an average over the last seconds: poll for it.)
    n.wait_status("cam", lambda s: s["clients"] >= 1 and s["output_kbps"] > 0, timeout=8,
                  what="clients >= 1 and output_kbps > 0")


def test_snapshot_viewers_counted(node, shared_cam):
    """JPEG viewers count in `clients` (one per client address, for the
    client TTL, whatever their User-Agent) and their bytes in output_kbps."""
    n = node(streams={"cam": shared_cam.url("cam2")})
    n.wait_active("cam", timeout=30)
    n.wait_status("cam", lambda s: s.get("hls_ready"), timeout=30, what="hls_ready")
    time.sleep(1.5)
    assert n.status("cam")["clients"] == 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        for i in range(3):
            c = httpclient.HTTPConnection("127.0.0.1", n.http_port, timeout=10,
                                           source_address=("127.0.0.%d" % (2 + i), 0))
            try:
                c.request("GET", "/cam/videoshot.jpg", headers={"User-Agent": "viewer"})
                r = c.getresponse()
                body = r.read()
            finally:
                c.close()
            assert r.status == 200 and body[:2] == b"\xff\xd8", r.status
        time.sleep(0.2)
    st = n.status("cam")
    assert st["clients"] == 3 and st["output_kbps"] > 0, st
