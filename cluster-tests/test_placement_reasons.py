"""The two placement pools made visible (docs/cluster.md "Two pools"), 3
nodes, no camera needed (placement does not depend on the source):

- reserve: true with no cluster defined: placed among the servers like an
  unreserved stream (primary and backup), and the leader logs a warning;
- a cluster (n1, n2) outside any group: reserved streams go to it, the
  other server (n3) runs the unreserved ones;
- the cluster's members unable to run streams (distribution off): a new
  reserved stream is unplaced, POST's 201 placement.reason and
  status.reason on every node say why, and the leader logs it once;
- raft ids are JSON strings (63-bit ids do not fit a JavaScript number)."""
import json
import time

import mslib


def body(name, reserve):
    return {"name": name, "url": "rtsp://127.0.0.1:9/%s" % name, "reserve": reserve}


def placement_of(n, name):
    r = n.api("/api/v1/streams/%s" % name)
    assert r.status == 200, r.text
    st = json.loads(r.text)["status"]
    return {"primary": st["server"] or None, "backup": st["backup_server"]}


def test_reserve_pools_and_unplaced_reason(three):
    c = three
    ld = c.leader()
    # a server that just joined is "down" until its first report
    mslib.wait_until(lambda: all(s["health"] == "up" for s in
                                 ld.api("/api/v1/servers").json()["servers"]), 15,
                     what="3 servers up")
    # ids as strings
    info = c.info(ld)
    assert isinstance(info["id"], str) and info["id"].isdigit(), info
    assert all(isinstance(m["id"], str) for m in info["members"]), info["members"]
    assert all(isinstance(v, str) for v in info["voter_ids"]), info["voter_ids"]
    assert isinstance(info["leader"]["id"], str), info["leader"]
    rows = json.loads(ld.api("/api/v1/servers").text)["servers"]
    assert all(isinstance(s["id"], str) and s["id"].isdigit() for s in rows), rows
    assert {s["id"] for s in rows} == {m["id"] for m in info["members"]}

    # reserve without any cluster: primary + backup among the servers, a warning
    r = ld.api("/api/v1/streams", "POST", body("r0", True))
    assert r.status == 201, r.text
    assert r.json()["placement"]["reason"] is None, r.text  # a server qualifies
    pl = mslib.wait_until(lambda: (lambda p: p if p["primary"] and p["backup"] else None)(
        placement_of(ld, "r0")), 10, what="r0 placed with a backup")
    assert pl["primary"] != pl["backup"], pl
    mslib.wait_until(lambda: "stream r0: reserve: no cluster in group" in ld.log_text(), 5,
                     what="the leader's warning about r0")

    # a cluster (n1, n2): reserved streams go there, unreserved ones to n3
    r = ld.api("/api/v1/clusters/k", "PUT", {"group": "", "main": "n1", "additional": "n2"})
    assert r.status == 200, r.text
    assert "cluster k (main n1, additional n2) asked for: its servers take reserved streams " \
        "only" in ld.log_text()
    assert ld.api("/api/v1/streams", "POST", body("r1", True)).status == 201
    assert ld.api("/api/v1/streams", "POST", body("u1", False)).status == 201
    p1 = mslib.wait_until(lambda: (lambda p: p if p["primary"] and p["backup"] else None)(
        placement_of(ld, "r1")), 10, what="r1 placed with a backup")
    assert {p1["primary"], p1["backup"]} == {"n1", "n2"}, p1
    pu = mslib.wait_until(lambda: (lambda p: p if p["primary"] else None)(placement_of(ld, "u1")),
                          10, what="u1 placed")
    assert pu["primary"] == "n3", pu

    # the cluster's members take no new stream: a reserved stream is unplaced, and says why
    for name in ("n1", "n2"):
        r = ld.api("/api/v1/servers/%s" % name, "PUT", {"distribution": False})
        assert r.status == 200, r.text
    c.converged()
    r = ld.api("/api/v1/streams", "POST", body("r2", True))
    assert r.status == 201, r.text
    why = r.json()["placement"]["reason"]
    assert why and why.startswith("reserve: no cluster of group (none) has a qualifying"), why
    assert "distribution disabled" in why, why
    c.converged()
    for n in c.alive():
        def reason(n=n):
            st = json.loads(n.api("/api/v1/streams/r2").text)["status"]
            return st["reason"] if st["reason"].startswith("reserve:") else None
        mslib.wait_until(reason, 10, what="status.reason of r2 on %s" % n.name)
    mslib.wait_until(lambda: "stream r2: unplaced: reserve:" in ld.log_text(), 5,
                     what="the leader logs why r2 is unplaced")
    # once per change, not once per duty run (every 500 ms)
    time.sleep(1.5)
    assert ld.log_text().count("stream r2: unplaced:") == 1, ld.log_text()[-3000:]
