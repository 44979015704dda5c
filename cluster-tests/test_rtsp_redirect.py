"""RTSP on any node (docs/cluster.md "Playback on any node"): 3 nodes with
their RTSP listeners on, a real camera (tests/camera/camera.py). A node that
does not run a stream answers DESCRIBE with 302 Moved Temporarily (RFC 2326
11.3.3) to the primary's rtsp://advertise:port, same path and query; ffmpeg
and GStreamer rtspsrc follow it and decode; a private stream plays through
the redirect with ?token= and not without; after kill -9 of the primary a
new client on the same URL lands on the new primary. Archive: ?from= on a
server without that time redirects to the server that recorded it."""
import json
import socket
import subprocess
import textwrap
import time

import pytest

import mslib
from conftest import kill9, restart
from test_failover import one_active_primary, placement
from test_transfer import _no_follow, _ranges

FPS = 25


@pytest.fixture
def rtsp_three(cluster):
    for name in ("n1", "n2", "n3"):
        n = cluster.add(name, start=False)
        n.rtsp_port = mslib.free_port()
        n.cfg["listen"]["rtsp"] = n.rtsp_port
        n.write_config()
        n.start(timeout=30)
    n1 = cluster.nodes["n1"]
    mslib.wait_until(lambda: len(cluster.info(n1)["members"]) == 3 and all(
        m["role"] == "voter" for m in cluster.info(n1)["members"]), 15, what="3 voters")
    mslib.wait_until(lambda: len(n1.api("/api/v1/servers").json()["servers"]) == 3, 15,
                     what="3 servers in the state")
    return cluster


def rtsp_url(n, path):
    return "rtsp://127.0.0.1:%d/%s" % (n.rtsp_port, path)


