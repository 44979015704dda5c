"""Cameras of each codec mix become active with the right parameters, and
their live HLS decodes cleanly with ffmpeg/ffprobe."""

import pytest

from mslib import ffmpeg_decode, ffprobe, parse_playlist

DECODE_S = 6
FPS = 25


def assert_clean_decode(n, name, seconds=DECODE_S, fps=FPS):
    res = ffmpeg_decode(n.hls_url(name), seconds)
    assert res.errors == [], res
    assert res.rc == 0, res
    expected = seconds * fps
    assert res.frames >= 0.8 * expected, "decoded %d frames, expected about %d: %r" % (res.frames, expected, res)
    assert res.frames <= 1.2 * expected + fps, res
    return res


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_h264_aac(node, shared_cam, transport):
    n = node(streams={"cam": {"url": shared_cam.url(), "transport": transport}})
    n.wait_active("cam", timeout=30)
    st = n.wait_status("cam", lambda s: s.get("video_codec") and s.get("audio_codec") and s.get("width"),
                       timeout=15, what="codecs and size known")
    assert st["state"] == "active"
    assert st["characteristic"] == "ok", st
    assert st["video_codec"] == "h264"
    assert st["audio_codec"] == "aac"
    assert (st["width"], st["height"]) == (shared_cam.width, shared_cam.height)
    assert st.get("transport") == transport
    # bitrate_kbps is an average over a few seconds: give it time.
    n.wait_status("cam", lambda s: s.get("bitrate_kbps", 0) > 0, timeout=10, what="bitrate_kbps > 0")

    pl = parse_playlist(n.wait_hls("cam", segments=2))
    assert pl["segments"][-1]["uri"].split("?")[0].endswith(".ts"), pl["segments"][-1]
    assert_clean_decode(n, "cam")

    streams = ffprobe(n.hls_url("cam"))
    codecs = {s.get("codec_name") for s in streams}
    assert {"h264", "aac"} <= codecs, streams
    v = [s for s in streams if s.get("codec_name") == "h264"][0]
    assert (v["width"], v["height"]) == (shared_cam.width, shared_cam.height)


def test_h265_fmp4(node, camera):
    cam = camera(video="h265", audio="none")
    n = node(streams={"cam": {"url": cam.url(), "channels": ["video"]}})
    n.wait_active("cam", timeout=30)
    st = n.wait_status("cam", lambda s: s.get("video_codec") and s.get("width"), timeout=15)
    assert st["video_codec"] == "h265"
    assert (st["width"], st["height"]) == (cam.width, cam.height)
    text = n.wait_hls("cam", segments=2)
    pl = parse_playlist(text)
    assert "#EXT-X-MAP" in pl["tags"], text
    assert pl["segments"][-1]["uri"].split("?")[0].endswith(".m4s"), text
    assert_clean_decode(n, "cam")
    streams = ffprobe(n.hls_url("cam"))
    assert [s.get("codec_name") for s in streams if s.get("codec_type") == "video"] == ["hevc"], streams


def test_h264_pcma(node, camera):
    cam = camera(video="h264", audio="pcma")
    n = node(streams={"cam": cam.url()})
    n.wait_active("cam", timeout=30)
    st = n.wait_status("cam", lambda s: s.get("video_codec") and s.get("audio_codec"), timeout=15)
    assert st["video_codec"] == "h264"
    assert st["audio_codec"] == "pcma"
    n.wait_hls("cam", segments=2)
    assert_clean_decode(n, "cam")
