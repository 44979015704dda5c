#!/usr/bin/python3
"""RTMP benchmark: the node's RTMP server (docs/rtmp.md) against nginx-rtmp
(Debian's nginx with libnginx-mod-rtmp) in the same run, on loopback.

A clip is encoded once by ffmpeg (H.264 + AAC, --size, 25 fps, --kbps, a
keyframe every second). Both servers run side by side: the node with
publish:// streams, nginx as a non-daemon process with its config, pid and
logs in the temporary directory and this fixed config:

    worker_processes 1;
    rtmp { server { listen 127.0.0.1:PORT; chunk_size 4096;
                    application live { live on; } } }

worker_processes 1: nginx-rtmp's live module serves a stream's players only
from the worker its publisher is on; with more workers a player that lands
on another worker gets nothing unless `rtmp_auto_push on` relays the stream
between workers (an extra hop per worker, documented as experimental). One
worker is the setup nginx-rtmp's own live examples use, and its cheapest.

1. Fan-out (--players P ...): ffmpeg publishes the clip into each server
   (`-re -stream_loop -1 -i clip -c copy -f flv rtmp://...`). For each P,
   one asyncio process (this one) opens P RTMP players on the node (simple
   handshake, connect, createStream, play; they count video messages, type
   9, per connection), lets them settle, and reads the server's CPU
   (utime + stime from /proc/PID/stat of every process of the server: the
   node; nginx master and workers) over --seconds; then the same P players
   play nginx. A player is short when it got fewer than 90% of the
   expected frames (25 fps x window). Before the counts, one sample player
   per server is ffmpeg decoding 3 s of the stream.
2. Ingest (--publishers N ...): N ffmpeg publishers of the clip into the
   node (N publish:// streams), then, separately, into nginx; CPU of each
   server over --seconds, per publisher.

    python3 bench/rtmp.py --players 1 100 [500] --publishers 20 [100] --seconds 20

Prints figures and ratios (node / nginx CPU); never passes/fails.
"""

import argparse
import asyncio
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import finish, cpu_ticks, machine_busy_ticks, tree_pids, workdir  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
FPS = 25
NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


# -- CPU ---------------------------------------------------------------------






def tree_ticks(pids):
    return {p: cpu_ticks(p) for p in pids}


def thread_ticks(root):
    """utime + stime of each thread of root and its descendants
    (/proc/PID/task/TID/stat)."""
    out = {}
    for pid in tree_pids(root):
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for t in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                out[int(t)] = int(parts[11]) + int(parts[12])
            except (OSError, IndexError, ValueError):
                pass
    return out




class CpuWindow:
    """CPU of a server's processes (re-listed at the end, so a worker that
    appeared during the window is counted from 0) and of the machine."""

    def __init__(self, root_pid):
        self.root = root_pid
        self.t0 = time.monotonic()
        self.c0 = tree_ticks(tree_pids(root_pid))
        self.m0 = machine_busy_ticks()
        self.me0 = cpu_ticks(os.getpid())
        self.th0 = thread_ticks(root_pid)

    def end(self):
        dt = time.monotonic() - self.t0
        c1 = tree_ticks(tree_pids(self.root))
        m1 = machine_busy_ticks()
        used = sum(v - self.c0.get(p, 0) for p, v in c1.items())
        busy = (m1[0] - self.m0[0]) / max(1, m1[1] - self.m0[1]) * 100 * (os.cpu_count() or 1)
        th1 = thread_ticks(self.root)
        top = max([v - self.th0.get(t, 0) for t, v in th1.items()] or [0])
        return {"dt": dt, "cpu": 100.0 * used / TICKS / dt, "machine": busy,
                "top_thread": 100.0 * top / TICKS / dt,
                "bench_cpu": 100.0 * (cpu_ticks(os.getpid()) - self.me0) / TICKS / dt,
                "nprocs": len(c1)}


# -- AMF0 / RTMP chunks ---------------------------------------------------------
def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_num(x):
    return b"\x00" + struct.pack(">d", x)


