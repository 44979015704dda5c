"""Low-Latency HLS: parts, preload hint, blocking playlist reload, and
many clients sharing the same segment bytes."""

import re
import threading
import time

from mslib import http, parse_playlist

PART_RE = re.compile(r"^part(\d+)\.(\d+)\.(ts|m4s)$")


def hint_of(pl):
    hint = pl["preload_hint"]
    assert hint and hint.get("TYPE") == "PART", pl["preload_hint"]
    uri = hint["URI"].split("?")[0]
    m = PART_RE.match(uri)
    assert m, "unexpected preload hint URI %r" % hint["URI"]
    return uri, int(m.group(1)), int(m.group(2))


def listed_parts(pl):
    return [p["URI"].split("?")[0] for p in pl["parts"]]


def test_llhls_playlist_and_blocking_reload(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam2")})
    n.wait_active("cam", timeout=30)
    text = n.wait_hls("cam", segments=2)
    pl = parse_playlist(text)
    for tag in ("#EXT-X-PART", "#EXT-X-PRELOAD-HINT", "#EXT-X-PART-INF", "#EXT-X-SERVER-CONTROL"):
        assert tag in pl["tags"], "%s missing:\n%s" % (tag, text)
    assert "CAN-BLOCK-RELOAD=YES" in pl["server_control"], text
    assert "PART-HOLD-BACK" in pl["server_control"], text

    uri, msn, part = hint_of(pl)
    assert uri not in listed_parts(pl)
    t0 = time.monotonic()
    r = n.get("/cam/index.m3u8?_HLS_msn=%d&_HLS_part=%d" % (msn, part), timeout=10)
    dt = time.monotonic() - t0
    assert r.status == 200, (r.status, r.text[:300])
    assert dt < 1.5, "blocking reload answered after %.2fs" % dt
    new = parse_playlist(r.text)
    parts = listed_parts(new)
    # The hinted part is listed, or (when a keyframe closed segment msn
    # first) the segment msn is complete and part 0 of msn+1 is listed.
    rolled = any(s["msn"] == msn for s in new["segments"]) and ("part%d.0.%s" % (msn + 1, uri.rsplit(".", 1)[1])) in parts
    assert uri in parts or rolled, "the blocking reload does not list %s:\n%s" % (uri, r.text)

    got = n.get("/cam/" + (uri if uri in parts else "part%d.0.%s" % (msn + 1, uri.rsplit(".", 1)[1])))
    assert got.status == 200 and len(got.body) > 0
    if uri.endswith(".ts"):
        assert got.body[0] == 0x47 and len(got.body) % 188 == 0

    # Too far ahead: 400 (RFC 8216bis 6.2.5.2).
    last = new["media_sequence"] + len(new["segments"]) - 1
    far = n.get("/cam/index.m3u8?_HLS_msn=%d&_HLS_part=0" % (last + 10), timeout=10)
    assert far.status == 400, far.status


def test_preload_hint_request_blocks_until_part_exists(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam2")})
    n.wait_active("cam", timeout=30)
    pl = parse_playlist(n.wait_hls("cam", segments=2))
    uri, _msn, _part = hint_of(pl)
    t0 = time.monotonic()
    r = n.get("/cam/" + uri, timeout=10)
    dt = time.monotonic() - t0
    assert r.status == 200, r.status
    assert len(r.body) > 0
    assert dt < 1.5, "preload-hinted part served after %.2fs" % dt


def fetch_all(url, nclients):
    results = [None] * nclients
    barrier = threading.Barrier(nclients)

    def run(i):
        try:
            barrier.wait(timeout=20)
            r = http(url, timeout=30)
            results[i] = (r.status, r.body)
        except Exception as e:  # reported below
            results[i] = ("exception", repr(e).encode())

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_50_clients_get_identical_segment_and_part(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam3")})
    n.wait_active("cam", timeout=30)
    pl = parse_playlist(n.wait_hls("cam", segments=2))
    seg = pl["segments"][-1]["uri"]

    results = fetch_all("%s/cam/%s" % (n.base, seg), 50)
    statuses = [r[0] for r in results]
    assert statuses == [200] * 50, statuses
    bodies = {r[1] for r in results}
    assert len(bodies) == 1, "clients got %d different bodies for %s" % (len(bodies), seg)
    body = bodies.pop()
    assert len(body) > 10000, len(body)
    if seg.split("?")[0].endswith(".ts"):
        assert len(body) % 188 == 0 and all(body[i] == 0x47 for i in range(0, len(body), 188))

    # 50 clients blocked on the same not-yet-produced part get the same bytes.
    uri, _msn, _part = hint_of(parse_playlist(n.get("/cam/index.m3u8").text))
    results = fetch_all("%s/cam/%s" % (n.base, uri), 50)
    assert [r[0] for r in results] == [200] * 50, [r[0] for r in results]
    assert len({r[1] for r in results}) == 1
    assert n.alive()
