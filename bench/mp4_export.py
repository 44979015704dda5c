#!/usr/bin/python3
"""MP4 export throughput: a node records a camera (tests/camera/camera.py)
with the DVR on for --record seconds, then /{stream}/archive-FROM-DUR.mp4
(a progressive MP4 built from the index and the chunk files) is downloaded
over loopback HTTP by curl, against `cat` of the chunk files that hold the
same window into /dev/null, and against curl downloading those chunk files
from a minimal sendfile(2) HTTP server in this script (the loopback TCP
ceiling). Each runs --runs times after one warm-up run (page cache warm);
the medians give bytes/s and the ratios. Then the exporter itself in
process (bench_mp4_export: the code path of the HTTP handler into
/dev/null, no HTTP) beside cat of the same files, in process and as a
process (target exporter/cat >= 0.8).

    python3 bench/mp4_export.py [--record 60] [--size 1280x720] [--bitrate 8000]

Needs build/mediaserver (or MS_BIN). Prints figures; never passes/fails.
Everything runs on loopback inside a temporary directory.
"""

import argparse
import os
import socket
import threading
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import finish, workdir  # noqa: E402


def timed(cmd, devnull=False):
    """Wall time of a command (process start included, as for both peers);
    devnull: its stdout goes to /dev/null (cat), else it is captured (curl's
    -w line only: the body goes to /dev/null through -o)."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL if devnull else subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (cmd[0], p.stderr.decode(errors="replace")[-500:]))
    return dt, p.stdout


class SendfileServer:
    """Loopback HTTP/1.1 server answering every GET with the concatenation
    of `paths` sent by os.sendfile (zero copy): the ceiling of a download
    over loopback TCP for the same bytes, curl on the other side."""

    def __init__(self, paths):
        self.paths = paths
        self.size = sum(os.path.getsize(p) for p in paths)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf and len(buf) < 65536:
                    d = c.recv(4096)
                    if not d:
                        break
                    buf += d
                c.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                           % self.size).encode())
                for p in self.paths:
                    with open(p, "rb") as f:
                        n, off = os.path.getsize(p), 0
                        while off < n:
                            k = os.sendfile(c.fileno(), f.fileno(), off, n - off)
                            if k <= 0:
                                break
                            off += k

    def close(self):
        self.sock.close()


def chunk_files(data_dir, from_ms, to_ms):
    """The chunk files of the window (the node records one stream): rows of
    (path, bytes, uid)."""
    db = sqlite3.connect("file:%s?mode=ro" % (data_dir / "dvr_index.sqlite"), uri=True)
    rows = db.execute("SELECT path, bytes, uid FROM chunks WHERE end_ms>? AND start_ms<? "
                      "ORDER BY start_ms", (from_ms, to_ms)).fetchall()
    db.close()
    return rows


def inproc_bench(data_dir, uid, frm, dur, runs, paths):
    """bench_mp4_export (bench/mp4_export.c, built with -DMS_BENCH=ON beside
    the mediaserver binary): the exporter's own throughput in process
    (ms_dvr_export_open + ms_dvr_export_read in the HTTP handler's 1 MiB
    blocks into /dev/null) and an in-process `cat` of the same files.
    Returns {"inproc-export": (bytes, ms, open_ms), "inproc-cat": (bytes, ms)}
    or None when the program is not built."""
    exe = os.environ.get("MS_BENCH_MP4") or str(Path(mslib.ms_bin()).parent / "bench_mp4_export")
    if not os.access(exe, os.X_OK):
        print("(no %s: build with -DMS_BENCH=ON for the in-process figures)" % exe)
        return None
    p = subprocess.run([exe, str(data_dir), uid, str(frm), str(dur), str(runs)] + paths,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("bench_mp4_export: %s" % p.stderr[-500:])
    res = {}
    for line in p.stdout.splitlines():
        w = line.split()
        if w[0] == "inproc-export":
            res[w[0]] = (int(w[1]), float(w[4]), float(w[7]))
        elif w[0] == "inproc-cat":
            res[w[0]] = (int(w[1]), float(w[4]))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", type=float, default=60, help="seconds recorded")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--bitrate", type=int, default=8000, help="camera video kbit/s")
    ap.add_argument("--chunk-s", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    base = workdir("mp4")
    cam = node = None
    try:
        cam = mslib.Camera(base / "cam", mounts=("cam",), audio="none", size=a.size, cache=base / "clips",
                           extra=("--bitrate", str(a.bitrate))).start(timeout=180)
        node = mslib.Node(base / "node")
        node.add_stream("cam", cam.url(), transport="tcp", channels=["video"],
                        dvr={"enabled": True, "depth_s": 3600, "chunk_s": a.chunk_s, "mode": "continuous"})
        node.start(timeout=60)
        node.wait_active("cam", timeout=60)
        time.sleep(a.record)
        r = node.api("/api/v1/streams/cam/ranges")
        rg = [x for x in r.json()["ranges"] if x.get("server", node.name) == node.name]
        if not rg:
            sys.exit("nothing recorded: %s" % r.text)
        last = max(rg, key=lambda x: x["duration"])
        # whole seconds inside the recording, leaving the chunk being written
        frm = last["from"] + 1
        dur = max(1, min(int(a.record), last["duration"] - 3))
        url = "%s/cam/archive-%d-%d.mp4" % (node.base, frm, dur)
        files = chunk_files(node.data_dir, frm * 1000, (frm + dur) * 1000)
        paths = [p for p, _, _ in files]
        uid = files[0][2]
        if not paths:
            sys.exit("no chunk file in the index for the window")
        cat_bytes = sum(os.path.getsize(p) for p in paths)
        curl = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_starttransfer} %{time_total}", url]
        cat = ["cat"] + paths

        # warm-up (page cache, index connection), then the timed runs,
        # interleaved so that both see the same machine load
        _, out = timed(curl)
        code, size = out.decode().split()[:2]
        if code != "200":
            sys.exit("export answered %s" % code)
        size = int(size)
        timed(cat, True)
        sf = SendfileServer(paths)
        curl_sf = ["curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:%d/x" % sf.port]
        timed(curl_sf)
        te, tc, ts, tfirst = [], [], [], []
        for _ in range(a.runs):
            dt, out = timed(curl)
            te.append(dt)
            tfirst.append(float(out.split()[2]))
            tc.append(timed(cat, True)[0])
            ts.append(timed(curl_sf)[0])
        sf.close()
        # the exporter itself, in process, and cat: same machine state
        inproc = inproc_bench(node.data_dir, uid, frm, dur, a.runs, paths)
        tc2 = [timed(cat, True)[0] for _ in range(a.runs)]
    finally:
        finish(base, a.keep, node, (cam,))

    me, mc, ms_ = statistics.median(te), statistics.median(tc), statistics.median(ts)
    be, bc, bs = size / me, cat_bytes / mc, cat_bytes / ms_
    print("window %d s of %s @ %d kbit/s, %d chunk file(s) of %d s" % (dur, a.size, a.bitrate, len(paths),
                                                                       a.chunk_s))
    print("  export  %10d bytes  median %7.1f ms  %8.1f MB/s  (runs: %s)" % (
        size, me * 1e3, be / 1e6, " ".join("%.1f" % (t * 1e3) for t in te)))
    print("  cat     %10d bytes  median %7.1f ms  %8.1f MB/s  (runs: %s)" % (
        cat_bytes, mc * 1e3, bc / 1e6, " ".join("%.1f" % (t * 1e3) for t in tc)))
    print("  sendfile%10d bytes  median %7.1f ms  %8.1f MB/s  (runs: %s)" % (
        cat_bytes, ms_ * 1e3, bs / 1e6, " ".join("%.1f" % (t * 1e3) for t in ts)))
    print("  export: first byte after %.1f ms (median; index lookup, moof reads, moov), then %.0f MB/s" % (
        statistics.median(tfirst) * 1e3, size / max(1e-6, me - statistics.median(tfirst)) / 1e6))
    print("  ratio export over HTTP/cat (bytes/s): %.2f" % (be / bc))
    print("  ratio export over HTTP/sendfile server (bytes/s): %.2f  (same bytes over loopback HTTP, "
          "zero copy)" % (be / bs))
    if inproc:
        xb, xms, xopen = inproc["inproc-export"]
        cb2, cms = inproc["inproc-cat"]
        mc2 = statistics.median(tc2)
        bx, bc2 = xb / (xms / 1e3), cb2 / (cms / 1e3)
        print("  exporter in process (open + reads of 1 MiB into /dev/null) %10d bytes  median %7.2f ms  "
              "%8.1f MB/s  (open: %.2f ms)" % (xb, xms, bx / 1e6, xopen))
        print("  cat in process (read 128 KiB, write /dev/null)              %10d bytes  median %7.2f ms  "
              "%8.1f MB/s" % (cb2, cms, bc2 / 1e6))
        print("  cat process (again, right after)                            %10d bytes  median %7.2f ms  "
              "%8.1f MB/s" % (cat_bytes, mc2 * 1e3, cat_bytes / mc2 / 1e6))
        print("  ratio exporter/cat (bytes/s): %.2f against the cat process, %.2f against cat in process "
              "(target >= 0.8)" % (bx / (cat_bytes / mc2), bx / bc2))
    print("The first three peers are one process started per run: curl over loopback HTTP (export;")
    print("and a sendfile server in this script for the chunk files: the loopback TCP ceiling), cat")
    print("into /dev/null. The in-process lines time the exporter itself (no HTTP, no process start)")
    print("and the same reads cat does. The cat and sendfile sides read whole chunk files, slightly")
    print("more than the window.")


if __name__ == "__main__":
    main()