def amf_obj(d):
    out = b"\x03"
    for k, v in d.items():
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb
        out += amf_str(v) if isinstance(v, str) else amf_num(v)
    return out + b"\x00\x00\x09"


def chunks(csid, mtype, msid, payload, size=128):
    """One message as RTMP chunks (RTMP 1.0 section 5.3.1): fmt 0, then fmt 3."""
    out = bytearray([csid]) + b"\x00\x00\x00" + struct.pack(">I", len(payload))[1:] + \
        bytes([mtype]) + struct.pack("<I", msid)
    for i in range(0, len(payload), size):
        if i:
            out.append(0xC0 | csid)
        out += payload[i:i + size]
    return bytes(out)


class RtmpPlayer(asyncio.Protocol):
    """A minimal RTMP player: simple handshake (C0 3, C1 with zero version
    bytes), connect, createStream, play; parses the chunk stream (all four
    header forms, extended timestamps, the server's chunk size) and counts
    complete video messages (type 9). Acknowledges per the server's window
    and answers ping requests."""

    def __init__(self, port, app, stream):
        self.port, self.app, self.stream = port, app, stream
        self.buf = bytearray()
        self.state = "hs"
        self.video = 0
        self.audio = 0
        self.bytes = 0
        self.chunk = 128
        self.cs = {}  # csid -> [len, type, msid, remaining, ext, payload or None]
        self.window = 0
        self.acked = 0
        self.playing = False
        self.error = None
        self.tr = None
        self.done = None

    def connection_made(self, tr):
        self.tr = tr
        c1 = struct.pack(">II", 0, 0) + random.randbytes(1528)
        tr.write(b"\x03" + c1)

    def connection_lost(self, exc):
        if self.error is None:
            self.error = "closed: %r" % exc
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def send(self, csid, mtype, msid, payload):
        self.tr.write(chunks(csid, mtype, msid, payload))

    def data_received(self, data):
        self.bytes += len(data)
        buf = self.buf
        buf += data
        if self.state == "hs":
            if len(buf) < 1 + 1536 * 2:
                return
            s1 = bytes(buf[1:1537])
            del buf[:1 + 1536 * 2]
            self.tr.write(s1)  # C2 = S1 echoed
            self.state = "cmd"
            url = "rtmp://127.0.0.1:%d/%s" % (self.port, self.app)
            self.send(3, 20, 0, amf_str("connect") + amf_num(1) + amf_obj(
                {"app": self.app, "type": "nonprivate", "flashVer": "LNX 9,0,124,2", "tcUrl": url}))
        if self.window and self.bytes - self.acked >= self.window:
            self.acked = self.bytes
            self.send(2, 3, 0, struct.pack(">I", self.bytes & 0xFFFFFFFF))
        self.parse()

    def parse(self):
        buf, n, pos = self.buf, len(self.buf), 0
        cs, size = self.cs, self.chunk
        while pos < n:
            b0 = buf[pos]
            fmt, csid, h = b0 >> 6, b0 & 0x3F, 1
            if csid == 0:
                if n - pos < 2:
                    break
                csid, h = 64 + buf[pos + 1], 2
            elif csid == 1:
                if n - pos < 3:
                    break
                csid, h = 64 + buf[pos + 1] + 256 * buf[pos + 2], 3
            st = cs.get(csid)
            if st is None:
                st = cs[csid] = [0, 0, 0, 0, False, None]
            mh = (11, 7, 3, 0)[fmt]
            if n - pos < h + mh:
                break
            p = pos + h
            if fmt < 3:
                ts = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
                st[4] = ts == 0xFFFFFF
                if fmt < 2:
                    st[0] = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
                    st[1] = buf[p + 6]
                st[3] = 0  # a new message starts with fmt 0-2
            p += mh
            if st[4]:
                p += 4
            if st[3] == 0:
                st[3] = st[0]
                st[5] = bytearray() if st[1] not in (8, 9) else None
            take = min(size, st[3])
            if n - p < take:
                break
            if st[5] is not None:
                st[5] += buf[p:p + take]
            st[3] -= take
            pos = p + take
            if st[3] == 0:
                t = st[1]
                if t == 9:
                    self.video += 1
                elif t == 8:
                    self.audio += 1
                else:
                    self.control(t, bytes(st[5] or b""))
                    size = self.chunk
        del buf[:pos]

    def control(self, t, body):
        if t == 1 and len(body) >= 4:
            self.chunk = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
        elif t == 5 and len(body) >= 4:
            self.window = struct.unpack(">I", body[:4])[0]
        elif t == 4 and len(body) >= 6 and body[1] == 6:  # ping request -> response
            self.send(2, 4, 0, b"\x00\x07" + body[2:6])
        elif t == 20:
            self.command(body)

    def command(self, body):
        # AMF0: name (string), transaction id (number), ...
        if body[:1] != b"\x02":
            return
        ln = struct.unpack(">H", body[1:3])[0]
        name = body[3:3 + ln].decode(errors="replace")
        rest = body[3 + ln:]
        txn = struct.unpack(">d", rest[1:9])[0] if rest[:1] == b"\x00" else -1
        if name == "_result" and txn == 1:
            self.send(3, 20, 0, amf_str("createStream") + amf_num(2) + b"\x05")
        elif name == "_result" and txn == 2:
            # command object (null), then the stream id (number)
            sid = 1
            if len(body) >= 9 and body[-9] == 0:
                sid = int(struct.unpack(">d", body[-8:])[0])
            self.sid = sid
            self.send(2, 4, 0, struct.pack(">HII", 3, sid, 1000))  # set buffer length
            self.send(8, 20, sid, amf_str("play") + amf_num(0) + b"\x05" + amf_str(self.stream)
                      + amf_num(-2))
        elif name == "onStatus":
            if b"NetStream.Play.Start" in body:
                self.playing = True
            elif b".Failed" in body or b"NotFound" in body or b"BadName" in body:
                self.error = "play refused: %r" % body[:200]
        elif name == "_error":
            self.error = "_error: %r" % body[:200]


