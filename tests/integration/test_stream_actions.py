"""REST stream actions on one node (docs/api.md): restart makes a new RTSP
session (the camera sees a new connection, uptime_s restarts, frames resume
in HLS), PATCH is a JSON merge patch (RFC 7396) validated like PUT, PUT takes
what GET answered, bad list filters are 400, and a stream defined by a file
of streams_dir cannot be deleted through the API (409)."""
import json
import re

import mslib
from mslib import ffmpeg_decode, parse_playlist, wait_until


def _connections(cam):
    return len(re.findall(r"camera: client \d+ connected", cam.log.read_text(errors="replace")))


def _msn(n, name):
    r = n.get("/%s/index.m3u8" % name)
    if r.status != 200:
        return -1
    pl = parse_playlist(r.text)
    return pl["media_sequence"] + len(pl["segments"]) - 1


def test_restart_new_session_and_file_stream(node, camera):
    cam = camera(audio="none")
    n = node(streams={"cam": cam.url()})
    n.wait_active("cam")
    n.wait_hls("cam", segments=2)
    st = n.wait_status("cam", lambda s: s["uptime_s"] >= 3, timeout=20, what="uptime_s >= 3")
    conns = _connections(cam)
    assert conns >= 1
    msn = _msn(n, "cam")

    r = n.api("/api/v1/streams/cam/restart", method="POST")
    assert r.status == 200 and r.json() == {"ok": True, "server": "n1"}, r.text
    wait_until(lambda: _connections(cam) > conns, 10, what="a new RTSP connection")
    st2 = n.wait_status("cam", lambda s: s["state"] == "active" and s["uptime_s"] < st["uptime_s"],
                        timeout=15, what="active with uptime_s from 0")
    assert st2["uptime_s"] <= 2, st2
    log = n.log_text()
    assert "[stream cam] restart requested" in log and "restarted" in log, log[-2000:]
    # frames resume: new segments, and the live playlist decodes
    wait_until(lambda: _msn(n, "cam") >= msn + 2, 15, what="new HLS segments after the restart")
    res = ffmpeg_decode(n.hls_url("cam"), 2)
    assert res.frames >= 25, (res.frames, res.errors)

    # the stream comes from streams_dir: the API cannot delete it (SIGHUP
    # would bring it back)
    r = n.api("/api/v1/streams/cam", method="DELETE")
    assert r.status == 409, r.text
    assert "defined by cam.json in streams_dir" in r.json()["error"], r.text
    assert "delete the file instead" in r.json()["error"], r.text
    assert n.api("/api/v1/streams/cam").status == 200

    # list filters: unknown values are 400 with the field, known ones filter
    for q, field in (("state=bogus", "state"), ("role=bogus", "role"),
                     ("state=active,bogus", "state"), ("dvr=yes", "dvr")):
        r = n.api("/api/v1/streams?" + q)
        assert r.status == 400 and r.json()["field"] == field, (q, r.text)
    r = n.api("/api/v1/streams?state=active,suspend&role=primary")
    assert r.status == 200 and [s["name"] for s in r.json()["streams"]] == ["cam"], r.text
    r = n.api("/api/v1/streams?state=suspend")
    assert r.status == 200 and r.json()["streams"] == [], r.text


def _patch(n, path, body, ctype="application/merge-patch+json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return mslib.http(n.base + path, method="PATCH", body=data, auth=n.admin,
                      headers={"Content-Type": ctype})


