#!/usr/bin/python3
"""LL-HLS latency benchmark: a node pulls K cameras with LL-HLS parts
(--part-ms), while one client per stream follows the live edge with blocking
playlist reloads (_HLS_msn/_HLS_part, as a player does). After --seconds the
ms_hls_part_latency_ms histogram (time from a frame's arrival in the hub to
the part holding it being listed) is read from /metrics, summed over the
streams, and p50/p90/p99 are estimated by linear interpolation inside the
buckets. The client's own figure (time from sending a blocking request to
the answer listing the awaited part) is printed beside it.

    python3 bench/llhls.py [--streams 4] [--seconds 60] [--part-ms 200]

Needs build/mediaserver (or MS_BIN). Prints figures only.
"""

import argparse
import re
import shutil
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import workdir  # noqa: E402

PART_RE = re.compile(r"part(\d+)\.(\d+)\.")


def histogram(metrics_text, name):
    """Sums the buckets of `name` over every label set: {le: count}, count."""
    buckets = {}
    total = 0
    for ln in metrics_text.splitlines():
        if ln.startswith(name + "_bucket{"):
            le = re.search(r'le="([^"]+)"', ln).group(1)
            v = float(ln.rsplit(" ", 1)[1])
            b = float("inf") if le == "+Inf" else float(le)
            buckets[b] = buckets.get(b, 0) + v
        elif ln.startswith(name + "_count"):
            total += float(ln.rsplit(" ", 1)[1])
    return dict(sorted(buckets.items())), total


def quantile(buckets, total, q):
    """Prometheus-style histogram_quantile (linear inside a bucket)."""
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_b, prev_c = 0.0, 0.0
    for b, c in buckets.items():
        if c >= rank:
            if b == float("inf"):
                return prev_b
            if c == prev_c:
                return b
            return prev_b + (b - prev_b) * (rank - prev_c) / (c - prev_c)
        prev_b, prev_c = b, c
    return prev_b


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def follower(node, name, stop, waits):
    """Follows the live edge like an LL-HLS player: blocks on the part
    announced by EXT-X-PRELOAD-HINT."""
    while not stop.is_set():
        r = node.get("/%s/index.m3u8" % name)
        if r.status != 200:
            time.sleep(0.2)
            continue
        pl = mslib.parse_playlist(r.text)
        hint = (pl["preload_hint"] or {}).get("URI", "")
        m = PART_RE.match(hint)
        if not m:
            time.sleep(0.2)
            continue
        while not stop.is_set():
            t0 = time.monotonic()
            r = node.get("/%s/index.m3u8?_HLS_msn=%s&_HLS_part=%s" % (name, m.group(1), m.group(2)), timeout=10)
            if r.status != 200:
                break
            waits.append((time.monotonic() - t0) * 1000)
            pl = mslib.parse_playlist(r.text)
            m = PART_RE.match((pl["preload_hint"] or {}).get("URI", ""))
            if not m:
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--part-ms", type=int, default=200)
    ap.add_argument("--segment-ms", type=int, default=1000)
    a = ap.parse_args()
    base = workdir("llhls")
    cam = node = None
    try:
        cam = mslib.Camera(base / "cam", mounts=["cam%d" % i for i in range(a.streams)], audio="aac",
                           cache=base / "clips").start()
        node = mslib.Node(base / "node")
        for i in range(a.streams):
            node.add_stream("s%d" % i, cam.url("cam%d" % i),
                            hls={"segment_ms": a.segment_ms, "part_ms": a.part_ms, "window": 6})
        node.start()
        for i in range(a.streams):
            node.wait_active("s%d" % i, timeout=60)
            node.wait_hls("s%d" % i, segments=1)
        stop = threading.Event()
        waits = []
        threads = [threading.Thread(target=follower, args=(node, "s%d" % i, stop, waits), daemon=True)
                   for i in range(a.streams)]
        for t in threads:
            t.start()
        print("following %d LL-HLS streams for %d s (part %d ms, segment %d ms)..." % (
            a.streams, a.seconds, a.part_ms, a.segment_ms), flush=True)
        # Parts listed before the clients came (start-up, and a camera read
        # in batches while nobody follows it: docs/config.md ingest_batch_ms)
        # are left out: the histogram is taken from 2 s after they started.
        time.sleep(2)
        base_buckets, base_total = histogram(node.metrics(), "ms_hls_part_latency_ms")
        time.sleep(a.seconds)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        buckets, total = histogram(node.metrics(), "ms_hls_part_latency_ms")
        buckets = {b: v - base_buckets.get(b, 0) for b, v in buckets.items()}
        total -= base_total
    finally:
        if node:
            node.stop()
        if cam:
            cam.stop()
        shutil.rmtree(base, ignore_errors=True)

    print()
    print("ms_hls_part_latency_ms (server: frame arrival -> part listed), %d observations" % total)
    if total:
        for q in (0.5, 0.9, 0.99):
            print("  p%-3d %8.1f ms" % (q * 100, quantile(buckets, total, q)))
    else:
        print("  no observations: the histogram is missing or empty")
    print("blocking reload wait seen by the clients, %d requests" % len(waits))
    for q in (0.5, 0.9, 0.99):
        print("  p%-3d %8.1f ms" % (q * 100, percentile(waits, q)))
    print("(a client wait of about one part duration, %d ms, is the expected figure)" % a.part_ms)


if __name__ == "__main__":
    main()