async def open_player(port, app, stream, src):
    loop = asyncio.get_running_loop()
    p = RtmpPlayer(port, app, stream)
    p.done = loop.create_future()
    await loop.create_connection(lambda: p, "127.0.0.1", port, local_addr=(src, 0))
    return p


async def run_players(port, app, stream, n, stagger, seconds, root_pid, probe=None):
    players = []

    async def one(i):
        await asyncio.sleep(i * stagger)
        src = "127.0.0.%d" % (2 + i // 100)  # at most 100 connections per source address
        try:
            players.append(await open_player(port, app, stream, src))
        except OSError as e:
            errs.append(repr(e))

    errs = []
    await asyncio.gather(*(one(i) for i in range(n)))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(p.playing or p.error for p in players):
        await asyncio.sleep(0.2)
    await asyncio.sleep(3.0)  # settle: the GOP burst of a new player is over
    v0 = [p.video for p in players]
    by0 = sum(p.bytes for p in players)
    in0 = probe() if probe else None
    w = CpuWindow(root_pid)
    await asyncio.sleep(seconds)
    r = w.end()
    in1 = probe() if probe else None
    r["in_rate"] = (in1 - in0) / r["dt"] if probe and in0 is not None and in1 is not None else None
    v1 = [p.video for p in players]
    by1 = sum(p.bytes for p in players)
    for p in players:
        if p.tr is not None:
            p.tr.close()
    await asyncio.sleep(0.5)
    d = [b - a for a, b in zip(v0, v1)] + [0] * (n - len(players))
    expected = FPS * r["dt"]
    r.update({
        "short": sum(1 for x in d if x < 0.9 * expected),
        "fps_min": min(d) / r["dt"] if d else 0,
        "fps_mean": sum(d) / len(d) / r["dt"] if d else 0,
        "mbps": (by1 - by0) / r["dt"] / 1e6,
        "playing": sum(1 for p in players if p.playing),
        "errors": errs + [p.error for p in players if p.error and not p.playing],
    })
    return r


# -- processes -----------------------------------------------------------------
def encode_clip(path, size, kbps):
    if path.exists():
        return
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=%s:rate=%d" % (size, FPS),
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           "-b:v", "%dk" % kbps, "-maxrate", "%dk" % kbps, "-bufsize", "%dk" % (2 * kbps),
           "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0",
           "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(path)]
    subprocess.run(cmd, check=True, timeout=300)


def publish(clip, url, log):
    return subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
                             "-i", str(clip), "-c", "copy", "-f", "flv", url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(log, "ab"))


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Nginx:
    def __init__(self, base, port):
        self.dir = base
        (base / "logs").mkdir(parents=True, exist_ok=True)
        self.port = port
        self.conf = base / "nginx.conf"
        self.conf.write_text(
            "load_module %s;\n"
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/logs/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "rtmp { server { listen 127.0.0.1:%d; chunk_size 4096;\n"
            "  application live { live on; } } }\n" % (RTMP_MODULE, base, base, port))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "logs" / "stderr.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: %s" % (self.dir / "logs" / "stderr.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx does not listen on %d" % self.port)

    def stop(self):
        if self.proc is not None:
            stop_all([self.proc])


