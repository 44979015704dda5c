"""One playback decision for every protocol (docs/access.md): the archive
window of a token held on HLS, MP4, JPEG and RTSP (a seek outside it
refused, RTSP playback ending at its end), decisions re-made for every
resource an RTSP connection names, sessions ending when their token
expires, and nothing learnt about private streams without credentials
(/metrics, unknown vs refused).

One node with a private recording stream (2 s chunks, GOP 1 s) serves every
test of the module; the live tests run first while the archive fills."""

import http.client
import re
import time
import urllib.parse
from datetime import datetime, timezone

import pytest

from mslib import Node, ffmpeg_decode, free_port
from test_browser import web_server  # noqa: F401  (fixture)
from test_dvr import _RtspArchive, _first_frame_wall, dvr, media_duration
from test_dvr_browser import play

FPS = 25
PRIVATE = {"mode": "private", "whitelist": []}


@pytest.fixture(scope="module")
def win(tmp_path_factory, ms_binary, shared_cam):
    n = Node(tmp_path_factory.mktemp("win") / "node", name="n1")
    n.add_stream("priv", shared_cam.url("cam"), access=PRIVATE, dvr=dvr(chunk_s=2))
    n.add_stream("pub", shared_cam.url("cam2"))
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    n.wait_active("priv", timeout=30)
    n.t0 = time.time()
    yield n
    assert n.stop() == 0


def token(n, **body):
    r = n.api("/api/v1/streams/priv/tokens", method="POST", body=body)
    assert r.status == 200, (r.status, r.text)
    return r.json()["token"]


