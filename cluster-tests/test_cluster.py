"""Three real nodes: replication of stream calls, placement on exactly one
node, leader failover, whole-cluster restart, catch-up of a follower, node
removal and addition, bad input. After each scenario the state_checksum is
equal on every node."""
import time

from conftest import kill9, restart, signed_post, stream_body
import mslib


def running_on(cluster, name):
    """Names of the nodes whose own copy of stream `name` (status.local) is
    not held suspended."""
    out = []
    for n in cluster.alive():
        st = n.streams()[name]["status"]["local"]
        if st["state"] not in ("suspend", "none"):
            out.append(n.name)
    return out


def test_stream_through_follower_everywhere_and_runs_once(three):
    f = three.followers()[0]
    r = f.api("/api/v1/streams", method="POST", body=stream_body("cam1"))
    assert r.status == 201, r.text
    uid = r.json()["uid"]
    # answered after apply: the follower that took the call lists it at once
    assert "cam1" in f.streams()
    for n in three.alive():
        mslib.wait_until(lambda: "cam1" in n.streams(), 5, what="cam1 on %s" % n.name)
        assert n.streams()["cam1"]["uid"] == uid
    mslib.wait_until(lambda: len(running_on(three, "cam1")) == 1, 10, what="cam1 on one node")
    # update, disable, enable, delete through another follower
    g = three.followers()[-1]
    body = stream_body("cam1")
    body["url"] = "rtsp://127.0.0.1:9/other"
    r = g.api("/api/v1/streams/cam1", method="PUT", body=body)
    assert r.status == 200, r.text
    assert r.json()["url"] == "rtsp://127.0.0.1:9/other"
    r = g.api("/api/v1/streams/cam1/disable", method="POST")
    assert r.status == 200 and r.json()["enabled"] is False, r.text
    for n in three.alive():
        mslib.wait_until(lambda: n.streams()["cam1"]["enabled"] is False, 5, what="disabled")
    assert running_on(three, "cam1") == []
    assert g.api("/api/v1/streams/cam1/enable", method="POST").status == 200
    mslib.wait_until(lambda: len(running_on(three, "cam1")) == 1, 10, what="cam1 runs again")
    r = three.leader().api("/api/v1/streams?consistent=1")
    assert r.status == 200 and any(s["name"] == "cam1" for s in r.json()["streams"])
    r = f.api("/api/v1/streams/cam1?consistent=1")
    assert r.status == 200 and r.json()["url"] == "rtsp://127.0.0.1:9/other", r.text
    assert g.api("/api/v1/streams/cam1", method="DELETE").status == 200
    for n in three.alive():
        mslib.wait_until(lambda: "cam1" not in n.streams(), 5, what="cam1 gone")
    assert g.api("/api/v1/streams/cam1", method="DELETE").status == 404
    three.converged()


def test_cluster_and_servers_views(three):
    n = three.nodes["n2"]
    info = three.info(n)
    assert info["voters"] == 3 and len(info["members"]) == 3
    assert info["leader"]["name"] in ("n1", "n2", "n3")
    for k in ("term", "commit_index", "applied_index", "state_checksum"):
        assert k in info
    time.sleep(1.5)
    servers = {s["name"]: s for s in n.api("/api/v1/servers").json()["servers"]}
    assert set(servers) == {"n1", "n2", "n3"}
    roles = sorted(s["raft_role"] for s in servers.values())
    assert roles == ["leader", "voter", "voter"]
    for s in servers.values():
        assert s["health"] == "up" and s["report_age_ms"] < 3000
        assert s["storage_total"] > 0 and "cpu_pct" in s["load"]
        # each server's memory in its report (the panel's Memory column)
        assert s["load"]["mem_rss_bytes"] > 1 << 20 and s["load"]["mem_total_bytes"] > s["load"]["mem_rss_bytes"]
        assert s["load"]["storage"][0]["total_bytes"] > 0
    r = n.api("/api/v1/servers/n3", method="PUT", body={"stream_limit": 7, "group": "north"})
    assert r.status == 200, r.text
    r = three.nodes["n1"].api("/api/v1/servers/n3")
    assert r.json()["stream_limit"] == 7 and r.json()["group"] == "north"
    assert n.api("/api/v1/servers/nosuch").status == 404
    assert n.api("/api/v1/servers/n3", method="PUT", body={"bogus": 1}).status == 400
    three.converged()


