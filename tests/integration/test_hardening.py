"""Listener hardening with real sockets (docs/security.md "Authentication
and listeners"): the per-address back-off of failed admin logins (HTTP and
RTSP), the per-address connection limit and request timeout, ambiguous
HTTP framing (RFC 9112 sections 6.1 and 6.3), the bounded viewer table,
throttled logs, half-closed connections.

Every test picks its own 127.0.0.x source addresses (Linux routes all of
127/8 on lo), so the back-off and connection counts of one test never touch
another; the node listens on 127.0.0.1. Loops are bounded."""

import base64
import hashlib
import os
import http.client
import re
import socket
import struct
import time

import pytest

import mslib
from mslib import Node, wait_until

CONNS_PER_IP = 16
REQUEST_TIMEOUT_S = 3
# MS_BASELINE=1 leaves the new listen.* keys out of the configs, so that
# the findings can be reproduced against a build from before these fixes.
BASELINE = os.environ.get("MS_BASELINE") == "1"


@pytest.fixture(scope="module")
def hnode(tmp_path_factory, ms_binary):
    d = tmp_path_factory.mktemp("hardening")
    n = Node(d / "node", extra=None)
    if not BASELINE:
        n.cfg["listen"]["conns_per_ip"] = CONNS_PER_IP
        n.cfg["listen"]["request_timeout_s"] = REQUEST_TIMEOUT_S
    n.cfg["trusted_proxies"] = ["127.0.0.99/32"]
    n.write_config()
    n.start()
    try:
        yield n
    finally:
        rc = n.stop()
        assert rc == 0 and not n.killed, "node exit code %s on SIGTERM (killed=%s)" % (rc, n.killed)


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def get(n, path, src, headers=None, method="GET"):
    """One request from source address src on its own connection:
    (status, headers dict, body)."""
    c = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=10, source_address=(src, 0))
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def test_admin_backoff_http(hnode):
    n = hnode
    attacker, other = "127.0.0.10", "127.0.0.11"
    good = {"Authorization": basic(*n.admin)}
    statuses = [get(n, "/api/v1/system", attacker, {"Authorization": basic("admin", "guess%d" % i)})[0]
                for i in range(12)]
    # 10 failures within the window are answered 401; the address is then
    # blocked: 429 with Retry-After, even for the right password
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[10:] == [429, 429], statuses
    st, hdrs, _ = get(n, "/api/v1/system", attacker, good)
    assert st == 429 and int(hdrs["Retry-After"]) >= 1, (st, hdrs)
    # Bearer guesses are refused the same way while blocked
    assert get(n, "/api/v1/system", attacker, {"Authorization": "Bearer x"})[0] == 429
    # another address is not affected
    assert get(n, "/api/v1/system", other, good)[0] == 200
    # the first block lasts 2 s
    wait_until(lambda: get(n, "/api/v1/system", attacker, good)[0] == 200, timeout=5,
               what="the block to end")
    log = n.log_text()
    assert re.search(r"failed admin login \(Basic\) from 127\.0\.0\.10", log), log[-3000:]
    assert "127.0.0.10 blocked for 2000 ms" in log, log[-3000:]
    assert "guess" not in log  # never the credentials


def test_failed_login_log_rate_limited(hnode):
    n = hnode
    before = n.log_text().count("failed admin login")
    t0 = time.monotonic()
    for i in range(40):  # 4 addresses x 10 failures (none is blocked yet)
        get(n, "/api/v1/system", "127.0.0.%d" % (20 + i % 4), {"Authorization": basic("admin", "x")})
    elapsed = time.monotonic() - t0
    lines = n.log_text().count("failed admin login") - before
    assert 1 <= lines <= elapsed + 2, (lines, elapsed)


def slow_conn(n, src, port=None):
    """A connection that sends an incomplete request head and stops."""
    s = socket.create_connection(("127.0.0.1", port or n.http_port), timeout=10,
                                 source_address=(src, 0))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    return s


