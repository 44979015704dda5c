"""Five voters plus a standby, whole-cluster kill -9, and a follower that
catches up by InstallSnapshot after missing thousands of writes. After each
scenario the state_checksum is equal on every node.

MS_CLUSTER_LONG=1 runs the long version (5000 writes instead of 2000)."""
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import kill9, restart, stream_body
import mslib

LONG = os.environ.get("MS_CLUSTER_LONG") == "1"


def members_by_name(cluster, n):
    return {m.get("name"): m["role"] for m in cluster.info(n)["members"]}


def test_five_voters_standby_and_kill9_all(cluster):
    for name in ("n1", "n2", "n3", "n4", "n5"):
        cluster.add(name)
    n1 = cluster.nodes["n1"]
    mslib.wait_until(lambda: cluster.info(n1)["voters"] == 5, 30, what="5 voters")
    n6 = cluster.add("n6")
    mslib.wait_until(lambda: members_by_name(cluster, n1).get("n6") == "standby", 30,
                     what="n6 standby")
    for n in cluster.alive():
        mslib.wait_until(lambda: len(cluster.info(n)["members"]) == 6, 10, what="6 members")
        info = cluster.info(n)
        assert info["voters"] == 5 and info["standbys"] == 1, info
        roles = sorted(m["role"] for m in info["members"])
        assert roles == ["standby"] + ["voter"] * 5
    mslib.wait_until(lambda: len(n6.api("/api/v1/servers").json()["servers"]) == 6, 15,
                     what="6 servers in the state")
    servers = {s["name"]: s for s in n6.api("/api/v1/servers").json()["servers"]}
    assert servers["n6"]["raft_role"] == "standby"
    assert sorted(s["raft_role"] for s in servers.values()) == \
        ["leader", "standby", "voter", "voter", "voter", "voter"]
    # a write through the standby is forwarded to the leader
    r = n6.api("/api/v1/streams", method="POST", body=stream_body("via-standby"))
    assert r.status == 201, r.text
    for i in range(4):
        f = cluster.nodes["n%d" % (i + 2)]
        assert f.api("/api/v1/streams", method="POST", body=stream_body("k%d" % i)).status == 201
    cluster.converged(timeout=30)
    before = {k: (v["uid"], v["url"]) for k, v in n1.streams().items()}
    assert len(before) == 5

    # kill -9 of every node, restart all: the state is intact and writable
    for n in list(cluster.alive()):
        kill9(n)
    ts = [threading.Thread(target=restart, args=(n,)) for n in cluster.nodes.values()]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert len(cluster.alive()) == 6
    cluster.leader(timeout=30)
    for n in cluster.alive():
        after = {k: (v["uid"], v["url"]) for k, v in n.streams().items()}
        assert after == before, n.name
        assert len(n.api("/api/v1/servers").json()["servers"]) == 6
    info = cluster.info(n1)
    assert info["voters"] == 5 and info["standbys"] == 1
    assert n6.api("/api/v1/streams", method="POST", body=stream_body("post")).status == 201
    cluster.converged(timeout=30)


def test_follower_catches_up_by_snapshot(cluster, monkeypatch):
    # small snapshots: the leader compacts its log while the follower is down,
    # so the follower can only catch up by InstallSnapshot
    monkeypatch.setenv("MS_RAFT_SNAPSHOT_THRESHOLD", "64")
    monkeypatch.setenv("MS_RAFT_SNAPSHOT_TRAILING", "16")
    for name in ("n1", "n2", "n3"):
        cluster.add(name)
    n1 = cluster.nodes["n1"]
    mslib.wait_until(lambda: cluster.info(n1)["voters"] == 3, 20, what="3 voters")
    ld = cluster.leader()
    down = [n for n in cluster.alive() if n is not ld][0]
    kill9(down)
    N = int(os.environ.get("MS_CLUSTER_WRITES") or (5000 if LONG else 2000))
    errors = []

    def put(i):
        r = ld.api("/api/v1/servers/%s" % ld.name, method="PUT", body={"stream_limit": 10 + i},
                   timeout=20)
        if r.status != 200:
            errors.append((i, r.status, r.text))

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(put, range(N)))
    dt = time.monotonic() - t0
    assert not errors, errors[:3]
    last = 10 + N + 7
    assert ld.api("/api/v1/servers/%s" % ld.name, method="PUT",
                  body={"stream_limit": last}).status == 200
    print("%d writes with a follower down: %.0f writes/s" % (N, N / dt))
    assert cluster.info(ld)["snapshots"]["taken"] >= 1
    restart(down)
    mslib.wait_until(lambda: down.api("/api/v1/servers/%s" % ld.name).json()["stream_limit"]
                     == last, 60, what="follower caught up")
    snaps = cluster.info(down)["snapshots"]
    assert snaps["installed"] >= 1, snaps
    cluster.converged(timeout=30)


def test_stream_file_deleted_while_down_is_removed(cluster):
    for name in ("n1", "n2", "n3"):
        cluster.add(name)
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    mslib.wait_until(lambda: cluster.info(n1)["voters"] == 3, 20, what="3 voters")
    n2.add_stream("filecam", "rtsp://127.0.0.1:9/filecam")
    n2.add_stream("keepcam", "rtsp://127.0.0.1:9/keepcam")
    n2.proc.send_signal(1)  # SIGHUP: the files enter the state
    for n in cluster.alive():
        mslib.wait_until(lambda: {"filecam", "keepcam"} <= set(n.streams()), 10,
                         what="file streams on %s" % n.name)
    src = n1.api("/api/v1/streams/filecam").json()
    n2.stop()
    n2.remove_stream("filecam")
    restart(n2)
    # the file was deleted while n2 was down: n2 removes its stream cluster-wide
    for n in cluster.alive():
        mslib.wait_until(lambda: "filecam" not in n.streams(), 15,
                         what="filecam removed on %s" % n.name)
        assert "keepcam" in n.streams()
    assert src["uid"]
    cluster.converged(timeout=20)
