"""One answer from every node (docs/cluster.md "One status on every node"):
GET /api/v1/streams[/{id}] gives the same status (state, role, server,
backup_server, the primary's figures) on every node of 3; status.local says
what the answering node holds; ?state= filters on the cluster's view; the
/metrics stream series tell the copies apart. After kill -9 of the primary
every survivor shows the new primary active; an unplaced stream shows the
same reason everywhere."""
import json
import re
import time

import mslib
from conftest import kill9, node_auth, signed_post
from test_failover import DVR, one_active_primary, placement, setup_stream, st_on

SAME = ("state", "characteristic", "role", "server", "backup_server")


def statuses(c, name):
    return {n.name: st_on(n, name) for n in c.alive()}


def agree(c, name, prim):
    """The status of name on every live node when they all agree and the
    primary prim's copy runs; None otherwise."""
    sts = statuses(c, name)
    if any(s is None for s in sts.values()):
        return None
    first = sts[prim]
    if first["state"] != "active" or first["server"] != prim:
        return None
    for s in sts.values():
        if any(s[k] != first[k] for k in SAME) or s["bitrate_kbps"] <= 0:
            return None
    return sts


def test_same_status_on_every_node(three, tmp_path):
    c = three
    cam = setup_stream(c, tmp_path, dvr=DVR)
    try:
        pl = placement(c, "fo")
        prim, backup = pl["primary"], pl["backup"]
        other = [n for n in c.nodes if n not in (prim, backup)][0]
        sts = mslib.wait_until(lambda: agree(c, "fo", prim), 15, interval=0.2,
                               what="one status of fo on every node")
        for name, s in sts.items():
            assert s["role"] == "primary" and s["backup_server"] == backup, (name, s)
            # the primary's figures: fresh (within the cache and report time) and close
            assert 0 <= s["age_ms"] <= 2500, (name, s)
            assert s["bitrate_kbps"] > 0 and s["width"] > 0 and s["video_codec"], (name, s)
            assert abs(s["uptime_s"] - sts[prim]["uptime_s"]) <= 3, (name, s, sts[prim])
        assert sts[prim]["age_ms"] == 0
        # what each node holds itself
        def sr(name):
            return {k: sts[name]["local"][k] for k in ("state", "role")}
        assert sr(prim) == {"state": "active", "role": "primary"}, sts[prim]
        assert sr(backup) == {"state": "suspend", "role": "secondary"}, sts[backup]
        assert sr(other) == {"state": "none", "role": "none"}, sts[other]
        assert not sts[other]["local"].get("archive"), sts[other]
        # the primary records: its copy holds an archive once a chunk is written
        mslib.wait_until(lambda: st_on(c.nodes[prim], "fo")["local"].get("archive"), 15,
                         what="status.local.archive on the primary")
        # filters apply to the cluster's view: listed as active everywhere
        for n in c.alive():
            r = n.api("/api/v1/streams?state=active&role=primary")
            assert r.status == 200, r.text
            assert [s["name"] for s in r.json()["streams"]] == ["fo"], (n.name, r.text)
            r = n.api("/api/v1/streams?state=suspend")
            assert r.status == 200 and r.json()["streams"] == [], (n.name, r.text)
        # /metrics: role and server labels; up only where the stream runs
        for n in c.alive():
            text = n.get("/metrics").text
            m = re.search(r'^ms_stream_up\{stream="([^"]*)",role="(\w+)",server="(\w+)"\} (\d+)$',
                          text, re.M)
            assert m, text[:2000]
            role = sts[n.name]["local"]["role"]
            assert m.group(2) == role and m.group(3) == n.name, (n.name, m.group(0))
            assert m.group(4) == ("1" if n.name == prim else "0"), (n.name, m.group(0))

        # kill -9 of the primary: every survivor shows the new one active
        kill9(c.nodes[prim])
        t0 = time.monotonic()
        newp = mslib.wait_until(lambda: (lambda p: p if p not in (None, prim) else None)(
            placement(c, "fo")["primary"]), 20, what="a new primary")
        sts = mslib.wait_until(lambda: agree(c, "fo", newp), 20, interval=0.2,
                               what="the new primary active on every survivor")
        print("kill -9 of %s: every survivor shows %s active after %.2f s"
              % (prim, newp, time.monotonic() - t0))
        assert sts[newp]["local"]["state"] == "active", sts[newp]
        assert one_active_primary(c, "fo", timeout=20) == [newp]
    finally:
        cam.stop()


