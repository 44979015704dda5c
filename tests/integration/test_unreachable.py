"""Cameras that cannot be reached: nothing listening, or a TCP peer that
never answers."""

import re


def test_nothing_listening(node, free_port):
    port = free_port()
    n = node(streams={"cam": "rtsp://127.0.0.1:%d/cam" % port})
    st = n.wait_status("cam", lambda s: s["state"] == "inactive" and s["characteristic"] == "disconnected",
                       timeout=20, what="inactive/disconnected")
    assert st["reason"].strip(), st
    assert n.alive()


def test_silent_camera_times_out(node, badcam):
    bc = badcam("silent")
    n = node(streams={"cam": bc.url()})
    st = n.wait_status("cam", lambda s: s["state"] == "inactive" and s.get("reason"), timeout=30,
                       what="inactive with a reason")
    assert re.search(r"time ?out|timed out|no (answer|response|reply).*within", st["reason"], re.I), \
        "reason is not about a timeout: %r" % st["reason"]
    assert st["characteristic"] in ("disconnected", "problematic"), st
