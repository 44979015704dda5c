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


def setup_stream(c, tmp, names=("fo",)):
    cam = mslib.Camera(tmp / "cam", audio="none", gop=10).start()
    ld = c.leader()
    for name in names:
        r = ld.api("/api/v1/streams", "POST",
                   mslib.default_stream(name, cam.url("cam"), channels=("video",)))
        assert r.status in (200, 201), r.text
    for name in names:
        mslib.wait_until(lambda: placement(c, name)["backup"], 20, what="a backup")
        one_active_primary(c, name, timeout=30)
    return cam


def wait_failover(c, name, dead, t0, timeout=20, seg=None):
    """Seconds from t0 until a live node other than dead runs the stream
    (status active there) and until its HLS playlist lists new frames: the
    first LL-HLS part (EXT-X-PART, ~200 ms of media) or segment. With seg (a
    list), the time of the first whole segment is appended to it."""
    t_active = t_hls = t_seg = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (t_active is None or t_seg is None):
        for n in c.alive():
            if n is dead:
                continue
            try:
                s = st_on(n, name)
                if t_active is None and s and s["role"] != "secondary" and s["state"] == "active":
                    t_active = time.monotonic() - t0
                if t_active is not None and t_seg is None and s and s["role"] != "secondary":
                    r = n.get("/%s/index.m3u8" % name, timeout=3)
                    if r.status == 200 and t_hls is None and (
                            "#EXT-X-PART:" in r.text or "#EXTINF" in r.text):
                        t_hls = time.monotonic() - t0
                    if r.status == 200 and "#EXTINF" in r.text:
                        t_seg = time.monotonic() - t0
            except OSError:
                pass
        time.sleep(0.05)
    assert t_active is not None, "no failover within %d s" % timeout
    if seg is not None and t_seg is not None:
        seg.append(t_seg)
    return t_active, t_hls


def test_kill_primary_drill(three, tmp_path):
    """Two streams (the leader places them on different servers), so the
    rounds alternate between a primary that is not the leader and one that
    is (a new election on top of the failover)."""
    c = three
    names = ("fo", "fo2")
    cam = setup_stream(c, tmp_path, names)
    try:
        kinds = {True: ([], [], []), False: ([], [], [])}  # was_leader -> (active, part, segment)
        for i in range(KILLS):
            ld = c.leader()
            want_leader = i % 2 == 1
            pick = [n for n in names if (c.nodes[placement(c, n)["primary"]] is ld) == want_leader]
            name = (pick or list(names))[0]
            prim = c.nodes[placement(c, name)["primary"]]
            was_leader = ld is prim
            t0 = time.monotonic()
            kill9(prim)
            ta, th = wait_failover(c, name, prim, t0, seg=kinds[was_leader][2])
            kinds[was_leader][0].append(ta)
            if th is not None:
                kinds[was_leader][1].append(th)
            print("kill %d: primary %s of %s%s: active on the backup after %.2f s, new frames in"
                  " HLS (first part) after %s s" % (i, prim.name, name, " (also the leader)"
                                                    if was_leader else "", ta,
                                                    "%.2f" % th if th is not None else "-"))
            restart(prim)
            c.converged()
            for n in names:
                one_active_primary(c, n)
            # no failback: the restarted server took nothing back
            assert placement(c, name)["primary"] != prim.name
        allt = kinds[True][0] + kinds[False][0]
        allh = kinds[True][1] + kinds[False][1]
        allseg = kinds[True][2] + kinds[False][2]

        def fig(v):
            return "p50 %.2f s, p99 %.2f s" % (pct(v, 50), pct(v, 99)) if v else "-"

        for lab, (ta, th, ts) in (("primary not the leader", kinds[False]),
                                  ("primary also the leader", kinds[True]),
                                  ("all", (allt, allh, allseg))):
            if ta:
                print("failover (%s, %d kills): active %s; new frames in HLS (first part) %s;"
                      " whole segment %s" % (lab, len(ta), fig(ta), fig(th), fig(ts)))
        # targets: p50 <= 2 s, p99 <= 4 s (a little slack for a loaded CI machine)
        assert pct(allt, 50) <= 2.5 and pct(allt, 99) <= 4.5, allt
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
        # no failback: the resumed server takes nothing back, also later
        # (a deposed leader's stale decisions are dropped, never forwarded)
        newp = placement(c, "fo")["primary"]
        print("after SIGCONT: primary %s" % newp)
        assert newp != prim.name
        time.sleep(3)
        c.converged()
        one_active_primary(c, "fo")
        assert placement(c, "fo")["primary"] == newp
    finally:
        cam.stop()