def test_patch_and_put_round_trip(node):
    n = node()
    body = mslib.default_stream("p1", "rtsp://127.0.0.1:9/x")
    r = n.api("/api/v1/streams", method="POST", body=body)
    assert r.status == 201, r.text
    created = r.json()

    # merge patch: objects merge, other values replace, null deletes a key
    r = _patch(n, "/api/v1/streams/p1", {"url": "rtsp://127.0.0.1:9/y", "hls": {"window": 8}})
    assert r.status == 200, r.text
    p = r.json()
    assert p["url"] == "rtsp://127.0.0.1:9/y" and p["hls"]["window"] == 8, p
    assert p["hls"]["segment_ms"] == 1000 and p["uid"] == created["uid"], p
    r = _patch(n, "/api/v1/streams/p1", {"reconnect": None}, ctype="application/json")
    assert r.status == 200, r.text
    assert r.json()["reconnect"] != body["reconnect"], r.text  # back to the defaults
    wait_until(lambda: n.stream("p1")["url"] == "rtsp://127.0.0.1:9/y", 5, what="patch applied")
    # validated like PUT
    for patch, field in (({"bogus": 1}, "bogus"), ({"hls": {"window": "x"}}, "window"),
                         ({"uid": "other"}, "uid")):
        r = _patch(n, "/api/v1/streams/p1", patch)
        assert r.status == 400 and field in r.json().get("field", ""), (patch, r.text)
    assert _patch(n, "/api/v1/streams/p1", {"url": "x"}, ctype="text/plain").status == 415
    assert _patch(n, "/api/v1/streams/p1", b"[1]").status == 400
    assert _patch(n, "/api/v1/streams/nosuch", {"url": "x"}).status == 404

    # PUT takes what GET answered (status and placement are read-only)
    got = n.stream("p1")
    assert "status" in got
    got["name"] = "p1b"
    r = n.api("/api/v1/streams/p1", method="PUT", body=got)
    assert r.status == 200 and r.json()["name"] == "p1b", r.text
    stored = r.json()
    assert "placement" in stored
    stored["hls"]["window"] = 5
    r = n.api("/api/v1/streams/p1b", method="PUT", body=stored)
    assert r.status == 200 and r.json()["hls"]["window"] == 5, r.text
    # an API-made stream is deleted through the API
    assert n.api("/api/v1/streams/p1b", method="DELETE").status == 200


def test_mp4_export_name_and_basic_times(node, camera):
    """MP4 export is a download named {stream}-{from}-{duration}.mp4 unless
    ?inline=1; times also in the ISO 8601 basic form; a malformed time is
    400."""
    import time
    cam = camera(audio="none")
    n = node(streams={"rec": {"url": cam.url(),
                              "dvr": {"enabled": True, "depth_s": 3600, "chunk_s": 2,
                                      "mode": "continuous"}}})
    n.wait_active("rec")
    rg = wait_until(lambda: [g for g in n.api("/api/v1/streams/rec/ranges").json()["ranges"]
                             if g["duration"] >= 5], 30, what="5 s recorded")
    t = rg[0]["from"] + 1
    basic = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
    r = n.get("/rec/archive-%s-3.mp4" % basic)
    assert r.status == 200 and r.headers["Content-Type"] == "video/mp4", (r.status, r.text[:200])
    assert r.headers["Content-Disposition"] == 'attachment; filename="rec-%s-3.mp4"' % basic
    r2 = n.get("/rec/archive-%d-3.mp4?inline=1" % t)
    assert r2.status == 200 and "Content-Disposition" not in r2.headers, r2.headers
    assert r2.body == r.body
    r = n.get("/rec/archive-%d-3.mp4" % t)
    assert r.headers["Content-Disposition"] == 'attachment; filename="rec-%d-3.mp4"' % t
    r = n.get("/rec/archive-%s-3.m3u8" % basic)
    assert r.status == 200 and "#EXT-X-ENDLIST" in r.text, r.text
    r = n.get("/rec/videoshot.jpg?at=%s" % basic)
    assert r.status == 200 and r.body[:2] == b"\xff\xd8", (r.status, r.text[:200])
    for bad in ("/rec/archive-bogus-3.mp4", "/rec/archive-20231314T000000Z-3.mp4",
                "/rec/archive-20231114T2200Z-3.m3u8"):
        r = n.get(bad)
        assert r.status == 400 and r.json()["field"] == "from", (bad, r.status, r.text)
    r = n.get("/rec/videoshot.jpg?at=yesterday")
    assert r.status == 400 and r.json()["field"] == "at", r.text
