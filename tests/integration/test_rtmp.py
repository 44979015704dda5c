"""RTMP server and HTTP-FLV with real peers (docs/rtmp.md): ffmpeg publishes
H.264 + AAC to a publish:// stream, whose HLS and RTSP outputs then decode
like a camera's; ffmpeg plays it back over rtmp:// and HTTP-FLV; a wrong
publish key and a second publisher are refused at once with an onStatus
error; garbage, oversized chunks and endless handshakes leave the node
serving; GStreamer's rtmp2sink (simple handshake) publishes too."""

import shutil
import socket
import struct
import subprocess
import time

import pytest

from mslib import ffmpeg_decode, wait_until

FPS = 25


def publisher(url, seconds=60, extra=()):
    """ffmpeg publishing a test pattern (H.264, GOP 1 s) and a tone (AAC)
    in real time to url."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-re",
           "-f", "lavfi", "-i", "testsrc=size=320x240:rate=%d" % FPS,
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
           "-g", str(FPS), "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"] + list(extra) + [
           "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def rtmp_node(node, free_port):
    n = node(streams={"live1": "publish://",
                      "keyed": {"url": "publish://", "publish_key": "s3cret"},
                      "kicky": {"url": "publish://", "publish": {"republish": "kick"}}},
             start=False)
    n.rtmp_port = free_port()
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    n.rtmp = "rtmp://127.0.0.1:%d/live/" % n.rtmp_port
    procs = []
    n.procs = procs
    yield n
    for p in procs:
        stop(p)


def _frames_ok(res, seconds):
    assert res.errors == [], res
    assert res.rc == 0, res
    want = seconds * FPS
    assert want * 0.85 <= res.frames <= want * 1.1, res


def test_publish_then_hls_rtsp_rtmp_flv(rtmp_node):
    n = rtmp_node
    st = n.status("live1")
    assert st["state"] == "inactive", st
    pub = publisher(n.rtmp + "live1")
    n.procs.append(pub)
    n.wait_active("live1", timeout=15)
    st = n.wait_status("live1", lambda s: s["video_codec"].lower() == "h264" and
                       s["audio_codec"].lower() == "aac", timeout=10, what="codecs")
    assert (st["width"], st["height"]) == (320, 240), st
    n.wait_hls("live1", segments=2, timeout=20)
    _frames_ok(ffmpeg_decode(n.hls_url("live1"), 2), 2)
    _frames_ok(ffmpeg_decode("rtsp://127.0.0.1:%d/live1" % n.rtsp_port, 3,
                             extra_in=["-rtsp_transport", "tcp"]), 3)
    _frames_ok(ffmpeg_decode(n.rtmp + "live1", 3), 3)
    _frames_ok(ffmpeg_decode("%s/live1/live.flv" % n.base, 3), 3)
    # the publisher leaves: the stream waits again
    stop(pub)
    wait_until(lambda: n.status("live1")["state"] == "inactive", 15, what="inactive after unpublish")


def _publish_refused(n, url):
    t0 = time.monotonic()
    p = publisher(url, seconds=30)
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        stop(p)
        pytest.fail("publisher was not refused")
    return rc, time.monotonic() - t0, p.stderr.read().decode(errors="replace")


def test_publish_key_and_unknown_name(rtmp_node):
    n = rtmp_node
    rc, dt, err = _publish_refused(n, n.rtmp + "keyed?key=wrong")
    assert rc != 0 and dt < 2.5, (rc, dt, err)
    rc, dt, err = _publish_refused(n, n.rtmp + "nosuchstream")
    assert rc != 0 and dt < 2.5, (rc, dt, err)
    assert "Unauthorized" in n.log_text() or "publish refused" in n.log_text()
    pub = publisher(n.rtmp + "keyed?key=s3cret")
    n.procs.append(pub)
    n.wait_active("keyed", timeout=15)


def test_republish_reject_and_kick(rtmp_node):
    n = rtmp_node
    first = publisher(n.rtmp + "live1")
    n.procs.append(first)
    n.wait_active("live1", timeout=15)
    rc, dt, err = _publish_refused(n, n.rtmp + "live1")
    assert rc != 0 and dt < 2.5, (rc, dt, err)
    assert first.poll() is None, "the first publisher must keep publishing (reject)"
    # kick: the second one takes over, the first is dropped
    a = publisher(n.rtmp + "kicky")
    n.procs.append(a)
    n.wait_active("kicky", timeout=15)
    b = publisher(n.rtmp + "kicky")
    n.procs.append(b)
    wait_until(lambda: a.poll() is not None, 10, what="first publisher dropped")
    time.sleep(2)
    assert b.poll() is None
    assert n.status("kicky")["state"] == "active"


def _connect(n, src="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", n.rtmp_port), timeout=5, source_address=(src, 0))
    return s


def test_garbage_keeps_node_serving(rtmp_node):
    n = rtmp_node
    socks = []
    # garbage instead of C0
    s = _connect(n, "127.0.0.2")
    s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 10)
    socks.append(s)
    # a handshake then an oversized chunk message (16 MB declared)
    s = _connect(n, "127.0.0.3")
    s.sendall(b"\x03" + bytes(1536))
    s.recv(1)
    s.sendall(bytes(1536) + bytes([3]) + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x14" + bytes(4) +
              b"x" * 128)
    socks.append(s)
    # endless handshake: C0 then silence (closed by the timeout, later)
    s = _connect(n, "127.0.0.4")
    s.sendall(b"\x03" + bytes(100))
    socks.append(s)
    # random bytes after a good handshake
    s = _connect(n, "127.0.0.5")
    s.sendall(b"\x03" + bytes(1536) + bytes(1536) + bytes(range(256)) * 64)
    socks.append(s)
    for s in socks[:2] + socks[3:]:
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
    # still serving: a publish works, the endless handshake is still open or closed, no crash
    pub = publisher(n.rtmp + "live1")
    n.procs.append(pub)
    n.wait_active("live1", timeout=15)
    _frames_ok(ffmpeg_decode(n.rtmp + "live1", 2), 2)
    for s in socks:
        s.close()
    assert n.alive()


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="no GStreamer")
def test_gstreamer_rtmp2sink_publishes(rtmp_node):
    n = rtmp_node
    if subprocess.run(["gst-inspect-1.0", "rtmp2sink"], capture_output=True).returncode != 0:
        pytest.skip("no rtmp2sink (gstreamer1.0-plugins-bad)")
    cmd = ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "num-buffers=%d" % (FPS * 30),
           "!", "video/x-raw,width=320,height=240,framerate=%d/1" % FPS, "!",
           "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=%d" % FPS, "!",
           "h264parse", "!", "flvmux", "streamable=true", "name=m", "!",
           "rtmp2sink", "location=" + n.rtmp + "live1",
           "audiotestsrc", "is-live=true", "!", "voaacenc", "!", "aacparse", "!", "m."]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n.procs.append(p)
    n.wait_active("live1", timeout=15)
    _frames_ok(ffmpeg_decode(n.rtmp + "live1", 2), 2)


def _token(n, stream, ttl_s=600):
    r = n.api("/api/v1/streams/%s/tokens" % stream, method="POST",
              body={"ttl_s": ttl_s, "mode": "live"})
    assert r.status == 200, (r.status, r.text)
    return r.json()["token"]


def _flv_capture(url, seconds):
    """The whole tags of `seconds` of an HTTP-FLV body (header included)."""
    import urllib.request
    data = b""
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"] == "video/x-flv"
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            chunk = r.read1(65536)
            if not chunk:
                break
            data += chunk
    assert data[:3] == b"FLV" and len(data) > 13, data[:20]
    off = 13
    while off + 11 <= len(data):
        size = int.from_bytes(data[off + 1:off + 4], "big")
        if off + 11 + size + 4 > len(data):
            break
        off += 11 + size + 4
    return data[:off]


def test_camera_over_rtmp_and_flv_with_access(node, shared_cam, free_port, tmp_path):
    """A camera stream plays over rtmp:// and live.flv like a published one,
    through the same access decision (private: ?token=); a publisher is refused
    on it."""
    n = node(streams={"cam": {"url": shared_cam.url("cam"), "access": {"mode": "private"}}},
             start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.write_config()
    n.start()
    n.wait_active("cam")
    time.sleep(1.5)  # a keyframe in the GOP cache
    base = "rtmp://127.0.0.1:%d/live/cam" % n.rtmp_port
    t0 = time.monotonic()
    res = ffmpeg_decode(base, 2, timeout=15)
    assert res.rc != 0 and res.frames == 0 and time.monotonic() - t0 < 5, res
    tok = _token(n, "cam")
    _frames_ok(ffmpeg_decode(base + "?token=" + tok, 3), 3)
    # the decision lapses with its token: the connection is closed
    short = _token(n, "cam", ttl_s=3)
    t0 = time.monotonic()
    res = ffmpeg_decode(base + "?token=" + short, 20, timeout=30)
    assert time.monotonic() - t0 < 9 and 0 < res.frames < 8 * FPS, res
    flv_url = "%s/cam/live.flv?token=%s" % (n.base, tok)
    _frames_ok(ffmpeg_decode(flv_url, 3), 3)
    from mslib import http
    assert http("%s/cam/live.flv" % n.base).status == 404  # private: as unknown
    cap = tmp_path / "cap.flv"
    cap.write_bytes(_flv_capture(flv_url, 3))
    if shutil.which("flvmeta"):
        p = subprocess.run(["flvmeta", "--check", "--level=warning", str(cap)], capture_output=True,
                           timeout=30)
        assert p.returncode == 0, (p.stdout.decode(errors="replace")[-2000:],
                                   p.stderr.decode(errors="replace")[-2000:])
    rc, dt, err = _publish_refused(n, "rtmp://127.0.0.1:%d/live/cam" % n.rtmp_port)
    assert rc != 0 and dt < 2.5, (rc, dt, err)
    assert n.status("cam")["state"] == "active"


@pytest.mark.skipif(shutil.which("rtmpdump") is None, reason="no rtmpdump")
def test_rtmpdump_plays(rtmp_node, tmp_path):
    n = rtmp_node
    pub = publisher(n.rtmp + "live1")
    n.procs.append(pub)
    n.wait_active("live1", timeout=15)
    out = tmp_path / "dump.flv"
    # (rtmpdump's --stop does not end a live play: it is stopped after 4 s)
    p = subprocess.Popen(["rtmpdump", "-q", "-r", n.rtmp + "live1", "--live", "-o", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(4)
    stop(p)
    assert out.exists() and out.stat().st_size > 10000, p.stderr.read().decode(errors="replace")
    res = ffmpeg_decode(str(out), 10)
    assert res.errors == [] and res.frames >= 2 * FPS, res


def test_conns_per_ip_and_handshake_timeout(node, free_port):
    """listen.conns_per_ip bounds the connections of one address;
    listen.request_timeout_s closes a connection that never asks to publish
    or play."""
    n = node(streams={"live1": "publish://"}, start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.cfg["listen"]["conns_per_ip"] = 3
    n.cfg["listen"]["request_timeout_s"] = 2
    n.write_config()
    n.start()
    held = [_connect(n, "127.0.0.6") for _ in range(3)]
    time.sleep(0.3)
    extra = _connect(n, "127.0.0.6")
    extra.settimeout(3)
    assert extra.recv(16) == b""  # closed at once
    other = _connect(n, "127.0.0.7")  # another address is not affected
    other.sendall(b"\x03" + bytes(1536))
    other.settimeout(3)
    assert other.recv(1) == b"\x03"
    # the held ones (no byte sent) are closed by the timeout
    t0 = time.monotonic()
    for s in held:
        s.settimeout(6)
        assert s.recv(16) == b""
    assert time.monotonic() - t0 < 4
    for s in held + [extra, other]:
        s.close()


def test_rtmp_and_flv_players_are_sessions(rtmp_node):
    """RTMP and live.flv players are playback sessions (protocol rtmp / flv)
    with their bytes; DELETE of the rtmp one closes the connection."""
    n = rtmp_node
    pub = publisher(n.rtmp + "live1")
    n.procs.append(pub)
    n.wait_active("live1", timeout=15)
    play = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", n.rtmp + "live1",
                             "-f", "null", "-"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    flv = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i",
                            "%s/live1/live.flv" % n.base, "-f", "null", "-"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n.procs += [play, flv]

    def sessions():
        r = n.api("/api/v1/streams/live1/sessions")
        assert r.status == 200, r.text
        return {s["protocol"]: s for s in r.json()}

    wait_until(lambda: {"rtmp", "flv"} <= set(sessions()) and
               all(s["bytes"] > 0 for s in sessions().values()), 15, what="rtmp + flv sessions")
    assert n.status("live1")["clients"] >= 2
    sid = sessions()["rtmp"]["id"]
    r = n.api("/api/v1/streams/live1/sessions/%s" % sid, method="DELETE")
    assert r.status == 204, r.text
    play.wait(10)  # the connection was closed: ffmpeg ends
    wait_until(lambda: "rtmp" not in sessions(), 5, what="rtmp session gone")
    assert flv.poll() is None


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="no GStreamer")
def test_gstreamer_rtmp2src_plays(rtmp_node):
    """GStreamer's rtmp2src (simple handshake) plays and decodes 50 frames."""
    n = rtmp_node
    if subprocess.run(["gst-inspect-1.0", "rtmp2src"], capture_output=True).returncode != 0:
        pytest.skip("no rtmp2src (gstreamer1.0-plugins-bad)")
    pub = publisher(n.rtmp + "live1")
    n.procs.append(pub)
    n.wait_active("live1", timeout=15)
    p = subprocess.run(["gst-launch-1.0", "-q", "rtmp2src", "location=" + n.rtmp + "live1", "!",
                        "flvdemux", "name=d", "d.video", "!", "queue", "!", "h264parse", "!",
                        "avdec_h264", "!", "identity", "eos-after=50", "!", "fakesink"],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]


