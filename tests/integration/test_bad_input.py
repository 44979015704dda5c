"""Malformed RTSP/SDP/RTP from a camera: the stream is flagged, the node
stays alive and the other streams on the node are not disturbed."""

import pytest

from mslib import BadCam, Node, ffmpeg_decode

MODES = {
    # mode: (transport, characteristics accepted)
    "garbage": ("tcp", {"incorrect", "problematic", "disconnected"}),
    "truncated": ("tcp", {"incorrect", "problematic", "disconnected"}),
    "hugelen": ("tcp", {"incorrect", "problematic", "disconnected"}),
    "badsdp": ("tcp", {"incorrect"}),
    "badrtp": ("tcp", {"incorrect", "problematic"}),
    "badrtp_udp": ("udp", {"incorrect", "problematic"}),
    "junk": ("tcp", {"incorrect", "problematic"}),
    "404": ("tcp", {"incorrect"}),
    "401": ("tcp", {"incorrect"}),
}


@pytest.fixture(scope="module")
def bad_node(tmp_path_factory, shared_cam, ms_binary):
    d = tmp_path_factory.mktemp("badinput")
    cams = []
    n = Node(d / "node")
    try:
        for name, (transport, _) in MODES.items():
            bc = BadCam(d / "cams", name.split("_")[0]).start()
            cams.append(bc)
            n.add_stream(name, bc.url(), transport=transport, channels=["video"])
        n.add_stream("good", shared_cam.url(), transport="tcp")
        n.start()
        yield n
    finally:
        rc = n.stop()
        for c in cams:
            c.stop()
        assert rc == 0 and not n.killed, "node exit code %s on SIGTERM (killed=%s)" % (rc, n.killed)


@pytest.mark.parametrize("mode", list(MODES))
def test_bad_camera_is_flagged(bad_node, mode):
    accepted = MODES[mode][1]
    st = bad_node.wait_status(mode, lambda s: s.get("characteristic") in accepted and s["state"] != "active",
                              timeout=30, what="characteristic in %s" % sorted(accepted))
    assert st.get("reason"), st
    assert bad_node.alive()


def test_good_stream_unaffected(bad_node):
    # Let the bad cameras misbehave for a while (reconnect loops) first.
    st = bad_node.wait_active("good", timeout=30)
    assert st["characteristic"] == "ok", st
    bad_node.wait_hls("good", segments=2)
    res = ffmpeg_decode(bad_node.hls_url("good"), 6)
    assert res.errors == [] and res.rc == 0, res
    assert res.frames >= 0.8 * 6 * 25, res
    st = bad_node.status("good")
    assert st["state"] == "active" and st["reconnects_total"] == 0, st
    assert bad_node.alive()
