#!/usr/bin/python3
"""A configurable RTSP test camera built on gst-rtsp-server (a real RTSP
server that nobody in this project wrote).

Run it with Debian's python3 (it imports gi):

    python3 tests/camera/camera.py --port 8554 --mount cam --video h264 --audio aac

It prints one line "READY rtsp://127.0.0.1:PORT/MOUNT" per mount once the
server listens, then serves until SIGTERM/SIGINT. Each RTSP connection is
logged on stderr as "camera: client N connected".

Sources:
  default   a clip encoded once by ffmpeg (cached in --cache), looped with
            multifilesrc; costs <1% of a core per camera. A pad probe after
            the parser sets pts = dts (the clip has no B-frames), otherwise
            players see corruption on the looped Annex-B stream.
  --live    videotestsrc + x264enc/x265enc live (~5% of a core each).
  --qr-clock  a wall-clock camera (H.264 only): every frame shows a QR code
            (python3-qrcode) of the wall-clock time in epoch milliseconds at
            which the frame was made, pushed into an appsrc (is-live,
            do-timestamp) and encoded live by x264enc (zerolatency, no
            B-frames). Tests read the time back from recorded frames with
            zbarimg and so measure what the recording lost or delayed. The
            QR code (version 1, fixed mask: ~1.5 ms of Python per frame) is
            drawn black on white with 8-pixel modules in the top-left corner,
            so the size must be at least 200x200.
Audio: audiotestsrc encoded by avenc_aac (RFC 3640 payload, mpeg4-generic),
alawenc (PCMA) or mulawenc (PCMU).

Every mount has its own shared media (set_shared: every client of a mount
sees the same pipeline). With --shared-key all mounts share ONE pipeline
(used by the benchmarks: 100+ cameras for a few percent of a core).

Tools write state into $HOME/XDG dirs: they are pointed at --tmp (default: a
fresh temporary directory) before GStreamer is initialised.
"""

import argparse
import fcntl
import os
import subprocess
import sys
import tempfile
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--mount", action="append", default=[], help="mount path (repeatable); default 'cam'")
    p.add_argument("--count", type=int, default=0, help="expand each mount M into M0..M{count-1}")
    p.add_argument("--video", choices=["h264", "h265"], default="h264")
    p.add_argument("--audio", choices=["none", "aac", "pcma", "pcmu"], default="none")
    p.add_argument("--auth", default="", help="user:pass (RTSP Digest, RFC 2617)")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--size", default="640x360", help="WxH")
    p.add_argument("--gop", type=int, default=25, help="keyframe interval in frames")
    p.add_argument("--bitrate", type=int, default=800, help="video kbit/s")
    p.add_argument("--live", action="store_true", help="encode live instead of looping a clip")
    p.add_argument("--qr-clock", action="store_true",
                   help="live frames showing a QR code of their wall-clock time (epoch ms)")
    p.add_argument("--clip-seconds", type=int, default=10)
    p.add_argument("--protocols", default="udp,tcp", help="allowed lower transports: udp,tcp")
    p.add_argument("--shared-key", default="", help="all mounts share one pipeline with this key")
    p.add_argument("--tmp", default="", help="HOME/XDG/state directory (default: a new temp dir)")
    p.add_argument("--cache", default="", help="clip cache directory (default: TMP/clips)")
    a = p.parse_args(argv)
    if not a.mount:
        a.mount = ["cam"]
    if a.count > 0:
        a.mount = ["%s%d" % (m, i) for m in a.mount for i in range(a.count)]
    try:
        w, h = a.size.lower().split("x")
        a.width, a.height = int(w), int(h)
    except ValueError:
        p.error("--size must be WxH")
    if a.qr_clock:
        if a.video != "h264":
            p.error("--qr-clock encodes H.264 only")
        if a.width < QR_PX or a.height < QR_PX:
            p.error("--qr-clock needs a size of at least %dx%d" % (QR_PX, QR_PX))
        if a.width % 4:
            p.error("--qr-clock needs a width that is a multiple of 4 (GRAY8 rows)")
        a.live = True
    a.protocols = [x.strip() for x in a.protocols.split(",") if x.strip()]
    if not a.protocols or any(x not in ("udp", "tcp") for x in a.protocols):
        p.error("--protocols takes udp and/or tcp")
    return a


QR_MODULE_PX = 8   # pixels per QR module (nearest-neighbour scaling)
QR_BORDER = 2      # quiet zone in modules (zbar reads 2 reliably)
QR_PX = (21 + 2 * QR_BORDER) * QR_MODULE_PX  # version 1 is 21x21 modules


