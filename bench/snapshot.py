#!/usr/bin/python3
"""Snapshot benchmark: requests/s of /{stream}/preview.jpg with --clients
concurrent HTTP/1.1 keep-alive clients (asyncio, one connection each) for
--seconds, against a node pulling one camera (tests/camera/camera.py, looped
H.264 clip, 640x360, 25 fps, one keyframe per second).

Figures: requests/s, latency p50/p99/max, responses that were not 200, the
number of keyframe decodes during the window (ms_snapshot_decodes_total
from /metrics: the JPEG is made once per new keyframe and then served from
the cache, so about one decode per second is expected whatever the load),
the node's CPU (CPU-seconds from /proc/PID/stat over the window, 100% = one
core) and the client process' own CPU (when it is near 100% the figure is
bounded by the client, not the node).

    python3 bench/snapshot.py [--clients 100] [--seconds 10]

Needs build/mediaserver (or MS_BIN). Prints figures; never passes/fails.
Everything runs on loopback inside a temporary directory.
"""

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import finish, cpu_ticks, machine_busy_ticks, workdir  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")






def decodes(node, stream):
    total = 0
    for ln in node.metrics().splitlines():
        if ln.startswith("ms_snapshot_decodes_total") and ('"%s"' % stream) in ln:
            total += int(float(ln.rsplit(" ", 1)[1]))
    return total


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, int(q * len(sorted_vals)))
    return sorted_vals[i]


async def client(port, path, stop_at, lat, status, sizes):
    """One keep-alive connection sending GETs back to back (HTTP/1.1,
    RFC 9112); records every latency. Reconnects if the server closes."""
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: ms-bench\r\n\r\n" % (path, port)).encode()
    w = None
    try:
        while time.monotonic() < stop_at:
            if w is None:
                r, w = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.monotonic()
            w.write(req)
            head = (await r.readuntil(b"\r\n\r\n")).decode("latin-1")
            code = int(head.split(" ", 2)[1])
            m = re.search(r"\r\ncontent-length:\s*(\d+)", head, re.I)
            if m:
                body = await r.readexactly(int(m.group(1)))
            elif re.search(r"\r\ntransfer-encoding:\s*chunked", head, re.I):
                body = b""
                while True:
                    sz = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
                    body += await r.readexactly(sz + 2)
                    if sz == 0:
                        break
            else:
                body = await r.read()
                w.close()
                w = None
            lat.append(time.monotonic() - t0)
            status[code] = status.get(code, 0) + 1
            if code == 200:
                sizes.append(len(body))
            if w is not None and re.search(r"\r\nconnection:\s*close", head, re.I):
                w.close()
                w = None
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        status[type(e).__name__] = status.get(type(e).__name__, 0) + 1
    finally:
        if w is not None:
            w.close()


async def load(port, path, clients, seconds, pid):
    lat, status, sizes = [], {}, []
    me = os.getpid()
    t0 = time.monotonic()
    c0, b0, m0 = cpu_ticks(pid), cpu_ticks(me), machine_busy_ticks()
    stop_at = t0 + seconds
    await asyncio.gather(*(client(port, path, stop_at, lat, status, sizes) for _ in range(clients)))
    dt = time.monotonic() - t0
    c1, b1, m1 = cpu_ticks(pid), cpu_ticks(me), machine_busy_ticks()
    busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100 * (os.cpu_count() or 1)
    return {"lat": sorted(lat), "status": status, "dt": dt, "sizes": sizes,
            "cpu": 100.0 * (c1 - c0) / TICKS / dt, "bench_cpu": 100.0 * (b1 - b0) / TICKS / dt,
            "machine": busy}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--file", default="preview.jpg", help="preview.jpg or videoshot.jpg")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="node worker threads")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    base = workdir("snap")
    cam = node = None
    try:
        cam = mslib.Camera(base / "cam", mounts=("cam",), audio="none", cache=base / "clips").start()
        node = mslib.Node(base / "node", extra={"threads": a.threads})
        node.add_stream("cam", cam.url(), transport="tcp", channels=["video"])
        node.start(timeout=60)
        node.wait_active("cam", timeout=60)
        path = "/cam/" + a.file
        mslib.wait_until(lambda: node.get(path).status == 200, 30, what="a first snapshot")
        d0 = decodes(node, "cam")
        r = asyncio.run(load(node.http_port, path, a.clients, a.seconds, node.proc.pid))
        d1 = decodes(node, "cam")
    finally:
        finish(base, a.keep, node, (cam,))

    lat, n = r["lat"], len(r["lat"])
    ok = r["status"].get(200, 0)
    print("%s, %d keep-alive clients, %.1f s window" % (path, a.clients, r["dt"]))
    print("  requests/s       %.0f (%d requests, %d x 200, others: %s)" % (
        n / r["dt"], n, ok, {k: v for k, v in r["status"].items() if k != 200} or "none"))
    print("  latency ms       p50 %.2f  p99 %.2f  max %.2f" % (
        pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, (lat[-1] if lat else float("nan")) * 1e3))
    if r["sizes"]:
        print("  JPEG bytes       %d..%d" % (min(r["sizes"]), max(r["sizes"])))
    print("  decodes          %d during the window (one per new keyframe: ~%.0f expected at 1 keyframe/s)" % (
        d1 - d0, r["dt"]))
    print("  node CPU         %.1f%%   client CPU %.1f%%   machine busy %.0f%% (100%% = one core)" % (
        r["cpu"], r["bench_cpu"], r["machine"]))
    print("Noise: CPU-seconds from /proc/PID/stat; other work on this machine shares the cores and the")
    print("client (one Python process) competes with the node, so requests/s is a lower bound.")


if __name__ == "__main__":
    main()