def recorded_window(n, need_s):
    """F (UTC s) with [F - 1, F + need_s] recorded: F a whole second, so
    (almost surely) between two keyframes and not a chunk start."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        r = n.api("/api/v1/streams/priv/ranges")
        rg = r.json().get("ranges", []) if r.status == 200 else []
        if rg:
            f = int(rg[0]["from"]) + 2
            if rg[-1]["from"] + rg[-1]["duration"] >= f + need_s + 1:
                return f
        time.sleep(0.5)
    raise AssertionError("archive not recorded: %r" % rg)


def http_get(n, path, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_metrics_do_not_name_private_streams(win):
    """/metrics without metrics_auth: the private stream's samples carry a
    hash label, not its name; the public one keeps its name."""
    st, body = http_get(win, "/metrics")
    assert st == 200
    text = body.decode()
    assert 'stream="pub"' in text
    assert 'stream="priv"' not in text and "priv" not in text, text[:2000]
    assert re.search(r'ms_stream_up\{stream="~[0-9a-f]{16}",role="primary",server="[^"]*"\} ', text), text[:2000]


def test_unknown_and_refused_same_answer_http(win):
    for route in ("index.m3u8", "live.mp4", "videoshot.jpg", "archive-1700000000-60.m3u8",
                  "archive-1700000000-60.mp4"):
        a = http_get(win, "/nosuch/" + route)
        b = http_get(win, "/priv/" + route)
        c = http_get(win, "/priv/" + route + "?token=" + "A" * 40)
        assert a == b == c and a[0] == 404, (route, a, b, c)


def test_live_sessions_end_at_token_expiry(win):
    """live.mp4 and RTSP sessions of a token with a few seconds to live end
    when it expires (they went on for as long as the client read before)."""
    ttl = 3
    t = token(win, ttl_s=ttl)
    exp = time.time() + ttl + 1  # expires: rounded up to the next second
    c = http.client.HTTPConnection("127.0.0.1", win.http_port, timeout=15)
    c.request("GET", "/priv/live.mp4?token=" + t)
    r = c.getresponse()
    assert r.status == 200
    got, ended_at = 0, None
    deadline = time.time() + ttl + 10
    while time.time() < deadline:
        b = r.read1(65536)
        if not b:
            ended_at = time.time()
            break
        got += len(b)
    c.close()
    assert got > 10000, got
    assert ended_at is not None, "live.mp4 still streaming %.0f s after the token expired" % (
        deadline - exp)
    assert ended_at - exp < 2.5, ended_at - exp

    t = token(win, ttl_s=ttl)
    exp = time.time() + ttl + 1
    u = "rtsp://127.0.0.1:%d/priv?token=%s" % (win.rtsp_port, t)
    dec = ffmpeg_decode(u, 15, extra_in=("-rtsp_transport", "tcp"), timeout=30)
    end = time.time()
    assert dec.frames >= FPS, dec
    assert end - exp < 3.0, (end - exp, dec)  # not the 15 s asked for


def test_rtsp_decides_every_resource(win):
    """After DESCRIBE ?token=LIVE, a DESCRIBE ?from=T on the same
    connection is decided again: without a token it is refused (it played
    the archive), with the live token it is 403 (wrong mode)."""
    f = recorded_window(win, 2)
    live = token(win, ttl_s=600)
    c = _RtspArchive(win.rtsp_port, "priv?token=" + live)
    try:
        assert c.req("DESCRIBE", c.url)[0] == 200
        st, h, _ = c.req("DESCRIBE", "rtsp://127.0.0.1:%d/priv?from=%d" % (win.rtsp_port, f))
        assert st == 401, (st, h)
        st, h, _ = c.req("DESCRIBE", "rtsp://127.0.0.1:%d/priv?from=%d&token=%s"
                         % (win.rtsp_port, f, live))
        assert st == 403, (st, h)
        # the live resource itself still plays on this connection
        assert c.req("DESCRIBE", c.url)[0] == 200
    finally:
        c.s.close()


def extinf_total(pl):
    return sum(float(x) for x in re.findall(r"#EXTINF:([0-9.]+),", pl))


def pdt(line):
    return datetime.strptime(line, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def test_archive_window_http(win, tmp_path):
    """A token for [F, F+4): the MP4 export of a whole day from F is cut to
    the window; the playlist lists exactly it (first segment from the
    keyframe before F, which is served); segments, JPEGs outside it are
    refused; ffmpeg decodes the window with no error."""
    f = recorded_window(win, 12)
    t = token(win, ttl_s=600, mode="archive", duration_s=4, **{"from": f})
    # MP4: window + at most one GOP (it returned everything after F)
    st, body = http_get(win, "/priv/archive-%d-86400.mp4?token=%s" % (f, t))
    assert st == 200, body[:200]
    p = tmp_path / "w.mp4"
    p.write_bytes(body)
    d = media_duration(str(p))
    assert 3.9 <= d <= 5.1, d
    # playlist: [keyframe <= F, F+4)
    st, body = http_get(win, "/priv/archive-%d-86400.m3u8?token=%s" % (f, t))
    assert st == 200, body[:300]
    pl = body.decode()
    assert 3.5 <= extinf_total(pl) <= 5.1, pl
    starts = [pdt(x) for x in re.findall(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", pl)]
    assert f - 1.05 <= starts[0] <= f + 0.05, (starts[0], f)
    assert starts[-1] < f + 4, pl
    durs = [float(x) for x in re.findall(r"#EXTINF:([0-9.]+),", pl)]
    end = starts[-1] + durs[-1]
    assert f + 4 - 0.6 <= end <= f + 4 + 0.6, (end - f, pl)  # the last ends at F+4
    uris = [ln for ln in pl.splitlines() if ln and not ln.startswith("#")]
    uris += re.findall(r'URI="([^"]+)"', pl)
    for u in uris:
        st, b = http_get(win, "/priv/" + u)
        assert st == 200, (u, st, b[:200])  # the first one was refused
    dec = ffmpeg_decode("%s/priv/archive-%d-86400.m3u8?token=%s" % (win.base, f, t), 30)
    assert dec.errors == [] and dec.rc == 0, dec
    assert 3.5 * FPS <= dec.frames <= 5.1 * FPS, dec
    # a segment after the window (listed by a wider token) is refused
    wide = token(win, ttl_s=600, mode="archive", duration_s=60, **{"from": f})
    st, body = http_get(win, "/priv/archive-%d-10.m3u8?token=%s" % (f, wide))
    assert st == 200
    wpl = body.decode()
    seg_t = [(pdt(a), u) for a, u in re.findall(
        r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n#EXTINF:[^\n]*\n(archive-seg-[^?\n]+)", wpl)]
    late = [u for s, u in seg_t if s >= f + 4]
    assert late, wpl
    assert http_get(win, "/priv/%s?token=%s" % (late[-1], t))[0] == 403
    assert http_get(win, "/priv/%s?token=%s" % (late[-1], wide))[0] == 200
    # nothing of the chunks before the window: every segment that ends
    # before a window [F+6, F+10) is refused under its token (the last GOP
    # of each earlier chunk was served), the one holding F+6 is served
    late_t = token(win, ttl_s=600, mode="archive", duration_s=4, **{"from": f + 6})
    st, body = http_get(win, "/priv/archive-%d-8.m3u8?token=%s" % (f, wide))
    assert st == 200
    segs = [(pdt(a), float(d), u) for a, d, u in re.findall(
        r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n#EXTINF:([0-9.]+),\n(archive-seg-[^?\n]+)",
        body.decode())]
    before = [u for s0, d, u in segs if s0 + d <= f + 6 - 0.05]
    holding = [u for s0, d, u in segs if s0 <= f + 6 < s0 + d]
    assert len(before) >= 2 and holding, segs
    for u in before:
        assert http_get(win, "/priv/%s?token=%s" % (u, late_t))[0] == 403, u
    # the segment holding F+6 starts at a keyframe at most one GOP before,
    # or is split there: either way the part from that keyframe is served
    st, body = http_get(win, "/priv/archive-%d-4.m3u8?token=%s" % (f + 6, late_t))
    assert st == 200, body
    for u in [ln for ln in body.decode().splitlines() if ln and not ln.startswith("#")]:
        assert http_get(win, "/priv/" + u)[0] == 200, u
    # -now: a window that has ended gives a VOD list up to its end; one
    # still open an EVENT list growing to live
    st, body = http_get(win, "/priv/archive-%d-now.m3u8?token=%s" % (f, t))
    assert st == 200 and b"#EXT-X-PLAYLIST-TYPE:VOD" in body and b"#EXT-X-ENDLIST" in body, body
    assert 3.5 <= extinf_total(body.decode()) <= 5.1, body
    st, body = http_get(win, "/priv/archive-%d-now.m3u8?token=%s" % (f, wide))
    assert st == 200 and b"#EXT-X-PLAYLIST-TYPE:EVENT" in body, body
    # a playlist or an export wholly after the window: 403
    assert http_get(win, "/priv/archive-%d-4.m3u8?token=%s" % (f + 5, t))[0] == 403
    assert http_get(win, "/priv/archive-%d-4.mp4?token=%s" % (f + 5, t))[0] == 403
    # JPEG ?at= inside and outside
    assert http_get(win, "/priv/videoshot.jpg?at=%d&token=%s" % (f, t))[0] == 200
    assert http_get(win, "/priv/videoshot.jpg?at=%d&token=%s" % (f + 5, t))[0] == 403


def test_archive_share_link_from_between_keyframes(win):
    """An archive share link whose from is not a chunk start plays (its
    first segment, from the keyframe before from, was refused)."""
    f = recorded_window(win, 6)
    r = win.api("/api/v1/streams/priv/share", method="POST",
                body={"mode": "archive", "protocol": "hls", "ttl_s": 600, "from": f})
    assert r.status == 200, r.text
    dec = ffmpeg_decode(r.json()["url"], 4)
    assert dec.errors == [] and dec.rc == 0, dec
    assert dec.frames >= 4 * FPS * 0.9, dec


def test_archive_share_link_plays_in_hlsjs(win, web_server, tmp_path):  # noqa: F811
    """The same kind of link in Chromium with hls.js: it plays (no fatal
    error, no network error: the first segment is served)."""
    f = recorded_window(win, 6)
    r = win.api("/api/v1/streams/priv/share", method="POST",
                body={"mode": "archive", "protocol": "hls", "ttl_s": 600, "from": f})
    assert r.status == 200, r.text
    res = play("%s/index.html?src=%s" % (web_server, urllib.parse.quote(r.json()["url"], safe="")),
               tmp_path / "hls")
    assert not [e for e in res["errors"] if "networkError" in e], res


def clock(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def test_archive_window_rtsp(win):
    """RTSP ?from= with a token for [F, F+4): a Range: clock= seek outside
    the window is 457; playback ends at F+4 with RTCP BYE (ffmpeg stops
    there instead of playing the whole archive)."""
    f = recorded_window(win, 10)
    t = token(win, ttl_s=600, mode="archive", duration_s=4, **{"from": f})
    c = _RtspArchive(win.rtsp_port, "priv?from=%d&token=%s" % (f, t))
    try:
        st, h, _ = c.req("DESCRIBE", c.url)
        assert st == 200, (st, h)
        base = h["content-base"].rstrip("/")
        assert c.req("SETUP", base + "/trackID=0?from=%d&token=%s" % (f, t),
                     "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")[0] == 200
        ctl = "%s?from=%d&token=%s" % (base, f, t)
        for outside in (f + 70, f + 4, f - 5):
            st, h, _ = c.req("PLAY", ctl, "Range: clock=%s-\r\n" % clock(outside))
            assert st == 457, (outside, st, h)
        st, h, _ = c.req("PLAY", ctl, "Range: clock=%s-\r\n" % clock(f + 1))
        assert st == 200, (st, h)
        pkts = c.packets(5.0)
        wall, rtp = _first_frame_wall(pkts)
        assert f - 0.05 <= wall <= f + 1.05, (wall, f)
        # RTCP BYE (RFC 3550 6.6: V=2, SC=1, PT=203) once the window ends
        assert any(b"\x81\xcb\x00\x01" in p for _, ch, p in pkts if ch == 1), "no RTCP BYE"
        assert not [p for m, ch, p in c.packets(1.5) if ch == 0], "RTP after the window's end"
    finally:
        c.s.close()
    # a position allowed by an earlier token of the connection is not
    # played under a later one whose window does not hold it
    later = token(win, ttl_s=600, mode="archive", duration_s=60, **{"from": f + 6})
    c = _RtspArchive(win.rtsp_port, "priv?from=%d&token=%s" % (f, t))
    try:
        st, h, _ = c.req("DESCRIBE", c.url)
        assert st == 200, (st, h)
        base = h["content-base"].rstrip("/")
        assert c.req("SETUP", base + "/trackID=0?from=%d&token=%s" % (f, t),
                     "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")[0] == 200
        st, h, _ = c.req("PLAY", "%s?from=%d&token=%s" % (base, f + 6, later))
        assert st == 457, (st, h)
        st, h, _ = c.req("PLAY", "%s?from=%d&token=%s" % (base, f + 6, later),
                         "Range: clock=%s-\r\n" % clock(f + 6))
        assert st == 200, (st, h)
    finally:
        c.s.close()
    u = "rtsp://127.0.0.1:%d/priv?from=%d&token=%s" % (win.rtsp_port, f, t)
    dec = ffmpeg_decode(u, 20, extra_in=("-rtsp_transport", "tcp"), timeout=40)
    assert dec.errors == [] and dec.rc == 0, dec
    assert 3.5 * FPS <= dec.frames <= 5.1 * FPS, dec
    assert dec.elapsed < 10, dec