def qr_frame(text, width, height):
    """One GRAY8 frame (width*height bytes, rows unpadded: callers use a
    width that is a multiple of 4) with the QR code of text in the top-left
    corner. Version 1 with level M holds 15 digits, enough for epoch ms."""
    import qrcode
    q = qrcode.QRCode(version=1, error_correction=qrcode.constants.ERROR_CORRECT_M,
                      border=QR_BORDER, mask_pattern=0)
    q.add_data(text, optimize=0)
    q.make(fit=False)
    black, white = b"\x00" * QR_MODULE_PX, b"\xff" * QR_MODULE_PX
    pad = b"\xff" * (width - QR_PX)
    rows = [(b"".join(black if v else white for v in r) + pad) * QR_MODULE_PX for r in q.get_matrix()]
    frame = b"".join(rows)
    return frame + b"\xff" * (width * height - len(frame))


def setup_env(tmp):
    """Points every tool that writes into $HOME at tmp (before Gst.init)."""
    for sub in ("home", "cache", "config", "data", "runtime"):
        os.makedirs(os.path.join(tmp, sub), exist_ok=True)
    os.chmod(os.path.join(tmp, "runtime"), 0o700)
    os.environ["HOME"] = os.path.join(tmp, "home")
    os.environ["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
    os.environ["XDG_DATA_HOME"] = os.path.join(tmp, "data")
    os.environ["XDG_RUNTIME_DIR"] = os.path.join(tmp, "runtime")


def encode_clip(a):
    """Encodes the clip once with ffmpeg (no B-frames, fixed GOP, Annex-B)
    and returns its path. Concurrent cameras share the cache: a lock file
    serialises the encode and the result is renamed into place."""
    os.makedirs(a.cache, exist_ok=True)
    ext = a.video
    name = "clip-%s-%dx%d-%dfps-g%d-%dk-%ds.%s" % (
        a.video, a.width, a.height, a.fps, a.gop, a.bitrate, a.clip_seconds, ext)
    path = os.path.join(a.cache, name)
    if os.path.exists(path):
        return path
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        tmp = path + ".part"
        src = "testsrc2=size=%dx%d:rate=%d" % (a.width, a.height, a.fps)
        cmd = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", src,
               "-t", str(a.clip_seconds), "-pix_fmt", "yuv420p"]
        if a.video == "h264":
            cmd += ["-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", str(a.gop),
                    "-keyint_min", str(a.gop), "-sc_threshold", "0",
                    "-b:v", "%dk" % a.bitrate, "-f", "h264", tmp]
        else:
            params = "bframes=0:keyint=%d:min-keyint=%d:scenecut=0:repeat-headers=1:log-level=error" % (
                a.gop, a.gop)
            cmd += ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", params,
                    "-b:v", "%dk" % a.bitrate, "-f", "hevc", tmp]
        subprocess.run(cmd, check=True)
        os.rename(tmp, path)
    return path


def audio_branch(a, live):
    if a.audio == "none":
        return ""
    lv = "true" if live else "false"
    if a.audio == "aac":
        return (" audiotestsrc is-live=%s wave=sine freq=440 volume=0.3 ! "
                "audio/x-raw,rate=48000,channels=1 ! audioconvert ! avenc_aac bitrate=64000 ! "
                "rtpmp4gpay name=pay1 pt=97" % lv)
    enc, pay, pt = ("alawenc", "rtppcmapay", 8) if a.audio == "pcma" else ("mulawenc", "rtppcmupay", 0)
    return (" audiotestsrc is-live=%s wave=sine freq=440 volume=0.3 samplesperbuffer=160 ! "
            "audio/x-raw,rate=8000,channels=1 ! audioconvert ! %s ! %s name=pay1 pt=%d" % (lv, enc, pay, pt))


def launch_line(a, clip):
    if a.qr_clock:
        raw = "video/x-raw,format=GRAY8,width=%d,height=%d,framerate=%d/1" % (a.width, a.height, a.fps)
        video = ('appsrc name=qrsrc is-live=true do-timestamp=true format=time caps="%s" ! '
                 "videoconvert ! video/x-raw,format=I420 ! "
                 "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=%d bitrate=%d ! "
                 "video/x-h264,profile=baseline ! h264parse name=parse ! "
                 "rtph264pay name=pay0 pt=96 config-interval=1" % (raw, a.gop, a.bitrate))
    elif a.live:
        caps = "video/x-raw,width=%d,height=%d,framerate=%d/1" % (a.width, a.height, a.fps)
        if a.video == "h264":
            enc = ("x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=%d bitrate=%d ! "
                   "video/x-h264,profile=baseline ! h264parse name=parse" % (a.gop, a.bitrate))
            pay = "rtph264pay"
        else:
            enc = ("x265enc tune=zerolatency speed-preset=ultrafast key-int-max=%d bitrate=%d "
                   "option-string=bframes=0 ! h265parse name=parse" % (a.gop, a.bitrate))
            pay = "rtph265pay"
        video = "videotestsrc is-live=true pattern=ball ! %s ! videoconvert ! %s ! " \
                "%s name=pay0 pt=96 config-interval=1" % (caps, enc, pay)
    else:
        if a.video == "h264":
            caps, parse, pay = "video/x-h264,stream-format=byte-stream", "h264parse", "rtph264pay"
        else:
            caps, parse, pay = "video/x-h265,stream-format=byte-stream", "h265parse", "rtph265pay"
        video = ('multifilesrc location="%s" loop=true caps="%s,framerate=%d/1" ! '
                 "%s name=parse ! %s name=pay0 pt=96 config-interval=1" % (clip, caps, a.fps, parse, pay))
    return "( " + video + audio_branch(a, a.live) + " )"


