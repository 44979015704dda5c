"""Transfer (POST /api/v1/streams/{id}/transfer): a real camera
(tests/camera/camera.py), 3 nodes. The stream moves to another server with
role "migrated"; a second transfer within the hour is refused with 409 and
the time left; a transfer to an unknown cluster is 404."""
import json
import os
import signal
import time

import mslib
from test_browser import web_server  # noqa: F401  (fixture)
from test_failover import one_active_primary, placement, setup_stream, st_on


def test_transfer_and_cooldown(three, tmp_path):
    c = three
    cam = setup_stream(c, tmp_path)
    try:
        before = placement(c, "fo")
        # sent to a follower: forwarded to the leader like every write
        f = c.followers()[0]
        r = f.api("/api/v1/streams/fo/transfer", "POST", {"cluster": "nope"})
        assert r.status == 404, r.text
        r = f.api("/api/v1/streams/fo/transfer", "POST", {})
        assert r.status == 200, r.text
        pl = json.loads(r.text)["placement"]
        assert pl["primary"] and pl["primary"] != before["primary"], (before, pl)
        assert pl["role"] == "migrated" and pl["transferred_at"] > 0, pl
        c.converged()
        active = one_active_primary(c, "fo")
        assert active == [pl["primary"]], active
        s = st_on(c.nodes[pl["primary"]], "fo")
        assert s["local"]["role"] == "migrated" and s["local"]["state"] == "active", s
        # frames flow on the new primary (HLS playlist with a segment)
        n = c.nodes[pl["primary"]]
        mslib.wait_until(lambda: (lambda r: r.status == 200 and "#EXTINF" in r.text)(
            n.get("/fo/index.m3u8", timeout=3)), 20, what="HLS on the new primary")
        # the old primary holds it suspended now
        old = st_on(c.nodes[before["primary"]], "fo")
        assert old["local"]["state"] in ("suspend", "none"), old
        # and sends players to the new one, counting hops; a request that
        # was already redirected twice is answered where it lands (no loop
        # while the servers apply a placement change one after the other)
        st, loc = _no_follow(c.nodes[before["primary"]], "/fo/index.m3u8?a=1")
        assert st == 302 and loc == mslib.hop(n.base + "/fo/index.m3u8?a=1"), (st, loc)
        st, loc = _no_follow(c.nodes[before["primary"]], "/fo/index.m3u8?ms_hop=1&a=1")
        assert st == 302 and loc == mslib.hop(n.base + "/fo/index.m3u8?a=1", 2), (st, loc)
        st, loc = _no_follow(c.nodes[before["primary"]], "/fo/index.m3u8?ms_hop=2&a=1")
        assert st == 503 and loc is None, (st, loc)
        # a second transfer within the hour: 409 with the time left
        r = c.leader().api("/api/v1/streams/fo/transfer", "POST", {})
        assert r.status == 409, r.text
        left = json.loads(r.text)["time_left_s"]
        assert 3500 < left <= 3600, r.text
        assert placement(c, "fo")["primary"] == pl["primary"]
        # recording off: no index is handed off, no node lists a range
        assert f.api("/api/v1/streams/fo/update-indexes", "POST", {}).status == 200
        for n in c.alive():
            assert _ranges(n, "fo") == [], n.name
        print("transfer %s -> %s; second transfer refused, %d s left"
              % (before["primary"], pl["primary"], left))
    finally:
        cam.stop()


def test_groups_clusters_crud(three):
    c = three
    f, ld = c.followers()[0], c.leader()
    names = sorted(c.nodes)
    r = f.api("/api/v1/groups", "POST", {"name": "east", "subnets": ["10.1.0.0/16"]})
    assert r.status == 200, r.text
    r = f.api("/api/v1/groups", "POST", {"name": "bad", "subnets": ["10.1.0.0/99"]})
    assert r.status == 400, r.text
    r = ld.api("/api/v1/clusters/c1", "PUT",
               {"group": "east", "main": names[0], "additional": names[1]})
    assert r.status == 200, r.text
    r = ld.api("/api/v1/clusters/c2", "PUT",
               {"group": "east", "main": names[0], "additional": "nosuch"})
    assert r.status == 404, r.text
    c.converged()
    for n in c.alive():
        g = json.loads(n.api("/api/v1/groups").text)["groups"]
        assert [x["name"] for x in g] == ["east"] and g[0]["subnets"] == ["10.1.0.0/16"], g
        cl = json.loads(n.api("/api/v1/clusters/c1").text)
        assert (cl["main"], cl["additional"], cl["group"]) == (names[0], names[1], "east"), cl
    assert f.api("/api/v1/clusters/nope").status == 404
    # a group used by a cluster cannot go
    r = f.api("/api/v1/groups/east", "DELETE")
    assert r.status == 409, r.text
    assert f.api("/api/v1/clusters/c1", "DELETE").status == 200
    assert f.api("/api/v1/groups/east", "DELETE").status == 200
    c.converged()
    for n in c.alive():
        assert json.loads(n.api("/api/v1/clusters").text)["clusters"] == []
        assert json.loads(n.api("/api/v1/groups").text)["groups"] == []