def test_leader_kill9_then_writes_succeed(three):
    ld = three.leader()
    f = [n for n in three.alive() if n is not ld][0]
    assert f.api("/api/v1/streams", method="POST", body=stream_body("before")).status == 201
    kill9(ld)
    t0 = time.monotonic()
    ok = None
    for i in range(100):
        r = f.api("/api/v1/streams", method="POST", body=stream_body("after%d" % i))
        if r.status == 201:
            ok = time.monotonic() - t0
            break
        assert r.status == 503, r.text
        assert r.headers.get("Retry-After")
    assert ok is not None, "no successful write after the leader died"
    print("first successful write %.3f s after kill -9 of the leader" % ok)
    assert ok < 10
    new = three.leader()
    assert new is not ld
    # the stream of the dead server moves to a live one (down after ~3 s)
    restart(ld)
    three.converged()


def test_kill9_all_and_restart_state_intact(three):
    n1 = three.nodes["n1"]
    for i in range(5):
        assert n1.api("/api/v1/streams", method="POST", body=stream_body("s%d" % i)).status == 201
    three.converged()
    before = {k: (v["uid"], v["url"]) for k, v in n1.streams().items()}
    servers = sorted(s["name"] for s in n1.api("/api/v1/servers").json()["servers"])
    for n in list(three.alive()):
        kill9(n)
    import threading
    ts = [threading.Thread(target=restart, args=(n,)) for n in three.nodes.values()]
    [t.start() for t in ts]
    [t.join() for t in ts]
    three.leader(timeout=20)
    for n in three.alive():
        after = {k: (v["uid"], v["url"]) for k, v in n.streams().items()}
        assert after == before
        assert sorted(s["name"] for s in n.api("/api/v1/servers").json()["servers"]) == servers
    three.converged()
    assert n1.api("/api/v1/streams", method="POST", body=stream_body("post")).status == 201


def test_follower_down_during_writes_catches_up(three):
    ld = three.leader()
    down = [n for n in three.alive() if n is not ld][0]
    kill9(down)
    t0 = time.monotonic()
    N = 1000
    for i in range(N):
        r = ld.api("/api/v1/servers/%s" % ld.name, method="PUT", body={"stream_limit": 1000 + i})
        assert r.status == 200, r.text
    dt = time.monotonic() - t0
    print("%d writes with a follower down: %.1f writes/s" % (N, N / dt))
    restart(down)
    mslib.wait_until(lambda: down.api("/api/v1/servers/%s" % ld.name).json()["stream_limit"]
                     == 1000 + N - 1, 30, what="follower caught up")
    three.converged()


def test_remove_node_and_add_new(three):
    n1 = three.nodes["n1"]
    for i in range(3):
        assert n1.api("/api/v1/streams", method="POST", body=stream_body("r%d" % i)).status == 201
    mslib.wait_until(lambda: all(s["status"]["state"] != "" for s in n1.streams().values()), 5)
    victim = three.followers()[0]
    r = n1.api("/api/v1/servers/%s" % victim.name, method="DELETE")
    assert r.status == 200, r.text
    victim.stop()
    rest = three.alive()
    for n in rest:
        info = three.info(n)
        assert victim.name not in [m.get("name") for m in info["members"]]
        assert len(info["members"]) == 2
        for s in n.streams().values():
            pass
    # every stream runs on exactly one remaining node
    for name in ("r0", "r1", "r2"):
        mslib.wait_until(lambda: len(running_on(three, name)) == 1, 10, what=name)
    n4 = three.add("n4")
    mslib.wait_until(lambda: len(three.info(n1)["members"]) == 3, 15, what="n4 joined")
    mslib.wait_until(lambda: "r0" in n4.streams(), 10, what="n4 has the state")
    three.converged()


