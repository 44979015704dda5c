#!/usr/bin/python3
"""RTSP fan-out benchmark: P players on one live stream served by the node's
RTSP server (RFC 2326), against GStreamer's rtsp-server (gst-rtsp-server,
tests/camera/camera.py) serving the same clip to the same players in the
same run.

Setup: camera A (camera.py, looped H.264 clip, video only) feeds a node that
pulls it over TCP and serves rtsp://127.0.0.1:PORT/cam. Camera B is a second
camera.py process with one mount (shared media) serving the same clip; it is
the peer. For each player count P:

  1. P lightweight asyncio players (DESCRIBE, SETUP TCP-interleaved, PLAY;
     they read and count bytes, RTP packets, frames = marker bits, and
     sequence gaps) connect to the node, staggered by --stagger-ms; after a
     short settle the node's CPU-seconds are read from /proc/PID/stat over
     --seconds (100% = one core);
  2. the same P players connect directly to camera B and B's CPU is measured
     the same way.

Expected packets for a player = (packets per frame seen by all players of
that server) x fps x window; a player below 90% of it is reported.

    python3 bench/rtsp_fanout.py --players 1 100 500 [--seconds 15]

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
FPS = 25






class Player:
    """A minimal RTSP player: TCP-interleaved RTP (RFC 2326 10.12) on the
    video track; counts bytes, RTP packets (RFC 3550 5.1), frames (marker
    bit) and sequence gaps. Reads in large chunks to stay cheap."""

    def __init__(self, url):
        self.url = url
        self.cseq = 0
        self.bytes = 0
        self.packets = 0
        self.frames = 0
        self.gaps = 0
        self.last_seq = None
        self.playing = False
        self.error = None
        self.w = None

    async def request(self, method, url, extra=""):
        self.cseq += 1
        self.w.write(("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n" % (method, url, self.cseq, extra)).encode())
        head = (await self.r.readuntil(b"\r\n\r\n")).decode(errors="replace")
        m = re.search(r"Content-Length:\s*(\d+)", head, re.I)
        body = await self.r.readexactly(int(m.group(1))) if m else b""
        status = int(head.split(" ", 2)[1])
        if status != 200:
            raise RuntimeError("%s: %d" % (method, status))
        return head, body.decode(errors="replace")

    async def start(self):
        hp = self.url.split("/")[2]
        host, port = hp.rsplit(":", 1)
        self.r, self.w = await asyncio.open_connection(host, int(port), limit=1 << 20)
        head, sdp = await self.request("DESCRIBE", self.url, "Accept: application/sdp\r\n")
        video = sdp.split("\nm=video", 1)[1].split("\nm=", 1)[0]
        control = re.search(r"a=control:(\S+)", video).group(1)
        if not control.startswith("rtsp://"):
            # relative to Content-Base (RFC 2326 C.1.1), else to the request URL
            m = re.search(r"Content-Base:\s*(\S+)", head, re.I)
            cbase = m.group(1) if m else self.url
            control = cbase.rstrip("/") + "/" + control
        hdr, _ = await self.request("SETUP", control, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        session = re.search(r"Session:\s*([^;\r\n]+)", hdr).group(1).strip()
        await self.request("PLAY", self.url, "Session: %s\r\nRange: npt=0-\r\n" % session)
        self.playing = True

    async def read_loop(self):
        buf = bytearray()
        while True:
            data = await self.r.read(1 << 16)
            if not data:
                raise RuntimeError("server closed the connection")
            self.bytes += len(data)
            buf += data
            pos, n = 0, len(buf)
            while n - pos >= 4:
                if buf[pos] != 0x24:  # '$': only interleaved data is expected now
                    # an RTSP message (e.g. a server request): skip to the next '$'
                    nxt = buf.find(b"$", pos + 1)
                    pos = n if nxt < 0 else nxt
                    continue
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                if n - pos - 4 < ln:
                    break
                if buf[pos + 1] == 0 and ln >= 12:
                    seq = (buf[pos + 6] << 8) | buf[pos + 7]
                    if self.last_seq is not None and seq != ((self.last_seq + 1) & 0xFFFF):
                        self.gaps += 1
                    self.last_seq = seq
                    self.packets += 1
                    if buf[pos + 5] & 0x80:
                        self.frames += 1
                pos += 4 + ln
            del buf[:pos]

    def snap(self):
        return (self.bytes, self.packets, self.frames, self.gaps)

    def close(self):
        if self.w is not None:
            self.w.close()


async def run_players(url, n, stagger, seconds, pid):
    players = [Player(url) for _ in range(n)]

    async def one(p, i):
        await asyncio.sleep(i * stagger)
        try:
            await p.start()
            await p.read_loop()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # counted and reported
            p.error = repr(e)

    tasks = [asyncio.ensure_future(one(p, i)) for i, p in enumerate(players)]
    deadline = time.monotonic() + 20 + n * stagger
    while time.monotonic() < deadline:
        if all(p.playing or p.error for p in players):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # settle (PLAY bursts of the GOP cache are over)
    s0 = [p.snap() for p in players]
    me = os.getpid()
    t0, c0, b0, m0 = time.monotonic(), cpu_ticks(pid), cpu_ticks(me), machine_busy_ticks()
    await asyncio.sleep(seconds)
    t1, c1, b1, m1 = time.monotonic(), cpu_ticks(pid), cpu_ticks(me), machine_busy_ticks()
    s1 = [p.snap() for p in players]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for p in players:
        p.close()
    await asyncio.sleep(0.5)
    dt = t1 - t0
    d = [tuple(b - a for a, b in zip(x, y)) for x, y in zip(s0, s1)]
    tot_bytes = sum(x[0] for x in d)
    tot_pk = sum(x[1] for x in d)
    tot_fr = sum(x[2] for x in d)
    pk_per_frame = tot_pk / tot_fr if tot_fr else 0
    expected = pk_per_frame * FPS * dt
    below = sum(1 for x in d if x[1] < 0.9 * expected) if expected else n
    busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100 * (os.cpu_count() or 1)
    return {
        "cpu": 100.0 * (c1 - c0) / TICKS / dt,
        "bench_cpu": 100.0 * (b1 - b0) / TICKS / dt,
        "machine": busy,
        "mbps": tot_bytes / dt / 1e6,
        "below": below,
        "gaps": sum(x[3] for x in d),
        "errors": [p.error for p in players if p.error],
        "playing": sum(1 for p in players if p.playing),
        "fps": tot_fr / dt / max(1, n),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, nargs="+", default=[1, 100, 500])
    ap.add_argument("--seconds", type=float, default=15, help="measurement window per server and count")
    ap.add_argument("--stagger-ms", type=float, default=8, help="delay between two player connects")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="node worker threads")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    base = workdir("rtsp")
    clips = base / "clips"
    stagger = a.stagger_ms / 1000.0
    rows = []
    cam_a = cam_b = node = None
    try:
        cam_a = mslib.Camera(base / "cam-a", mounts=("cam",), audio="none", cache=clips).start()
        cam_b = mslib.Camera(base / "cam-b", mounts=("cam",), audio="none", cache=clips).start()
        node = mslib.Node(base / "node", extra={"threads": a.threads})
        rtsp_port = mslib.free_port()
        node.cfg["listen"]["rtsp"] = rtsp_port
        node.write_config()
        node.add_stream("cam", cam_a.url(), transport="tcp", channels=["video"])
        node.start(timeout=60)
        node.wait_active("cam", timeout=60)
        time.sleep(2)  # a keyframe in the GOP cache
        node_url = "rtsp://127.0.0.1:%d/cam" % rtsp_port
        for n in a.players:
            print("== %d players" % n, flush=True)
            r_node = asyncio.run(run_players(node_url, n, stagger, a.seconds, node.proc.pid))
            print("  node: %.1f%% CPU, %.2f MB/s, playing %d/%d, %.1f fps/player, gaps %d, "
                  "bench %.0f%%, machine busy %.0f%%" % (
                      r_node["cpu"], r_node["mbps"], r_node["playing"], n, r_node["fps"], r_node["gaps"],
                      r_node["bench_cpu"], r_node["machine"]), flush=True)
            r_gst = asyncio.run(run_players(cam_b.url(), n, stagger, a.seconds, cam_b.proc.pid))
            print("  gst:  %.1f%% CPU, %.2f MB/s, playing %d/%d, %.1f fps/player, gaps %d, "
                  "bench %.0f%%, machine busy %.0f%%" % (
                      r_gst["cpu"], r_gst["mbps"], r_gst["playing"], n, r_gst["fps"], r_gst["gaps"],
                      r_gst["bench_cpu"], r_gst["machine"]), flush=True)
            for name, r in (("node", r_node), ("gst", r_gst)):
                if r["errors"]:
                    print("  %s player errors (%d): %s" % (name, len(r["errors"]), r["errors"][:3]))
            rows.append((n, r_node, r_gst))
    finally:
        finish(base, a.keep, node, (cam_a, cam_b))

    print()
    print("CPU: CPU-seconds of the server process from /proc/PID/stat over %.0f s (100%% = one core)." % a.seconds)
    print("Noise: other work on this machine shares the cores (see 'machine busy' above, which includes")
    print("the players and both servers); figures from a busy machine are indicative, compare ratios.")
    print()
    print("%-7s | %-14s | %-14s | %-14s | %-8s | %-7s | %-10s | %s" % (
        "players", "node CPU%/pl", "gst CPU%/pl", "gst/node", "node MB/s", "gst MB/s",
        "<90% node", "<90% gst"))
    print("-" * 100)
    for n, rn, rg in rows:
        pn, pg = rn["cpu"] / n, rg["cpu"] / n
        ratio = "x%.2f" % (pg / pn) if pn > 0 else "-"
        print("%-7d | %-14.3f | %-14.3f | %-14s | %-9.2f | %-8.2f | %-10d | %d" % (
            n, pn, pg, ratio, rn["mbps"], rg["mbps"], rn["below"], rg["below"]))
    print()
    for n, rn, rg in rows:
        print("%d players: node total %.1f%% CPU, gst total %.1f%% CPU; seq gaps node %d, gst %d; "
              "playing node %d, gst %d" % (n, rn["cpu"], rg["cpu"], rn["gaps"], rg["gaps"],
                                            rn["playing"], rg["playing"]))


if __name__ == "__main__":
    main()