def closed_by_peer(s, timeout):
    """True when the server closes s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_conns_per_ip_http(hnode):
    n = hnode
    src, other, proxy = "127.0.0.30", "127.0.0.31", "127.0.0.99"
    held = [slow_conn(n, src) for _ in range(CONNS_PER_IP)]
    try:
        time.sleep(0.3)
        # one more from the same address is closed without an answer
        extra = socket.create_connection(("127.0.0.1", n.http_port), timeout=5,
                                         source_address=(src, 0))
        try:
            extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass
        assert closed_by_peer(extra, 5), "connection %d from one address was served" % (CONNS_PER_IP + 1)
        extra.close()
        # another address is served
        assert get(n, "/", other)[0] == 302  # / redirects to the panel
        # a trusted proxy is not limited
        proxied = [slow_conn(n, proxy) for _ in range(CONNS_PER_IP + 4)]
        try:
            assert get(n, "/", proxy)[0] == 302
        finally:
            for s in proxied:
                s.close()
        assert "refused a connection from 127.0.0.30" in n.log_text()
        # the incomplete requests are dropped after listen.request_timeout_s
        t0 = time.monotonic()
        assert all(closed_by_peer(s, REQUEST_TIMEOUT_S + 3) for s in held)
        assert time.monotonic() - t0 < REQUEST_TIMEOUT_S + 3
    finally:
        for s in held:
            s.close()
    # the address has its slots back
    wait_until(lambda: get(n, "/", src)[0] == 302, timeout=5, what="slots freed")


# ---- RTSP ---------------------------------------------------------------------

PRIVATE = {"mode": "private", "whitelist": []}


@pytest.fixture(scope="module")
def rnode(tmp_path_factory, ms_binary, shared_cam):
    """Two private streams on the RTSP server; small limits."""
    d = tmp_path_factory.mktemp("hardening-rtsp")
    n = Node(d / "node")
    n.rtsp_port = mslib.free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    if not BASELINE:
        n.cfg["listen"]["conns_per_ip"] = CONNS_PER_IP
        n.cfg["listen"]["request_timeout_s"] = REQUEST_TIMEOUT_S
    n.write_config()
    n.add_stream("priv", shared_cam.url("cam"), access=PRIVATE)
    n.add_stream("priv2", shared_cam.url("cam2"), access=PRIVATE)
    n.add_stream("pub", shared_cam.url("cam3"))
    n.start()
    try:
        for s in ("priv", "priv2", "pub"):
            n.wait_active(s, timeout=30)
        yield n
    finally:
        rc = n.stop()
        assert rc == 0 and not n.killed, "node exit code %s on SIGTERM (killed=%s)" % (rc, n.killed)


def rurl(n, stream):
    return "rtsp://127.0.0.1:%d/%s" % (n.rtsp_port, stream)


def rtsp_req(n, uri, src, auth=None, method="DESCRIBE"):
    """One request on its own connection: (status, head)."""
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10, source_address=(src, 0))
    try:
        extra = "Authorization: %s\r\n" % auth if auth else ""
        s.sendall(("%s %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n%s\r\n"
                   % (method, uri, extra)).encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            b = s.recv(65536)
            if not b:
                break
            data += b
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        return int(head.split(" ", 2)[1]), head
    finally:
        s.close()


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def digest(n, nonce, uri, nc, method="DESCRIBE", user="admin", pw="secret", cnonce="0a1b2c3d"):
    ha1 = md5("%s:mediaserver:%s" % (user, pw))
    ha2 = md5("%s:%s" % (method, uri))
    resp = md5("%s:%s:%08x:%s:auth:%s" % (ha1, nonce, nc, cnonce, ha2))
    return ('Digest username="%s", realm="mediaserver", nonce="%s", uri="%s", response="%s", '
            'qop=auth, nc=%08x, cnonce="%s"' % (user, nonce, uri, resp, nc, cnonce))


def fresh_nonce(n, src):
    st, head = rtsp_req(n, rurl(n, "priv"), src)
    assert st == 401, head
    return re.search(r'nonce="([0-9a-f]+)"', head).group(1)


def test_rtsp_digest_replay(rnode):
    n = rnode
    src = "127.0.0.50"
    nonce = fresh_nonce(n, src)
    auth = digest(n, nonce, rurl(n, "priv"), 1)
    assert rtsp_req(n, rurl(n, "priv"), src, auth)[0] == 200
    # the header sniffed for priv does not open priv2 (RFC 2617 3.2.2.5)
    st, head = rtsp_req(n, rurl(n, "priv2"), src, auth)
    assert st == 401, head
    # nor priv again: the nonce count must increase (RFC 2617 3.2.2)
    st, head = rtsp_req(n, rurl(n, "priv"), src, auth)
    assert st == 401 and "stale=true" in head, head
    # the same client with the next count is fine
    assert rtsp_req(n, rurl(n, "priv"), src, digest(n, nonce, rurl(n, "priv"), 2))[0] == 200
    # a response computed for priv2 with that nonce is fine too
    assert rtsp_req(n, rurl(n, "priv2"), src, digest(n, nonce, rurl(n, "priv2"), 3))[0] == 200


def test_rtsp_basic_empty_user(rnode):
    n = rnode
    st, head = rtsp_req(n, rurl(n, "priv"), "127.0.0.51", basic("", "secret"))
    assert st == 401, head
    assert rtsp_req(n, rurl(n, "priv"), "127.0.0.51", basic("admin", "secret"))[0] == 200


def test_rtsp_admin_backoff(rnode):
    n = rnode
    attacker, other = "127.0.0.52", "127.0.0.53"
    sts = [rtsp_req(n, rurl(n, "priv"), attacker, basic("admin", "guess%d" % i))[0] for i in range(10)]
    assert sts == [401] * 10, sts
    # blocked: even the right password is refused, Digest too
    assert rtsp_req(n, rurl(n, "priv"), attacker, basic("admin", "secret"))[0] == 401
    nonce = fresh_nonce(n, attacker)
    assert rtsp_req(n, rurl(n, "priv"), attacker, digest(n, nonce, rurl(n, "priv"), 1))[0] == 401
    # the HTTP API shares the table: the address is blocked there too
    assert get(n, "/api/v1/system", attacker, {"Authorization": basic(*n.admin)})[0] == 429
    assert rtsp_req(n, rurl(n, "priv"), other, basic("admin", "secret"))[0] == 200
    wait_until(lambda: rtsp_req(n, rurl(n, "priv"), attacker, basic("admin", "secret"))[0] == 200,
               timeout=5, what="the block to end")
    assert "rtsp: 127.0.0.52 blocked for 2000 ms" in n.log_text()



def test_rtsp_conns_per_ip(rnode):
    n = rnode
    src, other = "127.0.0.60", "127.0.0.61"
    held = []
    try:
        for _ in range(CONNS_PER_IP):
            s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10,
                                         source_address=(src, 0))
            s.sendall(b"DESCRIBE rtsp://127.0.0.1/priv RTSP/1.0\r\nCSeq: 1\r\n")
            held.append(s)
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=5,
                                         source_address=(src, 0))
        assert closed_by_peer(extra, 5), "connection %d from one address was kept" % (CONNS_PER_IP + 1)
        extra.close()
        assert rtsp_req(n, rurl(n, "priv"), other)[0] == 401  # served (asks for credentials)
        assert "refused a connection from 127.0.0.60" in n.log_text()
        # an incomplete request is closed after listen.request_timeout_s
        t0 = time.monotonic()
        assert all(closed_by_peer(s, REQUEST_TIMEOUT_S + 3) for s in held)
        assert time.monotonic() - t0 < REQUEST_TIMEOUT_S + 3
    finally:
        for s in held:
            s.close()
    wait_until(lambda: rtsp_req(n, rurl(n, "priv"), src)[0] == 401, timeout=5, what="slots freed")


def test_rtsp_conns_per_ip_after_handoff(rnode):
    """A connection that named its stream (handed to the stream's loop,
    where its DESCRIBE is answered) still counts for its address until it
    closes: before, only connections still being accepted counted, so one
    address could hold any number of RTSP connections by asking for a
    stream on each."""
    n = rnode
    src, other = "127.0.0.62", "127.0.0.63"
    held = []
    try:
        for _ in range(CONNS_PER_IP):
            s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10,
                                         source_address=(src, 0))
            s.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % rurl(n, "priv")).encode())
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(4096)
                assert b, "closed before answering"
                data += b
            assert data.startswith(b"RTSP/1.0 401"), data[:80]
            held.append(s)  # kept open: a session on the stream's loop
        # one more from that address is closed unanswered (before: its
        # DESCRIBE was answered like any other)
        extra = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=5,
                                         source_address=(src, 0))
        try:
            extra.sendall(("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % rurl(n, "priv")).encode())
            got = extra.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        finally:
            extra.close()
        assert got == b"", "connection %d from one address was answered: %r" % (CONNS_PER_IP + 1, got[:40])
        assert rtsp_req(n, rurl(n, "priv"), other)[0] == 401  # another address is served
    finally:
        for s in held:
            s.close()

    def served():
        # the slots come free as the stream's loop sees each close: until
        # then a new connection is refused (reset)
        try:
            return rtsp_req(n, rurl(n, "priv"), src)[0] == 401
        except (ConnectionResetError, BrokenPipeError, IndexError):
            return False
    wait_until(served, timeout=5, what="slots freed")


# ---- HTTP framing (RFC 9112 sections 6.1 and 6.3) ---------------------------

SMUGGLED = b"GET /api/v1/system HTTP/1.1\r\nHost: x\r\n\r\n"
FRAMING = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "two_lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n"
                   % len(SMUGGLED) + SMUGGLED,
    "length_list": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 40\r\n\r\n" + SMUGGLED,
    "te_space": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_gzip": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "two_te": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
}


def exchange(n, data, src, timeout=5):
    """Sends data, reads until the server closes (or timeout): bytes."""
    s = socket.create_connection(("127.0.0.1", n.http_port), timeout=timeout, source_address=(src, 0))
    try:
        s.sendall(data)
        out = b""
        while len(out) < 65536:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                return out, True
            out += b
        return out, False
    finally:
        s.close()


def status_lines(out):
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", out)


@pytest.mark.parametrize("case", sorted(FRAMING))
def test_ambiguous_framing(hnode, case):
    out, closed = exchange(hnode, FRAMING[case], "127.0.0.80")
    head = out.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    assert head.startswith("HTTP/1.1 400 "), out[:300]
    assert re.search(r"(?im)^connection: close\r?$", head), head
    assert closed, "connection left open after the 400"
    # the smuggled request is never answered (libmicrohttpd itself refuses
    # some of these and may repeat its 400)
    assert all(x.startswith(b"HTTP/1.1 400 ") for x in status_lines(out)), out


def test_plain_framing_keeps_alive(hnode):
    # a well-framed request pair on one connection is still served twice
    body = b'{}'
    req = (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n"
           + body + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out, closed = exchange(hnode, req, "127.0.0.81")
    assert [x.split()[1] for x in status_lines(out)] == [b"302", b"302"], out


# ---- viewer counts ---------------------------------------------------------------


def test_viewer_count_not_inflated(rnode):
    n = rnode
    n.wait_status("pub", lambda s: s.get("hls_ready"), timeout=30, what="hls_ready")
    wait_until(lambda: n.status("pub")["clients"] == 0, timeout=15, what="no viewers")
    # HEAD is never a viewer; nor are many User-Agents and made-up tokens
    # from one address more than one
    for i in range(100):
        st = get(n, "/pub/index.m3u8", "127.0.0.90", {"User-Agent": "ua-%d" % i}, method="HEAD")[0]
        assert st == 200, st
    assert n.status("pub")["clients"] == 0
    for i in range(100):
        st = get(n, "/pub/index.m3u8?token=x%d" % i, "127.0.0.91", {"User-Agent": "ua-%d" % i})[0]
        assert st in (200, 403), st
    assert n.status("pub")["clients"] == 1
    # other addresses are other viewers
    for src in ("127.0.0.92", "127.0.0.93"):
        assert get(n, "/pub/index.m3u8", src)[0] == 200
    assert n.status("pub")["clients"] == 3


# ---- logs and half-closed connections ----------------------------------------


def test_aborted_connections_log_throttled(hnode):
    n = hnode
    before = n.log_text().count("libmicrohttpd:")
    t0 = time.monotonic()
    for i in range(200):  # 4 addresses x 50, each well under the limit at any time
        s = socket.create_connection(("127.0.0.1", n.http_port), timeout=5,
                                     source_address=("127.0.0.%d" % (110 + i % 4), 0))
        s.sendall(b"GET /api/v1/system HTTP/1.1\r\nHost: x\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # reset mid-request
    time.sleep(0.5)
    elapsed = time.monotonic() - t0
    lines = n.log_text().count("libmicrohttpd:") - before
    assert lines <= elapsed + 2, (lines, elapsed)
    assert get(n, "/", "127.0.0.114")[0] == 302


def close_wait(port):
    """Sockets on the node's port in CLOSE-WAIT (/proc/net/tcp state 08)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if int(p[1].split(":")[1], 16) == port and p[3] == "08":
                n += 1
    return n