def test_unplaced_reason_everywhere(three):
    c = three
    ld = c.leader()
    mslib.wait_until(lambda: all(s["health"] == "up" for s in
                                 ld.api("/api/v1/servers").json()["servers"]), 15,
                     what="3 servers up")
    # no server takes new streams: a reserved stream is unplaced, and says why
    for n in c.nodes:
        r = ld.api("/api/v1/servers/%s" % n, "PUT", {"distribution": False})
        assert r.status == 200, r.text
    c.converged()
    r = ld.api("/api/v1/streams", "POST",
               {"name": "un", "url": "rtsp://127.0.0.1:9/un", "reserve": True})
    assert r.status == 201, r.text
    c.converged()
    why = mslib.wait_until(lambda: st_on(ld, "un")["reason"], 10, what="the leader's reason")
    assert why.startswith("reserve:"), why

    def same():
        sts = statuses(c, "un")
        if any(s is None or s["reason"] != why for s in sts.values()):
            return None
        return sts
    try:
        sts = mslib.wait_until(same, 10, interval=0.2, what="the same reason on every node")
    except AssertionError:
        print({k: v and v["reason"] for k, v in statuses(c, "un").items()}, why)
        raise
    for name, s in sts.items():
        assert s["state"] == "inactive" and s["server"] == "" and s["backup_server"] is None, s
        assert s["local"] == {"state": "none", "role": "none"}, (name, s)
    for n in c.alive():
        r = n.api("/api/v1/streams?state=inactive")
        assert [x["name"] for x in json.loads(r.text)["streams"]] == ["un"], (n.name, r.text)


def test_internal_table_is_signed(three):
    """The primary's table (GET /api/v1/streams?cluster_local=1) answers a
    signed call only: unsigned it is an ordinary admin call, badly signed
    401."""
    c = three
    n = c.leader()
    r = n.api("/api/v1/streams", "POST", {"name": "t1", "url": "rtsp://127.0.0.1:9/t1"})
    assert r.status == 201, r.text
    uid = r.json()["uid"]
    c.converged()
    prim = mslib.wait_until(lambda: st_on(n, "t1")["server"], 10, what="t1 placed")
    p = c.nodes[prim]
    path = "/api/v1/streams?cluster_local=1"
    hdr = {"X-MS-Cluster-Auth": node_auth("GET", path, b""), "X-MS-Node-Id": "1"}
    r = p.get(path, headers=hdr, spec=False)
    assert r.status == 200 and list(r.json()["streams"]) == [uid], r.text
    assert r.json()["streams"][uid]["state"] in ("initialization", "inactive"), r.text
    bad = {"X-MS-Cluster-Auth": node_auth("GET", path, b"", secret="wrong"), "X-MS-Node-Id": "1"}
    assert p.get(path, headers=bad, spec=False).status == 401
    assert p.get(path).status == 401  # neither signed nor an admin
    r = p.api(path)  # an admin: the ordinary list
    assert r.status == 200 and [x["name"] for x in r.json()["streams"]] == ["t1"], r.text
    # only GET reads the table: a signed POST there is the ordinary create
    st, body = signed_post(p, path, json.dumps({"name": "t2", "url": "rtsp://127.0.0.1:9/t2"})
                           .encode())
    assert st == 201 and json.loads(body)["name"] == "t2", (st, body)
