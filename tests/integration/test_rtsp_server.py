"""Live RTSP server (RFC 2326) with real peers: a GStreamer camera feeds the
node; ffmpeg/ffprobe and GStreamer rtspsrc play it back over TCP-interleaved
and UDP; 100 concurrent clients (a small asyncio RTSP client) must receive
every packet; a client that stops reading is dropped without hurting the
others."""

import asyncio
import json
import re
import socket
import struct
import subprocess
import sys
import textwrap
import time

import pytest

import mslib
from mslib import ffmpeg_decode, ffprobe, wait_until

FPS = 25


def _node_with_rtsp(node, url, free_port):
    """A node running stream "cam" from url, with its RTSP server on."""
    n = node(streams={"cam": url}, start=False)
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    n.wait_active("cam")
    return n


@pytest.fixture
def rtsp_node(node, shared_cam, free_port):
    n = _node_with_rtsp(node, shared_cam.url("cam"), free_port)
    # a keyframe in the GOP cache, so PLAY starts at once
    time.sleep(1.5)
    n.rtsp_url = "rtsp://127.0.0.1:%d/cam" % n.rtsp_port
    return n


def _frames_ok(res, seconds):
    assert res.errors == [], res
    assert res.rc == 0, res
    want = seconds * FPS
    assert want * 0.9 <= res.frames <= want * 1.1, res


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffmpeg_plays(rtsp_node, transport):
    res = ffmpeg_decode(rtsp_node.rtsp_url, 5, extra_in=["-rtsp_transport", transport])
    _frames_ok(res, 5)


def test_ffprobe_and_describe_by_uid(rtsp_node):
    streams = ffprobe(rtsp_node.rtsp_url)
    kinds = {s["codec_type"]: s for s in streams}
    assert kinds["video"]["codec_name"] == "h264"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (640, 360)
    assert kinds["audio"]["codec_name"] == "aac"
    uid = rtsp_node.stream("cam")["uid"]
    streams = ffprobe("rtsp://127.0.0.1:%d/%s" % (rtsp_node.rtsp_port, uid))
    assert {s["codec_type"] for s in streams} == {"video", "audio"}