def _frames(out):
    return max([int(ln.split("=")[1]) for ln in out.decode().splitlines()
                if ln.startswith("frame=")] or [0])


def test_player_waits_for_publisher_and_is_told_when_it_leaves(rtmp_node):
    """A player of a publish:// stream connected before any publisher gets
    the media once one publishes; when the publisher leaves, players get
    NetStream.Play.UnpublishNotify (ffmpeg then ends its input) instead of
    waiting forever."""
    n = rtmp_node
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", n.rtmp + "live1", "-map", "0:v:0",
           "-f", "null", "-", "-progress", "pipe:1"]
    early = subprocess.Popen(cmd[:6] + ["-t", "4"] + cmd[6:], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    n.procs.append(early)
    time.sleep(1)
    a = publisher(n.rtmp + "live1", seconds=30)
    n.procs.append(a)
    out, err = early.communicate(timeout=30)
    assert early.returncode == 0, err.decode(errors="replace")
    assert _frames(out) >= 3.5 * FPS, (_frames(out), err.decode(errors="replace"))
    late = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n.procs.append(late)
    wait_until(lambda: n.status("live1")["clients"] >= 1, 10, what="player")
    time.sleep(1)
    stop(a)
    out, err = late.communicate(timeout=10)
    assert _frames(out) > 0, err.decode(errors="replace")


def test_flv_body_continues_across_publishers(rtmp_node):
    """A live.flv body goes on across a new publisher: new sequence headers,
    timestamps that never go back (ffmpeg -v error decodes 7 s cleanly)."""
    n = rtmp_node
    a = publisher(n.rtmp + "live1", seconds=4)
    n.procs.append(a)
    n.wait_active("live1", timeout=15)
    time.sleep(1)
    p = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", "%s/live1/live.flv" % n.base,
                          "-t", "7", "-map", "0:v:0", "-f", "null", "-", "-progress", "pipe:1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n.procs.append(p)
    a.wait(20)
    wait_until(lambda: n.status("live1")["state"] == "inactive", 10, what="first publisher gone")
    b = publisher(n.rtmp + "live1", seconds=20)
    n.procs.append(b)
    out, err = p.communicate(timeout=40)
    assert p.returncode == 0 and err.decode(errors="replace").strip() == "", err
    assert _frames(out) >= 6 * FPS, _frames(out)


def test_lua_on_publish(node, free_port, tmp_path):
    """A Lua on_publish (docs/lua.md) refuses a publisher whose query lacks
    ?token=ok: ffmpeg is refused at once; with it, the stream plays."""
    d = tmp_path / "lua"
    d.mkdir()
    (d / "pub.lua").write_text(
        "function on_publish(req)\n"
        "  if req.protocol == 'rtmp' and req.stream == 'live1' and req.token == 'ok' then\n"
        "    return true\n"
        "  end\n"
        "  return false, 'token ' .. req.token .. ' from ' .. req.ip\n"
        "end\n")
    n = node(streams={"live1": "publish://"}, extra_cfg={"lua_dir": str(d)}, start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.write_config()
    n.start()
    url = "rtmp://127.0.0.1:%d/live/live1" % n.rtmp_port
    rc, dt, err = _publish_refused(n, url + "?token=bad")
    assert rc != 0 and dt < 2.5, (rc, dt, err)
    wait_until(lambda: "refused by Lua: token bad from 127.0.0.1" in n.log_text(), 5,
               what="the script's reason in the log")
    assert n.status("live1")["state"] == "inactive"
    pub = publisher(url + "?token=ok")
    try:
        n.wait_active("live1", timeout=15)
        n.wait_hls("live1", segments=2, timeout=20)
        _frames_ok(ffmpeg_decode(n.hls_url("live1"), 2), 2)
    finally:
        stop(pub)


class _Hook:
    """An HTTP on_publish/on_play hook on 127.0.0.1 (http.server in a
    thread): answers 200 when the request's token is in `allow`, 403
    otherwise; with `hang`, never answers (until the test ends). Records
    every request body."""

    def __init__(self, allow=(), hang=False, body=b"", bodies=None):
        import http.server
        import json
        import threading
        hook = self
        self.requests = []
        self.release = threading.Event()

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(n))
                hook.requests.append((self.path, req))
                if hang:
                    hook.release.wait(30)
                    return
                ok = req.get("token") in allow
                b = (bodies or {}).get(req.get("stream"), body) if ok else b""
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()


def _hook_node(node, free_port, hooks):
    n = node(streams={"live1": "publish://"}, start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.cfg["hooks"] = hooks
    n.write_config()
    n.start()
    n.rtmp = "rtmp://127.0.0.1:%d/live/" % n.rtmp_port
    return n


def test_http_on_publish_hook(node, free_port):
    """hooks.on_publish (docs/rtmp.md): the hook gets the stream, app, client
    address, query and token; a 2xx allows the publish (it then plays over
    HTTP-FLV), a 403 refuses it at once with NetStream.Publish.Unauthorized."""
    hook = _Hook(allow=("A",), body=b'{"dvr": false}')
    n = _hook_node(node, free_port, {"on_publish": hook.url})
    pub = None
    try:
        rc, dt, err = _publish_refused(n, n.rtmp + "live1?token=B")
        assert rc != 0 and dt < 2.0, (rc, dt, err)
        assert "refused by the on_publish hook" in n.log_text()
        path, req = hook.requests[-1]
        assert path == "/hook"
        assert req == {"action": "publish", "stream": "live1", "app": "live", "ip": "127.0.0.1",
                       "protocol": "rtmp", "query": "token=B", "token": "B"}, req
        pub = publisher(n.rtmp + "live1?token=A")
        n.wait_active("live1", timeout=15)
        _frames_ok(ffmpeg_decode("%s/live1/live.flv" % n.base, 2), 2)
        assert hook.requests[-1][1]["token"] == "A"
    finally:
        if pub:
            stop(pub)
        hook.close()


def test_http_on_publish_hook_timeout(node, free_port):
    """A hook that never answers refuses after hooks.timeout_ms."""
    hook = _Hook(hang=True)
    n = _hook_node(node, free_port, {"on_publish": hook.url, "timeout_ms": 500})
    try:
        rc, dt, err = _publish_refused(n, n.rtmp + "live1?token=A")
        assert rc != 0 and 0.4 <= dt < 2.5, (rc, dt, err)
        assert "no answer within 500 ms" in n.log_text()
        assert len(hook.requests) == 1
    finally:
        hook.close()


def test_http_on_play_hook_hls_rtsp(node, free_port):
    """hooks.on_play (docs/access.md): after the access mode, once per
    playback session; a 2xx plays, a 403 refuses, for HLS and RTSP."""
    hook = _Hook(allow=("A", ""))  # "": the fixture's own polling
    n = node(streams={"live1": "publish://"}, start=False)
    n.rtmp_port = free_port()
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.cfg["hooks"] = {"on_play": hook.url}
    n.write_config()
    n.start()
    pub = publisher("rtmp://127.0.0.1:%d/live/live1" % n.rtmp_port)
    try:
        n.wait_active("live1", timeout=15)
        n.wait_hls("live1", segments=2, timeout=20)
        hls = n.hls_url("live1") + ("&" if "?" in n.hls_url("live1") else "?")
        res = ffmpeg_decode(hls + "token=B", 1, timeout=15)
        assert res.rc != 0 and res.frames == 0, res
        before = len(hook.requests)
        _frames_ok(ffmpeg_decode(hls + "token=A", 2), 2)
        hls_calls = [r for _, r in hook.requests[before:] if r["token"] == "A"]
        # one call for the session (playlist, segments and parts share it)
        assert len(hls_calls) == 1, hook.requests[before:]
        assert hls_calls[0]["protocol"] == "hls" and hls_calls[0]["stream"] == "live1", hls_calls
        rtsp = "rtsp://127.0.0.1:%d/live1?token=" % n.rtsp_port
        res = ffmpeg_decode(rtsp + "B", 1, timeout=15, extra_in=["-rtsp_transport", "tcp"])
        assert res.rc != 0 and res.frames == 0, res
        _frames_ok(ffmpeg_decode(rtsp + "A", 2, extra_in=["-rtsp_transport", "tcp"]), 2)
        assert any(r["protocol"] == "rtsp" and r["token"] == "A" for _, r in hook.requests)
        # the same decision point for RTMP and HTTP-FLV: refused with B
        rtmp = "rtmp://127.0.0.1:%d/live/live1?token=" % n.rtmp_port
        res = ffmpeg_decode(rtmp + "B", 1, timeout=15)
        assert res.rc != 0 and res.frames == 0, res
        res = ffmpeg_decode("%s/live1/live.flv?token=B" % n.base, 1, timeout=15)
        assert res.rc != 0 and res.frames == 0, res
        protos = {r["protocol"] for _, r in hook.requests if r["token"] == "B"}
        assert {"hls", "rtsp", "rtmp", "flv"} <= protos, protos
    finally:
        stop(pub)
        hook.close()


def test_http_on_publish_hook_dvr_override(node, free_port):
    """An on_publish answer {"dvr": false} keeps a recording stream from
    recording that session; {"dvr": true} records a stream whose DVR is off."""
    hook = _Hook(allow=("A",), bodies={"off": b'{"dvr": false}', "on": b'{"dvr": true}'})
    dvr = {"enabled": True, "depth_s": 3600, "chunk_s": 2}
    n = node(streams={"off": {"url": "publish://", "dvr": dvr},
                      "on": {"url": "publish://", "dvr": dict(dvr, enabled=False)}}, start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.cfg["hooks"] = {"on_publish": hook.url}
    n.write_config()
    n.start()
    url = "rtmp://127.0.0.1:%d/live/%%s?token=A" % n.rtmp_port
    pubs = [publisher(url % "off"), publisher(url % "on")]

    def archived(name):
        return n.api("/api/v1/streams/%s" % name).json()["status"]["local"].get("archive")

    try:
        n.wait_active("off", timeout=15)
        n.wait_active("on", timeout=15)
        wait_until(lambda: archived("on"), 15, what="the dvr:true session records")
        assert not archived("off"), "dvr:false must not record"
        assert "DVR off by the on_publish hook" in n.log_text()
    finally:
        for p in pubs:
            stop(p)
        hook.close()
