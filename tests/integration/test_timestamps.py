"""RTP timestamp faults end to end (media/rtp/timeline.c): a camera whose
timestamps jump (one frame 1 h ahead, a lasting step 1 h back, 1 h ahead,
back again) and which loses a run of packets. Live HLS must keep
advancing with EXT-X-DISCONTINUITY at the jumps and decode cleanly, the
recording must stay one range with sane segment durations, and the status
and /metrics must say what happened."""

import hashlib
import re
import time

from mslib import ffmpeg_decode, parse_playlist, wait_until

PRIVATE = {"mode": "private", "whitelist": []}
FPS = 25  # tests/data/h264_320x240_25fps.h264: 25 fps, a keyframe every second
JUMPS = "3:outlier,6:back,9:drop,12:ahead,15:back"


def token(n, stream, **body):
    r = n.api("/api/v1/streams/%s/tokens" % stream, method="POST", body=body)
    assert r.status == 200, (r.status, r.text)
    return r.json()["token"]


def test_timestamp_jumps(node, badcam):
    cam = badcam("tsjump", "--jumps", JUMPS)
    dvr = {"enabled": True, "depth_s": 3600, "chunk_s": 2, "mode": "continuous"}
    n = node(streams={"cam": {"url": cam.url(), "access": PRIVATE, "dvr": dvr, "channels": ["video"]}})
    n.wait_active("cam", timeout=30)
    t0 = time.time()
    live = token(n, "cam", ttl_s=600, mode="live")

    def playlist():
        r = n.get("/cam/index.m3u8?token=" + live)
        return parse_playlist(r.text) if r.status == 200 else None

    # all the faults are sent by t0 + 15 s; the one-frame outlier at 3 s used
    # to freeze dts for an hour: no part, no segment after it
    time.sleep(16.5)
    pl1 = playlist()
    assert pl1 and pl1["segments"], pl1
    msn1 = pl1["segments"][-1]["msn"]
    time.sleep(4)
    pl2 = playlist()
    msn2 = pl2["segments"][-1]["msn"]
    assert msn2 - msn1 >= 3, (msn1, msn2)
    assert pl2["discontinuities"] >= 1, pl2  # the jump at 15 s is still listed
    for s in pl1["segments"] + pl2["segments"]:
        assert 0.2 <= s["duration"] <= pl2["target_duration"] + 0.001, s
    dec = ffmpeg_decode(n.base + "/cam/index.m3u8?token=" + live, 3, extra_in=["-live_start_index", "0"])
    assert dec.rc == 0 and dec.errors == [] and dec.frames >= 2 * FPS, dec

    st = n.status("cam")
    assert st["timestamp_jumps"] == 4, st
    assert st["timestamp_resyncs"] == 3, st  # the lasting ones; the outlier is absorbed
    assert st["rtp_lost"] >= 4, st
    assert st["state"] == "active" and st["characteristic"] == "problematic", st
    assert st["reason"] == "RTP timestamps jumped 4 times in the last minute", st
    # a private stream's series is labelled by a hash of its uid on the
    # unauthenticated /metrics (docs/security.md)
    uid = n.api("/api/v1/streams/cam").json()["uid"]
    label = "~" + hashlib.sha256(b"ms-metrics\0" + uid.encode()).hexdigest()[:16]
    m = re.search(r'^ms_stream_timestamp_jumps_total\{stream="%s",[^}]*\} (\S+)$' % re.escape(label),
                  n.metrics(), re.M)
    assert m and float(m.group(1)) == 4, m

    # The archive: one range (the recorder restarts at the keyframe after
    # each discontinuity, well within the 2 s gap), chunks of sane length.
    r = n.api("/api/v1/streams/cam/ranges")
    assert r.status == 200, r.text
    rg = r.json()["ranges"]
    assert len(rg) == 1, rg
    elapsed = time.time() - t0
    assert rg[0]["duration"] >= elapsed - 4, (rg, elapsed)
    arch = token(n, "cam", ttl_s=600, mode="archive", **{"from": rg[0]["from"]})
    url = "%s/cam/archive-%d-%d.m3u8?token=%s" % (n.base, rg[0]["from"], rg[0]["duration"], arch)
    pl = n.get(url[len(n.base):]).text
    durs = [float(x) for x in re.findall(r"#EXTINF:([0-9.]+)", pl)]
    assert durs, pl
    assert all(0.5 <= d <= 3.1 for d in durs[:-1]), durs  # 2 s chunks cut at keyframes
    assert abs(sum(durs) - rg[0]["duration"]) <= 3, (sum(durs), rg)
    dec = ffmpeg_decode(url, 60)
    assert dec.rc == 0 and dec.errors == [], dec
    assert abs(dec.frames - sum(durs) * FPS) <= 2 * FPS, (dec, sum(durs))


def test_real_camera_has_no_jumps(node, shared_cam):
    """No false positives: the GStreamer camera (H.264 + AAC, its clip
    looping every 10 s) over TCP read in 1 s batches and over UDP shows no
    jump and no resync, and stays ok."""
    n = node(streams={"tcp": {"url": shared_cam.url("cam")},
                      "udp": {"url": shared_cam.url("cam2"), "transport": "udp"}})
    n.wait_active("tcp", timeout=60)
    n.wait_active("udp", timeout=60)
    time.sleep(13)
    for name in ("tcp", "udp"):
        st = n.status(name)
        assert st["timestamp_jumps"] == 0 and st["timestamp_resyncs"] == 0, (name, st)
        assert st["characteristic"] == "ok", (name, st)
    assert re.search(r'^ms_stream_timestamp_jumps_total\{stream="tcp",[^}]*\} 0$', n.metrics(), re.M)