def test_bad_input_leaves_state_untouched(three):
    n = three.followers()[0]
    assert n.api("/api/v1/streams", method="POST", body=stream_body("good")).status == 201
    before = {k: v["uid"] for k, v in n.streams().items()}
    def conf(m):  # the stream object without its live status
        return {k: v for k, v in m.api("/api/v1/streams/good").json().items() if k != "status"}
    good = conf(n)
    cases = [
        (b"{not json", 400),
        (b"[1,2]", 400),
        (b"", 400),
        (b'{"name":"x","url":"rtsp://127.0.0.1:9/x","bogus":1}', 400),
        (b'{"name":"bad name!","url":"rtsp://127.0.0.1:9/x"}', 400),
        (b'{"name":"y","url":"rtsp://127.0.0.1:9/x","dvr":{"depth":1}}', 400),
        (b'{"name":"z"}', 400),
        (b"{" + b" " * 70000 + b"}", 413),
    ]
    for body, want in cases:
        r = n.api("/api/v1/streams", method="POST", body=body)
        assert r.status == want, (body[:40], r.status, r.text)
        assert "error" in r.json()
    r = n.api("/api/v1/streams/good", method="PUT", body={"name": "good", "url": "x", "uid": "zz"})
    assert r.status == 400
    assert n.api("/api/v1/streams/nosuch/restart", method="POST").status == 404
    # commands forwarded by a (test) peer
    ld = three.leader()
    info = three.info(ld)
    member = info["members"][0]["id"]
    assert isinstance(member, str) and member.isdigit(), member  # 63-bit ids as strings
    assert signed_post(ld, "/api/v1/cluster/submit", b'{"v":1}', node_id=member)[0] == 400
    cmd = b'{"v":1,"op":"drop_everything","req_id":"abc","ts":1,"args":{}}'
    assert signed_post(ld, "/api/v1/cluster/submit", cmd, node_id=member)[0] == 400
    cmd = b'{"v":1,"op":"stream_upsert","req_id":"abc","ts":1,"args":{"stream":{"name":"q"}}}'
    assert signed_post(ld, "/api/v1/cluster/submit", cmd, node_id=member)[0] == 400
    assert signed_post(ld, "/api/v1/cluster/submit", b"{}", secret="wrong")[0] == 401
    ok = b'{"v":1,"op":"setting_set","req_id":"t1","ts":1,"args":{"key":"k","value":1}}'
    assert signed_post(ld, "/api/v1/cluster/submit", ok, node_id=12345)[0] == 403
    r = ld.api("/api/v1/cluster/submit", method="POST", body={"v": 1})
    assert r.status == 401
    # a signed but oversized command, a bad req_id, an extra key
    big = b'{"v":1,"op":"setting_set","req_id":"t2","ts":1,"args":{"key":"k","value":"' + \
        b"x" * 200000 + b'"}}'
    st = signed_post(ld, "/api/v1/cluster/submit", big, node_id=member)[0]
    assert st in (400, 413), st
    cmd = b'{"v":1,"op":"setting_set","req_id":"bad id!","ts":1,"args":{"key":"k","value":1}}'
    assert signed_post(ld, "/api/v1/cluster/submit", cmd, node_id=member)[0] == 400
    cmd = b'{"v":1,"op":"setting_set","req_id":"t3","ts":1,"args":{},"more":1}'
    assert signed_post(ld, "/api/v1/cluster/submit", cmd, node_id=member)[0] == 400
    cmd = b'{"v":99,"op":"setting_set","req_id":"t4","ts":1,"args":{"key":"k","value":1}}'
    assert signed_post(ld, "/api/v1/cluster/submit", cmd, node_id=member)[0] == 400
    # the stream objects (with their placement and rev) did not change anywhere
    for m in three.alive():
        assert {k: v["uid"] for k, v in m.streams().items()} == before
        assert conf(m) == good
    three.converged()
