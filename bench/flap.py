#!/usr/bin/python3
"""Camera flapping benchmark: one node recording one camera that drops its
connection after a few frames, over and over (tests/camera/badcam.py --mode
flap); the node reconnects after 100 ms. Prints the node's RSS
(/proc/PID/status VmRSS) and open file descriptors after the first --warmup
connections and after --cycles, and the archive's ranges and chunk count.

    python3 bench/flap.py [--cycles 1000] [--frames 3]

Everything runs on loopback in a temporary directory (~0.2 s per cycle).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=3, help="frames the camera sends per connection")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not os.access(mslib.ms_bin(), os.X_OK):
        sys.exit("mediaserver not found at %s (run make, or set MS_BIN)" % mslib.ms_bin())
    base = Path(tempfile.mkdtemp(prefix="ms-bench-flap-"))
    cam = mslib.BadCam(base / "cam", "flap", args=["--frames", str(a.frames)])
    cam.start()
    node = mslib.Node(base / "node", extra={"ingest_batch_ms": 0})
    node.add_stream("f", cam.url(), channels=["video"],
                    dvr={"enabled": True, "depth_s": 3600, "chunk_s": 2, "mode": "continuous"},
                    reconnect={"interval_ms": 100, "max_interval_ms": 100})

    def plays():
        return cam.log.read_text(errors="replace").count("badcam: connection ")
    try:
        node.start(timeout=60)
        mslib.wait_until(lambda: plays() >= a.warmup, 60, what="warm-up connections")
        r0, f0, t0 = rss_kb(node.proc.pid), nfds(node.proc.pid), time.monotonic()
        print("after %d connections: RSS %.1f MB, %d fds" % (plays(), r0 / 1024, f0), flush=True)
        step = max(100, a.cycles // 10)
        nxt = step
        while plays() < a.cycles:
            if plays() >= nxt:
                print("  %5d connections: RSS %.1f MB, %d fds" % (plays(), rss_kb(node.proc.pid) / 1024,
                                                                  nfds(node.proc.pid)), flush=True)
                nxt += step
            if time.monotonic() - t0 > a.cycles * 2:
                print("too slow: stopped", flush=True)
                break
            time.sleep(0.2)
        time.sleep(1)
        r1, f1 = rss_kb(node.proc.pid), nfds(node.proc.pid)
        rg = node.api("/api/v1/streams/f/ranges").json()["ranges"]
        st = node.status("f")
        print("after %d connections in %.0f s: RSS %.1f MB (%+.1f MB), %d fds (%+d); reconnects %d; "
              "archive: %d range(s), %d s recorded"
              % (plays(), time.monotonic() - t0, r1 / 1024, (r1 - r0) / 1024, f1, f1 - f0,
                 st["reconnects_total"], len(rg), sum(x["duration"] for x in rg)), flush=True)
    finally:
        node.stop()
        cam.stop()
        if a.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