def main(argv):
    a = parse_args(argv)
    if not a.tmp:
        a.tmp = tempfile.mkdtemp(prefix="mscam-")
    if not a.cache:
        a.cache = os.path.join(a.tmp, "clips")
    setup_env(a.tmp)
    clip = None if a.live else encode_clip(a)

    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    Gst.init(None)

    def pts_from_dts(_pad, info):
        buf = info.get_buffer()
        if buf is not None and buf.dts != Gst.CLOCK_TIME_NONE:
            buf.pts = buf.dts
        return Gst.PadProbeReturn.OK

    def start_qr_clock(media):
        """Pushes one frame every 1/fps s, each showing the wall clock at
        which it is pushed (do-timestamp stamps it with the same moment).
        Frames are only made while the media plays (before that nothing
        consumes them); the timer ends with the media."""
        src = media.get_element().get_by_name("qrsrc")
        period = 1.0 / a.fps
        state = {"next": time.monotonic(), "done": False}

        def push():
            if state["done"]:
                return False
            if src.get_state(0)[1] == Gst.State.PLAYING:
                data = qr_frame(str(int(time.time() * 1000)), a.width, a.height)
                src.emit("push-buffer", Gst.Buffer.new_wrapped(data))
            # paced on the monotonic clock, not on the timer's lateness; a
            # late timer skips the slots it missed rather than catching up
            # (frames in a burst would show the same millisecond)
            now = time.monotonic()
            state["next"] += period
            if state["next"] <= now:
                state["next"] += period * (1 + int((now - state["next"]) / period))
            GLib.timeout_add(int((state["next"] - now) * 1000), push)
            return False

        def stop(*_args):
            state["done"] = True

        media.connect("unprepared", stop)
        GLib.idle_add(push)

    def on_configure(_factory, media):
        parse = media.get_element().get_by_name("parse")
        if parse is not None and not a.live:
            parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, pts_from_dts)
        if a.qr_clock:
            start_qr_clock(media)

    class KeyedFactory(GstRtspServer.RTSPMediaFactory):
        """A factory whose media is keyed by a fixed string so that one
        factory mounted at many paths serves all of them from one pipeline."""

        key = ""

        def do_gen_key(self, url):  # noqa: N802 (GObject vfunc name)
            return self.key or url.abspath

    server = GstRtspServer.RTSPServer()
    server.set_address(a.address)
    server.set_service(str(a.port))

    protocols = 0
    if "udp" in a.protocols:
        protocols |= GstRtsp.RTSPLowerTrans.UDP
    if "tcp" in a.protocols:
        protocols |= GstRtsp.RTSPLowerTrans.TCP

    permissions = None
    if a.auth:
        user, _, password = a.auth.partition(":")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)

    line = launch_line(a, clip)

    def make_factory():
        f = KeyedFactory()
        f.key = a.shared_key
        f.set_launch(line)
        f.set_shared(True)
        f.set_protocols(GstRtsp.RTSPLowerTrans(protocols))
        f.set_suspend_mode(GstRtspServer.RTSPSuspendMode.NONE)
        f.connect("media-configure", on_configure)
        if permissions is not None:
            f.set_permissions(permissions)
        return f

    mounts = server.get_mount_points()
    shared = make_factory() if a.shared_key else None
    for m in a.mount:
        mounts.add_factory("/" + m.lstrip("/"), shared or make_factory())

    clients = [0]

    def on_client(_server, client):
        # one line per RTSP connection (tests count new sessions in the log)
        clients[0] += 1
        print("camera: client %d connected" % clients[0], file=sys.stderr, flush=True)

    server.connect("client-connected", on_client)

    if server.attach(None) == 0:
        print("camera: cannot listen on %s:%d" % (a.address, a.port), file=sys.stderr)
        return 1
    for m in a.mount:
        print("READY rtsp://127.0.0.1:%d/%s" % (server.get_bound_port(), m.lstrip("/")), flush=True)

    loop = GLib.MainLoop()
    for sig in (2, 15):  # SIGINT, SIGTERM
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
