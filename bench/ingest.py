#!/usr/bin/python3
"""Ingest benchmark: one mediaserver node pulling N RTSP cameras with live
HLS on, against the same cameras remuxed to HLS by one ffmpeg process each
(`ffmpeg -rtsp_transport tcp -i URL -c copy -f hls`, the usual "one process per
camera" setup).

The N cameras are N mounts of ONE shared GStreamer pipeline looping a clip
encoded once by ffmpeg (tests/camera/camera.py --shared-key), so the cameras
themselves cost a few percent of a core.

Figures: CPU% (threads' schedstat run time over --seconds, 100% = one core) and
memory (PSS: shared pages divided among processes) of the node, per camera;
the same for the ffmpeg processes (run for at most --ffmpeg-max cameras, then
compared per camera); frames lost (rtp_lost, frames_dropped from the API),
reconnects and streams not active at the end.

    python3 bench/ingest.py --cameras 50 100 200 [--seconds 30] [--ffmpeg-max 50]

Needs build/mediaserver (or MS_BIN). Prints figures; never passes/fails on
time. Everything runs on loopback inside a temporary directory.
"""

import argparse
import threading
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import cpu_ticks, workdir  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")




def cpu_ns(pid):
    """On-CPU time of every thread of pid in ns (sum_exec_runtime from
    /proc/PID/task/TID/schedstat): user and system time like utime + stime,
    without their 10 ms tick granularity (at 50 cameras the node uses ~0.7%
    of a core, 21 ticks in a 30 s window). None where schedstat is missing."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_seconds(pids):
    ns = [cpu_ns(p) for p in pids]
    if all(v is not None for v in ns):
        return sum(ns) / 1e9
    return sum(cpu_ticks(p) for p in pids) / TICKS


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size: shared library pages are divided among the
    processes that map them (fair when comparing 1 process to N)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for ln in f:
                if ln.startswith("Pss:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return rss_kb(pid)


def measure(pids, seconds):
    """CPU% (100 = one core) summed over pids during `seconds`, and summed
    PSS (kB) averaged over the window: memory saw-tooths with every segment
    and GOP (in phase for all cameras of one shared pipeline), so one sample
    could land anywhere on the tooth; samples every 0.45 s (not a multiple of
    the 1 s segments) average it out."""
    t0 = time.monotonic()
    c0 = cpu_seconds(pids)
    samples = []
    end = t0 + seconds
    while True:
        samples.append(sum(pss_kb(p) for p in pids))
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.45, left))
    c1 = cpu_seconds(pids)
    dt = time.monotonic() - t0
    return 100.0 * (c1 - c0) / dt, sum(samples) / len(samples)


def metric_sums(text, names):
    """Sums of the per-stream samples of the given /metrics families, and the
    number of streams that reported each."""
    sums = {n: 0.0 for n in names}
    counts = {n: 0 for n in names}
    for ln in text.splitlines():
        if not ln or ln[0] == "#":
            continue
        name = ln.split("{", 1)[0].split(" ", 1)[0]
        if name in sums:
            try:
                sums[name] += float(ln.rsplit(" ", 1)[1])
                counts[name] += 1
            except (IndexError, ValueError):
                pass
    return sums, counts


def start_cameras(work, n, clip_cache):
    cam = mslib.Camera(work / "cams", mounts=("cam",), video="h264", audio="none", cache=clip_cache,
                       extra=["--count", str(n), "--shared-key", "bench"])
    cam.mounts = ["cam%d" % i for i in range(n)]  # READY lines to wait for
    return cam.start(timeout=120)


class Watcher(threading.Thread):
    """--watch: asks every camera's live playlist every 2 s (as players
    would; no segment is fetched), so every HLS output counts as watched and
    keeps the segments that just left its window (media/hls)."""

    def __init__(self, node, n):
        super().__init__(daemon=True)
        self.node, self.n, self.stop_ev, self.asked = node, n, threading.Event(), 0

    def run(self):
        while not self.stop_ev.is_set():
            for i in range(self.n):
                try:
                    self.node.get("/cam%d/index.m3u8" % i, timeout=5)
                    self.asked += 1
                except OSError:
                    pass
            self.stop_ev.wait(2.0)


def run_node(work, cam, n, seconds, threads, dvr=False, watch=False, batch_ms=None):
    extra = {"threads": threads}
    if batch_ms is not None:
        extra["ingest_batch_ms"] = batch_ms
    node = mslib.Node(work / "node", extra=extra)
    for i in range(n):
        kw = {"dvr": {"enabled": True, "chunk_s": 10, "depth_s": 3600}} if dvr else {}
        node.add_stream("cam%d" % i, cam.url("cam%d" % i), transport="tcp", channels=["video"], **kw)
    node.start(timeout=60)
    try:
        deadline = time.monotonic() + 60 + n * 0.2
        active = 0
        while time.monotonic() < deadline:
            sts = [s["status"] for s in node.streams().values()]
            active = sum(1 for s in sts if s["state"] == "active" and s.get("hls_ready"))
            if active == n:
                break
            time.sleep(1)
        watcher = Watcher(node, n) if watch else None
        if watcher:
            watcher.start()
        time.sleep(3 if not watch else 8)  # settle (watched: the kept segments fill)
        before = {k: v["status"] for k, v in node.streams().items()}
        bytes0, _ = metric_sums(node.metrics(), ["ms_stream_bytes_in_total"])
        t0 = time.monotonic()
        cpu, rss = measure([node.proc.pid], seconds)
        bytes1, _ = metric_sums(node.metrics(), ["ms_stream_bytes_in_total"])
        # media bytes per second per camera = one GOP (the clip has a keyframe
        # every 25 frames at 25 fps)
        gop_size = (bytes1["ms_stream_bytes_in_total"] - bytes0["ms_stream_bytes_in_total"]) / n / (
            time.monotonic() - t0)
        # What the HLS windows and GOP caches hold (payload bytes), sampled a
        # few times over 2 s (they saw-tooth with every segment and GOP).
        held = {"ms_stream_hls_bytes": [], "ms_stream_gop_bytes": []}
        for _ in range(5):
            try:
                sums, counts = metric_sums(node.metrics(), held.keys())
                for k in held:
                    if counts[k]:
                        held[k].append(sums[k] / counts[k])
            except Exception as e:  # noqa: BLE001 (older binaries have no such gauge)
                print("  note: /metrics: %s" % e)
            time.sleep(0.4)
        hls_cam = sum(held["ms_stream_hls_bytes"]) / len(held["ms_stream_hls_bytes"]) if held["ms_stream_hls_bytes"] else None
        gop_cam = sum(held["ms_stream_gop_bytes"]) / len(held["ms_stream_gop_bytes"]) if held["ms_stream_gop_bytes"] else None
        cam_cpu, _ = measure([cam.proc.pid], 2)
        if watcher:
            watcher.stop_ev.set()
            watcher.join(timeout=30)
        after = {k: v["status"] for k, v in node.streams().items()}
        lost = sum(after[k].get("rtp_lost", 0) - before[k].get("rtp_lost", 0) for k in after)
        dropped = sum(after[k].get("frames_dropped", 0) - before[k].get("frames_dropped", 0) for k in after)
        not_active = sorted(k for k, s in after.items() if s["state"] != "active")
        reconnects = sum(s.get("reconnects_total", 0) for s in after.values())
        reconnects_window = reconnects - sum(s.get("reconnects_total", 0) for s in before.values())
        return {"cpu": cpu, "rss": rss, "cam_cpu": cam_cpu, "lost": lost, "dropped": dropped,
                "hls_cam": hls_cam, "gop_cam": gop_cam, "gop_size": gop_size,
                "not_active": not_active, "reconnects": reconnects, "reconnects_window": reconnects_window,
                "active_at_start": active}
    finally:
        rc = node.stop()
        if rc != 0:
            print("  note: node exited with %s on SIGTERM (killed=%s)" % (rc, node.killed))


def run_ffmpeg(work, cam, n, seconds):
    procs = []
    out = work / "ffmpeg"
    try:
        for i in range(n):
            d = out / ("cam%d" % i)
            d.mkdir(parents=True, exist_ok=True)
            procs.append(subprocess.Popen(
                ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", cam.url("cam%d" % i),
                 "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "6",
                 "-hls_flags", "delete_segments", str(d / "index.m3u8")],
                stdout=subprocess.DEVNULL, stderr=open(d / "ffmpeg.log", "wb")))
            time.sleep(0.05)  # stagger the connects
        time.sleep(5)
        alive = [p for p in procs if p.poll() is None]
        cpu, rss = measure([p.pid for p in alive], seconds)
        return {"cpu": cpu, "rss": rss, "alive": len(alive)}
    finally:
        for p in procs:
            mslib.stop_process(p, grace=3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--seconds", type=int, default=30, help="measurement window")
    ap.add_argument("--ffmpeg-max", type=int, default=50, help="ffmpeg peer runs for at most this many cameras")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="node worker threads")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--batch-ms", type=int, default=None,
                    help="node ingest_batch_ms (default: the node's default; 0 = read on arrival)")
    ap.add_argument("--watch", action="store_true",
                    help="ask every camera's live playlist every 2 s (HLS outputs watched)")
    ap.add_argument("--dvr", action="store_true",
                    help="record every camera too (DVR on, 10 s chunks, in the temporary directory)")
    a = ap.parse_args()

    base = workdir("ingest")
    clip_cache = base / "clips"
    rows = []
    try:
        for n in a.cameras:
            work = base / ("n%d" % n)
            print("== %d cameras" % n, flush=True)
            cam = start_cameras(work, n, clip_cache)
            try:
                r = run_node(work, cam, n, a.seconds, a.threads, a.dvr, a.watch, a.batch_ms)
                print("  node: %.1f%% CPU, %.1f MB PSS, cameras pipeline %.1f%% CPU, active %d/%d" % (
                    r["cpu"], r["rss"] / 1024, r["cam_cpu"], n - len(r["not_active"]), n), flush=True)
                f = None
                nf = min(n, a.ffmpeg_max)
                if nf > 0 and not any(row["ffmpeg"] and row["nf"] == nf for row in rows):
                    f = run_ffmpeg(work, cam, nf, a.seconds)
                    print("  ffmpeg x%d: %.1f%% CPU, %.1f MB PSS (%d alive)" % (
                        nf, f["cpu"], f["rss"] / 1024, f["alive"]), flush=True)
                elif nf > 0:
                    f = next(row["ffmpeg"] for row in rows if row["ffmpeg"] and row["nf"] == nf)
                rows.append({"n": n, "node": r, "ffmpeg": f, "nf": nf})
            finally:
                cam.stop()
    finally:
        if a.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)

    print()
    print("%-5s | %-27s | %-27s | %-15s | %s" % ("cams", "mediaserver CPU% (per cam)", "PSS MB (per cam)",
                                                 "ffmpeg/cam", "ratio ffmpeg/node"))
    print("-" * 110)
    for row in rows:
        n, r, f, nf = row["n"], row["node"], row["ffmpeg"], row["nf"]
        cpu_c, rss_c = r["cpu"] / n, r["rss"] / 1024 / n
        if f and f["alive"]:
            fcpu, frss = f["cpu"] / f["alive"], f["rss"] / 1024 / f["alive"]
            fs = "%5.2f%% %6.1fMB" % (fcpu, frss)
            ratio = "CPU x%.1f, PSS x%.1f (ffmpeg measured at %d)" % (
                fcpu / cpu_c if cpu_c else float("inf"), frss / rss_c if rss_c else float("inf"), f["alive"])
        else:
            fs, ratio = "-", "-"
        print("%-5d | %7.1f%% (%6.3f%%/cam)     | %7.1f (%6.2f/cam)         | %-15s | %s" % (
            n, r["cpu"], cpu_c, r["rss"] / 1024, rss_c, fs, ratio))
    print()
    # Memory: the per-camera average above includes the node's fixed part
    # (code, libraries, threads, HTTP pool, cluster state). The marginal cost
    # of one more camera is the slope of PSS between two camera counts; the
    # fixed part is what the line gives at 0 cameras. The target (1 MB per
    # camera plus its GOP) is compared with the slope.
    for row in rows:
        r = row["node"]
        if r["hls_cam"] is not None:
            print("%d cameras: per camera the HLS output holds %.0f kB of media (listed + kept-after-expiry"
                  " + open segments), the GOP cache %.0f kB" % (
                      row["n"], r["hls_cam"] / 1024, (r["gop_cam"] or 0) / 1024))
    by_n = sorted({row["n"]: row for row in rows}.values(), key=lambda row: row["n"])
    for a_row, b_row in zip(by_n, by_n[1:]):
        dn = b_row["n"] - a_row["n"]
        slope = (b_row["node"]["rss"] - a_row["node"]["rss"]) / 1024 / dn
        fixed = a_row["node"]["rss"] / 1024 - slope * a_row["n"]
        line = "PSS %d -> %d cameras: marginal %.2f MB per camera, fixed part %.1f MB" % (
            a_row["n"], b_row["n"], slope, fixed)
        gops = [r["node"]["gop_cam"] for r in (a_row, b_row) if r["node"]["gop_cam"] is not None]
        hlss = [r["node"]["hls_cam"] for r in (a_row, b_row) if r["node"]["hls_cam"] is not None]
        gop_size = (a_row["node"]["gop_size"] + b_row["node"]["gop_size"]) / 2 / 1048576
        target = 1.0 + gop_size
        line += "; target 1 MB + GOP (%.2f MB) = %.2f MB: %s" % (
            gop_size, target, "met" if slope <= target else "not met")
        if gops and hlss:
            gop_mb = sum(gops) / len(gops) / 1048576
            hls_mb = sum(hlss) / len(hlss) / 1048576
            line += ("\n  of the marginal: HLS output %.2f MB, GOP cache %.2f MB (mean), the rest %.2f MB" % (
                hls_mb, gop_mb, slope - hls_mb - gop_mb))
        print(line)
    print()
    for row in rows:
        r = row["node"]
        print("%d cameras, during the window: rtp_lost %d, frames_dropped %d, reconnects %d "
              "(%d since start); not active at end: %s" % (
            row["n"], r["lost"], r["dropped"], r["reconnects_window"], r["reconnects"],
            ", ".join(r["not_active"][:10]) + ("..." if len(r["not_active"]) > 10 else "") or "none"))


if __name__ == "__main__":
    main()