def test_unknown_stream_is_refused(rtsp_node):
    # an unknown name gets what a private stream without credentials gets
    # (a Digest challenge), so names cannot be probed (docs/access.md)
    s = socket.create_connection(("127.0.0.1", rtsp_node.rtsp_port), timeout=5)
    s.sendall(b"DESCRIBE rtsp://127.0.0.1/nope RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    r = s.recv(4096)
    assert r.startswith(b"RTSP/1.0 401") and b"WWW-Authenticate: Digest" in r, r
    s.sendall(b"OPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n")
    r = s.recv(4096)
    assert r.startswith(b"RTSP/1.0 200") and b"DESCRIBE" in r
    s.close()


GST_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst, GLib
    Gst.init(None)
    url, proto, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    p = Gst.parse_launch(
        "rtspsrc name=s location=%s protocols=%s latency=300 "
        "rtph264depay name=vd ! h264parse ! avdec_h264 ! "
        "fakesink name=v signal-handoffs=true sync=false "
        "rtpmp4gdepay name=ad ! aacparse ! avdec_aac ! "
        "fakesink name=a signal-handoffs=true sync=false" % (url, proto))
    # rtspsrc's pads are linked here by their media: parse_launch's delayed
    # links ("s. ! caps ! ...") race when the audio and video pads appear at
    # the same moment from two streaming threads (one link then fails with
    # "Delayed linking failed" and its branch stays unlinked)
    def on_pad(src, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_string("media")
        sink = {"video": "vd", "audio": "ad"}.get(media)
        if sink:
            sp = p.get_by_name(sink).get_static_pad("sink")
            if not sp.is_linked():
                pad.link(sp)
    p.get_by_name("s").connect("pad-added", on_pad)
    # frames are counted in a wall-clock window that starts 2 s after the
    # first one: PLAY starts with a burst of the GOP cache, which would
    # over-count (and rtpjitterbuffer re-times it over UDP)
    st = {"video": 0, "audio": 0, "errors": [], "total": 0, "first": None}
    def inwin():
        return st["first"] is not None and 2 <= time.monotonic() - st["first"] < 2 + secs
    def hv(el, buf, pad):
        if st["first"] is None:
            st["first"] = time.monotonic()
        st["total"] += 1
        if inwin():
            st["video"] += 1
    def ha(el, buf, pad):
        if inwin():
            st["audio"] += 1
    p.get_by_name("v").connect("handoff", hv)
    p.get_by_name("a").connect("handoff", ha)
    loop = GLib.MainLoop()
    def on_msg(bus, m):
        if m.type in (Gst.MessageType.ERROR, Gst.MessageType.WARNING):
            st["errors"].append(str(m.parse_error()[0] if m.type == Gst.MessageType.ERROR
                                    else m.parse_warning()[0]))
        if m.type in (Gst.MessageType.ERROR, Gst.MessageType.EOS):
            loop.quit()
    bus = p.get_bus(); bus.add_signal_watch(); bus.connect("message", on_msg)
    def tick():
        if st["first"] is not None and time.monotonic() - st["first"] > secs + 2.2:
            loop.quit(); return False
        return True
    GLib.timeout_add(100, tick)
    GLib.timeout_add(int((secs + 20) * 1000), loop.quit)
    p.set_state(Gst.State.PLAYING)
    loop.run()
    p.set_state(Gst.State.NULL)
    st.pop("first")
    print(json.dumps(st))
""")


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_gstreamer_rtspsrc_plays(rtsp_node, tmp_path, transport):
    script = tmp_path / "gst_play.py"
    script.write_text(GST_SCRIPT)
    secs = 5
    p = subprocess.run(["/usr/bin/python3", str(script), rtsp_node.rtsp_url, transport, str(secs)],
                       capture_output=True, timeout=60, env=mslib.tool_env(str(tmp_path / "gst")))
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    st = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert st["errors"] == [], st
    want = secs * FPS
    assert want * 0.85 <= st["video"] <= want * 1.15, st
    assert st["audio"] > secs * 30, st  # 48 kHz AAC: ~47 frames/s


# -- a minimal RTSP client (TCP interleaved, video track) --------------------
class Client:
    def __init__(self, port, path="cam", audio=False):
        self.port, self.path, self.audio = port, path, audio
        self.audio_packets = 0
        self.first_key = None  # the first video packet starts a keyframe
        self.burst_frames = None  # video frames in the first 0.3 s of reading
        self.cseq = 0
        self.packets = 0
        self.frames = 0
        self.gaps = 0
        self.last_seq = None
        self.first_seq = None
        self.rtpinfo_seq = None
        self.error = None

    async def request(self, method, url, extra=""):
        self.cseq += 1
        self.w.write(("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n" % (method, url, self.cseq, extra)).encode())
        head = await self.r.readuntil(b"\r\n\r\n")
        text = head.decode()
        m = re.search(r"Content-Length:\s*(\d+)", text, re.I)
        body = await self.r.readexactly(int(m.group(1))) if m else b""
        status = int(text.split(" ", 2)[1])
        return status, text, body.decode()

    async def start(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        base = "rtsp://127.0.0.1:%d/%s" % (self.port, self.path)
        st, _, sdp = await self.request("DESCRIBE", base, "Accept: application/sdp\r\n")
        assert st == 200, st
        video = sdp.split("m=video", 1)[1].split("m=", 1)[0]
        control = re.search(r"a=control:(\S+)", video).group(1)
        st, hdr, _ = await self.request("SETUP", control, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        assert st == 200, hdr
        self.session = re.search(r"Session:\s*([^;\r\n]+)", hdr).group(1)
        if self.audio:
            sec = sdp.split("m=audio", 1)[1].split("m=", 1)[0]
            control = re.search(r"a=control:(\S+)", sec).group(1)
            st, hdr, _ = await self.request("SETUP", control, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"
                                            "Session: %s\r\n" % self.session)
            assert st == 200, hdr
        st, hdr, _ = await self.request("PLAY", base + "/", "Session: %s\r\n" % self.session)
        assert st == 200, hdr
        m = re.search(r"RTP-Info:.*seq=(\d+)", hdr)
        self.rtpinfo_seq = int(m.group(1)) if m else None

    async def read_for(self, seconds):
        t0 = time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            if self.burst_frames is None and time.monotonic() - t0 >= 0.3:
                self.burst_frames = self.frames
            try:
                hdr = await asyncio.wait_for(self.r.readexactly(4), end - time.monotonic())
            except asyncio.TimeoutError:
                break
            if hdr[0:1] != b"$":
                raise AssertionError("unexpected bytes in the interleaved stream: %r" % hdr)
            ch, ln = hdr[1], struct.unpack(">H", hdr[2:4])[0]
            pkt = await self.r.readexactly(ln)
            if ch == 2:
                self.audio_packets += 1
            if ch != 0:
                continue  # audio, RTCP SR
            seq = struct.unpack(">H", pkt[2:4])[0]
            if self.last_seq is None:
                self.first_seq = seq
                self.first_key = _keyframe_start(pkt)
            elif seq != (self.last_seq + 1) & 0xFFFF:
                self.gaps += 1
            self.last_seq = seq
            self.packets += 1
            if pkt[1] & 0x80:
                self.frames += 1

    def close(self):
        self.w.close()


async def _many(port, n, seconds, stagger=0.01):
    clients = [Client(port) for _ in range(n)]

    async def run(c, i):
        await asyncio.sleep(i * stagger)
        try:
            await c.start()
            await c.read_for(seconds)
        except Exception as e:  # reported by the assertions below
            c.error = repr(e)
        finally:
            if hasattr(c, "w"):
                c.close()

    await asyncio.gather(*(run(c, i) for i, c in enumerate(clients)))
    return clients


def test_100_concurrent_clients_get_every_frame(rtsp_node):
    # a few real decoders at the same time
    ff = [subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", t, "-i",
                            rtsp_node.rtsp_url, "-t", "8", "-map", "0:v:0", "-f", "null", "-"],
                           stderr=subprocess.PIPE) for t in ("tcp", "udp", "tcp")]
    secs = 6
    clients = asyncio.run(_many(rtsp_node.rtsp_port, 100, secs))
    errors = [c.error for c in clients if c.error]
    assert errors == [], errors[:5]
    for c in clients:
        assert c.gaps == 0, "client lost packets: %d gaps" % c.gaps
        assert c.first_seq == c.rtpinfo_seq, (c.first_seq, c.rtpinfo_seq)
        # GOP burst + live for ~secs (the first ones started up to 1 s earlier)
        assert c.frames >= (secs - 1) * FPS, c.frames
    for p in ff:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0 and err.decode().strip() == "", err.decode()[-2000:]
    st = rtsp_node.status("cam")
    assert st["output_kbps"] > 0


def test_stalled_client_is_dropped_others_continue(rtsp_node):
    # The stalled client: tiny receive buffer, PLAY, then never reads again.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", rtsp_node.rtsp_port))
    url = rtsp_node.rtsp_url
    s.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % url).encode())
    time.sleep(0.5)
    s.recv(65536)
    s.sendall(("SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n"
               "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n" % url).encode())
    time.sleep(0.5)
    resp = s.recv(65536).decode(errors="replace")
    session = re.search(r"Session:\s*([^;\r\n]+)", resp).group(1)
    s.sendall(("PLAY %s/ RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n" % (url, session)).encode())
    t0 = time.monotonic()

    async def good():
        c = Client(rtsp_node.rtsp_port)
        await c.start()
        # reads while the stalled one is detected and closed
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await c.read_for(1)
            if "too slow" in rtsp_node.log_text():
                break
        await c.read_for(2)
        c.close()
        return c

    c = asyncio.run(good())
    log = rtsp_node.log_text()
    assert "too slow" in log, log[-3000:]
    took = time.monotonic() - t0
    assert c.gaps == 0 and c.frames >= (took - 1) * FPS * 0.9, (c.gaps, c.frames, took)
    # the server closed the stalled connection: reading drains, then EOF
    s.settimeout(10)
    got = 0
    while True:
        try:
            b = s.recv(1 << 16)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        got += len(b)
    s.close()
    # and playback for a new client still works
    _frames_ok(ffmpeg_decode(url, 3, extra_in=["-rtsp_transport", "tcp"]), 3)


def test_rtsp_viewers_counted(rtsp_node):
    """RTSP viewers count in `clients` while they play and leave on close;
    output_kbps is what the node sends them (two viewers: about twice the
    input)."""
    n = rtsp_node
    assert n.status("cam")["clients"] == 0
    ff = [subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", t, "-i",
                            n.rtsp_url, "-t", "8", "-f", "null", "-"], stderr=subprocess.PIPE)
          for t in ("tcp", "udp")]
    try:
        st = wait_until(lambda: (lambda s: s if s["clients"] == 2 and s["output_kbps"] > 1.5 * s["bitrate_kbps"] > 0
                                 else None)(n.status("cam")), 15, what="2 RTSP clients and their output")
        assert st["output_kbps"] < 3 * st["bitrate_kbps"], st
    finally:
        for p in ff:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0 and err.strip() == b"", err[-1000:]
    wait_until(lambda: n.status("cam")["clients"] == 0, 10, what="clients back to 0")


def _keyframe_start(pkt):
    """First RTP packet of an H.264 keyframe access unit (RFC 6184 5.6-5.8):
    SPS/PPS/IDR as a single NAL unit, in a STAP-A, or the start of an FU-A
    of an IDR slice."""
    pl = pkt[12 + 4 * (pkt[0] & 0x0F):]
    t = pl[0] & 0x1F
    if t in (5, 7, 8):
        return True
    if t == 24:  # STAP-A: 1 byte header, then 16-bit size + NAL
        return (pl[3] & 0x1F) in (5, 7, 8)
    if t == 28:
        return bool(pl[1] & 0x80) and (pl[1] & 0x1F) == 5
    return False


class PausingClient(Client):
    """A TCP-interleaved client with a small receive buffer that can stop
    reading for a while; records the first packet after every seq gap."""

    def __init__(self, port):
        super().__init__(port)
        self.after_gap = []

    async def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", self.port))
        self.r, self.w = await asyncio.open_connection(sock=s, limit=16384)
        orig_open = asyncio.open_connection

        async def reuse(*a, **k):
            return self.r, self.w
        asyncio.open_connection = reuse
        try:
            await super().start()
        finally:
            asyncio.open_connection = orig_open

    async def read_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                hdr = await asyncio.wait_for(self.r.readexactly(4), end - time.monotonic())
            except asyncio.TimeoutError:
                break
            ch, ln = hdr[1], struct.unpack(">H", hdr[2:4])[0]
            pkt = await self.r.readexactly(ln)
            if ch != 0:
                continue
            seq = struct.unpack(">H", pkt[2:4])[0]
            if self.last_seq is not None and seq != (self.last_seq + 1) & 0xFFFF:
                self.gaps += 1
                self.after_gap.append(_keyframe_start(pkt))
            self.last_seq = seq
            self.packets += 1
            if pkt[1] & 0x80:
                self.frames += 1


def test_slow_client_resyncs_at_keyframe(node, camera, free_port):
    """A client that stops reading long enough to overflow its send queue
    (10 Mbit/s camera: the 4 MiB queue fills in ~3.5 s) but less than the
    stall limit loses what was queued, resumes at the next keyframe and
    is not closed; a reading client beside it loses nothing."""
    cam = camera(size="1280x720", extra=["--bitrate", "10000"])
    n = _node_with_rtsp(node, cam.url(), free_port)
    wait_until(lambda: n.status("cam")["bitrate_kbps"] > 6000, 10, what="a high-bitrate input")

    async def run():
        slow, good = PausingClient(n.rtsp_port), Client(n.rtsp_port)
        await slow.start()
        await good.start()
        await slow.read_for(1)
        assert slow.gaps == 0
        # the slow one stops reading for 6.5 s while the good one reads
        await good.read_for(6.5)
        await asyncio.gather(slow.read_for(5), good.read_for(5))
        slow.close()
        good.close()
        return slow, good

    slow, good = asyncio.run(run())
    log = n.log_text()
    assert "dropped to the next keyframe" in log, log[-3000:]
    assert "too slow" not in log, log[-3000:]
    assert slow.gaps >= 1 and all(slow.after_gap), (slow.gaps, slow.after_gap)
    assert slow.frames >= 3 * FPS, slow.frames  # it plays again after the resync
    assert good.gaps == 0 and good.frames >= 11 * FPS, (good.gaps, good.frames)


def test_long_gop_starts_every_viewer_whole(node, camera, free_port):
    """A camera with a 10 s GOP at 8 Mbit/s, with audio: a viewer that joins
    late in the GOP is sent the whole GOP so far at once (up to ~10 MB and
    ~720 frames, more than the send queue's usual 4 MiB and 512 frames,
    docs/config.md keyframe_wait_mb), from its keyframe on and with no gap,
    however late it joins; four viewers join 2.5 s apart, so one of them
    joins at least 7.5 s into a GOP."""
    cam = camera(size="1280x720", gop=250, audio="aac", extra=["--bitrate", "8000"])
    n = _node_with_rtsp(node, cam.url(), free_port)
    wait_until(lambda: n.status("cam")["bitrate_kbps"] > 5000, 15, what="a high-bitrate input")

    async def run():
        clients = []
        for _ in range(4):
            c = Client(n.rtsp_port, audio=True)
            clients.append(c)
            await c.start()
            await c.read_for(2.5)
            c.close()
        return clients

    clients = asyncio.run(run())
    got = [(c.first_key, c.gaps, c.burst_frames, c.frames, c.audio_packets) for c in clients]
    assert all(c.first_key and c.gaps == 0 for c in clients), got
    assert all(c.frames >= 2.5 * FPS * 0.9 and c.audio_packets > 0 for c in clients), got
    # the late joiner got at least 7 s of GOP at once (else this test proved nothing)
    assert max(c.burst_frames for c in clients) >= 7 * FPS, got
    log = n.log_text()
    assert "send queue overflow" not in log, log[-3000:]
