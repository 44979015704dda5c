"""Node config status_log_s (docs/config.md): every N seconds one INFO line
per stream the node runs, with state, bitrates, clients, drops and uptime;
0 (the default) logs none. Also: without a cluster, status.local repeats the
node's own state and age_ms is 0 (docs/api.md "Status object")."""
import re
import time

import mslib

LINE = re.compile(r"\[stream cam\] status: active \(primary\), in (\d+) kbit/s, out (\d+) kbit/s,"
                  r" (\d+) clients, (\d+) frames dropped, (\d+) rtp lost, up (\d+) s")


def test_status_log_every_second(node, shared_cam):
    n = node(streams={"cam": {"url": shared_cam.url(), "transport": "tcp"}},
             extra_cfg={"status_log_s": 1})
    n.wait_active("cam", timeout=30)
    st = n.wait_status("cam", lambda s: s["bitrate_kbps"] > 0, timeout=15, what="a bitrate")
    assert st["local"] == {"state": "active", "role": "primary"} and st["age_ms"] == 0, st
    lines = mslib.wait_until(lambda: (lambda m: m if len(m) >= 3 and int(m[-1][0]) > 0 else None)(
        LINE.findall(n.log_text())), 15, what="3 status lines with a bitrate")
    ups = [int(m[5]) for m in lines]
    assert ups == sorted(ups), ups
    # about one a second: not one per bitrate tick
    t0, c0 = time.monotonic(), len(LINE.findall(n.log_text()))
    time.sleep(3)
    c1 = len(LINE.findall(n.log_text()))
    assert 2 <= c1 - c0 <= 4, (c0, c1, time.monotonic() - t0)


def test_status_log_off_by_default(node, shared_cam):
    n = node(streams={"cam": {"url": shared_cam.url(), "transport": "tcp"}})
    n.wait_active("cam", timeout=30)
    time.sleep(2)
    assert "status: active" not in n.log_text()