def _ranges(n, name):
    r = n.api("/api/v1/streams/%s/ranges" % name)
    assert r.status == 200, r.text
    return json.loads(r.text)["ranges"]


def _no_follow(n, path):
    """GET without following redirects: (status, Location)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")
    finally:
        conn.close()


def test_transfer_archive_handoff(three, tmp_path):
    """Recording on (chunk_s 2): ~6 s on the first primary, transfer, more
    on the second. Every node lists both servers' pieces (ranges published
    into the state); the old piece asked from the new primary redirects to
    the server that holds it and decodes with ffmpeg."""
    c = three
    cam = mslib.Camera(tmp_path / "cam", audio="none", gop=10).start()
    try:
        ld = c.leader()
        body = mslib.default_stream("ar", cam.url("cam"), channels=("video",),
                                    dvr={"enabled": True, "depth_s": 3600, "chunk_s": 2,
                                         "mode": "continuous"})
        r = ld.api("/api/v1/streams", "POST", body)
        assert r.status in (200, 201), r.text
        mslib.wait_until(lambda: placement(c, "ar")["backup"], 20, what="a backup")
        p1 = one_active_primary(c, "ar", timeout=30)[0]
        n1 = c.nodes[p1]
        mslib.wait_until(lambda: sum(x["duration"] for x in _ranges(n1, "ar")
                                     if x["server"] == p1) >= 6, 30, what="6 s recorded on " + p1)
        r = ld.api("/api/v1/streams/ar/transfer", "POST", {})
        assert r.status == 200, r.text
        p2 = json.loads(r.text)["placement"]["primary"]
        assert p2 != p1
        n2 = c.nodes[p2]
        t0 = time.monotonic()

        def both_everywhere():
            for n in c.alive():
                own = {x["server"] for x in _ranges(n, "ar")}
                if not {p1, p2} <= own:
                    return False
            return sum(x["duration"] for x in _ranges(n2, "ar") if x["server"] == p2) >= 4

        mslib.wait_until(both_everywhere, 30, what="both servers' ranges on every node")
        took = time.monotonic() - t0
        old = [x for x in _ranges(n2, "ar") if x["server"] == p1][0]
        assert old["duration"] >= 5, old
        # update-indexes through a follower: answered once applied; the
        # ranges stay complete everywhere
        f = c.followers()[0]
        r = f.api("/api/v1/streams/ar/update-indexes", "POST", {})
        assert r.status == 200, r.text
        assert f.api("/api/v1/streams/nope/update-indexes", "POST", {}).status == 404
        mslib.wait_until(both_everywhere, 10, what="ranges after update-indexes")
        # the old piece from the new primary: 302 to the holder, query kept
        path = "/ar/archive-%d-3.m3u8?k=1" % (old["from"] + 1)
        st, loc = _no_follow(n2, path)
        assert st == 302 and loc == mslib.hop(n1.base + path), (st, loc)
        st, loc = _no_follow(n2, "/ar/archive-%d-3.mp4" % (old["from"] + 1))
        assert st == 302 and loc.startswith(n1.base), (st, loc)
        # served locally by the holder
        assert _no_follow(n1, path)[0] == 200
        dec = mslib.ffmpeg_decode(n2.base + path, 3)
        assert dec.errors == [] and dec.rc == 0 and dec.frames >= 2 * 10, dec
        print("archive handoff: %s piece %d s listed by every node %.1f s after the transfer;"
              " old piece via %s -> 302 %s, %d frames decoded"
              % (p1, old["duration"], took, p2, p1, dec.frames))
    finally:
        cam.stop()


# -- archive across a transfer: one timeline; transfer under load ------------

def _pdt(s):
    """EXT-X-PROGRAM-DATE-TIME value (UTC, 'Z') -> unix seconds (float)."""
    import datetime
    d = datetime.datetime.strptime(s.rstrip("Z")[:23], "%Y-%m-%dT%H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def _segments(text):
    """[(pdt, duration, uri, discontinuity_before, map)] of a media playlist."""
    out, pdt, dur, disc, mp = [], None, None, False, None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = _pdt(ln.split(":", 1)[1])
        elif ln.startswith("#EXTINF:"):
            dur = float(ln[8:].split(",")[0])
        elif ln == "#EXT-X-DISCONTINUITY":
            disc = True
        elif ln.startswith("#EXT-X-MAP:"):
            mp = mslib.parse_attrs(ln.split(":", 1)[1]).get("URI")
        elif ln and not ln.startswith("#"):
            out.append((pdt, dur, ln, disc, mp))
            pdt, dur, disc = None, None, False
    return out


def _record_transfer_record(c, tmp_path, name, access="public", before_transfer=None,
                            secs=8):
    """A recording stream (chunk_s 2) on its first primary for `secs`,
    transfer, `secs` more on the second; both servers' ranges listed on
    every node. Returns (cam, p1, p2, old range, new range, transfer time)."""
    cam = mslib.Camera(tmp_path / "cam", audio="none", gop=10).start()
    ld = c.leader()
    body = mslib.default_stream(name, cam.url("cam"), channels=("video",),
                                dvr={"enabled": True, "depth_s": 3600, "chunk_s": 2,
                                     "mode": "continuous"},
                                access={"mode": access, "whitelist": []})
    r = ld.api("/api/v1/streams", "POST", body)
    assert r.status in (200, 201), r.text
    mslib.wait_until(lambda: placement(c, name)["backup"], 20, what="a backup")
    p1 = one_active_primary(c, name, timeout=30)[0]
    n1 = c.nodes[p1]
    mslib.wait_until(lambda: sum(x["duration"] for x in _ranges(n1, name)
                                 if x["server"] == p1) >= secs, 40, what="recorded on " + p1)
    if before_transfer:
        before_transfer(p1)
    t_transfer = time.time()
    r = ld.api("/api/v1/streams/%s/transfer" % name, "POST", {})
    assert r.status == 200, r.text
    p2 = json.loads(r.text)["placement"]["primary"]
    assert p2 != p1

    def both_everywhere():
        for n in c.alive():
            if not {p1, p2} <= {x["server"] for x in _ranges(n, name)}:
                return False
        return sum(x["duration"] for x in _ranges(c.nodes[p2], name)
                   if x["server"] == p2) >= secs

    mslib.wait_until(both_everywhere, 60, what="both servers' ranges on every node")
    rg = _ranges(c.nodes[p2], name)
    old = [x for x in rg if x["server"] == p1][0]
    new = [x for x in rg if x["server"] == p2][-1]
    return cam, p1, p2, old, new, t_transfer


def _timeline(c, on, r, p1, p2, name):
    """Segments of an archive playlist answered by node `on`, with the
    server each comes from (relative URIs: `on` itself); checks one
    timeline: p1's segments then p2's, one discontinuity, at the switch,
    with p2's init segment, PROGRAM-DATE-TIME increasing. Returns (segs,
    index of the first p2 segment)."""
    b1, b2 = c.nodes[p1].base + "/", c.nodes[p2].base + "/"
    segs = _segments(r.text)

    def host(u):
        if not u.startswith("http"):
            u = on.base + "/%s/" % name + u
        return b1 if u.startswith(b1) else b2 if u.startswith(b2) else None
    hosts = [host(s[2]) for s in segs]
    assert None not in hosts, r.text
    k = hosts.index(b2)
    assert k > 0 and hosts == [b1] * k + [b2] * (len(hosts) - k), hosts
    assert [s for s in segs[1:] if s[3]] == [segs[k]], r.text  # one discontinuity, at the switch
    assert r.text.count("#EXT-X-DISCONTINUITY") == 1, r.text
    assert host(segs[0][4]) == b1 and host(segs[k][4]) == b2, r.text
    for a, b in zip(segs, segs[1:]):
        assert b[0] >= a[0] + a[1] - 0.3, (a, b)
    return segs, k


def _decode_errors(dec, gap):
    """ffmpeg's error lines of an archive decode across the switch whose two
    servers' parts are `gap` s apart. Parts that overlap by less than the
    splice keeps (api/archive_splice.c OVERLAP_TOL_MS) play the frames of
    the overlap twice, across the EXT-X-DISCONTINUITY at the switch, where
    RFC 8216 lets timestamps go anywhere; ffmpeg's null muxer then
    complains of a repeated dts, which is no decoding error."""
    if gap >= 0:
        return dec.errors
    return [e for e in dec.errors if "non monotonically increasing dts to muxer" not in e]


def _check_one_timeline(c, name, p1, p2, old, new, token=None):
    """The archive playlist of a window spanning the transfer, asked on the
    third node: both servers' segments in time order (absolute URLs, the
    token kept), one discontinuity at the switch, PROGRAM-DATE-TIME
    increasing; ffmpeg decodes the whole window with no error. The same
    window on the old primary (its own piece relative, the other absolute)
    and as an EVENT playlist (-now) on the third node. Returns the
    figures."""
    third = [n for n in c.alive() if n.name not in (p1, p2)][0]
    frm = old["from"] + 2
    end = new["from"] + new["duration"] - 1
    dur = end - frm
    q = "?token=" + token if token else ""
    path = "/%s/archive-%d-%d.m3u8%s" % (name, frm, dur, q)
    st, loc = _no_follow(third, path)
    assert st == 200, (st, loc)  # spliced there, not redirected
    r = third.get(path)
    assert r.status == 200, r.text
    text3 = r.text
    assert "X-Archive-Missing" not in r.headers, r.headers
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in r.text and "#EXT-X-ENDLIST" in r.text, r.text
    segs, k = _timeline(c, third, r, p1, p2, name)
    assert all(s[2].startswith("http://") for s in segs), r.text
    # a browser player on n3's page fetches the other servers' media cross
    # origin: segments and init segments allow it (CORS)
    for u in (segs[0][2], segs[0][4], segs[k][2], segs[k][4]):
        m = mslib.http(u, headers={"Origin": third.base})
        assert m.status == 200 and len(m.body) > 0, (u, m.status)
        assert m.headers.get("Access-Control-Allow-Origin") == "*", (u, m.headers)
    # the key of the node-to-node fetches asks for the local part only (no
    # splice, no redirect, signed or not): the third node has none
    lp = path + ("&" if q else "?") + "cluster_local=1"
    assert _no_follow(third, lp)[0] == 404
    if token:
        assert all(("token=" + token) in s[2] and ("token=" + token) in s[4] for s in segs), r.text
        assert third.get("/%s/archive-%d-%d.m3u8" % (name, frm, dur)).status == 404
    listed = sum(s[1] for s in segs)
    gap = segs[k][0] - (segs[k - 1][0] + segs[k - 1][1])
    # -http_persistent 0: ffmpeg's HLS reader otherwise tries to reuse its
    # keep-alive connection for the other server's segments and logs
    # "Cannot reuse HTTP connection for different host" (then reconnects)
    dec = mslib.ffmpeg_decode(third.base + path, dur + 10, extra_in=("-http_persistent", "0"))
    decoded = dec.frames / 25.0
    print("archive across the transfer on %s: window %d s, %d segments (%d from %s, %d from %s),"
          " listed %.2f s, gap at the switch %.2f s, decoded %d frames = %.2f s, errors %d"
          % (third.name, dur, len(segs), k, p1, len(segs) - k, p2, listed, gap, dec.frames,
             decoded, len(dec.errors)))
    assert _decode_errors(dec, gap) == [] and dec.rc == 0, dec
    # the list starts at the keyframe fragment at or before `from` (as on
    # one server) and runs to the window end: its length and the decoded
    # length are that span within 1 s, less the hole at the switch
    assert frm - 2 <= segs[0][0] <= frm + 0.5, (frm, segs[0])
    span = frm + dur - segs[0][0]
    assert span - gap - 1.0 <= listed <= span + 1.0, (span, gap, listed, r.text)
    assert span - gap - 1.0 <= decoded <= span + 1.0, (span, gap, decoded)
    # on the old primary: its piece from its own index (relative URIs)
    n1 = c.nodes[p1]
    r = n1.get(path)
    assert r.status == 200, r.text
    s1, k1 = _timeline(c, n1, r, p1, p2, name)
    assert all(not s[2].startswith("http") for s in s1[:k1]), r.text
    assert all(s[2].startswith(c.nodes[p2].base + "/") for s in s1[k1:]), r.text
    dec1 = mslib.ffmpeg_decode(n1.base + path, dur + 10, extra_in=("-http_persistent", "0"))
    gap1 = s1[k1][0] - (s1[k1 - 1][0] + s1[k1 - 1][1])
    assert _decode_errors(dec1, gap1) == [] and dec1.rc == 0, (dec1, r.text)
    # both lists hold what each server has: the same media within 1 s
    assert abs(dec1.frames - dec.frames) <= 25, (
        dec1, dec, "on %s:" % third.name, text3, "on %s:" % p1, r.text,
        "ranges on %s:" % third.name, _ranges(third, name), "on %s:" % p1, _ranges(n1, name))
    # on the new primary: the old piece absolute, its own relative
    r = c.nodes[p2].get(path)
    assert r.status == 200, r.text
    s2, k2 = _timeline(c, c.nodes[p2], r, p1, p2, name)
    assert all(s[2].startswith(c.nodes[p1].base + "/") for s in s2[:k2]), r.text
    assert all(not s[2].startswith("http") for s in s2[k2:]), r.text
    # EVENT playlist growing to live, on the third node: the old piece, then
    # the new primary's growing one
    r = third.get("/%s/archive-%d-now.m3u8%s" % (name, frm, q))
    assert r.status == 200, r.text
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in r.text and "#EXT-X-ENDLIST" not in r.text, r.text
    se, ke = _timeline(c, third, r, p1, p2, name)
    # an EVENT list shows a chunk still being written only once complete
    # (chunk_s 2): it reaches the VOD one's end but for that chunk
    assert se[-1][0] + se[-1][1] >= segs[-1][0] + segs[-1][1] - 4.5, (se[-1], segs[-1])
    print("same window on the old primary %s: %d + %d segments, %d frames; EVENT (-now) on %s:"
          " %d + %d segments" % (p1, k1, len(s1) - k1, dec1.frames, third.name, ke,
                                 len(se) - ke))
    return dur, gap, decoded


def test_transfer_archive_one_timeline(three, tmp_path):
    """A private stream records on n1, moves, records on n2; the archive
    playlist of a window across the transfer, asked on the third node with
    the token, lists both servers as one timeline and decodes."""
    c = three
    cam, p1, p2, old, new, _ = _record_transfer_record(c, tmp_path, "xa", access="private")
    try:
        r = c.leader().api("/api/v1/streams/xa/tokens", "POST",
                           {"ttl_s": 3600, "mode": "archive", "from": old["from"],
                            "duration_s": 3600})
        assert r.status == 200, r.text
        tok = json.loads(r.text)["token"]
        _check_one_timeline(c, "xa", p1, p2, old, new, token=tok)
        # the old piece alone, asked on the new primary, still redirects to
        # its holder (one other server holds the window)
        path = "/xa/archive-%d-3.m3u8?token=%s" % (old["from"] + 1, tok)
        st, loc = _no_follow(c.nodes[p2], path)
        assert st == 302 and loc == mslib.hop(c.nodes[p1].base + path), (st, loc)
        # the new server stops answering (SIGSTOP): the playlist still comes,
        # within the 2 s fetch budget, with the old server's piece and the
        # silent server named in X-Archive-Missing
        third = [n for n in c.alive() if n.name not in (p1, p2)][0]
        frm, dur = old["from"] + 2, new["from"] + new["duration"] - 1 - old["from"] - 2
        os.kill(c.nodes[p2].proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = third.get("/xa/archive-%d-%d.m3u8?token=%s" % (frm, dur, tok))
            took = time.monotonic() - t0
        finally:
            os.kill(c.nodes[p2].proc.pid, signal.SIGCONT)
        assert r.status == 200 and r.headers.get("X-Archive-Missing") == p2, (r.status, r.headers)
        segs = _segments(r.text)
        assert segs and all(x[2].startswith(c.nodes[p1].base + "/") for x in segs), r.text
        assert took < 4, took
        print("with %s stopped: playlist in %.2f s, %d segments of %s, X-Archive-Missing: %s"
              % (p2, took, len(segs), p1, p2))
        # both holders silent: 502 naming both, within the budget
        for p in (p1, p2):
            os.kill(c.nodes[p].proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = third.get("/xa/archive-%d-%d.m3u8?token=%s" % (frm, dur, tok))
            took = time.monotonic() - t0
        finally:
            for p in (p1, p2):
                os.kill(c.nodes[p].proc.pid, signal.SIGCONT)
        assert r.status == 502, (r.status, r.text)
        assert sorted(r.headers.get("X-Archive-Missing", "").split(",")) == sorted([p1, p2]), \
            r.headers
        assert took < 4, took
        print("with %s and %s stopped: 502 in %.2f s" % (p1, p2, took))
    finally:
        cam.stop()


# hls.js must play this far (seconds of media) on the live URL: past the
# transfer, which comes once every client plays (~6-8 s after the start)
BROWSER_MIN_TIME = 16


class _HlsClient:
    """A live HLS player in a thread: polls the playlist URL (following the
    302 to whichever node runs the stream), fetches every new segment once
    (keyed by server and URI; the first playlist from the live edge), keeps
    (received at, server, PROGRAM-DATE-TIME, duration, bytes). Gives up
    (errored out) after 15 s without a playlist or segment."""

    def __init__(self, url, label):
        import threading
        self.url, self.label = url, label
        self.got, self.errors, self.gave_up = [], [], None
        self.msn = {}  # server -> [first, last] media sequence number seen
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(timeout=30)

    def _get(self, url):
        import urllib.request
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.geturl(), r.read()

    def _run(self):
        import urllib.parse
        seen, maps, first = set(), {}, True
        last_ok = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_ok > 15:
                self.gave_up = "nothing for 15 s: %s" % self.errors[-3:]
                return
            try:
                final, text = self._get(self.url)
            except Exception as e:  # noqa: BLE001 (a player retries anything)
                self.errors.append((time.time(), "playlist: %s" % e))
                self._stop.wait(0.3)
                continue
            u = urllib.parse.urlsplit(final)
            origin = "%s://%s" % (u.scheme, u.netloc)
            text = text.decode(errors="replace")
            segs = _segments(text)
            if first:  # join at the live edge: the older segments are not played
                seen.update((origin, x[2]) for x in segs[:-2])
            msn = [int(ln.split(":", 1)[1]) for ln in text.splitlines()
                   if ln.startswith("#EXT-X-MEDIA-SEQUENCE:")]
            if msn:
                self.msn.setdefault(origin, [msn[0], msn[0]])[1] = msn[0] + len(segs) - 1
            for s in segs:
                key = (origin, s[2])
                if key in seen or self._stop.is_set():
                    continue
                try:
                    data = b""
                    if s[4]:
                        mk = (origin, s[4])
                        if mk not in maps:
                            maps[mk] = self._get(urllib.parse.urljoin(final, s[4]))[1]
                        data = maps[mk]
                    data += self._get(urllib.parse.urljoin(final, s[2]))[1]
                except Exception as e:  # noqa: BLE001
                    self.errors.append((time.time(), "segment %s: %s" % (s[2], e)))
                    continue
                seen.add(key)
                self.got.append((time.time(), origin, s[0], s[1], data))
                last_ok = time.monotonic()
            first = False
            if segs:
                last_ok = max(last_ok, time.monotonic() - 10)  # a playlist keeps it alive a while
            self._stop.wait(0.25)


class _FfmpegClient:
    """ffmpeg -v error reading the live playlist URL (following the 302):
    frame counts over time from -progress, stderr lines are errors."""

    def __init__(self, url, label):
        import subprocess
        import threading
        self.url, self.label = url, label
        self.samples, self.errors = [], []
        self.p = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-http_persistent", "0", "-i", url,
             "-map", "0:v:0", "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self._e = threading.Thread(target=self._err, daemon=True)
        self._e.start()

    def _read(self):
        for ln in self.p.stdout:
            ln = ln.decode(errors="replace").strip()
            if ln.startswith("frame="):
                self.samples.append((time.time(), int(ln.split("=")[1])))

    def _err(self):
        for ln in self.p.stderr:
            if ln.strip():
                self.errors.append(ln.decode(errors="replace").strip())

    def frames_between(self, t0, t1):
        v = [n for t, n in self.samples if t0 <= t <= t1]
        return (v[-1] - v[0]) if len(v) > 1 else 0

    def longest_stall(self, t0, t1):
        """Longest wall time without a new frame within [t0, t1]."""
        last_t, last_n, worst = None, None, 0.0
        for t, n in self.samples:
            if t > t1:
                break
            if t < t0:
                last_t, last_n = t, n
                continue
            if last_n is None or n > last_n:
                if last_t is not None:
                    worst = max(worst, t - last_t)
                last_t, last_n = t, n
        return max(worst, t1 - last_t) if last_t is not None else t1 - t0

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.p.kill()
            self.p.wait(timeout=10)
        self._t.join(timeout=5)
        self._e.join(timeout=5)


def _frames(data, tmp):
    """Frames ffmpeg decodes from one segment's bytes (no error allowed)."""
    import subprocess
    f = tmp / "seg.bin"
    f.write_bytes(data)
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-map", "0:v:0",
                        "-f", "null", "-", "-progress", "pipe:1"], capture_output=True, timeout=30)
    frames = [int(x.split("=")[1]) for x in p.stdout.decode().splitlines()
              if x.startswith("frame=")]
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
    return frames[-1] if frames else 0


