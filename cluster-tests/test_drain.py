"""Draining a server before maintenance (docs/cluster.md "Draining a
server"): on a 3-node cluster with 3 camera streams, POST
/servers/{name}/drain on a follower hands the drained server's primaries to
their backups (every stream active again, on another server, each with a
backup that is not the drained one), GET /servers/{name} shows draining and
load.active reaching 0, a new stream is placed elsewhere, the transfer
search names "draining" as the reason it passed the server over; undrain
lets placement use it again. An unknown server is 404."""
import mslib
from conftest import json_of
from test_failover import one_active_primary, placement


def _server(n, name):
    r = n.api("/api/v1/servers/%s" % name)
    assert r.status == 200, r.text
    return json_of(r)


def test_drain_and_undrain(three, tmp_path):
    c = three
    cam = mslib.Camera(tmp_path / "cam", audio="none", gop=10).start()
    try:
        ld = c.leader()
        names = ["d1", "d2", "d3"]
        for nm in names:
            r = ld.api("/api/v1/streams", "POST",
                       mslib.default_stream(nm, cam.url("cam"), channels=("video",)))
            assert r.status in (200, 201), r.text
        mslib.wait_until(lambda: all(placement(c, nm)["backup"] for nm in names), 20,
                         what="every stream with a backup")
        prims = {nm: one_active_primary(c, nm, timeout=30)[0] for nm in names}
        # drain the server running the most primaries
        victim = max(c.nodes, key=lambda s: (sum(1 for p in prims.values() if p == s), s))
        moved = [nm for nm in names if prims[nm] == victim]
        assert moved, prims
        f = [n for n in c.followers()][0]
        r = f.api("/api/v1/servers/%s/drain" % victim, "POST", {})
        assert r.status == 200, r.text
        assert json_of(r)["draining"] is True and json_of(r)["name"] == victim, r.text

        # its primaries go to their backups, each with a backup elsewhere
        def drained():
            for nm in names:
                pl = placement(c, nm)
                if victim in (pl["primary"], pl["backup"]) or not pl["backup"]:
                    return None
            return True
        mslib.wait_until(drained, 20, what="no stream on %s" % victim)
        for nm in names:
            p = one_active_primary(c, nm, timeout=20)[0]
            assert p != victim, (nm, p)
        # the drained server's own report: nothing active any more
        mslib.wait_until(lambda: all(_server(n, victim)["load"].get("active") == 0 and
                                     _server(n, victim)["draining"] for n in c.alive()), 20,
                         what="load.active 0 on %s, seen on every node" % victim)
        # a new stream is placed elsewhere; the search says why
        r = ld.api("/api/v1/streams", "POST",
                   mslib.default_stream("d4", cam.url("cam"), channels=("video",)))
        assert r.status in (200, 201), r.text
        pl = mslib.wait_until(lambda: (lambda p: p if p["primary"] and p["backup"] else None)(
            placement(c, "d4")), 20, what="d4 placed")
        assert victim not in (pl["primary"], pl["backup"]), pl
        r = f.api("/api/v1/streams/d4/transfer", "POST", {"dry_run": True})
        assert r.status == 200, r.text
        assert {"server": victim, "reason": "draining"} in json_of(r)["rejected"], r.text

        # undrain: the server qualifies again (the dry-run search may pick it)
        r = f.api("/api/v1/servers/%s/undrain" % victim, "POST", {})
        assert r.status == 200 and json_of(r)["draining"] is False, r.text
        mslib.wait_until(lambda: all(not _server(n, victim)["draining"] for n in c.alive()), 10,
                         what="undrained everywhere")
        r = f.api("/api/v1/streams/d4/transfer", "POST", {"dry_run": True, "server": victim})
        assert r.status == 200 and json_of(r)["main"] == victim, r.text
        # undraining moves nothing back (no failback)
        for nm in names:
            assert placement(c, nm)["primary"] != victim, nm

        # bad calls
        r = f.api("/api/v1/servers/nosuch/drain", "POST", {})
        assert r.status == 404 and json_of(r)["field"] == "name", r.text
    finally:
        cam.stop()
