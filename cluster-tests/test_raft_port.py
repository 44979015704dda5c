"""The raft port against someone who is not a member (docs/security.md,
"The raft transport"): a raw client speaks libraft 0.22's own TCP wire
format (handshake preamble, then messages; encoded here from libraft's
src/uv_tcp_connect.c and src/uv_encoding.c) to a real node.

Before the raft transport authenticated connections:
- an AppendEntries whose entry count is 2^32-1 made libraft's decoder
  crash the node (allocation failure, then a loop over the count);
- a fake leader's AppendEntries with a higher term carrying a
  stream_upsert was applied.
Now the node closes such a connection before libraft reads a byte, logs the
refusal, and stays leader with its term and state unchanged. A client that
speaks our handshake with a wrong key is refused the same way, and one with
the right key gets through (the handshake itself is what keeps the others
out)."""
import hashlib
import hmac
import json
import os
import socket
import struct
import time

import mslib

SECRET = "integration-test-secret"  # mslib.Node's default

# libraft 0.22 (little-endian throughout)
UV_TCP_HANDSHAKE_PROTOCOL = 1
RAFT_APPEND_ENTRIES = 1
RAFT_COMMAND = 1


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def libraft_preamble(server_id, address):
    addr = pad8(address.encode() + b"\0")
    return struct.pack("<QQQ", UV_TCP_HANDSHAKE_PROTOCOL, server_id, len(addr)) + addr


def append_entries(term, prev_index, prev_term, commit, entries, n_entries=None):
    """entries: [(term, payload bytes)]; n_entries overrides the count."""
    n = len(entries) if n_entries is None else n_entries
    header = struct.pack("<QQQQQ", term, prev_index, prev_term, commit, n)
    for t, data in entries:
        header += struct.pack("<QB3xI", t, RAFT_COMMAND, len(data))
    payload = b"".join(pad8(data) for _, data in entries)
    return struct.pack("<QQ", RAFT_APPEND_ENTRIES, len(header)) + header + payload


def closed_by_peer(s, timeout):
    """True when the node closes the connection (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def info(n):
    r = n.api("/api/v1/cluster", timeout=5)
    assert r.status == 200, r.text
    return r.json()


def single(cluster):
    n = cluster.add("n1", join=False)
    mslib.wait_until(lambda: info(n)["state"] == "leader" and info(n)["leader_ready"], 15,
                     what="a ready leader")
    return n


def assert_still_leader(n, before):
    assert n.alive(), "the node died:\n" + n.log_text()[-3000:]
    i = info(n)
    assert i["state"] == "leader" and i["leader_ready"], i
    assert i["term"] == before["term"], (before["term"], i["term"])
    r = n.api("/api/v1/streams", "POST", {"name": "after", "url": "rtsp://127.0.0.1:9/after"})
    assert r.status in (200, 201), (r.status, r.text)


def refusals(n):
    return [ln for ln in n.log_text().splitlines() if "refused raft connection from 127.0.0.1" in ln]


def test_huge_entry_count_is_refused(cluster):
    n = single(cluster)
    before = info(n)
    # 72 bytes of message after libraft's preamble: its decoder would try
    # to allocate 2^32-1 entries
    msg = libraft_preamble(4242, "127.0.0.1:1") + append_entries(
        before["term"] + 1, 0, 0, 0, [], n_entries=0xFFFFFFFF)
    for _ in range(3):  # three of these killed a 3-node cluster
        s = socket.create_connection(("127.0.0.1", n.raft_port), timeout=5)
        try:
            s.sendall(msg)
            assert closed_by_peer(s, 5), "the node kept a connection that sent garbage"
        finally:
            s.close()
    time.sleep(0.3)
    assert_still_leader(n, before)
    lines = refusals(n)
    assert lines and "malformed" in lines[0], n.log_text()[-2000:]


def test_fake_leader_entries_are_not_applied(cluster):
    n = single(cluster)
    before = info(n)
    term = before["term"]
    cmd = {"v": 1, "op": "stream_upsert", "req_id": os.urandom(16).hex(),
           "ts": int(time.time() * 1000),
           "args": {"added": "manual",
                    "stream": {"uid": "evil", "name": "evil", "url": "rtsp://127.0.0.1:9/evil"}}}
    data = json.dumps(cmd).encode()
    data += b" " * (-len(data) % 8)  # libraft pads payloads to 8 bytes
    last = before["last_index"]
    msg = libraft_preamble(4243, "127.0.0.1:1") + append_entries(
        term + 5, last, term, last + 1, [(term + 5, data)])
    s = socket.create_connection(("127.0.0.1", n.raft_port), timeout=5)
    try:
        s.sendall(msg)
        closed = closed_by_peer(s, 3)
    finally:
        s.close()
    assert "evil" not in n.streams(), "the fake leader's stream_upsert was applied"
    assert info(n)["term"] == term
    assert closed, "the node kept a connection from a fake leader"
    assert_still_leader(n, before)
    assert refusals(n)


# Our handshake (util/raft_handshake.h), to show the refusal is about the key.

def hkdf_raft_key(secret):
    """util/kdf.h: HKDF-SHA256 (RFC 5869), salt "mediaserver-kdf-v1",
    info "raft transport v1", 32 bytes."""
    prk = hmac.new(b"mediaserver-kdf-v1", secret.encode(), hashlib.sha256).digest()
    return hmac.new(prk, b"raft transport v1" + b"\x01", hashlib.sha256).digest()


def handshake(port, key, my_id, target_id, address="127.0.0.1:1"):
    """Runs the connector's side; returns (socket, challenge) or raises."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    hello = b"MSRH" + bytes([1, 1, len(address), 0]) + struct.pack(">QQ", my_id, target_id) + \
        os.urandom(32) + address.encode()
    s.sendall(hello)
    chal = b""
    while len(chal) < 88:
        b = s.recv(88 - len(chal))
        if not b:
            return s, None
        chal += b
    mac_a = hmac.new(key, b"MSRH1 accept\0" + hello + chal[:56], hashlib.sha256).digest()
    assert hmac.compare_digest(mac_a, chal[56:]), "the node's MAC does not verify"
    head = b"MSRH" + bytes([1, 3, 0, 0])
    proof = head + hmac.new(key, b"MSRH1 connect\0" + hello + chal + head, hashlib.sha256).digest()
    s.sendall(proof)
    return s, chal