def test_transfer_under_load(three, tmp_path, web_server):  # noqa: F811
    """Drill: live HLS clients on every node (so at least one on a node that
    is neither the old nor the new primary; they follow the 302) keep
    playing while the stream is transferred: each got decodable media from
    the old server before and from the new one after, none gave up; the
    interruption each saw is printed. One ffmpeg (-v error) on the node
    that is neither primary nor backup plays the same URL: frames before
    and after, no error line, its longest stall printed. Then the archive
    across the transfer plays as one timeline."""
    import threading
    import urllib.parse
    from test_dvr_browser import play
    c = three
    clients, ff, browser = [], [], {}

    def run_browser(url):
        t0 = time.time()
        try:
            browser["res"] = play("%s/index.html?src=%s" % (web_server, urllib.parse.quote(
                url, safe="")), tmp_path / "hlsjs", min_time=BROWSER_MIN_TIME)
        except AssertionError as e:
            browser["error"] = str(e)[:2000]
        browser["took"] = time.time() - t0

    def start_clients(p1):
        spare = [n for n in c.alive() if n.name != p1 and n.name != placement(c, "tl")["backup"]]
        for n in spare or [n for n in c.alive() if n.name != p1][:1]:
            ff.append(_FfmpegClient(n.base + "/tl/index.m3u8", n.name))
            browser["node"] = n.name
            browser["t0"] = time.time()
            browser["thread"] = threading.Thread(target=run_browser, daemon=True,
                                                 args=(n.base + "/tl/index.m3u8",))
            browser["thread"].start()
        for n in c.alive():
            for i in range(2 if n.name != p1 else 1):
                clients.append(_HlsClient(n.base + "/tl/index.m3u8",
                                          "%s#%d" % (n.name, i)).start())
        mslib.wait_until(lambda: all(len(x.got) >= 5 for x in clients) and all(
            f.samples and f.samples[-1][1] >= 25 for f in ff), 30, what="every client playing")

    cam, p1, p2, old, new, t_tr = _record_transfer_record(c, tmp_path, "tl",
                                                          before_transfer=start_clients)
    try:
        b1, b2 = c.nodes[p1].base, c.nodes[p2].base
        mslib.wait_until(lambda: all(sum(1 for g in x.got if g[1] == b2) >= 3 for x in clients),
                         30, what="every client playing from the new primary")
        for x in clients:
            x.stop()
        # ffmpeg plays on: the new primary holds the first playlist request
        # until its first segment (no 503), numbers its segments above the
        # old primary's and marks the switch as a discontinuity (seq_base)
        mslib.wait_until(lambda: all(f.frames_between(t_tr, time.time()) >= 50 or
                                     f.p.poll() is not None for f in ff), 60,
                         what="ffmpeg playing on after the transfer")
        t_end = time.time()
        for f in ff:
            ended = f.p.poll()
            f.stop()
            last = max((t for t, _ in f.samples), default=t_tr)
            print("ffmpeg client on %s: frames before the transfer %d, after %d; %s; errors %s"
                  % (f.label, f.frames_between(0, t_tr), f.frames_between(t_tr, t_end),
                     "ended (exit %s) %.1f s after the transfer" % (ended, last - t_tr)
                     if ended is not None else
                     "longest stall %.2f s" % f.longest_stall(t_tr, t_end), f.errors[:5]))
            assert f.errors == [], f.errors
            assert f.frames_between(0, t_tr) > 0
            assert ended is None and f.frames_between(t_tr, t_end) >= 50, f.label
        # hls.js (Chromium) on the spare node: plays on past the transfer
        browser["thread"].join(timeout=90)
        res = browser.get("res") or {}
        print("hls.js on %s: currentTime %.1f s %.1f s after start (transfer at %.1f s),"
              " fatal %s, errors %s, harness %s" % (
                  browser["node"], res.get("currentTime", 0), browser.get("took", 0),
                  t_tr - browser["t0"], res.get("fatal"), res.get("errors"),
                  browser.get("error", "")[:300]))
        assert "error" not in browser and res.get("currentTime", 0) > BROWSER_MIN_TIME, browser
        names = {n.base: n.name for n in c.alive()}
        print("live EXT-X-MEDIA-SEQUENCE seen by one client, [first, last] per server: %s"
              % {names.get(o, o): v for o, v in clients[0].msn.items()})
        # the new primary numbers on from the old one's reported numbers
        # (node/hls_hint.h): above them, by about the segments of the switch
        for x in clients:
            if b1 in x.msn and b2 in x.msn:
                jump = x.msn[b2][0] - x.msn[b1][1]
                assert 1 <= jump <= 8, (x.label, x.msn)
        third = [n.name for n in c.alive() if n.name not in (p1, p2)][0]
        rows = []
        for x in clients:
            assert x.gave_up is None, (x.label, x.gave_up)
            before = [g for g in x.got if g[1] == b1]
            after = [g for g in x.got if g[1] == b2]
            assert before and after, (x.label, [g[1] for g in x.got])
            # served from the old primary until the switch, then only the new
            assert [g[1] for g in x.got] == [b1] * len(before) + [b2] * len(after), x.label
            fb, fa = _frames(before[-1][4], tmp_path), _frames(after[0][4], tmp_path)
            assert fb > 0 and fa > 0, (x.label, fb, fa)
            wall = after[0][0] - before[-1][0]
            media = after[0][2] - (before[-1][2] + before[-1][3])
            rows.append((x.label, len(before), len(after), wall, media, len(x.errors)))
            print("client %-5s (%s): %2d segments from %s, %2d from %s; interruption %.2f s"
                  " (last before -> first after received), media hole %.2f s (old media ends"
                  " %+.2f s, new starts %+.2f s from the transfer call), retries %d"
                  % (x.label, "third node" if x.label.startswith(third + "#") else
                     "old primary" if x.label.startswith(p1 + "#") else "new primary",
                     len(before), p1, len(after), p2, wall, media,
                     before[-1][2] + before[-1][3] - t_tr, after[0][2] - t_tr, len(x.errors)))
        walls = sorted(r[3] for r in rows)
        print("transfer under load %s -> %s, %d clients: interruption min %.2f / median %.2f /"
              " max %.2f s" % (p1, p2, len(rows), walls[0], walls[len(walls) // 2], walls[-1]))
        c.converged()
        assert one_active_primary(c, "tl") == [p2]
        _check_one_timeline(c, "tl", p1, p2, old, new)
    finally:
        for x in clients:
            x.stop()
        for f in ff:
            f.stop()
        cam.stop()


def test_transfer_archive_plays_in_chromium(three, tmp_path, web_server):  # noqa: F811
    """hls.js in Chromium (a page of another origin) plays the archive
    across the transfer, asked on the third node, past the switch of
    server: the segments of both servers are fetched cross-origin."""
    import urllib.parse
    from test_dvr_browser import play
    c = three
    cam, p1, p2, old, new, _ = _record_transfer_record(c, tmp_path, "xb")
    try:
        third = [n for n in c.alive() if n.name not in (p1, p2)][0]
        frm = old["from"] + 2
        dur = new["from"] + new["duration"] - 1 - frm
        url = "%s/xb/archive-%d-%d.m3u8" % (third.base, frm, dur)
        r = mslib.http(url)
        assert r.status == 200, r.text
        segs = _segments(r.text)
        b2 = c.nodes[p2].base + "/"
        k = [s[2].startswith(b2) for s in segs].index(True)
        switch_at = sum(s[1] for s in segs[:k])
        res = play("%s/index.html?src=%s" % (web_server, urllib.parse.quote(url, safe="")),
                   tmp_path / "hls", min_time=switch_at + 1.5)
        assert not [e for e in res["errors"] if "networkError" in e], res
        print("chromium hls.js: archive across the transfer on %s played to %.1f s (switch to %s"
              " at %.1f s), non-fatal errors %s" % (third.name, res["currentTime"], p2, switch_at,
                                                     res["errors"]))
    finally:
        cam.stop()
