#!/usr/bin/python3
"""Memory churn benchmark: does a node give its memory back after streams
come and go? One node, one GStreamer camera mount shared by every stream;
streams are created over the API in rounds of --batch, each round waits until
they are all active (frames flowing, HLS ready), then deletes them all. The
node's RSS (/proc/PID/status VmRSS) and open file descriptors are printed at
the start, after every few rounds and after the last removal (plus a settle
of --settle seconds).

    python3 bench/memory_churn.py [--streams 1000] [--batch 50] [--settle 3]

Target (docs/architecture.md "malloc arenas"): after 1,000 streams, RSS
within +10 MB of the start. Everything runs on loopback in a temporary
directory.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import workdir  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def churn(node, url, total, batch, log=print, active_timeout=30):
    """Adds and removes `total` streams (all pulling url) in rounds of
    `batch`. Returns the number that became active."""
    done = active = 0
    rnd = 0
    while done < total:
        k = min(batch, total - done)
        names = ["churn%d" % (done + i) for i in range(k)]
        for nm in names:
            body = mslib.default_stream(nm, url, channels=["video"])
            r = node.api("/api/v1/streams", method="POST", body=body)
            assert r.status == 201, (r.status, r.text)
        deadline = time.monotonic() + active_timeout
        while time.monotonic() < deadline:
            sts = node.streams()
            up = sum(1 for nm in names if nm in sts and sts[nm]["status"]["state"] == "active")
            if up == k:
                break
            time.sleep(0.2)
        active += up
        for nm in names:
            r = node.api("/api/v1/streams/%s" % nm, method="DELETE")
            assert r.status == 200, (r.status, r.text)
        mslib.wait_until(lambda: not any(nm.startswith("churn") for nm in node.streams()), 30,
                         what="streams removed")
        done += k
        rnd += 1
        if log:
            log("  %5d streams: RSS %.1f MB, %d fds" % (done, rss_kb(node.proc.pid) / 1024, nfds(node.proc.pid)))
    return active


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    base = workdir("churn")
    cam = mslib.Camera(base / "cam", mounts=("cam",), video="h264", audio="none", cache=base / "clips")
    cam.start(timeout=120)
    node = mslib.Node(base / "node")
    try:
        node.start(timeout=60)
        time.sleep(1)
        r0, f0 = rss_kb(node.proc.pid), nfds(node.proc.pid)
        print("start: RSS %.1f MB, %d fds" % (r0 / 1024, f0), flush=True)
        t0 = time.monotonic()
        active = churn(node, cam.url("cam"), a.streams, a.batch,
                       log=lambda s: print(s, flush=True))
        time.sleep(a.settle)
        r1, f1 = rss_kb(node.proc.pid), nfds(node.proc.pid)
        print("after %d streams (%d became active) in %.0f s and %.0f s settle: RSS %.1f MB (%+.1f MB), %d fds (%+d)"
              % (a.streams, active, time.monotonic() - t0 - a.settle, a.settle, r1 / 1024, (r1 - r0) / 1024,
                 f1, f1 - f0), flush=True)
    finally:
        node.stop()
        cam.stop()
        if a.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
