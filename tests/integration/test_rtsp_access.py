"""Access modes on the RTSP server (RFC 2326) with real clients: the node
listens on 127.0.0.1; a small RTSP client binds its source address to
127.0.0.1 or 127.0.0.2 (Linux routes all of 127/8 on lo) for the refusals,
ffmpeg (from 127.0.0.1) and GStreamer rtspsrc decode the allowed cases.
Private streams take a token as ?token=, a token as the user name, or the
admin user over Digest (RFC 2617); RTSP share links play with ffmpeg."""

import json
import re
import socket
import subprocess
import time

import pytest

import mslib
from mslib import ffmpeg_decode
from test_rtsp_server import GST_SCRIPT

FPS = 25
PROTECTED = {"mode": "protected", "whitelist": ["127.0.0.1/32"]}
PRIVATE = {"mode": "private", "whitelist": []}


@pytest.fixture
def acc_node(node, shared_cam, free_port):
    n = node(streams={"pub": {"url": shared_cam.url("cam")},
                      "prot": {"url": shared_cam.url("cam2"), "access": PROTECTED},
                      "priv": {"url": shared_cam.url("cam3"), "access": PRIVATE}},
             start=False)
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    for s in ("pub", "prot", "priv"):
        n.wait_active(s, timeout=30)
    time.sleep(1.5)  # a keyframe in the GOP cache
    return n


def url(n, stream, q="", userinfo=""):
    return "rtsp://%s127.0.0.1:%d/%s%s" % (userinfo, n.rtsp_port, stream, q)


def describe(n, stream, q="", src="127.0.0.1", auth=None):
    """One DESCRIBE from a chosen source address; returns (status, head)."""
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10, source_address=(src, 0))
    try:
        extra = "Authorization: %s\r\n" % auth if auth else ""
        s.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n%s\r\n"
                   % (url(n, stream, q), extra)).encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            b = s.recv(65536)
            if not b:
                break
            data += b
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        return int(head.split(" ", 2)[1]), head
    finally:
        s.close()


def token(n, stream, **body):
    r = n.api("/api/v1/streams/%s/tokens" % stream, method="POST", body=body)
    assert r.status == 200, (r.status, r.text)
    return r.json()["token"]


def decodes(u, secs=3, transport="tcp"):
    res = ffmpeg_decode(u, secs, extra_in=["-rtsp_transport", transport])
    assert res.errors == [] and res.rc == 0, res
    assert res.frames >= secs * FPS * 0.9, res
    return res


def refused(u):
    """ffprobe must fail on the URL; returns its stderr."""
    p = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams", u],
                       capture_output=True, timeout=30)
    assert p.returncode != 0, p.stdout[:500]
    return p.stderr.decode(errors="replace")


def test_public_and_protected(acc_node):
    n = acc_node
    assert describe(n, "pub", src="127.0.0.2")[0] == 200
    assert describe(n, "prot", src="127.0.0.1")[0] == 200
    # refused as an unknown stream is: a Digest challenge (names cannot be
    # probed; the admin user may still authenticate)
    st, head = describe(n, "prot", src="127.0.0.2")
    assert st == 401 and "WWW-Authenticate: Digest" in head, head
    assert "refused (401)" in n.log_text() and "whitelist" in n.log_text()
    # a valid token admits a client outside the whitelist
    t = token(n, "prot", ttl_s=60)
    assert describe(n, "prot", "?token=" + t, src="127.0.0.2")[0] == 200
    decodes(url(n, "pub"), transport="udp")
    decodes(url(n, "prot"))


def test_private_tokens(acc_node):
    n = acc_node
    st, head = describe(n, "priv")
    assert st == 401, head
    assert re.search(r"WWW-Authenticate: Digest realm=\"[^\"]+\", nonce=", head), head
    good = token(n, "priv", ttl_s=600)
    tampered = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    other = token(n, "pub", ttl_s=600)
    bound = token(n, "priv", ttl_s=600, ip="127.0.0.9")
    mine = token(n, "priv", ttl_s=600, ip="127.0.0.2")
    archive = token(n, "priv", ttl_s=600, mode="archive", **{"from": int(time.time()) - 60})
    short = token(n, "priv", ttl_s=1)
    assert describe(n, "priv", "?token=" + short)[0] == 200
    time.sleep(2.2)
    # not a genuine token of the stream: the challenge an unknown stream
    # gets; a genuine one that does not allow this: 403
    for why, (tok, code) in {"tampered": (tampered, 401), "other stream": (other, 401),
                             "wrong ip": (bound, 403), "expired": (short, 403),
                             "archive mode": (archive, 403), "garbage": ("x" * 40, 401)}.items():
        st, head = describe(n, "priv", "?token=" + tok)
        assert st == code, (why, head)
    assert describe(n, "priv", "?token=" + mine, src="127.0.0.2")[0] == 200
    assert describe(n, "priv", "?token=" + mine, src="127.0.0.1")[0] == 403
    # ffmpeg plays with ?token= over both transports (SETUP/PLAY carry it)
    decodes(url(n, "priv", "?token=" + good))
    decodes(url(n, "priv", "?token=" + good), transport="udp")
    # the token as the user name (clients that cannot change the URL)
    decodes(url(n, "priv", userinfo=good + ":x@"))
    refused(url(n, "priv"))  # no credentials: ffprobe gives up
    err = refused(url(n, "priv", userinfo=tampered + ":x@"))
    assert "401" in err or "Unauthorized" in err, err