def frames_in(node, stream):
    """ms_stream_frames_in_total of stream from the node's /metrics (frames
    the publisher delivered, audio and video), or None."""
    try:
        r = node.api("/metrics", spec=False)
    except OSError:
        return None
    for ln in r.text.splitlines():
        if ln.startswith("ms_stream_frames_in_total{") and 'stream="%s"' % stream in ln:
            return float(ln.rsplit(" ", 1)[1])
    return None


def fmt_row(cols, widths):
    return " | ".join(str(c).ljust(w) for c, w in zip(cols, widths))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, nargs="*", default=[1, 100])
    ap.add_argument("--publishers", type=int, nargs="*", default=[20])
    ap.add_argument("--seconds", type=float, default=20, help="measurement window")
    ap.add_argument("--stagger-ms", type=float, default=5, help="delay between two player connects")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--kbps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="node worker threads")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    for f in (NGINX, RTMP_MODULE):
        if not os.path.exists(f):
            sys.exit("%s missing (apt-get install nginx-light libnginx-mod-rtmp)" % f)
    base = workdir("rtmp")
    clip = base / "clip.flv"
    stagger = a.stagger_ms / 1000.0
    npub = max(a.publishers or [0])
    fan, ing = [], []
    node = ngx = None
    pubs = []
    try:
        t = time.monotonic()
        encode_clip(clip, a.size, a.kbps)
        print("clip: %s, %d fps, %d kbit/s, H.264 + AAC, encoded in %.1f s" % (
            a.size, FPS, a.kbps, time.monotonic() - t), flush=True)
        node = mslib.Node(base / "node", extra={"threads": a.threads})
        node.cfg["listen"]["rtmp"] = mslib.free_port()
        node.cfg["listen"]["conns_per_ip"] = 100000
        node.write_config()
        node.add_stream("live1", "publish://")
        for i in range(npub):
            node.add_stream("pub%d" % i, "publish://")
        node.start(timeout=60)
        nport = node.cfg["listen"]["rtmp"]
        ngx = Nginx(base / "nginx", mslib.free_port()).start()
        servers = (("node", nport, node.proc.pid), ("nginx", ngx.port, ngx.proc.pid))

        if a.players:
            for name, port, _ in servers:
                pubs.append(publish(clip, "rtmp://127.0.0.1:%d/live/live1" % port, base / ("pub-%s.log" % name)))
            node.wait_active("live1", timeout=30)
            time.sleep(3)
            for name, port, _ in servers:
                res = mslib.ffmpeg_decode("rtmp://127.0.0.1:%d/live/live1" % port, 3, timeout=30)
                print("sample player (ffmpeg, 3 s) on %s: %d frames decoded, rc %s, errors %s" % (
                    name, res.frames, res.rc, res.errors[:3]), flush=True)
            for n in a.players:
                print("== %d players" % n, flush=True)
                row = [n]
                for name, port, pid in servers:
                    probe = (lambda: frames_in(node, "live1")) if name == "node" else None
                    r = asyncio.run(run_players(port, "live", "live1", n, stagger, a.seconds, pid, probe))
                    print("  %-5s: %.1f%% CPU (%d procs), %.2f MB/s, playing %d/%d, fps mean %.1f min %.1f, "
                          "short %d, busiest thread %.1f%%, bench %.0f%%, machine busy %.0f%%" % (
                              name, r["cpu"], r["nprocs"], r["mbps"], r["playing"], n, r["fps_mean"],
                              r["fps_min"], r["short"], r["top_thread"], r["bench_cpu"], r["machine"]), flush=True)
                    if r["in_rate"] is not None:
                        print("  node: publisher delivered %.1f frames/s (audio + video; the clip has %.1f)" % (
                            r["in_rate"], FPS + 44100 / 1024.0))
                    if r["errors"]:
                        print("  %s errors (%d): %s" % (name, len(r["errors"]), r["errors"][:3]))
                    row.append(r)
                fan.append(row)
                print("  uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
            stop_all(pubs)
            pubs = []
            time.sleep(2)

        for n in a.publishers:
            print("== %d publishers" % n, flush=True)
            row = [n]
            for name, port, pid in servers:
                ps = [publish(clip, "rtmp://127.0.0.1:%d/live/pub%d" % (port, i),
                              base / ("ingest-%s-%d.log" % (name, i))) for i in range(n)]
                pubs = ps
                time.sleep(5 + n * 0.05)
                w = CpuWindow(pid)
                time.sleep(a.seconds)
                r = w.end()
                r["alive"] = sum(1 for p in ps if p.poll() is None)
                if name == "node":
                    r["active"] = sum(1 for i in range(n) if node.status("pub%d" % i).get("state") == "active")
                else:
                    r["active"] = None
                stop_all(ps)
                pubs = []
                print("  %-5s: %.1f%% CPU (%d procs), publishers alive %d/%d%s, machine busy %.0f%%" % (
                    name, r["cpu"], r["nprocs"], r["alive"], n,
                    ", streams active %d" % r["active"] if r["active"] is not None else "",
                    r["machine"]), flush=True)
                row.append(r)
                time.sleep(2)
            ing.append(row)
            print("  uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    finally:
        stop_all(pubs)
        finish(base, a.keep, node, (ngx,))

    print()
    print("CPU: utime+stime of all the server's processes and threads from /proc/PID/stat over %.0f s "
          "(100%% = one core)." % a.seconds)
    if fan:
        w = (7, 12, 13, 11, 9, 10, 15)
        print(fmt_row(("players", "node %CPU/pl", "nginx %CPU/pl", "node/nginx", "node MB/s", "nginx MB/s",
                       "short node/ngx"), w))
        for n, rn, rg in fan:
            pn, pg = rn["cpu"] / n, rg["cpu"] / n
            print(fmt_row((n, "%.3f" % pn, "%.3f" % pg, "%.2f" % (pn / pg) if pg > 0 else "-",
                           "%.2f" % rn["mbps"], "%.2f" % rg["mbps"], "%d / %d" % (rn["short"], rg["short"])), w))
        n0, r0n, r0g = fan[0]
        for n, rn, rg in fan[1:]:
            mn = (rn["cpu"] - r0n["cpu"]) / (n - n0) if n > n0 else 0
            mg = (rg["cpu"] - r0g["cpu"]) / (n - n0) if n > n0 else 0
            print("marginal %d -> %d players: node %.3f%%, nginx %.3f%% per player (node/nginx %s)" % (
                n0, n, mn, mg, "%.2f" % (mn / mg) if mg > 0 else "-"))
    if ing:
        print()
        w = (10, 13, 14, 11)
        print(fmt_row(("publishers", "node %CPU/pub", "nginx %CPU/pub", "node/nginx"), w))
        for n, rn, rg in ing:
            pn, pg = rn["cpu"] / n, rg["cpu"] / n
            print(fmt_row((n, "%.3f" % pn, "%.3f" % pg, "%.2f" % (pn / pg) if pg > 0 else "-"), w))


if __name__ == "__main__":
    main()
