"""Playback sessions (docs/api.md "Sessions") with real viewers of the
shared GStreamer camera: an RTSP client (raw socket: DESCRIBE, SETUP over
TCP-interleaved, PLAY), a live.mp4 client and an HLS client are listed by
GET /api/v1/streams/{id}/sessions with their protocol, address, User-Agent
and growing byte counts; DELETE ends each (RTSP and live.mp4: the
connection; HLS: further requests refused). Playback of a disabled stream
and of a dead camera answers with its reason, only after the access check."""

import json
import socket
import threading
import time
import urllib.parse

import pytest

import mslib

PRIVATE = {"mode": "private", "whitelist": []}


@pytest.fixture
def sess_node(node, shared_cam, free_port):
    dead = free_port()  # nothing listens there: the camera is dead
    n = node(streams={"pub": {"url": shared_cam.url("cam")},
                      "off": {"url": shared_cam.url("cam2"), "enabled": False},
                      "privoff": {"url": shared_cam.url("cam3"), "enabled": False,
                                  "access": PRIVATE},
                      "dead": {"url": "rtsp://127.0.0.1:%d/x" % dead}},
             start=False)
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    n.wait_hls("pub", segments=2, timeout=30)
    return n


def sessions(n, stream="pub"):
    r = n.api("/api/v1/streams/%s/sessions" % stream)
    assert r.status == 200, (r.status, r.text)
    return r.json()


def by_ua(n, ua):
    return [s for s in sessions(n) if s["user_agent"] == ua]


def wait_session(n, ua, timeout=10):
    return mslib.wait_until(lambda: (by_ua(n, ua) or [None])[0], timeout, what="session " + ua)


class Reader(threading.Thread):
    """Reads a socket until EOF (or a marker) and notes when it ended."""

    def __init__(self, sock, end_marker=None):
        super().__init__(daemon=True)
        self.sock, self.end_marker = sock, end_marker
        self.n = 0
        self.tail = b""
        self.ended = None

    def run(self):
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    break
                self.n += len(b)
                self.tail = (self.tail + b)[-16:]
                if self.end_marker and self.tail.endswith(self.end_marker):
                    break
        except OSError:
            pass
        self.ended = time.monotonic()


