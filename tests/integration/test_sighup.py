"""SIGHUP re-reads the stream directory: added, changed and removed streams
take effect; an untouched stream keeps running (uptime not reset)."""

import time

from mslib import wait_until


def test_sighup_add_change_remove(node, shared_cam):
    n = node(streams={"keep": shared_cam.url("cam"), "change": shared_cam.url("cam2"),
                      "drop": shared_cam.url("cam3")})
    for s in ("keep", "change", "drop"):
        n.wait_active(s, timeout=30)
    time.sleep(2.5)  # so that the untouched stream's uptime is measurably > 0
    keep0 = n.status("keep")
    assert keep0["uptime_s"] >= 1, keep0
    uid_change = n.stream("change")["uid"]

    n.add_stream("added", shared_cam.url("cam3"))
    n.add_stream("change", shared_cam.url("cam3"))
    n.remove_stream("drop")
    n.sighup()

    wait_until(lambda: "added" in n.streams() and "drop" not in n.streams(), timeout=15,
               what="added listed and drop removed")
    wait_until(lambda: n.stream("change")["url"] == shared_cam.url("cam3"), timeout=15, what="url updated")
    n.wait_active("added", timeout=30)
    n.wait_active("change", timeout=30)
    assert n.stream("change")["uid"] == uid_change
    assert n.get("/drop/index.m3u8").status == 404

    keep1 = n.status("keep")
    assert keep1["state"] == "active"
    assert keep1["uptime_s"] >= keep0["uptime_s"], (keep0["uptime_s"], keep1["uptime_s"])
    assert keep1["reconnects_total"] == keep0["reconnects_total"]
    assert n.alive()
