"""Transfer (POST /api/v1/streams/{id}/transfer): a real camera
(tests/camera/camera.py), 3 nodes. The stream moves to another server with
role "migrated"; a second transfer within the hour is refused with 409 and
the time left; a transfer to an unknown cluster is 404."""
import json

import mslib
from test_failover import one_active_primary, placement, setup_stream, st_on


def test_transfer_and_cooldown(three, tmp_path):
    c = three
    cam = setup_stream(c, tmp_path)
    try:
        before = placement(c, "fo")
        # sent to a follower: forwarded to the leader like every write
        f = c.followers()[0]
        r = f.api("/api/v1/streams/fo/transfer", "POST", {"cluster": "nope"})
        assert r.status == 404, r.text
        r = f.api("/api/v1/streams/fo/transfer", "POST", {})
        assert r.status == 200, r.text
        pl = json.loads(r.text)["placement"]
        assert pl["primary"] and pl["primary"] != before["primary"], (before, pl)
        assert pl["role"] == "migrated" and pl["transferred_at"] > 0, pl
        c.converged()
        active = one_active_primary(c, "fo")
        assert active == [pl["primary"]], active
        s = st_on(c.nodes[pl["primary"]], "fo")
        assert s["role"] == "migrated" and s["state"] == "active", s
        # frames flow on the new primary (HLS playlist with a segment)
        n = c.nodes[pl["primary"]]
        mslib.wait_until(lambda: (lambda r: r.status == 200 and "#EXTINF" in r.text)(
            n.get("/fo/index.m3u8", timeout=3)), 20, what="HLS on the new primary")
        # the old primary holds it suspended now
        old = st_on(c.nodes[before["primary"]], "fo")
        assert old["state"] == "suspend", old
        # a second transfer within the hour: 409 with the time left
        r = c.leader().api("/api/v1/streams/fo/transfer", "POST", {})
        assert r.status == 409, r.text
        left = json.loads(r.text)["time_left_s"]
        assert 3500 < left <= 3600, r.text
        assert placement(c, "fo")["primary"] == pl["primary"]
        print("transfer %s -> %s; second transfer refused, %d s left"
              % (before["primary"], pl["primary"], left))
    finally:
        cam.stop()


def test_groups_clusters_crud(three):
    c = three
    f, ld = c.followers()[0], c.leader()
    names = sorted(c.nodes)
    r = f.api("/api/v1/groups", "POST", {"name": "east", "subnets": ["10.1.0.0/16"]})
    assert r.status == 200, r.text
    r = f.api("/api/v1/groups", "POST", {"name": "bad", "subnets": ["10.1.0.0/99"]})
    assert r.status == 400, r.text
    r = ld.api("/api/v1/clusters/c1", "PUT",
               {"group": "east", "main": names[0], "additional": names[1]})
    assert r.status == 200, r.text
    r = ld.api("/api/v1/clusters/c2", "PUT",
               {"group": "east", "main": names[0], "additional": "nosuch"})
    assert r.status == 404, r.text
    c.converged()
    for n in c.alive():
        g = json.loads(n.api("/api/v1/groups").text)["groups"]
        assert [x["name"] for x in g] == ["east"] and g[0]["subnets"] == ["10.1.0.0/16"], g
        cl = json.loads(n.api("/api/v1/clusters/c1").text)
        assert (cl["main"], cl["additional"], cl["group"]) == (names[0], names[1], "east"), cl
    assert f.api("/api/v1/clusters/nope").status == 404
    # a group used by a cluster cannot go
    r = f.api("/api/v1/groups/east", "DELETE")
    assert r.status == 409, r.text
    assert f.api("/api/v1/clusters/c1", "DELETE").status == 200
    assert f.api("/api/v1/groups/east", "DELETE").status == 200
    c.converged()
    for n in c.alive():
        assert json.loads(n.api("/api/v1/clusters").text)["clusters"] == []
        assert json.loads(n.api("/api/v1/groups").text)["groups"] == []