def rtsp_viewer(n, ua):
    """DESCRIBE, SETUP (TCP interleaved), PLAY on one connection; returns a
    started Reader of the media that follows."""
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10)
    base = "rtsp://127.0.0.1:%d/pub" % n.rtsp_port
    cseq = [0]

    def req(method, uri, extra=""):
        cseq[0] += 1
        s.sendall(("%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: %s\r\n%s\r\n"
                   % (method, uri, cseq[0], ua, extra)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            b = s.recv(4096)
            assert b, "connection closed during " + method
            data += b
        head, rest = data.split(b"\r\n\r\n", 1)
        head = head.decode()
        clen = 0
        for line in head.split("\r\n"):
            if line.lower().startswith("content-length:"):
                clen = int(line.split(":", 1)[1])
        while len(rest) < clen:
            rest += s.recv(4096)
        assert head.split(" ")[1] == "200", head
        return head, rest[:clen].decode(errors="replace")

    _, sdp = req("DESCRIBE", base, "Accept: application/sdp\r\n")
    controls = [l.split(":", 1)[1].strip() for l in sdp.split("\r\n") if l.startswith("a=control:")]
    track = [c for c in controls if c != "*"][0]
    turl = track if track.startswith("rtsp://") else base + "/" + track
    head, _ = req("SETUP", turl, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    sid = [l for l in head.split("\r\n") if l.lower().startswith("session:")][0]
    sid = sid.split(":", 1)[1].split(";")[0].strip()
    req("PLAY", base, "Session: %s\r\nRange: npt=0-\r\n" % sid)
    rd = Reader(s)
    rd.start()
    return s, rd


def mp4_viewer(n, ua):
    s = socket.create_connection(("127.0.0.1", n.http_port), timeout=10)
    s.sendall(("GET /pub/live.mp4 HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n"
               % ua).encode())
    rd = Reader(s, end_marker=b"\r\n0\r\n\r\n")  # the last chunk of a chunked body
    rd.start()
    return s, rd


def rtsp_describe(n, stream):
    """One DESCRIBE; returns (status, reason phrase, head)."""
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10)
    try:
        s.sendall(("DESCRIBE rtsp://127.0.0.1:%d/%s RTSP/1.0\r\nCSeq: 1\r\n\r\n"
                   % (n.rtsp_port, stream)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        line = head.split("\r\n", 1)[0].split(" ", 2)
        return int(line[1]), line[2], head
    finally:
        s.close()


def hls_get(n, path, ua):
    return mslib.http("http://127.0.0.1:%d/%s" % (n.http_port, path), headers={"User-Agent": ua})


def test_sessions_listed_and_ended(sess_node):
    n = sess_node
    # HLS: a playlist and a segment
    r = hls_get(n, "pub/index.m3u8", "hls-viewer/1")
    assert r.status == 200, r.text
    seg = [l for l in r.text.splitlines() if l and not l.startswith("#")][0]
    assert hls_get(n, "pub/" + seg, "hls-viewer/1").status == 200
    # a HEAD is not a viewer
    mslib.http("http://127.0.0.1:%d/pub/index.m3u8" % n.http_port, method="HEAD",
               headers={"User-Agent": "head-only/1"})
    rs, rrd = rtsp_viewer(n, "rtsp-viewer/1")
    ms, mrd = mp4_viewer(n, "mp4-viewer/1")
    try:
        h = wait_session(n, "hls-viewer/1")
        rt = wait_session(n, "rtsp-viewer/1")
        mp = wait_session(n, "mp4-viewer/1")
        assert not by_ua(n, "head-only/1")
        assert (h["protocol"], rt["protocol"], mp["protocol"]) == ("hls", "rtsp", "mp4")
        now = time.time()
        for s in (h, rt, mp):
            assert s["ip"] == "127.0.0.1", s
            assert now - 60 < s["since"] <= now + 1, s
        assert len({h["id"], rt["id"], mp["id"]}) == 3
        assert h["bytes"] >= len(r.body)
        # bytes grow while the connections play (RTSP counts are updated
        # every second)
        mslib.wait_until(lambda: all(s["bytes"] > 0 for s in sessions(n)), 5, what="bytes > 0")
        b0 = {s["id"]: s["bytes"] for s in sessions(n)}
        time.sleep(1.5)
        b1 = {s["id"]: s["bytes"] for s in sessions(n)}
        assert b1[rt["id"]] > b0[rt["id"]] > 0, ("rtsp", b0, b1, rrd.n)
        assert b1[mp["id"]] > b0[mp["id"]] > 0, ("mp4", b0, b1, mrd.n)

        # unknown session and unknown stream: 404
        assert n.api("/api/v1/streams/pub/sessions/nosuch", method="DELETE").status == 404
        assert n.api("/api/v1/streams/nosuch/sessions").status == 404
        # another stream's session id is not this stream's
        assert n.api("/api/v1/streams/off/sessions/%s" % rt["id"], method="DELETE").status == 404
        # admin auth on both
        assert n.api("/api/v1/streams/pub/sessions", auth=False).status == 401
        assert n.api("/api/v1/streams/pub/sessions/%s" % rt["id"], method="DELETE",
                     auth=False).status == 401

        # RTSP: the connection ends within ~2 s and leaves the list
        t0 = time.monotonic()
        assert n.api("/api/v1/streams/pub/sessions/%s" % rt["id"], method="DELETE").status == 204
        rrd.join(5)
        assert rrd.ended is not None and rrd.ended - t0 < 2.5, "RTSP stream not ended"
        mslib.wait_until(lambda: not by_ua(n, "rtsp-viewer/1"), 3, what="rtsp session gone")

        # live.mp4: the body ends
        t0 = time.monotonic()
        assert n.api("/api/v1/streams/pub/sessions/%s" % mp["id"], method="DELETE").status == 204
        mrd.join(5)
        assert mrd.ended is not None and mrd.ended - t0 < 2.5, "live.mp4 body not ended"
        mslib.wait_until(lambda: not by_ua(n, "mp4-viewer/1"), 3, what="mp4 session gone")

        # HLS: the next playlist request is refused
        assert n.api("/api/v1/streams/pub/sessions/%s" % h["id"], method="DELETE").status == 204
        r = hls_get(n, "pub/index.m3u8", "hls-viewer/1")
        assert r.status == 403 and r.json()["error"] == "session ended by an administrator", r.text
        assert hls_get(n, "pub/" + seg, "hls-viewer/1").status == 403
        assert hls_get(n, "pub/videoshot.jpg", "hls-viewer/1").status == 403
        assert not by_ua(n, "hls-viewer/1")
        # a repeated DELETE finds nothing
        assert n.api("/api/v1/streams/pub/sessions/%s" % h["id"], method="DELETE").status == 404
    finally:
        rs.close()
        ms.close()


def test_disabled_and_dead_answers(sess_node):
    n = sess_node
    base = "http://127.0.0.1:%d/" % n.http_port
    for path in ("off/index.m3u8", "off/live.mp4", "off/videoshot.jpg"):
        r = mslib.http(base + path)
        assert r.status == 503, (path, r.status, r.text)
        assert r.json()["error"] == "stream disabled", (path, r.text)
        assert "Retry-After" not in r.headers, (path, r.headers)
    # a private disabled stream: an unauthorised client learns nothing more
    # than an unknown stream tells
    for path in ("index.m3u8", "live.mp4", "videoshot.jpg"):
        a = mslib.http(base + "privoff/" + path)
        b = mslib.http(base + "nosuch-stream/" + path)
        assert (a.status, a.body) == (b.status, b.body) == (404, b.body), (path, a.text, b.text)
    # RTSP: an allowed DESCRIBE of a disabled stream says so; a refused
    # one is answered as an unknown name is
    assert rtsp_describe(n, "off")[:2] == (503, "Stream Disabled")
    a, b = rtsp_describe(n, "privoff"), rtsp_describe(n, "nosuch-stream")
    assert a[0] == b[0] == 401, (a, b)
    # with a token it gets the reason
    t = n.api("/api/v1/streams/privoff/tokens", method="POST", body={"ttl_s": 60}).json()["token"]
    r = mslib.http(base + "privoff/index.m3u8?token=" + urllib.parse.quote(t))
    assert r.status == 503 and r.json()["error"] == "stream disabled", r.text
    # a dead camera: 503 with status.reason once the source has failed
    mslib.wait_until(lambda: n.status("dead").get("reason"), 15, what="dead camera reason")
    r = mslib.http(base + "dead/index.m3u8")
    assert r.status == 503 and r.headers.get("Retry-After") == "1", r.text
    j = r.json()
    assert j["error"] == "stream not ready" and j["status"]["reason"], j
    r = mslib.http(base + "dead/live.mp4")
    assert r.status == 503 and r.json()["status"]["reason"], r.text
