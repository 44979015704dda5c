"""Failover drills (orchestration): a real camera (tests/camera/camera.py),
3 nodes; kill -9 of the primary N times (MS_FAILOVER_KILLS, default 3),
backup killed, SIGSTOP/SIGCONT of the primary. Prints the figures."""
import os
import signal
import time

import mslib
from conftest import kill9, restart

KILLS = int(os.environ.get("MS_FAILOVER_KILLS", "3"))


def st_on(n, name):
    r = n.api("/api/v1/streams/%s" % name, timeout=3)
    return r.json()["status"] if r.status == 200 else None


def placement(c, name):
    s = st_on(c.leader(), name) or {}
    return {"primary": s.get("server") or None, "backup": s.get("backup_server")}


def one_active_primary(c, name, timeout=15):
    """Every live node agrees on the primary; exactly one runs the stream."""
    def ok():
        active, servers = [], set()
        for n in c.alive():
            s = st_on(n, name)
            if s is None:
                return None
            servers.add(s["server"])
            if s["role"] in ("primary", "migrated") and s["state"] == "active":
                active.append(n.name)
        return active if len(active) == 1 and len(servers) == 1 and active[0] in servers else None
    return mslib.wait_until(ok, timeout, interval=0.1, what="exactly one active primary")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def setup_stream(c, tmp):
    cam = mslib.Camera(tmp / "cam", audio="none", gop=10).start()
    ld = c.leader()
    r = ld.api("/api/v1/streams", "POST",
               mslib.default_stream("fo", cam.url("cam"), channels=("video",)))
    assert r.status in (200, 201), r.text
    mslib.wait_until(lambda: placement(c, "fo")["backup"], 20, what="a backup")
    one_active_primary(c, "fo", timeout=30)
    return cam


def wait_failover(c, name, dead, t0, timeout=20):
    """Seconds from t0 until a live node other than dead runs the stream
    (status active there) and until its HLS playlist lists a segment."""
    t_active = t_hls = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (t_active is None or t_hls is None):
        for n in c.alive():
            if n is dead:
                continue
            try:
                s = st_on(n, name)
                if t_active is None and s and s["role"] != "secondary" and s["state"] == "active":
                    t_active = time.monotonic() - t0
                if t_active is not None and t_hls is None and s and s["role"] != "secondary":
                    r = n.get("/%s/index.m3u8" % name, timeout=3)
                    if r.status == 200 and "#EXTINF" in r.text:
                        t_hls = time.monotonic() - t0
            except OSError:
                pass
        time.sleep(0.05)
    assert t_active is not None, "no failover within %d s" % timeout
    return t_active, t_hls


def test_kill_primary_drill(three, tmp_path):
    c = three
    cam = setup_stream(c, tmp_path)
    try:
        times, hls_times, leader_kills = [], [], 0
        for i in range(KILLS):
            pl = placement(c, "fo")
            prim = c.nodes[pl["primary"]]
            was_leader = c.leader() is prim
            t0 = time.monotonic()
            kill9(prim)
            ta, th = wait_failover(c, "fo", prim, t0)
            if was_leader:
                leader_kills += 1
                print("kill %d: primary %s was the leader: active after %.2f s" % (i, prim.name, ta))
            else:
                times.append(ta)
                if th is not None:
                    hls_times.append(th)
                print("kill %d: primary %s: active on the backup after %.2f s, HLS segment after %s s"
                      % (i, prim.name, ta, "%.2f" % th if th is not None else "-"))
            restart(prim)
            c.converged()
            one_active_primary(c, "fo")
        if times:
            print("failover (kill -9 of the primary, %d kills): p50 %.2f s, p99 %.2f s; HLS p50 %s s"
                  % (len(times), pct(times, 50), pct(times, 99),
                     "%.2f" % pct(hls_times, 50) if hls_times else "-"))
            assert pct(times, 50) <= 2.5 and pct(times, 99) <= 4.5, times
    finally:
        cam.stop()


def test_backup_killed_and_sigstop(three, tmp_path):
    c = three
    cam = setup_stream(c, tmp_path)
    try:
        pl = placement(c, "fo")
        b = c.nodes[pl["backup"]]
        t0 = time.monotonic()
        kill9(b)
        nb = mslib.wait_until(lambda: (lambda p: p["backup"] if p["backup"] not in (None, b.name)
                                        else None)(placement(c, "fo")), 15, what="a new backup")
        print("backup %s killed: new backup %s after %.2f s" % (b.name, nb, time.monotonic() - t0))
        assert placement(c, "fo")["primary"] == pl["primary"]
        restart(b)
        c.converged()
        one_active_primary(c, "fo")
        # SIGSTOP of the primary (not the leader when possible), then SIGCONT
        pl = placement(c, "fo")
        prim = c.nodes[pl["primary"]]
        t0 = time.monotonic()
        prim.proc.send_signal(signal.SIGSTOP)
        try:
            ta, _ = wait_failover(c, "fo", prim, t0)
            print("SIGSTOP of primary %s: active on %s after %.2f s"
                  % (prim.name, placement(c, "fo")["primary"], ta))
        finally:
            prim.proc.send_signal(signal.SIGCONT)
        c.converged()
        one_active_primary(c, "fo")
        # known gap: after SIGCONT of a primary that was also the leader the
        # stream was seen back on it once; printed, not asserted yet
        print("after SIGCONT: primary %s" % placement(c, "fo")["primary"])
    finally:
        cam.stop()
