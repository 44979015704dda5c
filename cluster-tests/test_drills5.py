"""Five-node drill: the leader and the primary of a real camera stream
(tests/camera/camera.py) killed together (kill -9 of both at once). The
remaining three voters elect a leader, which marks both servers down and
activates the stream's backup. Measured: time until a new leader is ready,
until the stream is active on another node, until its HLS playlist lists
new frames (first LL-HLS part). Then both come back, the state converges
(equal state_checksum), exactly one node runs the stream and a backup is
chosen. Prints the figures."""
import time

import mslib
from conftest import kill9, restart
from test_failover import one_active_primary, placement, wait_failover

NAMES = ("n1", "n2", "n3", "n4", "n5")


def test_leader_and_primary_killed_together(cluster, tmp_path):
    c = cluster
    for name in NAMES:
        c.add(name)
    n1 = c.nodes["n1"]
    mslib.wait_until(lambda: c.info(n1)["voters"] == 5, 30, what="5 voters")
    mslib.wait_until(lambda: len(n1.api("/api/v1/servers").json()["servers"]) == 5, 15,
                     what="5 servers in the state")
    cam = mslib.Camera(tmp_path / "cam", audio="none", gop=10).start()
    try:
        ld = c.leader()
        # a stream whose primary (and, when placement allows, backup) is not
        # the leader: streams are added until placement gives one (each new
        # stream goes to the least-loaded server)
        name = None
        for i in range(4):
            s = "lp%d" % i
            r = ld.api("/api/v1/streams", "POST",
                       mslib.default_stream(s, cam.url("cam"), channels=("video",)))
            assert r.status in (200, 201), r.text
            mslib.wait_until(lambda: placement(c, s)["backup"], 20, what="a backup")
            one_active_primary(c, s, timeout=30)
            pl = placement(c, s)
            if pl["primary"] != ld.name:
                name = s
                if pl["backup"] != ld.name:
                    break
        assert name, "every stream was placed on the leader"
        pl = placement(c, name)
        prim = c.nodes[pl["primary"]]
        mslib.wait_until(lambda: (lambda r: r.status == 200 and "#EXTINF" in r.text)(
            prim.get("/%s/index.m3u8" % name, timeout=3)), 20, what="HLS on the primary")
        c.converged()

        t0 = time.monotonic()
        prim.proc.kill()  # both at once, then reap
        ld.proc.kill()
        kill9(prim)
        kill9(ld)
        t_kill = time.monotonic() - t0
        nl = c.leader(timeout=15)
        t_leader = time.monotonic() - t0
        ta, th = wait_failover(c, name, prim, t0)
        newp = placement(c, name)["primary"]
        assert newp not in (prim.name, ld.name), newp
        print("leader %s and primary %s of %s killed together (%.3f s apart at most): new leader"
              " %s ready after %.2f s; stream active on %s after %.2f s (backup was %s); new"
              " frames in HLS (first part) after %s s"
              % (ld.name, prim.name, name, t_kill, nl.name, t_leader, newp, ta, pl["backup"],
                 "%.2f" % th if th is not None else "-"))
        assert th is not None, "no new frames in HLS"
        # a new backup among the live nodes, while both are down
        nb = mslib.wait_until(lambda: (lambda p: p["backup"] if p["backup"] not in
                                       (None, prim.name, ld.name, p["primary"]) else None)(
                                           placement(c, name)), 15, what="a live backup")
        t_backup = time.monotonic() - t0
        # both come back: no failback, one active primary, a backup, equal state
        restart(prim)
        restart(ld)
        chk = c.converged(timeout=30)
        for s in c.nodes["n1"].streams():
            one_active_primary(c, s)
        after = placement(c, name)
        assert after["primary"] == newp, (after, newp)
        assert after["backup"] and after["backup"] != after["primary"], after
        print("new backup %s after %.2f s; both back: %s runs %s (backup %s), state_checksum"
              " %s… on %d nodes" % (nb, t_backup, after["primary"], name, after["backup"],
                                   chk[:12], len(c.alive())))
        # the new leader's probe finds no process behind the primary, so its
        # silence counts from its last report (down_after_ms 1.5 s) as in a
        # single failover: ~1.5 s here (without the probe, 0.7 s settling +
        # 1.5 s after the election: ~3.3 s). Target p99 4 s, a little slack
        # for a loaded CI machine.
        assert t_leader <= 3 and ta <= 4.5, (t_leader, ta)
    finally:
        cam.stop()
