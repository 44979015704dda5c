"""Stream actions on a 3-node cluster (docs/api.md): transfer to a named
server, its body checks, dry_run (the search's outcome and the servers it
passed over, nothing moved), the one-hour cooldown and its admin override
("force", logged at WARN), and restart asked on a node that does not run
the stream (forwarded to the one that does). No camera: the stream points
at a closed port; placement and the source's restart do not need frames."""
import mslib
from conftest import stream_body


def _server(n, name):
    r = n.api("/api/v1/streams/%s?consistent=1" % name)
    assert r.status == 200, r.text
    return r.json()["status"]["server"]


def test_transfer_server_dry_run_force_and_restart(three):
    c = three
    ld = c.leader()
    r = ld.api("/api/v1/streams", "POST", stream_body("tx"))
    assert r.status == 201, r.text
    uid = r.json()["uid"]
    prim = mslib.wait_until(
        lambda: (lambda s: s["status"]["server"] if s["status"].get("server") else None)(
            ld.stream("tx")), 15, what="tx placed")
    others = sorted(n for n in c.nodes if n != prim)
    # the searches below expect every server to qualify: wait until each has
    # reported (a server that just joined is "down" until its first report)
    # and every node has the stream (the calls go to a follower)
    mslib.wait_until(lambda: all(s["health"] == "up" for s in
                                 ld.api("/api/v1/servers").json()["servers"]), 15,
                     what="3 servers up")
    c.converged()
    f = c.followers()[0]
    path = "/api/v1/streams/tx/transfer"

    # body checks: unknown key, wrong type, both targets, unknown server
    for body, field, code in (({"srv": "n3"}, "srv", 400), ({"force": "yes"}, "force", 400),
                              ({"server": 3}, "server", 400),
                              ({"server": "n2", "cluster": "c"}, "server", 400),
                              ({"server": "nosuch"}, "server", 404)):
        r = f.api(path, "POST", body)
        assert r.status == code and r.json().get("field") == field, (body, r.status, r.text)

    # dry_run: the automatic search and a named server; nothing moves
    r = f.api(path, "POST", {"dry_run": True})
    assert r.status == 200, r.text
    d = r.json()
    assert d["main"] in others and d["additional"] in set(c.nodes) - {d["main"]}, d
    assert {"server": prim, "reason": "current server"} in d["rejected"], d
    r = f.api(path, "POST", {"server": prim, "dry_run": True})
    assert r.status == 200 and r.json()["main"] is None, r.text
    assert r.json()["rejected"] == [{"server": prim, "reason": "current server"}], r.text
    r = f.api(path, "POST", {"server": others[1], "dry_run": True})
    assert r.status == 200, r.text
    assert r.json()["main"] == others[1], r.text
    backup = r.json()["additional"]
    assert backup in (prim, others[0]), r.text
    assert _server(ld, "tx") == prim

    # a real transfer to a named server: it becomes the primary
    r = f.api(path, "POST", {"server": others[1]})
    assert r.status == 200, r.text
    pl = r.json()["placement"]
    assert pl["primary"] == others[1] and pl["role"] == "migrated", pl
    assert pl["backup"] == backup, pl
    # within the hour: 409 with the time left, unless an admin forces it
    r = f.api(path, "POST", {"server": prim})
    assert r.status == 409 and 3500 < r.json()["time_left_s"] <= 3600, r.text
    r = f.api(path, "POST", {"server": prim, "force": True})
    assert r.status == 200 and r.json()["placement"]["primary"] == prim, r.text
    assert "transfer forced by an administrator" in f.log_text()
    c.converged()

    # restart asked on a node that does not run it: forwarded to the one that does
    runner = c.nodes[prim]
    mslib.wait_until(lambda: runner.stream(uid)["status"]["local"]["state"]
                     not in ("suspend", "none"), 10,
                     what="tx runs on %s" % prim)
    asker = c.nodes[others[0]]
    r = asker.api("/api/v1/streams/tx/restart", "POST")
    assert r.status == 200 and r.json() == {"ok": True, "server": prim}, r.text
    mslib.wait_until(lambda: "restart requested" in runner.log_text(), 5, what="restart logged")
    assert "restart requested" not in asker.log_text()
