"""Multi-node drills: real mediaserver processes on loopback, each with its
own ports and data_dir, joined into one Raft cluster. Reuses the integration
helpers (tests/integration/mslib.py)."""
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import apispec  # noqa: E402
import mslib  # noqa: E402

# A binary built with -DMS_ASAN=ON: report leaks, but not libraft's own (lsan.supp).
os.environ.setdefault("LSAN_OPTIONS", "suppressions=%s" % os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "lsan.supp"))


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.nodes = {}

    def add(self, name, join=True, start=True):
        extra = {}
        if join and self.nodes:
            first = next(iter(self.nodes.values()))
            extra["cluster"] = {"join": ["127.0.0.1:%d" % n.raft_port for n in self.nodes.values()
                                         if n.alive()] or ["127.0.0.1:%d" % first.raft_port]}
        n = mslib.Node(self.tmp / name, name=name, extra=extra)
        self.nodes[name] = n
        if start:
            n.start(timeout=30)
        return n

    def alive(self):
        return [n for n in self.nodes.values() if n.alive()]

    def info(self, n):
        r = n.api("/api/v1/cluster", timeout=5)
        assert r.status == 200, r.text
        return r.json()

    def leader(self, timeout=15):
        def find():
            for n in self.alive():
                try:
                    i = self.info(n)
                except OSError:
                    continue
                if i["state"] == "leader" and i["leader_ready"]:
                    return n
            return None
        return mslib.wait_until(find, timeout, what="a ready leader")

    def followers(self):
        ld = self.leader()
        return [n for n in self.alive() if n is not ld]

    def converged(self, timeout=20, nodes=None):
        """Waits until every live node is at the same applied index with the
        same state_checksum; returns the checksum."""
        nodes = nodes or self.alive()
        last = None

        def same():
            nonlocal last
            got = []
            for n in nodes:
                i = self.info(n)
                got.append((i["applied_index"], i["state_checksum"]))
            last = got
            if len(set(got)) == 1:
                return got[0][1]
            return None
        try:
            return mslib.wait_until(same, timeout, interval=0.02, what="equal state_checksum")
        except AssertionError:
            raise AssertionError("state did not converge: %s" % last)

    def stop_all(self):
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception:
                pass

    def sanitizer_reports(self):
        """Sanitizer reports (ASan, LSan, UBSan) found in the node logs: a
        binary built with -DMS_ASAN=ON prints them on stderr (to the log)."""
        out = []
        for n in self.nodes.values():
            text = n.log_text()
            for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                i = text.find(mark)
                if i >= 0:
                    out.append("%s: %s" % (n.name, text[max(0, i - 200):i + 3000]))
        return out


def kill9(n):
    n.proc.kill()
    n.proc.wait(timeout=10)
    n.exit_code, n.killed = -9, True


def restart(n, timeout=30):
    n.exit_code = None
    n.killed = False
    return n.start(timeout=timeout)


def kdf(secret, label):
    """ms_kdf_derive (util/kdf.h): HKDF-SHA256, RFC 5869, one 32-byte block."""
    prk = hmac.new(b"mediaserver-kdf-v1", secret.encode(), hashlib.sha256).digest()
    return hmac.new(prk, label + b"\x01", hashlib.sha256).digest()


def node_auth(method, path, body, secret="integration-test-secret", node_id=1, ts=None, nonce=None):
    """The X-MS-Cluster-Auth value of a node-to-node call (util/nodeauth.h)."""
    ts = int(time.time() * 1000) if ts is None else ts
    nonce = nonce or os.urandom(16).hex()
    msg = b"\n".join([b"ms-cluster-v2", method.encode(), path.encode(),
                      hashlib.sha256(body).hexdigest().encode(), str(node_id).encode(),
                      str(ts).encode(), nonce.encode()])
    mac = hmac.new(kdf(secret, b"node http v1"), msg, hashlib.sha256).hexdigest()
    return "v2.%s.%d.%s.%s" % (node_id, ts, nonce, mac)


def signed_post(n, path, body, secret="integration-test-secret", node_id=1, auth=None,
                claimed_id=None):
    """POST as node node_id; auth: a header value to send instead (a replay);
    claimed_id: the X-MS-Node-Id to send (default: node_id)."""
    auth = auth or node_auth("POST", path, body, secret, node_id)
    req = urllib.request.Request(n.base + path, data=body, method="POST", headers={
        "X-MS-Cluster-Auth": auth,
        "X-MS-Node-Id": str(node_id if claimed_id is None else claimed_id),
        "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            res = mslib.HttpResult(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        res = mslib.HttpResult(e.code, dict(e.headers), e.read())
    mslib.spec_check("POST", n.base + path, res)
    return res.status, res.body


@pytest.fixture(scope="session", autouse=True)
def api_spec():
    """docs/openapi.yaml, loaded once; every /api/v1 answer of the helpers
    (mslib.http, signed_post) is checked against it (apispec.py)."""
    try:
        return apispec.spec()
    except apispec.SpecError as e:
        pytest.fail("docs/openapi.yaml: %s" % e)


@pytest.fixture(autouse=True)
def api_contract():
    """Fails the test when an answer checked on a helper thread did not
    match the spec (its AssertionError may have been lost there)."""
    apispec.take()
    yield
    bad = apispec.take()
    if bad:
        pytest.fail("API answers not as docs/openapi.yaml says:\n" + "\n".join(bad[:10]))


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop_all()
    reports = c.sanitizer_reports()
    assert not reports, "\n".join(reports)


@pytest.fixture
def three(cluster):
    for name in ("n1", "n2", "n3"):
        cluster.add(name)
    mslib.wait_until(lambda: len(cluster.info(cluster.nodes["n1"])["members"]) == 3 and all(
        m["role"] == "voter" for m in cluster.info(cluster.nodes["n1"])["members"]), 15,
        what="3 voters")
    mslib.wait_until(lambda: len(cluster.nodes["n1"].api("/api/v1/servers").json()["servers"]) == 3,
                     15, what="3 servers in the state")
    return cluster


def stream_body(name):
    return {"name": name, "url": "rtsp://127.0.0.1:9/%s" % name}


def json_of(r):
    return json.loads(r.text) if r.text else None