def describe(n, path, cseq=1):
    """One DESCRIBE on a fresh connection: (status, headers dict)."""
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10)
    try:
        s.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: %d\r\nAccept: application/sdp\r\n\r\n"
                   % (rtsp_url(n, path), cseq)).encode())
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    status = int(head[0].split()[1]) if head and head[0].startswith("RTSP/1.0 ") else 0
    hdrs = {}
    for ln in head[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs


def add_stream(c, name, cam, **kw):
    r = c.leader().api("/api/v1/streams", "POST",
                       mslib.default_stream(name, cam.url("cam"), channels=("video",), **kw))
    assert r.status in (200, 201), r.text
    mslib.wait_until(lambda: placement(c, name)["backup"], 20, what="a backup")
    return one_active_primary(c, name, timeout=30)[0]


def decodes(url, secs=3, transport="tcp"):
    res = mslib.ffmpeg_decode(url, secs, extra_in=["-rtsp_transport", transport])
    assert res.errors == [] and res.rc == 0, res
    assert res.frames >= secs * FPS * 0.8, res
    return res


GST_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst, GLib
    Gst.init(None)
    url, want, props = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    p = Gst.parse_launch(
        "rtspsrc location=%s protocols=tcp latency=200 %s ! application/x-rtp,media=video ! "
        "rtph264depay ! h264parse ! avdec_h264 ! fakesink name=v signal-handoffs=true sync=false"
        % (url, props))
    st = {"frames": 0, "errors": []}
    loop = GLib.MainLoop()
    def hv(el, buf, pad):
        st["frames"] += 1
        if st["frames"] >= want:
            GLib.idle_add(loop.quit)
    p.get_by_name("v").connect("handoff", hv)
    def on_msg(bus, m):
        if m.type == Gst.MessageType.ERROR:
            st["errors"].append(str(m.parse_error()[0]))
            loop.quit()
        elif m.type == Gst.MessageType.EOS:
            loop.quit()
    bus = p.get_bus(); bus.add_signal_watch(); bus.connect("message", on_msg)
    GLib.timeout_add(30000, loop.quit)
    p.set_state(Gst.State.PLAYING)
    loop.run()
    p.set_state(Gst.State.NULL)
    print(json.dumps(st))
""")


def gst_frames(tmp, url, want=50, props=""):
    script = tmp / "gst_rtsp.py"
    script.write_text(GST_SCRIPT)
    p = subprocess.run(["/usr/bin/python3", str(script), url, str(want), props], capture_output=True,
                       timeout=60, env=mslib.tool_env(str(tmp / "gst")))
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def test_rtsp_redirect_live_token_failover(rtsp_three, tmp_path):
    c = rtsp_three
    cam = mslib.Camera(tmp_path / "cam", audio="none", gop=10).start()
    try:
        p = add_stream(c, "rr", cam)
        pl = placement(c, "rr")
        # the entry node runs neither the stream nor its backup: after a
        # failover it still redirects
        q = c.nodes[[x for x in c.nodes if x not in (pl["primary"], pl["backup"])][0]]
        prim = c.nodes[p]
        st, h = describe(q, "rr?k=1")
        assert st == 302, (st, h)
        assert h["location"] == rtsp_url(prim, "rr?k=1"), h
        assert h["cseq"] == "1", h
        # the primary itself serves it
        assert describe(prim, "rr")[0] == 200
        t0 = time.monotonic()
        res = decodes(rtsp_url(q, "rr"))
        print("ffmpeg through %s -> %s: %d frames in %.1f s" % (q.name, p, res.frames,
                                                                 time.monotonic() - t0))
        res = decodes(rtsp_url(q, "rr"), transport="udp")
        print("ffmpeg over UDP through %s -> %s: %d frames" % (q.name, p, res.frames))
        g = gst_frames(tmp_path, rtsp_url(q, "rr"))
        assert g["errors"] == [] and g["frames"] >= 50, g
        print("rtspsrc through %s -> %s: %d frames" % (q.name, p, g["frames"]))

        # private stream: ?token= survives the redirect; without it the
        # node refuses before redirecting (the playback decision comes
        # first: an unauthorised client does not learn where it runs)
        pp = add_stream(c, "rp", cam, access={"mode": "private", "whitelist": []})
        pq = c.nodes[[x for x in c.nodes if x != pp][0]]
        r = pq.api("/api/v1/streams/rp/tokens", "POST", {"ttl_s": 600})
        assert r.status == 200, r.text
        tok = r.json()["token"]
        st, h = describe(pq, "rp?token=" + tok)
        assert st == 302 and h["location"] == rtsp_url(c.nodes[pp], "rp?token=" + tok), (st, h)
        decodes(rtsp_url(pq, "rp?token=" + tok))
        st, h = describe(pq, "rp")
        assert st == 401 and "location" not in h, (st, h)
        # over HTTP too: the live playlist is refused where asked (404, as
        # an unknown stream), not redirected; with the token it is
        assert _no_follow(pq, "/rp/index.m3u8") == (404, None)
        st, loc = _no_follow(pq, "/rp/index.m3u8?token=" + tok)
        assert st == 302 and loc.startswith(c.nodes[pp].base), (st, loc)
        assert describe(c.nodes[pp], "rp")[0] == 401
        bad = mslib.ffmpeg_decode(rtsp_url(pq, "rp"), 2, extra_in=["-rtsp_transport", "tcp"])
        assert bad.rc != 0 and bad.frames == 0, bad
        assert any("401" in e or "Unauthorized" in e for e in bad.errors), bad
        # credentials in the Authorization header are given again to the new
        # server: rtspsrc keeps user-id/user-pw across the redirect (admin
        # Digest; the token as the user name)
        g = gst_frames(tmp_path, rtsp_url(pq, "rp"), props="user-id=admin user-pw=secret")
        assert g["errors"] == [] and g["frames"] >= 50, g
        g = gst_frames(tmp_path, rtsp_url(pq, "rp"), props="user-id=%s user-pw=x" % tok)
        assert g["errors"] == [] and g["frames"] >= 50, g

        # kill -9 of the primary: the same URL on q lands on the new primary
        t0 = time.monotonic()
        kill9(prim)
        new = one_active_primary(c, "rr", timeout=30)[0]
        assert new != p and new != q.name, (p, new, q.name)
        mslib.wait_until(lambda: describe(q, "rr")[1].get("location") == rtsp_url(c.nodes[new],
                                                                                   "rr"),
                         15, interval=0.1, what="the redirect to the new primary")
        took = time.monotonic() - t0
        res = decodes(rtsp_url(q, "rr"))
        print("after kill -9 of %s: %s redirects to %s %.1f s after the kill; %d frames"
              % (p, q.name, new, took, res.frames))

        # the killed node comes back on another RTSP port: its address in the
        # state follows (redirects to it use the new port)
        prim.rtsp_port = mslib.free_port()
        prim.cfg["listen"]["rtsp"] = prim.rtsp_port
        prim.write_config()
        restart(prim)

        def addr_of(n, name):
            for s in n.api("/api/v1/servers").json()["servers"]:
                if s["name"] == name:
                    return s.get("addresses")
            return None
        want = "rtsp://127.0.0.1:%d" % prim.rtsp_port
        mslib.wait_until(lambda: want in (addr_of(q, p) or []), 20, what="the new rtsp address")
        # a transfer moves the stream; a node that does not run it now
        # redirects to the new primary, with the port it has now
        r = c.leader().api("/api/v1/streams/rr/transfer", "POST", {})
        assert r.status == 200, r.text
        moved_to = json.loads(r.text)["placement"]["primary"]
        one_active_primary(c, "rr", timeout=30)
        entry = c.nodes[[x for x in c.nodes if x != moved_to][0]]
        mslib.wait_until(lambda: describe(entry, "rr")[1].get("location") == rtsp_url(
            c.nodes[moved_to], "rr"), 15, interval=0.1, what="the redirect after the transfer")
        decodes(rtsp_url(entry, "rr"))
        print("after the transfer to %s: %s redirects there" % (moved_to, entry.name))
    finally:
        cam.stop()


def test_rtsp_redirect_archive(rtsp_three, tmp_path):
    """Recording on (chunk_s 2): ~6 s on the first primary, transfer, more
    on the second. ?from= of the old piece asked from the new primary
    redirects to the old one, which serves its archive although it no longer
    runs the stream; the new piece asked from the old primary redirects to
    the new one."""
    c = rtsp_three
    cam = mslib.Camera(tmp_path / "cam", audio="none", gop=10).start()
    try:
        p1 = add_stream(c, "ar", cam, dvr={"enabled": True, "depth_s": 3600, "chunk_s": 2,
                                          "mode": "continuous"})
        n1 = c.nodes[p1]
        mslib.wait_until(lambda: sum(x["duration"] for x in _ranges(n1, "ar")
                                     if x["server"] == p1) >= 6, 30, what="6 s recorded on " + p1)
        r = c.leader().api("/api/v1/streams/ar/transfer", "POST", {})
        assert r.status == 200, r.text
        p2 = json.loads(r.text)["placement"]["primary"]
        assert p2 != p1
        n2 = c.nodes[p2]

        def both():
            own = {x["server"]: x for x in _ranges(n2, "ar")}
            mine = [x for x in _ranges(n1, "ar") if x["server"] == p2]
            return p1 in own and mine and mine[-1]["duration"] >= 4

        mslib.wait_until(both, 30, what="both servers' ranges")
        old = [x for x in _ranges(n2, "ar") if x["server"] == p1][0]
        newp = [x for x in _ranges(n1, "ar") if x["server"] == p2][-1]
        q_old = "ar?from=%d&k=1" % (old["from"] + 1)
        st, h = describe(n2, q_old)
        assert st == 302 and h["location"] == rtsp_url(n1, q_old), (st, h)
        # the holder serves it itself (the stream is suspended there)
        assert describe(n1, q_old)[0] == 200
        q_new = "ar?from=%d" % (newp["from"] + 1)
        st, h = describe(n1, q_new)
        assert st == 302 and h["location"] == rtsp_url(n2, q_new), (st, h)
        # live on the old primary goes to the new one
        st, h = describe(n1, "ar")
        assert st == 302 and h["location"] == rtsp_url(n2, "ar"), (st, h)
        res = decodes(rtsp_url(n2, q_old), secs=3)
        print("archive: %s piece from %d via %s -> 302 %s, %d frames" % (p1, old["from"], p2, p1,
                                                                        res.frames))
    finally:
        cam.stop()
