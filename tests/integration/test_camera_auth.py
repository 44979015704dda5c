"""RTSP Digest authentication towards the camera (RFC 2617)."""

import re


def test_digest_right_and_wrong_password(node, camera):
    cam = camera(audio="none", auth="viewer:s3cret")
    n = node(streams={
        "right": cam.url(auth="viewer:s3cret"),
        "wrong": cam.url(auth="viewer:nope"),
        "nocreds": cam.url(auth=""),
    }, channels=["video"])
    n.wait_active("right", timeout=30)
    n.wait_hls("right", segments=1)
    for name in ("wrong", "nocreds"):
        st = n.wait_status(name, lambda s: s.get("characteristic") == "incorrect", timeout=20,
                           what="characteristic=incorrect")
        assert st["state"] != "active", st
        assert re.search(r"401|auth", st.get("reason", ""), re.I), "reason does not mention auth/401: %r" % (
            st.get("reason"),)
    assert n.status("right")["state"] == "active"
