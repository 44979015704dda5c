#!/usr/bin/python3
"""Cost of the cluster control loop (node/cluster/) on one idle node.

One single-node cluster (the default) with N streams configured and nothing
changing but the node's own load reports. Two ways to measure the control
thread (the main thread of the process, which owns raft, the reconciler and
the leader's duties):

  * default: N real cameras (one shared GStreamer pipeline, as in ingest.py);
    after the streams are active, the control thread's on-CPU time over the
    window from /proc/PID/task/PID/schedstat (nanoseconds), beside the whole
    process' CPU from /proc/PID/stat.
  * --callgrind: the node runs under valgrind's callgrind with one output per
    thread; the streams point at a closed loopback port (no media: the
    workers only retry connects), the counters are zeroed when the window
    starts and dumped when it ends (callgrind_control), and the instructions
    executed by the control thread in the window are printed.

    python3 bench/control_loop.py --streams 50 100 [--seconds 20] [--callgrind]
                                  [--perf FILE]  (perf record of the control
                                                  thread into FILE.N, live mode)

Needs build/mediaserver (or MS_BIN). Prints figures; never passes/fails.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import workdir  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


def thread_ns(pid, tid):
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def wait_streams(node, n, need_active, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = node.streams()
        except OSError:
            st = {}
        placed = sum(1 for s in st.values() if s.get("status", {}).get("server"))
        active = sum(1 for s in st.values() if s.get("status", {}).get("state") == "active")
        if len(st) == n and placed == n and (not need_active or active == n):
            return True
        time.sleep(1)
    return False


def run_live(work, n, seconds, clip_cache, perf_out=None):
    cam = mslib.Camera(work / "cams", mounts=("cam",), video="h264", audio="none", cache=clip_cache,
                       extra=["--count", str(n), "--shared-key", "bench"])
    cam.mounts = ["cam%d" % i for i in range(n)]
    cam.start(timeout=120)
    node = mslib.Node(work / "node")
    try:
        for i in range(n):
            node.add_stream("cam%d" % i, cam.url("cam%d" % i), transport="tcp", channels=["video"])
        node.start(timeout=60)
        ok = wait_streams(node, n, True, 60 + n * 0.2)
        time.sleep(3)
        pid = node.proc.pid
        perf = None
        if perf_out:  # samples of the control thread only, for perf report
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "2000", "--call-graph", "dwarf",
                                     "-t", str(pid), "-o", "%s.%d" % (perf_out, n), "--", "sleep",
                                     str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0, t0, w0 = proc_cpu_s(pid), thread_ns(pid, pid), time.monotonic()
        time.sleep(seconds)
        c1, t1, w1 = proc_cpu_s(pid), thread_ns(pid, pid), time.monotonic()
        if perf:
            perf.wait(timeout=60)
        dt = w1 - w0
        print("  %d streams (all active: %s): process %.2f%% CPU, control thread %.3f%% CPU "
              "(%.1f ms of CPU per second)" % (n, ok, 100 * (c1 - c0) / dt, 100 * (t1 - t0) / 1e9 / dt,
                                               (t1 - t0) / 1e6 / dt), flush=True)
    finally:
        node.stop()
        cam.stop()


def run_callgrind(work, n, seconds):
    node = mslib.Node(work / "node")
    out = work / "cg"
    out.mkdir(parents=True)
    node.cmd_prefix = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                       "--callgrind-out-file=%s/cg.out.%%p" % out]
    try:
        for i in range(n):
            node.add_stream("cam%d" % i, "rtsp://127.0.0.1:9/cam%d" % i, transport="tcp", channels=["video"])
        node.start(timeout=180)
        ok = wait_streams(node, n, False, 180)
        time.sleep(5)
        pid = node.proc.pid
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, stdout=subprocess.DEVNULL)
        w0 = time.monotonic()
        time.sleep(seconds)
        subprocess.run(["callgrind_control", "-d", "window", str(pid)], check=True,
                       stdout=subprocess.DEVNULL)
        dt = time.monotonic() - w0
        total = 0
        for f in glob.glob(str(out / "cg.out.*.1-01")):  # dump 1 (the window), thread 1
            for ln in Path(f).read_text(errors="replace").splitlines():
                if ln.startswith("summary:") or ln.startswith("totals:"):
                    total = max(total, int(ln.split()[1]))
        print("  %d streams (all placed: %s): control thread %.1f M instructions in %.1f s "
              "(%.2f M/s)" % (n, ok, total / 1e6, dt, total / 1e6 / dt), flush=True)
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, nargs="+", default=[50, 100])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--perf", metavar="FILE", help="also perf record the control thread into FILE.N")
    a = ap.parse_args()
    base = workdir("ctl")
    try:
        for n in a.streams:
            print("== %d streams" % n, flush=True)
            if a.callgrind:
                run_callgrind(base / ("n%d" % n), n, a.seconds)
            else:
                run_live(base / ("n%d" % n), n, a.seconds, base / "clips", a.perf)
    finally:
        if a.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
