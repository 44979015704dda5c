"""Batched camera reads (node ingest_batch_ms, docs/config.md): while no
viewer needs frames at once the node reads a TCP camera every
ingest_batch_ms; the HLS output is unchanged, and an LL-HLS client or an
RTSP viewer switches the stream to reading on arrival for as long as it
needs it."""

import subprocess
import time

from mslib import ffmpeg_decode, parse_playlist

FPS = 25


def reads(n, name="cam"):
    return n.status(name).get("reads")


def viewer_holds_on_arrival(n, ffmpeg_in, hold=0):
    """An ffmpeg viewer decoding 5-6 s of the stream switches it to reads on
    arrival while it plays (still so `hold` s later), then back to batches."""
    p = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error"] + ffmpeg_in +
                         ["-t", "6", "-map", "0:v:0", "-f", "null", "-"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        n.wait_status("cam", lambda s: s.get("reads") == "on_arrival", 5, "reads=on_arrival")
        if hold:
            time.sleep(hold)
            assert reads(n) == "on_arrival", "switched back while the viewer is connected"
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0 and err.decode(errors="replace").strip() == "", err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    n.wait_status("cam", lambda s: s.get("reads") == "batched", 5, "reads=batched after the viewer left")


def test_batched_reads_keep_hls_whole(node, shared_cam):
    # 1 s batches: 25 frames arrive at once; nothing may be lost or reordered
    n = node(streams={"cam": shared_cam.url("cam3")}, extra_cfg={"ingest_batch_ms": 1000})
    n.wait_active("cam", timeout=30)
    n.wait_status("cam", lambda s: s.get("reads") == "batched", 10, "reads=batched")
    n.wait_hls("cam", segments=3)
    res = ffmpeg_decode(n.hls_url("cam"), 4)
    assert res.errors == [] and res.rc == 0, res
    assert 4 * FPS * 0.9 <= res.frames <= 4 * FPS * 1.1, res
    st = n.status("cam")
    assert st["reads"] == "batched", st["reads"]
    assert st["rtp_lost"] == 0 and st["frames_dropped"] == 0, st
    # segments of the 1 s target are cut on the camera's keyframes (one a
    # second): their durations come from RTP timestamps, not from the 1 s
    # batches in which the frames arrived
    pl = parse_playlist(n.get("/cam/index.m3u8").text)
    durs = [s["duration"] for s in pl["segments"]]
    assert len(durs) >= 3 and all(0.95 <= d <= 1.05 for d in durs), durs


def test_llhls_client_switches_to_reads_on_arrival(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam3")}, extra_cfg={"ingest_batch_ms": 200})
    n.wait_active("cam", timeout=30)
    n.wait_status("cam", lambda s: s.get("reads") == "batched", 10, "reads=batched")
    pl = parse_playlist(n.wait_hls("cam", segments=2))
    # a classic HLS player (no _HLS_ parameters) does not change the mode
    for _ in range(5):
        assert n.get("/cam/index.m3u8").status == 200
        time.sleep(0.1)
    time.sleep(0.5)
    assert reads(n) == "batched"
    # an LL-HLS client: blocking reloads on the hinted part, for 3 s
    t_end = time.monotonic() + 3
    switched = None
    while time.monotonic() < t_end:
        msn = pl["media_sequence"] + len(pl["segments"])
        r = n.get("/cam/index.m3u8?_HLS_msn=%d&_HLS_part=0" % msn, timeout=10)
        assert r.status == 200, r.status
        pl = parse_playlist(r.text)
        if switched is None and reads(n) == "on_arrival":
            switched = time.monotonic()
    assert switched is not None, "an LL-HLS client did not switch the stream to reads on arrival"
    # the request renews the hold for 5 s; then the stream goes back to batches
    t0 = time.monotonic()
    n.wait_status("cam", lambda s: s.get("reads") == "batched", 15, "reads=batched again")
    assert time.monotonic() - t0 >= 3, "the hold ended too early"


def test_rtsp_viewer_holds_reads_on_arrival(node, shared_cam, free_port):
    n = node(streams={"cam": shared_cam.url("cam3")}, extra_cfg={"ingest_batch_ms": 200}, start=False)
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    n.wait_active("cam")
    n.wait_status("cam", lambda s: s.get("reads") == "batched", 10, "reads=batched")
    url = "rtsp://127.0.0.1:%d/cam" % n.rtsp_port
    viewer_holds_on_arrival(n, ["-rtsp_transport", "tcp", "-i", url], hold=2)


def test_live_mp4_viewer_holds_reads_on_arrival(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam3")}, extra_cfg={"ingest_batch_ms": 200})
    n.wait_active("cam", timeout=30)
    n.wait_status("cam", lambda s: s.get("reads") == "batched", 10, "reads=batched")
    viewer_holds_on_arrival(n, ["-i", "%s/cam/live.mp4" % n.base])


def test_zero_reads_on_arrival(node, shared_cam):
    n = node(streams={"cam": shared_cam.url("cam3")}, extra_cfg={"ingest_batch_ms": 0})
    n.wait_active("cam", timeout=30)
    n.wait_status("cam", lambda s: s.get("reads") == "on_arrival", 10, "reads=on_arrival")
    time.sleep(1)
    assert reads(n) == "on_arrival"


def test_high_bitrate_camera_in_1s_batches(node, camera):
    # 8 Mbit/s in 1 s batches: ~1 MB waits in the socket at each read (TCP
    # flow control holds what does not fit at the camera); nothing is lost
    cam = camera(mounts=("hd",), audio="none", size="1280x720", gop=50, extra=["--bitrate", "8000"])
    n = node(streams={"hd": cam.url("hd")}, extra_cfg={"ingest_batch_ms": 1000}, channels=["video"])
    n.wait_active("hd", timeout=30)
    n.wait_status("hd", lambda s: s.get("reads") == "batched", 10, "reads=batched")
    time.sleep(2)
    s0 = n.status("hd")
    time.sleep(8)
    s1 = n.status("hd")
    assert s1["bitrate_kbps"] > 6000, s1["bitrate_kbps"]
    assert s1["rtp_lost"] == s0["rtp_lost"] and s1["frames_dropped"] == s0["frames_dropped"], (s0, s1)
    assert s1["reconnects_total"] == 0 and s1["reads"] == "batched", s1
    res = ffmpeg_decode(n.hls_url("hd"), 4)
    assert res.errors == [] and res.rc == 0, res
    assert 4 * FPS * 0.9 <= res.frames <= 4 * FPS * 1.1, res
