#!/usr/bin/python3
"""Lua on_play overhead on live HLS (docs/lua.md "Hook time"): one node, one
camera, keep-alive clients fetching the same live HLS segment as fast as the
node answers, in alternating phases on the same node:

  none      no script (lua_dir empty, reloaded)
  hook      a trivial on_play (`return true`), reloaded in
  and, with a distinct ?token= on every request (every request is a new
  session for the on_play cache, so the script runs every time):
  none/tok  no script
  hook/tok  the trivial on_play

Each phase lasts --seconds; the rounds repeat the four phases (--rounds), in
an order shuffled per round (fixed seed) so that no mode always follows the
same one; the figures are the medians over the rounds, and the ratios the
medians of the per-round ratios (a paired comparison: a neighbour's load on
the machine hits both phases of a round alike more often than two rounds). The clients are --procs processes
of --conns asyncio keep-alive connections each (HTTP/1.1, bounded by time),
spread over 127.0.0.2.. source addresses. The hook's own time is read from
GET /api/v1/lua (`hooks`: p50/p99/max of the decisions that ran the script).
The node's CPU time per answered request (run time of all its threads from
/proc/PID/task/*/schedstat over the phase) is printed beside requests/s: on
a machine whose cores are shared with other load, requests/s moves with the
neighbours, the CPU per request much less.

    python3 bench/lua_hook.py [--seconds 2] [--rounds 8] [--procs 2] [--conns 8]

Needs build/mediaserver (or MS_BIN). Prints figures only.
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import mslib  # noqa: E402
from benchlib import workdir  # noqa: E402

HOOK = "function on_play(req) return true end\n"


async def conn_loop(port, src, path, tok, until, out, idx):
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    n = lat_err = 0
    i = 0
    try:
        while time.monotonic() < until:
            p = path
            if tok:
                i += 1
                p = "%s?token=b%d-%d-%d" % (path, os.getpid(), idx, i)
            w.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n" % p).encode())
            head = await r.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            cl = 0
            for ln in head.split(b"\r\n"):
                if ln.lower().startswith(b"content-length:"):
                    cl = int(ln.split(b":", 1)[1])
            if cl:
                await r.readexactly(cl)
            if status == 200:
                n += 1
            else:
                lat_err += 1
    finally:
        w.close()
    out.append((n, lat_err))


def client(port, path, tok, seconds, conns, proc_idx, q):
    async def run():
        until = time.monotonic() + seconds
        out = []
        await asyncio.gather(*[conn_loop(port, "127.0.0.%d" % (2 + (proc_idx * conns + c) % 200), path, tok,
                                         until, out, c) for c in range(conns)])
        return out
    out = asyncio.run(run())
    q.put((sum(o[0] for o in out), sum(o[1] for o in out)))


def phase(node, path, tok, a):
    """requests/s, node CPU us per request, non-200 answers"""
    q = mp.Queue()
    ps = [mp.Process(target=client, args=(node.http_port, path, tok, a.seconds, a.conns, i, q))
          for i in range(a.procs)]
    c0 = cpu_ns(node.proc.pid)
    for p in ps:
        p.start()
    res = [q.get(timeout=a.seconds + 30) for _ in ps]
    c1 = cpu_ns(node.proc.pid)
    for p in ps:
        p.join(timeout=10)
    # each client counts the answers within its own window of a.seconds
    ok = sum(r[0] for r in res)
    bad = sum(r[1] for r in res)
    return ok / a.seconds, (c1 - c0) / 1000.0 / max(ok, 1), bad


def cpu_ns(pid):
    """Run time of all the node's threads (ns, /proc/PID/task/*/schedstat)."""
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def set_script(node, lua_dir, on):
    f = lua_dir / "hook.lua"
    if on:
        f.write_text(HOOK)
    elif f.exists():
        f.unlink()
    r = node.api("/api/v1/lua/reload", method="POST", spec=False)
    assert r.status == 200, r.text
    files = [x["file"] for x in node.api("/api/v1/lua", spec=False).json()["files"]]
    assert files == (["hook.lua"] if on else []), files


def hooks(node):
    return node.api("/api/v1/lua", spec=False).json().get("hooks", {})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--conns", type=int, default=8)
    a = ap.parse_args()
    base = workdir("lua")
    lua_dir = base / "lua"
    lua_dir.mkdir()
    cam = node = None
    modes = [("none", False, False), ("hook", True, False), ("none/tok", False, True), ("hook/tok", True, True)]
    rps = {m[0]: [] for m in modes}
    cpu = {m[0]: [] for m in modes}
    errors = 0
    rng = random.Random(1)
    try:
        cam = mslib.Camera(base / "cam", mounts=["cam"], audio="aac", cache=base / "clips").start()
        node = mslib.Node(base / "node", extra={"lua_dir": str(lua_dir)})
        # segments stay listed for 120 s: every phase of a round fetches one segment
        node.add_stream("s", cam.url("cam"), hls={"segment_ms": 2000, "window": 60})
        node.start()
        node.wait_active("s", timeout=60)
        node.wait_hls("s", segments=2)
        print("live HLS segment requests/s, %d procs x %d keep-alive connections, %g s per phase, %d rounds"
              % (a.procs, a.conns, a.seconds, a.rounds), flush=True)
        for rnd in range(a.rounds):
            pl = mslib.parse_playlist(node.get("/s/index.m3u8").text)
            seg = pl["segments"][-1]["uri"]
            path = "/s/" + seg if not seg.startswith("/") else seg
            size = len(node.get(path).body)
            line = []
            order = list(modes)
            rng.shuffle(order)
            for name, on, tok in order:
                set_script(node, lua_dir, on)
                r, c, bad = phase(node, path, tok, a)
                errors += bad
                rps[name].append(r)
                cpu[name].append(c)
                line.append("%s %.0f/s %.1f us" % (name, r, c))
            print("  round %d (segment %s, %d bytes): %s" % (rnd + 1, seg, size, ", ".join(line)), flush=True)
        h = hooks(node)
    finally:
        if node:
            node.stop()
        if cam:
            cam.stop()
        shutil.rmtree(base, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in rps.items()}
    print()
    print("medians over %d rounds (non-200 answers: %d): requests/s, node CPU per request" % (a.rounds, errors))
    for k in rps:
        print("  %-9s %9.0f/s %8.1f us" % (k, med[k], statistics.median(cpu[k])))
    for h_, n_, what in (("hook", "none", "on_play cached per session"),
                         ("hook/tok", "none/tok", "the script runs on every request")):
        rs = [x / y for x, y in zip(rps[h_], rps[n_]) if y > 0]
        r = statistics.median(rs)
        print("ratio %-8s / %-8s %.3f  (%+.1f%%; %s; per-round ratios %s)" % (
            h_, n_, r, (r - 1) * 100, what, " ".join("%.2f" % x for x in rs)))
        cs = [x / y for x, y in zip(cpu[h_], cpu[n_]) if y > 0]
        c = statistics.median(cs)
        print("  node CPU per request %.3f  (%+.1f%%: the rps the node could serve if CPU-bound: %+.1f%%)" % (
            c, (c - 1) * 100, (1 / c - 1) * 100))
    print("target: at most 5% fewer requests/s with the hook")
    print("hook time (GET /api/v1/lua hooks): %d calls, p50 %.1f us, p99 %.1f us, max %.1f us"
          % (h.get("calls", 0), h.get("p50_us", 0), h.get("p99_us", 0), h.get("max_us", 0)))


if __name__ == "__main__":
    main()