def test_handshake_needs_the_key(cluster):
    n = single(cluster)
    before = info(n)
    my = int(before["id"])  # ids are decimal strings in the API
    # a wrong target id: refused before any MAC is shown
    s, chal = handshake(n.raft_port, hkdf_raft_key(SECRET), 77, my + 1)
    assert chal is None
    s.close()
    # the right key: the node answers with a MAC we can verify and keeps
    # the connection (libraft reads from it now)
    s, chal = handshake(n.raft_port, hkdf_raft_key(SECRET), 78, my)
    assert chal is not None
    assert struct.unpack(">QQ", chal[8:24]) == (my, 78)
    assert not closed_by_peer(s, 1.0)
    s.close()
    time.sleep(1.1)  # refusals are logged at most once a second
    # a wrong key: our PROOF does not verify, so the node closes
    s = socket.create_connection(("127.0.0.1", n.raft_port), timeout=5)
    addr = b"127.0.0.1:1"
    hello = b"MSRH" + bytes([1, 1, len(addr), 0]) + struct.pack(">QQ", 79, my) + \
        os.urandom(32) + addr
    s.sendall(hello)
    chal = b""
    while len(chal) < 88:
        chal += s.recv(88 - len(chal))
    head = b"MSRH" + bytes([1, 3, 0, 0])
    bad = hkdf_raft_key("not the secret")
    s.sendall(head + hmac.new(bad, b"MSRH1 connect\0" + hello + chal + head,
                              hashlib.sha256).digest())
    assert closed_by_peer(s, 5)
    s.close()
    # a client that connects and says nothing is dropped after the
    # handshake timeout (2 s)
    s = socket.create_connection(("127.0.0.1", n.raft_port), timeout=5)
    t0 = time.monotonic()
    assert closed_by_peer(s, 5)
    assert 1.5 < time.monotonic() - t0 < 4.5
    s.close()
    time.sleep(0.2)
    text = "\n".join(refusals(n))
    for reason in ("wrong id", "bad MAC", "timeout"):
        assert reason in text, text
    assert_still_leader(n, before)
