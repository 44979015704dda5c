"""Chromium (Debian's, headless) plays the live stream: HLS with hls.js,
HTTP-FLV with mpegts.js."""

import functools
import json
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import mslib

WEB = Path(__file__).resolve().parent / "web"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    if not (WEB / "node_modules" / "hls.js" / "dist" / "hls.min.js").exists():
        pytest.fail("tests/integration/web/node_modules is missing: run `npm ci` there (scripts/test.sh does)")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(WEB)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def play(page, tmp_path):
    """Runs web/play.mjs on page (Chromium until the video passes 3 s or 40
    s elapse); returns the process and its JSON outcome."""
    env = mslib.tool_env(str(tmp_path / "chromium-home"))
    env["TMPDIR"] = str(tmp_path)
    p = subprocess.run(["node", str(WEB / "play.mjs"), page, str(tmp_path / "profile"), "3", "40000"],
                       capture_output=True, timeout=120, env=env, cwd=str(WEB))
    out = p.stdout.decode(errors="replace").strip().splitlines()
    assert out, "play.mjs printed nothing: %s" % p.stderr.decode(errors="replace")[-2000:]
    return p, json.loads(out[-1])


def test_hls_responses_allow_cross_origin(node, shared_cam):
    """The page that plays the stream is served from another origin (any
    web app embedding the player), so HLS responses need CORS."""
    n = node(streams={"cam": shared_cam.url()})
    pl = mslib.parse_playlist(n.wait_hls("cam", segments=1))
    for path in ("/cam/index.m3u8", "/cam/" + pl["segments"][-1]["uri"]):
        r = n.get(path, headers={"Origin": "http://127.0.0.1:1"})
        assert r.status == 200
        allow = {k.lower(): v for k, v in r.headers.items()}.get("access-control-allow-origin")
        assert allow in ("*", "http://127.0.0.1:1"), "%s: no Access-Control-Allow-Origin header" % path


def test_chromium_hlsjs_plays_live(node, shared_cam, web_server, tmp_path):
    n = node(streams={"cam": shared_cam.url()})
    n.wait_active("cam", timeout=30)
    n.wait_hls("cam", segments=2)
    page = "%s/index.html?src=%s" % (web_server, n.hls_url("cam"))
    p, res = play(page, tmp_path)
    assert res["fatal"] is None, "hls.js fatal error: %s (all: %s; console: %s)" % (
        res["fatal"], res["errors"], res.get("console"))
    assert res["currentTime"] > 3, "video did not advance past 3 s: %s" % json.dumps(res)
    assert p.returncode == 0, res


def test_chromium_mpegtsjs_plays_live_flv(node, shared_cam, web_server, tmp_path):
    """mpegts.js (the player of bilibili's flv.js lineage) plays the node's
    HTTP-FLV output (/{stream}/live.flv, FLV 10.1 over chunked HTTP) through
    Media Source Extensions in Chromium, from another origin (CORS)."""
    n = node(streams={"cam": shared_cam.url()})
    n.wait_active("cam", timeout=30)
    page = "%s/index.html?flv=%s/cam/live.flv" % (web_server, n.base)
    p, res = play(page, tmp_path)
    assert res["fatal"] is None, "mpegts.js error: %s (all: %s; console: %s)" % (
        res["fatal"], res["errors"], res.get("console"))
    assert res["currentTime"] > 3, "video did not advance past 3 s: %s" % json.dumps(res)
    assert p.returncode == 0, res
