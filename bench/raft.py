"""Raft cluster benchmark: 3 mediaserver nodes on loopback.

Prints API write latency (p50/p99) through the leader and through a
follower, committed writes/s, and over N kills -9 of the leader the time to
a new ready leader and to the first successful write through a survivor.
A write is PUT /api/v1/servers/{leader} (one replicated command, no media
side effect). Figures only: never pass/fail."""
import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster-tests"))
from conftest import Cluster, kill9, restart  # noqa: E402


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def writes(node, target, n, start=0):
    lat = []
    t0 = time.monotonic()
    for i in range(n):
        t = time.monotonic()
        r = node.api("/api/v1/servers/%s" % target, method="PUT",
                     body={"stream_limit": 100000 + start + i})
        lat.append((time.monotonic() - t) * 1000)
        if r.status != 200:
            raise SystemExit("write failed: %d %s" % (r.status, r.text))
    return lat, n / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=500)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-raft-"))
    c = Cluster(tmp)
    try:
        for name in ("n1", "n2", "n3"):
            c.add(name)
        time.sleep(2)
        ld = c.leader()
        f = [n for n in c.alive() if n is not ld][0]
        writes(ld, ld.name, 50)  # warm up
        for label, node in (("leader", ld), ("follower", f)):
            lat, rate = writes(node, ld.name, a.writes, 1000)
            print("write via %-8s n=%d  p50 %.2f ms  p99 %.2f ms  max %.2f ms  %.0f writes/s"
                  " (one client)" % (label, a.writes, pct(lat, 50), pct(lat, 99), max(lat), rate))
        # concurrent clients on the leader: committed writes/s
        res = []

        def worker(k):
            res.append(writes(ld, ld.name, a.writes // 4, 10000 * (k + 2))[1])
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        t0 = time.monotonic()
        [t.start() for t in ts]
        [t.join() for t in ts]
        total = 8 * (a.writes // 4)
        print("committed writes/s with 8 concurrent clients: %.0f" % (total / (time.monotonic() - t0)))

        elect, first = [], []
        for k in range(a.kills):
            ld = c.leader()
            others = [n for n in c.alive() if n is not ld]
            kill9(ld)
            t0 = time.monotonic()
            got_leader = got_write = None
            deadline = t0 + 30
            while time.monotonic() < deadline and (got_leader is None or got_write is None):
                if got_leader is None:
                    for n in others:
                        try:
                            i = c.info(n)
                        except OSError:
                            continue
                        if i["state"] == "leader" and i["leader_ready"]:
                            got_leader = time.monotonic() - t0
                if got_write is None:
                    r = others[0].api("/api/v1/servers/%s" % others[0].name, method="PUT",
                                      body={"stream_limit": 5000 + k}, timeout=10)
                    if r.status == 200:
                        got_write = time.monotonic() - t0
                time.sleep(0.005)
            elect.append(got_leader if got_leader is not None else float("nan"))
            first.append(got_write if got_write is not None else float("nan"))
            print("kill %2d: new leader %.3f s, first write %.3f s" % (k + 1, elect[-1], first[-1]))
            restart(ld)
            c.converged(timeout=30)
        if a.kills:
            print("failover over %d kills: new leader p50 %.3f s p99 %.3f s; first write p50 "
                  "%.3f s p99 %.3f s" % (a.kills, pct(elect, 50), pct(elect, 99),
                                          pct(first, 50), pct(first, 99)))
    finally:
        c.stop_all()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    main()
