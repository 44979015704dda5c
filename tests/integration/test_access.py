"""Playback access control on every live playback route (HLS playlist and
segments, live.mp4, JPEG) and the token / share-link API, with real
clients: the node listens on 127.0.0.1 and the tests connect from
127.0.0.1 and from 127.0.0.2 (Linux routes all of 127/8 on lo) by binding
the client socket's source address."""

import http.client
import time

from mslib import ffmpeg_decode, parse_playlist

PROTECTED = {"mode": "protected", "whitelist": ["127.0.0.1/32"]}
PRIVATE = {"mode": "private", "whitelist": []}


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def fetch(n, path, src="127.0.0.1", headers=None, limit=1 << 20):
    """GET from a chosen source address; reads at most `limit` bytes of the
    body (live.mp4 never ends)."""
    c = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=15, source_address=(src, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read(limit) if r.status == 200 else r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
    finally:
        c.close()


def token(n, stream, **body):
    r = n.api("/api/v1/streams/%s/tokens" % stream, method="POST", body=body)
    assert r.status == 200, (r.status, r.text)
    j = r.json()
    assert j["expires"] > time.time()
    return j["token"]


def wait_ready(n, name, tok=None):
    """Waits for two HLS segments (through the access check) and returns the
    relative URI of a segment as listed (with its ?token= when tok)."""
    q = "?token=" + tok if tok else ""
    deadline = time.monotonic() + 40
    last = None
    while time.monotonic() < deadline:
        r = fetch(n, "/%s/index.m3u8%s" % (name, q))
        last = (r.status, r.body[:200])
        if r.status == 200:
            pl = parse_playlist(r.body.decode())
            if len(pl["segments"]) >= 2:
                return pl["segments"][-1]["uri"]
        time.sleep(0.2)
    raise AssertionError("HLS of %s not ready: %r" % (name, last))


def routes(name, seg, q=""):
    """The four playback routes; seg is a segment URI as listed (it carries
    the playlist's token, if any); q is the query for the other three."""
    segpath = "/%s/%s" % (name, seg.split("?")[0])
    return {
        "playlist": "/%s/index.m3u8%s" % (name, q),
        "segment": segpath + q,
        "live.mp4": "/%s/live.mp4%s" % (name, q),
        "jpeg": "/%s/videoshot.jpg%s" % (name, q),
    }


def check_body(what, r):
    assert r.status == 200, (what, r.status, r.body[:200])
    assert r.headers.get("access-control-allow-origin") == "*", (what, r.headers)
    if what == "playlist":
        assert r.body.startswith(b"#EXTM3U")
    elif what == "segment":
        assert len(r.body) > 1000
    elif what == "live.mp4":
        assert r.body[4:8] == b"ftyp", r.body[:16]
    else:
        assert r.body[:2] == b"\xff\xd8"


def test_public_and_protected(node, shared_cam):
    n = node(streams={"pub": {"url": shared_cam.url("cam")},
                      "prot": {"url": shared_cam.url("cam2"), "access": PROTECTED}})
    seg_pub = wait_ready(n, "pub")
    seg_prot = wait_ready(n, "prot")  # from 127.0.0.1: in the whitelist
    for what, path in routes("pub", seg_pub).items():
        check_body(what, fetch(n, path, src="127.0.0.2", limit=4096))
    for what, path in routes("prot", seg_prot).items():
        check_body(what, fetch(n, path, src="127.0.0.1", limit=4096))
        # refused as an unknown stream is (names cannot be probed)
        r = fetch(n, path, src="127.0.0.2")
        assert r.status == 404, (what, r.status, r.body[:200])
        assert r.body == fetch(n, path.replace("/prot/", "/nosuch/"), src="127.0.0.2").body
        assert b"unknown stream" in r.body and r.headers["content-type"] == "application/json"
        assert r.headers.get("access-control-allow-origin") == "*"
        # Forwarding headers from an untrusted peer are ignored.
        r = fetch(n, path, src="127.0.0.2", headers={"X-Forwarded-For": "127.0.0.1",
                                                      "Forwarded": "for=127.0.0.1"})
        assert r.status == 404, (what, r.status)
    # A valid token admits a client outside the whitelist.
    t = token(n, "prot", ttl_s=60)
    for what, path in routes("prot", seg_prot, "?token=" + t).items():
        check_body(what, fetch(n, path, src="127.0.0.2", limit=4096))
    assert "playback refused" in n.log_text()


def test_trusted_proxy(node, shared_cam):
    n = node(streams={"prot": {"url": shared_cam.url("cam"), "access": PROTECTED}},
             extra_cfg={"trusted_proxies": ["127.0.0.2/32"]})
    seg = wait_ready(n, "prot")
    for what, path in routes("prot", seg).items():
        # 127.0.0.2 is a trusted proxy: the client it names is believed.
        check_body(what, fetch(n, path, src="127.0.0.2", headers={"X-Forwarded-For": "127.0.0.1"},
                               limit=4096))
        r = fetch(n, path, src="127.0.0.2", headers={"X-Forwarded-For": "127.0.0.5"})
        assert r.status == 404, (what, r.status)
        # RFC 7239 Forwarded wins over X-Forwarded-For.
        r = fetch(n, path, src="127.0.0.2", headers={"Forwarded": "for=127.0.0.1",
                                                      "X-Forwarded-For": "127.0.0.5"})
        assert r.status == 200, (what, r.status)
        # 127.0.0.3 is not trusted.
        r = fetch(n, path, src="127.0.0.3", headers={"X-Forwarded-For": "127.0.0.1"})
        assert r.status == 404, (what, r.status)


def test_private_tokens(node, shared_cam):
    n = node(streams={"priv": {"url": shared_cam.url("cam"), "access": PRIVATE},
                      "other": {"url": shared_cam.url("cam2"), "access": PRIVATE}})
    n.wait_active("priv", timeout=30)
    good = token(n, "priv", ttl_s=600, mode="live")
    seg = wait_ready(n, "priv", good)
    assert "token=" + good in seg, seg  # the playlist carries the token into URIs
    plain = routes("priv", seg)
    for what, path in plain.items():
        # without a token: the very answer of an unknown stream
        r = fetch(n, path)
        assert r.status == 404, (what, r.status)
        assert r.headers.get("access-control-allow-origin") == "*"
        assert r.body == fetch(n, path.replace("/priv/", "/nosuch/")).body, what
    for what, path in routes("priv", seg, "?token=" + good).items():
        check_body(what, fetch(n, path, limit=4096))

    tampered = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    other = token(n, "other", ttl_s=600)
    bound = token(n, "priv", ttl_s=600, ip="127.0.0.9")
    mine = token(n, "priv", ttl_s=600, ip="127.0.0.2")
    short = token(n, "priv", ttl_s=1)
    for what, path in routes("priv", seg, "?token=" + short).items():
        check_body(what, fetch(n, path, limit=4096))
    for what, path in routes("priv", seg, "?token=" + mine).items():
        check_body(what, fetch(n, path, src="127.0.0.2", limit=4096))
    time.sleep(2.2)
    # not a genuine token of this stream: as unknown; a genuine one that
    # does not allow this request: 403 with the reason
    refusals = {"tampered": (tampered, 404), "other stream": (other, 404),
                "wrong ip": (bound, 403), "expired": (short, 403), "garbage": ("x" * 40, 404)}
    for why, (tok, code) in refusals.items():
        for what, path in routes("priv", seg, "?token=" + tok).items():
            r = fetch(n, path)
            assert r.status == code, (why, what, r.status, r.body[:200])
    # The IP-bound token from its own address still works; not from another.
    assert fetch(n, routes("priv", seg, "?token=" + mine)["jpeg"], src="127.0.0.2").status == 200
    assert fetch(n, routes("priv", seg, "?token=" + mine)["jpeg"], src="127.0.0.1").status == 403

    # ffmpeg plays the private HLS from the playlist URL alone: every
    # segment/part URI carries the token.
    res = ffmpeg_decode("%s/priv/index.m3u8?token=%s" % (n.base, good), 4)
    assert res.errors == [] and res.frames >= 60, res
    res = ffmpeg_decode("%s/priv/live.mp4?token=%s" % (n.base, good), 3)
    assert res.errors == [] and res.frames >= 40, res

    # Bad token requests.
    for body, field in (({"ttl_s": 0}, "ttl_s"), ({"mode": "dvr"}, "mode"),
                        ({"ip": "not-an-ip"}, "ip"), ({"mode": "archive"}, "from"),
                        ({"bogus": 1}, "bogus"), ({"ttl_s": "60"}, "ttl_s")):
        r = n.api("/api/v1/streams/priv/tokens", method="POST", body=body)
        assert r.status == 400, (body, r.status, r.text)
        assert r.json().get("field") == field, (body, r.text)
    r = n.api("/api/v1/streams/priv/tokens", method="POST", body=b"{not json")
    assert r.status == 400 and "malformed JSON" in r.json()["error"], r.text
    r = n.api("/api/v1/streams/priv/tokens", method="POST", body=b"[1]")
    assert r.status == 400, r.text
    r = n.api("/api/v1/streams/priv/tokens", method="POST", body=b"{" + b" " * 70000 + b"}")
    assert r.status == 413, r.status
    r = n.api("/api/v1/streams/nosuch/tokens", method="POST", body={"ttl_s": 60})
    assert r.status == 404
    r = n.api("/api/v1/streams/priv/tokens", method="POST", body={"ttl_s": 60}, auth=False)
    assert r.status == 401
    r = n.api("/api/v1/streams/priv/tokens", method="GET")
    assert r.status == 405
    # An empty body means every default (live, one hour).
    r = n.api("/api/v1/streams/priv/tokens", method="POST", body=b"")
    assert r.status == 200 and 3500 < r.json()["expires"] - time.time() < 3601, r.text  # at least ttl_s, rounded up to the next second


def test_secret_rotation(node, shared_cam):
    n = node(streams={"priv": {"url": shared_cam.url("cam3"), "access": PRIVATE}})
    t = token(n, "priv", ttl_s=600)
    wait_ready(n, "priv", t)
    assert fetch(n, "/priv/videoshot.jpg?token=" + t).status == 200
    assert n.stop() == 0
    n.cfg["secret"] = "another-secret"
    n.write_config()
    n.exit_code, n.killed = None, False
    n.start()
    wait_ready(n, "priv", token(n, "priv", ttl_s=600))
    r = fetch(n, "/priv/index.m3u8?token=" + t)
    assert r.status == 404, r.status  # no longer a genuine token: as unknown
    assert "bad signature" in n.log_text()


def share(n, stream, **body):
    return n.api("/api/v1/streams/%s/share" % stream, method="POST", body=body)


def test_share_links(node, shared_cam):
    n = node(streams={"priv": {"url": shared_cam.url("cam"), "access": PRIVATE},
                      "low": {"url": shared_cam.url("cam2"), "quality": "low"}})
    n.wait_active("priv", timeout=30)
    r = share(n, "priv", mode="live", protocol="hls", ttl_s=3600)
    assert r.status == 200, r.text
    j = r.json()
    assert j["url"].startswith("http://127.0.0.1:%d/priv/index.m3u8?token=" % n.http_port), j
    assert 3590 < j["expires"] - time.time() < 3601  # at least ttl_s, rounded up to the next second
    wait_ready(n, "priv", j["url"].split("token=")[1])
    res = ffmpeg_decode(j["url"], 3)
    assert res.errors == [] and res.frames >= 40, res

    r = share(n, "priv", mode="live", public=True)
    assert r.status == 409 and r.json()["field"] == "public", r.text
    r = share(n, "priv", mode="live", ttl_s=31 * 86400)
    assert r.status == 400 and r.json()["field"] == "ttl_s", r.text
    r = share(n, "low", mode="archive", **{"from": int(time.time()) - 3600})
    assert r.status == 400 and r.json()["field"] == "mode", r.text
    r = share(n, "priv", mode="archive", **{"from": int(time.time()) - 3600})
    assert r.status == 200 and "/priv/archive-" in r.json()["url"], r.text
    r = share(n, "priv", mode="archive")
    assert r.status == 400 and r.json()["field"] == "from", r.text
    # a from the archive routes would refuse (an unusable URL): 400 at once
    for bad_from, proto in ((2 ** 53, "hls"), (10 ** 11, "hls"), (10 ** 11, "rtsp")):
        r = share(n, "priv", mode="archive", protocol=proto, **{"from": bad_from})
        assert r.status == 400 and r.json()["field"] == "from", (bad_from, r.status, r.text)
        r = n.api("/api/v1/streams/priv/tokens", method="POST",
                  body={"mode": "archive", "from": bad_from})
        assert r.status == 400 and r.json()["field"] == "from", (bad_from, r.status, r.text)
    r = share(n, "priv", protocol="rtsp")  # the node has no RTSP listener here
    assert r.status == 409 and r.json()["field"] == "protocol", r.text
    r = share(n, "priv", protocol="ftp")
    assert r.status == 400 and r.json()["field"] == "protocol", r.text
    r = share(n, "nosuch")
    assert r.status == 404


def test_public_share_link_with_external_access(node, shared_cam):
    n = node(streams={"priv": {"url": shared_cam.url("cam3"), "access": PRIVATE}},
             extra_cfg={"external_access": True})
    n.wait_active("priv", timeout=30)
    r = share(n, "priv", mode="live", public=True)
    assert r.status == 200, r.text
    j = r.json()
    assert j["expires"] is None
    wait_ready(n, "priv", j["url"].split("token=")[1])
    res = ffmpeg_decode(j["url"], 3)
    assert res.errors == [] and res.frames >= 40, res


def test_archive_share_link_plays(node, shared_cam, free_port):
    """Archive share links (HLS and RTSP) of a recording stream: the
    one-day window from `from` plays with ffmpeg once the DVR holds chunks
    there; the link's token is refused on live playback and the playlist is
    refused without it."""
    n = node(streams={"priv": {"url": shared_cam.url("cam"), "access": PRIVATE,
                               "dvr": {"enabled": True, "depth_s": 3600, "chunk_s": 2,
                                       "mode": "continuous"}}}, start=False)
    n.cfg["listen"]["rtsp"] = free_port()
    n.write_config()
    n.start()
    n.wait_active("priv", timeout=30)
    from_t = int(time.time()) - 2
    r = share(n, "priv", mode="archive", protocol="hls", ttl_s=3600, **{"from": from_t})
    assert r.status == 200, r.text
    u = r.json()["url"]
    prefix = "http://127.0.0.1:%d/priv/archive-%d-86400.m3u8?token=" % (n.http_port, from_t)
    assert u.startswith(prefix), u
    tok = u[len(prefix):]
    # about 8 s recorded (2 s chunks)
    deadline = time.monotonic() + 40
    body = b""
    while time.monotonic() < deadline:
        rr = fetch(n, u[len("http://127.0.0.1:%d" % n.http_port):])
        body = rr.body
        if rr.status == 200 and body.count(b"#EXTINF") >= 4:
            break
        time.sleep(0.5)
    assert body.count(b"#EXTINF") >= 4, body[:500]
    res = ffmpeg_decode(u, 6)
    assert res.errors == [] and res.rc == 0 and res.frames >= 6 * 25 * 0.9, res
    assert fetch(n, "/priv/archive-%d-86400.m3u8" % from_t).status == 404
    assert fetch(n, "/priv/index.m3u8?token=" + tok).status == 403
    r = share(n, "priv", mode="archive", protocol="rtsp", ttl_s=3600, **{"from": from_t})
    assert r.status == 200, r.text
    u = r.json()["url"]
    assert u.startswith("rtsp://127.0.0.1:%d/priv?from=%d&token=" % (n.cfg["listen"]["rtsp"], from_t)), u
    res = ffmpeg_decode(u, 4, extra_in=["-rtsp_transport", "tcp"])
    assert res.errors == [] and res.rc == 0 and res.frames >= 4 * 25 * 0.9, res