def test_half_closed_connections_closed(hnode):
    n = hnode
    socks = []
    try:
        for i in range(10):
            s = socket.create_connection(("127.0.0.1", n.http_port), timeout=5,
                                         source_address=("127.0.0.130", 0))
            if i < 8:  # in the middle of a request head, the FIN right after
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            elif i == 8:  # idle keep-alive after a response
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(65536).startswith(b"HTTP/1.1 302")  # / -> /cpanel/
            s.shutdown(socket.SHUT_WR)
            socks.append(s)
        # gone within a few seconds, well before listen.request_timeout_s
        # would close them (the module's node uses 3 s, the default is 10 s)
        t0 = time.monotonic()
        wait_until(lambda: close_wait(n.http_port) == 0, timeout=REQUEST_TIMEOUT_S + 5,
                   interval=0.1, what="no CLOSE-WAIT socket")
        assert all(closed_by_peer(s, 1) for s in socks)
        gone_after = time.monotonic() - t0
        assert gone_after < 3, gone_after
        # a client that half-closes right after its request still gets the answer
        s = socket.create_connection(("127.0.0.1", n.http_port), timeout=5,
                                     source_address=("127.0.0.133", 0))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536).startswith(b"HTTP/1.1 302")
        socks.append(s)
    finally:
        for s in socks:
            s.close()
