"""POST /api/v1/login: a stateless Bearer token (util/logintoken.h) for the
admin calls, valid on every node with the same cluster secret until it
expires; wrong passwords count in the login back-off (node/auth_guard.h).

Each test uses its own 127.0.0.x source addresses so that the back-off
of one never blocks another; the nodes listen on 127.0.0.1."""

import base64
import http.client
import json
import time

import pytest

from mslib import Node, wait_until


@pytest.fixture(scope="module")
def lnode(tmp_path_factory, ms_binary):
    n = Node(tmp_path_factory.mktemp("login") / "node")
    n.start()
    try:
        yield n
    finally:
        rc = n.stop()
        assert rc == 0 and not n.killed, "node exit code %s on SIGTERM (killed=%s)" % (rc, n.killed)


def req(n, path, src="127.0.0.1", method="GET", body=None, token=None, headers=None):
    """One request from source address src on its own connection:
    (status, headers dict, parsed JSON body or raw bytes)."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    if token is not None:
        h["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=10, source_address=(src, 0))
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        try:
            raw = json.loads(raw)
        except ValueError:
            pass
        return r.status, dict(r.getheaders()), raw
    finally:
        c.close()


def login(n, src="127.0.0.1", user=None, password=None, **kw):
    body = {"user": user or n.admin[0], "password": password if password is not None else n.admin[1]}
    body.update(kw)
    return req(n, "/api/v1/login", src, "POST", body)


def test_login_token_authorizes_reads_and_writes(lnode):
    n = lnode
    t0 = time.time()
    st, hdrs, j = login(n, "127.0.0.80")
    assert st == 200, (st, j)
    assert hdrs.get("Cache-Control") == "no-store", hdrs
    assert set(j) == {"token", "expires"}, j
    tok = j["token"]
    assert len(tok) == 87 and all(c.isalnum() or c in "-_" for c in tok), tok
    # the default lifetime is 12 h
    assert abs(j["expires"] - (t0 + 12 * 3600)) <= 3, (j["expires"], t0)
    # a read and a write (through the replicated state) with the token
    st, _, j = req(n, "/api/v1/streams", "127.0.0.80", token=tok)
    assert st == 200 and "streams" in j, (st, j)
    st, _, j = req(n, "/api/v1/streams", "127.0.0.80", "POST",
                   {"name": "vialogin", "url": "rtsp://127.0.0.1:9/x", "enabled": False}, token=tok)
    assert st == 201, (st, j)
    st, _, j = req(n, "/api/v1/streams/vialogin", "127.0.0.80", token=tok)
    assert st == 200 and j["name"] == "vialogin", (st, j)
    # without it: 401
    assert req(n, "/api/v1/streams", "127.0.0.80")[0] == 401
    # two logins give two different tokens, both valid
    tok2 = login(n, "127.0.0.80")[2]["token"]
    assert tok2 != tok and req(n, "/api/v1/system", "127.0.0.80", token=tok2)[0] == 200
    # the token is not a playback token and the login call is POST only
    st, hdrs, _ = req(n, "/api/v1/login", "127.0.0.80")
    assert st == 405 and hdrs.get("Allow") == "POST", (st, hdrs)


def test_login_bad_bodies(lnode):
    n = lnode
    src = "127.0.0.81"
    cases = [
        (b"{not json", None),
        (b"[1]", None),
        (b"", None),
        ({"password": "x"}, "user"),
        ({"user": "admin"}, "password"),
        ({"user": 1, "password": "x"}, "user"),
        ({"user": "admin", "password": None}, "password"),
        ({"user": "admin", "password": "x", "remember": True}, "remember"),
        ({"user": "admin", "password": "x", "ttl_s": 0}, "ttl_s"),
        ({"user": "admin", "password": "x", "ttl_s": 7 * 86400 + 1}, "ttl_s"),
        ({"user": "admin", "password": "x", "ttl_s": "60"}, "ttl_s"),
    ]
    for body, field in cases:
        st, _, j = req(n, "/api/v1/login", src, "POST", body)
        assert st == 400 and isinstance(j, dict) and j.get("field") == field, (body, st, j)
    # none of them counted as a failed login: the address still logs in
    # (12 bad bodies would otherwise have blocked it)
    assert login(n, src, ttl_s=7 * 86400)[0] == 200


def test_altered_and_expired_tokens(lnode):
    n = lnode
    src = "127.0.0.82"
    st, _, j = login(n, src, ttl_s=1)
    assert st == 200, j
    tok = j["token"]
    assert req(n, "/api/v1/system", src, token=tok)[0] == 200  # lives at least 1 s
    # one character changed: 401 with a Bearer challenge (no browser prompt)
    bad = tok[:40] + ("A" if tok[40] != "A" else "B") + tok[41:]
    st, hdrs, j = req(n, "/api/v1/system", src, token=bad)
    assert st == 401 and j["error"] == "invalid credentials", (st, j)
    assert hdrs["WWW-Authenticate"].startswith("Bearer "), hdrs
    # truncated, or as Basic password: refused too
    assert req(n, "/api/v1/system", src, token=tok[:-1])[0] == 401
    hb = {"Authorization": "Basic " + base64.b64encode(("admin:" + tok).encode()).decode()}
    assert req(n, "/api/v1/system", src, headers=hb)[0] == 401
    # expired: 401 with its own message, on reads and on writes
    wait_until(lambda: req(n, "/api/v1/system", src, token=tok)[0] == 401, timeout=4,
               what="the 1 s token to expire")
    st, hdrs, j = req(n, "/api/v1/system", src, token=tok)
    assert st == 401 and "expired" in j["error"], (st, j)
    assert 'error="invalid_token"' in hdrs["WWW-Authenticate"], hdrs
    st, _, j = req(n, "/api/v1/streams", src, "POST", {"name": "late", "url": "rtsp://127.0.0.1:9/x"},
                   token=tok)
    assert st == 401, (st, j)
    # an expired (authentic) token is not a guess: a client that keeps
    # using it is not blocked by the back-off, and can log in again
    statuses = [req(n, "/api/v1/system", src, token=tok)[0] for _ in range(12)]
    assert statuses == [401] * 12, statuses
    assert login(n, src)[0] == 200


def test_login_backoff(lnode):
    n = lnode
    attacker, other = "127.0.0.83", "127.0.0.84"
    # wrong passwords at /login and over Basic count in the same table
    statuses = [login(n, attacker, password="guess%d" % i)[0] for i in range(5)]
    hb = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
    statuses += [req(n, "/api/v1/system", attacker, headers=hb)[0] for _ in range(5)]
    assert statuses == [401] * 10, statuses
    st, hdrs, j = login(n, attacker)  # the right password, but blocked
    assert st == 429 and int(hdrs["Retry-After"]) >= 1, (st, hdrs, j)
    assert login(n, attacker, user="root")[0] == 429
    # a wrong user name is a failure like a wrong password
    st, hdrs, j = login(n, other, user="root")
    assert st == 401 and j["error"] == "wrong user or password", (st, j)
    assert hdrs["WWW-Authenticate"].startswith("Bearer "), hdrs
    # another address logs in and uses its token
    st, _, j = login(n, other)
    assert st == 200, j
    assert req(n, "/api/v1/streams", other, token=j["token"])[0] == 200
    log = n.log_text()
    assert "failed admin login (login) from 127.0.0.83" in log, log[-3000:]
    assert "guess" not in log  # never the credentials


def test_token_valid_on_nodes_with_the_same_secret(lnode, tmp_path):
    """Stateless: a second node that never saw the login accepts the token
    when it has the same secret and admin credentials; a node with another
    secret, or the same secret and another admin password, refuses it."""
    st, _, j = login(lnode, "127.0.0.85")
    assert st == 200, j
    tok = j["token"]
    same = Node(tmp_path / "same", name="same")
    other_secret = Node(tmp_path / "other", name="other")
    other_secret.cfg["secret"] = "another-cluster-secret"
    other_pw = Node(tmp_path / "pw", name="pw", admin=("admin", "changed"))
    nodes = [same, other_secret, other_pw]
    try:
        for x in nodes:
            x.write_config()
            x.start()
        st, _, j = req(same, "/api/v1/streams", "127.0.0.85", token=tok)
        assert st == 200 and "streams" in j, (st, j)
        for x in (other_secret, other_pw):
            st, _, j = req(x, "/api/v1/streams", "127.0.0.85", token=tok)
            assert st == 401 and j["error"] == "invalid credentials", (x.name, st, j)
        # a token of the node with another secret is refused by the first
        t2 = login(other_secret, "127.0.0.85")[2]["token"]
        assert req(lnode, "/api/v1/system", "127.0.0.85", token=t2)[0] == 401
    finally:
        for x in nodes:
            if x.proc is not None:
                rc = x.stop()
                assert rc == 0 and not x.killed, (x.name, rc)


def test_backoff_covers_calls_on_the_replicated_state(lnode):
    """Writes (and ?consistent=1 reads) go through the replicated state,
    which authenticated on its own: wrong passwords there were neither
    counted nor refused by the back-off (12 guesses: 12 x 401), and an
    expired token got the generic message."""
    n = lnode
    src = "127.0.0.86"
    hb = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
    body = {"name": "x", "url": "rtsp://127.0.0.1:9/x"}
    statuses = [req(n, "/api/v1/streams", src, "POST", body, headers=hb)[0] for _ in range(12)]
    assert statuses == [401] * 10 + [429, 429], statuses
    st, hdrs, _ = req(n, "/api/v1/streams?consistent=1", src, headers=hb)
    assert st == 429 and int(hdrs["Retry-After"]) >= 1, (st, hdrs)
    # and the failures there block the other admin calls and the login
    assert login(n, src)[0] == 429
    assert req(n, "/api/v1/system", src, headers=hb)[0] == 429