def test_admin_digest(acc_node, tmp_path):
    n = acc_node
    decodes(url(n, "priv", userinfo="admin:secret@"))
    err = refused(url(n, "priv", userinfo="admin:wrong@"))
    assert "401" in err or "Unauthorized" in err, err
    # a Digest answer computed for another nonce is refused too
    st, head = describe(n, "priv", auth='Digest username="admin", realm="mediaserver", '
                        'nonce="00000000000000000000000000000000000000000000000000", '
                        'uri="%s", response="00000000000000000000000000000000"' % url(n, "priv"))
    assert st == 401, head
    # GStreamer rtspsrc with user-id/user-pw
    script = tmp_path / "gst_play.py"
    script.write_text(GST_SCRIPT.replace("location=%s ", "location=%s user-id=admin user-pw=secret "))
    secs = 4
    p = subprocess.run([mslib.PY, str(script), url(n, "priv"), "tcp", str(secs)],
                       capture_output=True, timeout=60, env=mslib.tool_env(str(tmp_path / "gst")))
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    st = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert st["errors"] == [], st
    assert secs * FPS * 0.85 <= st["video"] <= secs * FPS * 1.15, st


def test_rtsp_share_link(acc_node):
    n = acc_node
    r = n.api("/api/v1/streams/priv/share", method="POST",
              body={"mode": "live", "protocol": "rtsp", "ttl_s": 3600})
    assert r.status == 200, r.text
    u = r.json()["url"]
    assert u.startswith("rtsp://127.0.0.1:%d/priv?token=" % n.rtsp_port), u
    decodes(u)
    # the RTSP archive link is well formed (it plays in
    # test_access.py::test_archive_share_link_plays, on a recording stream)
    r = n.api("/api/v1/streams/priv/share", method="POST",
              body={"mode": "archive", "protocol": "rtsp", "from": int(time.time()) - 3600})
    assert r.status == 200, r.text
    assert re.match(r"rtsp://127\.0\.0\.1:%d/priv\?from=\d+&token=" % n.rtsp_port,
                    r.json()["url"]), r.text


def rtsp_req(n, method, stream, q="", src="127.0.0.1"):
    """One request on a new connection; returns (status, head without the
    nonce, which differs every second)."""
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10, source_address=(src, 0))
    try:
        s.sendall(("%s %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % (method, url(n, stream, q))).encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            b = s.recv(65536)
            if not b:
                break
            data += b
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        return int(head.split(" ", 2)[1]), re.sub(r'nonce="[^"]*"', "nonce", head)
    finally:
        s.close()


def test_unknown_and_refused_look_the_same(acc_node):
    """A client without credentials cannot tell an unknown stream name from
    a private (or protected, outside the whitelist) one: DESCRIBE and
    OPTIONS answer both with the same 401 and Digest challenge."""
    n = acc_node
    for method in ("DESCRIBE", "OPTIONS"):
        st_u, head_u = rtsp_req(n, method, "nosuch")
        st_p, head_p = rtsp_req(n, method, "priv")
        st_w, head_w = rtsp_req(n, method, "prot", src="127.0.0.2")
        assert st_u == st_p == st_w == 401, (method, head_u, head_p, head_w)
        assert "WWW-Authenticate: Digest" in head_u and "WWW-Authenticate: Digest" in head_p
        # a forged token changes nothing
        assert rtsp_req(n, method, "priv", "?token=" + "A" * 40)[0] == 401
        assert rtsp_req(n, method, "nosuch", "?token=" + "A" * 40)[0] == 401
    assert rtsp_req(n, "OPTIONS", "pub")[0] == 200
    t = token(n, "priv", ttl_s=60)
    assert rtsp_req(n, "OPTIONS", "priv", "?token=" + t)[0] == 200
