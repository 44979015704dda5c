"""Authentication between nodes (docs/security.md "Joins and node-to-node
HTTP"): unauthenticated join answers are ignored, so a spoofed redirect
neither keeps a joining node out nor harvests its join datagrams; a signed
node-to-node call is accepted once (a replay, a stale time, another node id,
the old unsigned-nonce format are refused)."""
import json
import socket
import threading
import time

import mslib
from conftest import node_auth, signed_post


def test_spoofed_redirect_is_ignored(cluster):
    a = cluster.add("a")
    cluster.leader()
    # the attacker: a UDP socket that claims to be the leader
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trap.bind(("127.0.0.1", 0))
    trap.settimeout(0.05)
    b = cluster.add("b", start=False)
    spoofs = [
        json.dumps({"op": "redirect", "leader": "127.0.0.1:%d" % trap.getsockname()[1]}).encode(),
        ("MSJ1 redirect 1 %d %d %s %s 127.0.0.1:%d %s" % (
            1, int(time.time() * 1000), "00" * 16, "11" * 16, trap.getsockname()[1], "ab" * 32)).encode(),
    ]
    stop = threading.Event()
    got = []

    def spoof():
        end = time.time() + 6  # bounded
        while not stop.is_set() and time.time() < end:
            for s in spoofs:
                try:
                    trap.sendto(s, ("127.0.0.1", b.raft_port))
                except OSError:
                    pass
            try:
                data, peer = trap.recvfrom(2048)
                got.append((peer, data))
            except socket.timeout:
                pass

    t = threading.Thread(target=spoof)
    t.start()
    try:
        b.start(timeout=30)

        def joined():
            return len(cluster.info(a)["members"]) == 2
        mslib.wait_until(joined, 15, what="b joined despite the spoofed redirects")
    finally:
        stop.set()
        t.join()
        trap.close()
    assert got == [], "the joining node sent datagrams to the spoofed leader: %r" % got[:2]
    assert "ignored a join datagram" in b.log_text()


def test_node_call_replay_refused(cluster):
    cluster.add("a")
    ld = cluster.leader()
    member = int(cluster.info(ld)["members"][0]["id"])  # a decimal string in the API
    path = "/api/v1/cluster/submit"
    body = b'{"v":1,"op":"setting_set","req_id":"na1","ts":1,"args":{"key":"k","value":1}}'
    auth = node_auth("POST", path, body, node_id=member)
    st = signed_post(ld, path, body, node_id=member, auth=auth)[0]
    assert st == 200, st
    # the same request again (captured on the wire): refused
    assert signed_post(ld, path, body, node_id=member, auth=auth)[0] == 401
    # signed as one node, claiming to be another
    assert signed_post(ld, path, body, node_id=member, claimed_id=member + 1)[0] == 401
    # stale (31 s old) and from another key
    old = node_auth("POST", path, body, node_id=member, ts=int(time.time() * 1000) - 31000)
    assert signed_post(ld, path, body, node_id=member, auth=old)[0] == 401
    assert signed_post(ld, path, body, node_id=member, secret="wrong")[0] == 401
    # the old format (no nonce, node id not covered)
    assert signed_post(ld, path, body, node_id=member, auth="%d.%s" % (
        int(time.time() * 1000), "0" * 64))[0] == 401
    assert "refused node call" in ld.log_text()
