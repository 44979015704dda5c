"""Chromium (Debian's, headless): hls.js plays the archive HLS and a <video>
element plays the archive MP4 export (tests/integration/web, as for live)."""

import json
import shutil
import subprocess
import tempfile
import urllib.parse

import mslib
from test_browser import WEB, web_server  # noqa: F401  (fixture)

FPS = 25


def play(page, tmp_path, min_time=2):
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = mslib.tool_env(str(tmp_path / "chromium-home"))
    # a short TMPDIR: Chromium's singleton socket path must fit in sun_path
    env["TMPDIR"] = tempfile.mkdtemp(prefix="chr")
    try:
        p = subprocess.run(["node", str(WEB / "play.mjs"), page, str(tmp_path / "profile"), str(min_time),
                            "40000"], capture_output=True, timeout=120, env=env, cwd=str(WEB))
    finally:
        shutil.rmtree(env["TMPDIR"], ignore_errors=True)
    out = p.stdout.decode(errors="replace").strip().splitlines()
    assert out, "play.mjs printed nothing: %s" % p.stderr.decode(errors="replace")[-2000:]
    res = json.loads(out[-1])
    assert res["fatal"] is None, "playback error: %s (all: %s; console: %s)" % (
        res["fatal"], res["errors"], res.get("console"))
    assert res["currentTime"] > min_time, "video did not advance past %s s: %s" % (min_time, json.dumps(res))
    assert p.returncode == 0, res
    return res


def recorded(n, name, seconds):
    """Waits until `seconds` of archive exist; returns the range start."""
    def enough():
        rg = n.api("/api/v1/streams/%s/ranges" % name).json()["ranges"]
        return rg and rg[-1]["duration"] >= seconds + 2 and rg[-1]
    rg = mslib.wait_until(enough, seconds + 30, interval=0.5, what="%d s of archive" % seconds)
    return rg["from"]


def test_chromium_plays_archive_hls_and_mp4(node, shared_cam, web_server, tmp_path):  # noqa: F811
    n = node(streams={"cam": {"url": shared_cam.url(),
                              "dvr": {"enabled": True, "depth_s": 3600, "chunk_s": 2, "mode": "continuous"}}})
    n.wait_active("cam", timeout=30)
    t0 = recorded(n, "cam", 8)
    start = int(t0) + 1
    hls = "%s/cam/archive-%d-8.m3u8" % (n.base, start)
    r = n.get("/cam/archive-%d-8.m3u8" % start)
    assert r.status == 200 and "#EXT-X-ENDLIST" in r.text, r.text
    res = play("%s/index.html?src=%s" % (web_server, urllib.parse.quote(hls, safe="")), tmp_path / "hls")
    assert not [e for e in res["errors"] if "networkError" in e], res
    mp4 = "%s/cam/archive-%d-8.mp4" % (n.base, start)
    r = n.get("/cam/archive-%d-8.mp4" % start, timeout=30)
    assert r.status == 200 and r.body[4:8] == b"ftyp", r.status
    play("%s/index.html?mp4=%s" % (web_server, urllib.parse.quote(mp4, safe="")), tmp_path / "mp4")
