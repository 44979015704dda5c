"""Camera killed and restarted: the node reconnects, counts it, marks the
discontinuity in HLS and keeps the playlist advancing."""

import time

from mslib import ffmpeg_decode, parse_playlist, wait_until


def playlist(n, name):
    r = n.get("/%s/index.m3u8" % name)
    assert r.status == 200, r.status
    return parse_playlist(r.text)


def last_msn(pl):
    return pl["media_sequence"] + len(pl["segments"]) - 1


def test_camera_restart(node, camera):
    cam = camera(audio="aac")
    n = node(streams={"cam": cam.url()})
    st0 = n.wait_active("cam", timeout=30)
    n.wait_hls("cam", segments=3)
    before = playlist(n, "cam")
    total0 = st0["reconnects_total"]

    cam.kill()
    st = n.wait_status("cam", lambda s: s["state"] != "active", timeout=15, what="state leaves active")
    assert st["state"] in ("inactive", "initialization"), st
    assert st.get("reason"), st
    time.sleep(1.0)
    cam.start()

    st = n.wait_status("cam", lambda s: s["state"] == "active" and s["reconnects_total"] > total0,
                       timeout=30, what="active again with reconnects_total increased")
    assert st["reconnects_total"] >= total0 + 1

    # A new timeline: EXT-X-DISCONTINUITY before the first segment of the new session.
    # (The first segment of an output is a discontinuity too, node/streams.c
    # seq_base: count only those after the segments seen before the loss.)
    pl = wait_until(lambda: (lambda p: p if any(sg["discontinuity"] and sg["msn"] > last_msn(before)
                                                for sg in p["segments"]) else None)(
        playlist(n, "cam")), timeout=20, what="EXT-X-DISCONTINUITY and new segments")
    assert pl["media_sequence"] >= before["media_sequence"]

    # The playlist keeps advancing after the reconnect.
    m1 = last_msn(pl)
    wait_until(lambda: last_msn(playlist(n, "cam")) >= m1 + 2, timeout=15, what="media sequence grows")
    # ... and the sliding window moves past where it was before the loss.
    wait_until(lambda: playlist(n, "cam")["media_sequence"] > before["media_sequence"], timeout=20,
               what="EXT-X-MEDIA-SEQUENCE grows past %d" % before["media_sequence"])

    res = ffmpeg_decode(n.hls_url("cam"), 4)
    assert res.errors == [] and res.rc == 0, res
    assert res.frames >= 0.8 * 4 * cam.fps, res
