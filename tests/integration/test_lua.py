"""Lua hook scripts (docs/lua.md) on a real node with the test camera:
an on_play script refusing one client address blocks HLS and RTSP from
that address only (the refused client connects from 127.0.0.2 with a
bound source address, as test_access.py does; ffmpeg, from 127.0.0.1,
decodes both protocols), on_play runs once per HLS session (not per
segment), on_event sees the stream become active, a script's route answers JSON, a script with a syntax error and
a runaway route leave the node serving, and a failing reload reports the
error (file:line) and keeps the previous script."""

import http.client
import re
import socket
import time

import pytest

from mslib import ffmpeg_decode, parse_playlist, wait_until

POLICY = """
function on_play(req)
  ms.log('info', 'on_play ' .. req.protocol .. ' ' .. req.ip .. ' ' .. req.stream)
  if req.ip == '127.0.0.2' then
    return false, 'address ' .. req.ip .. ' refused by policy.lua'
  end
  return true
end

function on_event(ev)
  ms.log('info', 'event ' .. ev.type .. ' ' .. ev.stream .. ' ' .. ev.previous .. '->' .. ev.state)
end
"""

API_V1 = """
ms.route('GET', '/streams', function(req)
  local names = {}
  for _, s in ipairs(ms.streams()) do names[#names + 1] = s.name end
  return 200, {version = 1, streams = names}
end)
ms.route('POST', '/echo', function(req) return 201, {got = req.body} end)
ms.route('GET', '/spin', function(req) while true do pcall(function() while true do end end) end end)
"""

API_V2 = API_V1.replace("version = 1", "version = 2")


@pytest.fixture
def lua_node(node, shared_cam, free_port, tmp_path):
    d = tmp_path / "lua"
    d.mkdir()
    (d / "policy.lua").write_text(POLICY)
    (d / "api.lua").write_text(API_V1)
    (d / "broken.lua").write_text("function on_play(req)\n  return = true\nend\n")
    n = node(streams={"cam": {"url": shared_cam.url("cam")}},
             extra_cfg={"lua_dir": str(d)}, start=False)
    n.lua_dir = d
    n.rtsp_port = free_port()
    n.cfg["listen"]["rtsp"] = n.rtsp_port
    n.write_config()
    n.start()
    n.wait_active("cam", timeout=30)
    return n


def fetch(n, path, src="127.0.0.1"):
    c = http.client.HTTPConnection("127.0.0.1", n.http_port, timeout=15, source_address=(src, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def describe(n, stream, src):
    s = socket.create_connection(("127.0.0.1", n.rtsp_port), timeout=10, source_address=(src, 0))
    try:
        s.sendall(("DESCRIBE rtsp://127.0.0.1:%d/%s RTSP/1.0\r\nCSeq: 1\r\n\r\n"
                   % (n.rtsp_port, stream)).encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            b = s.recv(65536)
            if not b:
                break
            data += b
        return int(data.split(b" ", 2)[1])
    finally:
        s.close()


def on_play_lines(n, proto, ip):
    return n.log_text().count("on_play %s %s cam" % (proto, ip))


def test_on_play_refuses_one_address(lua_node):
    n = lua_node
    # the broken script was logged and left out; the node serves
    assert "broken.lua:2:" in n.log_text()
    deadline = time.monotonic() + 40
    segs = []
    while time.monotonic() < deadline:
        st, body = fetch(n, "/cam/index.m3u8")
        if st == 200:
            segs = parse_playlist(body.decode())["segments"]
            if len(segs) >= 2:
                break
        time.sleep(0.3)
    assert len(segs) >= 2, "HLS not ready"
    # one HLS session from 127.0.0.1: playlist and segments, one on_play
    for s in segs[-2:]:
        st, body = fetch(n, "/cam/" + s["uri"])
        assert st == 200 and len(body) > 1000
    assert fetch(n, "/cam/index.m3u8")[0] == 200
    assert on_play_lines(n, "hls", "127.0.0.1") == 1, n.log_text()[-3000:]
    # refused from 127.0.0.2: HLS playlist, segment, live.mp4, JPEG, RTSP
    st, body = fetch(n, "/cam/index.m3u8", src="127.0.0.2")
    assert st == 403 and b"refused by policy.lua" in body, (st, body)
    assert fetch(n, "/cam/" + segs[-1]["uri"], src="127.0.0.2")[0] == 403
    assert fetch(n, "/cam/videoshot.jpg", src="127.0.0.2")[0] == 403
    assert describe(n, "cam", "127.0.0.2") == 403
    assert describe(n, "cam", "127.0.0.1") == 200
    # real players from the allowed address
    res = ffmpeg_decode("http://127.0.0.1:%d/cam/index.m3u8" % n.http_port, 2)
    assert res.frames > 10, res
    res = ffmpeg_decode("rtsp://127.0.0.1:%d/cam" % n.rtsp_port, 2,
                        extra_in=["-rtsp_transport", "tcp"])
    assert res.frames > 10, res
    assert on_play_lines(n, "rtsp", "127.0.0.1") >= 1
    # on_event saw the stream become active (polled off the media path)
    assert re.search(r"event stream cam [a-z]*->active", n.log_text()), n.log_text()[-3000:]
    assert n.alive()


def test_endpoint_runaway_and_reload(lua_node):
    n = lua_node
    r = n.api("/api/v1/lua/api/streams")
    assert r.status == 200 and r.json() == {"version": 1, "streams": ["cam"]}, r.text
    r = n.api("/api/v1/lua/api/echo", method="POST", body={"a": [1, 2]})
    assert r.status == 201 and r.json() == {"got": {"a": [1, 2]}}, r.text
    assert n.api("/api/v1/lua/api/streams", auth=False).status == 401
    assert n.api("/api/v1/lua/api/nosuch").status == 404
    assert n.api("/api/v1/lua/nosuch/x").status == 404
    assert n.api("/api/v1/lua/api").status == 404  # no route for "/"
    r = n.api("/api/v1/lua/reload")
    assert r.status == 405 and r.headers.get("Allow") == "POST", (r.status, r.headers)
    # a runaway route: stopped by the budget, the node goes on serving
    t0 = time.monotonic()
    r = n.api("/api/v1/lua/api/spin")
    assert r.status == 500 and "budget" in r.json()["error"], r.text
    assert time.monotonic() - t0 < 5
    assert n.get("/cam/videoshot.jpg").status == 200
    st = n.api("/api/v1/lua").json()
    files = {f["file"] for f in st["files"]}
    assert files == {"api.lua", "policy.lua"}, st
    assert n.api("/api/v1/system").json()["lua"]["hash"] == st["hash"]

    def row_hash():
        rows = n.api("/api/v1/servers").json()
        rows = rows.get("servers", rows) if isinstance(rows, dict) else rows
        row = [r for r in rows if r["name"] == n.name][0]
        return (row.get("load") or {}).get("lua_hash")

    wait_until(lambda: row_hash() == st["hash"], 10, what="lua_hash in the servers row")

    # a reload with a syntax error: reported, the previous version runs
    (n.lua_dir / "api.lua").write_text(API_V2 + "\nlocal x = = 1\n")
    r = n.api("/api/v1/lua/reload", method="POST")
    assert r.status == 200, r.text
    rep = r.json()
    assert rep["ok"] is False
    byname = {f["file"]: f for f in rep["files"]}
    assert byname["api.lua"]["loaded"] is False
    assert "api.lua:10:" in byname["api.lua"]["error"], byname
    assert byname["api.lua"]["kept_previous"] is True
    assert "broken.lua:2:" in byname["broken.lua"]["error"]
    assert rep["hash"] == st["hash"]
    assert n.api("/api/v1/lua/api/streams").json()["version"] == 1

    # fixed: the reload (here by SIGHUP) runs the new version
    (n.lua_dir / "api.lua").write_text(API_V2)
    n.sighup()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if n.api("/api/v1/lua/api/streams").json().get("version") == 2:
            break
        time.sleep(0.2)
    assert n.api("/api/v1/lua/api/streams").json()["version"] == 2
    assert n.api("/api/v1/lua").json()["hash"] != st["hash"]
    assert n.alive()


# on_event starts event-based recording when a stream becomes active (a
# camera that comes back); /act calls an action; cpanel extensions
ACTIONS = """
function on_event(ev)
  ms.log('info', 'seen ' .. ev.stream .. ' ' .. ev.previous .. '->' .. ev.state)
  if ev.type == 'stream' and ev.state == 'active' then
    local ok, err = ms.record_event(ev.stream, 10)
    ms.log('info', 'record_event ' .. ev.stream .. ' ' .. tostring(ok) .. ' ' .. tostring(err))
  end
end

ms.route('POST', '/act', function(req)
  local b = req.body
  if b.action == 'token' then
    local tok, exp = ms.token(b.stream, {hours = 1})
    return 200, {token = tok, expires = exp}
  end
  local ok, err = ms[b.action](b.stream, b.seconds)
  return 200, {ok = ok == true, error = err}
end)

ms.panel_column('Site', function(s) return 'site-' .. s.name end)
ms.panel_column('Long', function(s) return string.rep('\\u{e9}', 150) end)
ms.panel_column('Bad', function(s) error('bad value') end)
ms.panel_field('Clients', function(s) return s.clients end)
"""


def test_actions_event_recording_and_panel(node, shared_cam, tmp_path):
    d = tmp_path / "lua"
    d.mkdir()
    (d / "actions.lua").write_text(ACTIONS)
    dvr = {"enabled": True, "depth_s": 3600, "chunk_s": 2, "mode": "event"}
    n = node(streams={"ev": {"url": shared_cam.url("cam"), "dvr": dvr, "access": {"mode": "private"}},
                      "plain": {"url": shared_cam.url("cam2")}},
             extra_cfg={"lua_dir": str(d)})
    n.wait_active("ev", timeout=30)

    def act(**body):
        r = n.api("/api/v1/lua/actions/act", method="POST", body=body)
        assert r.status == 200, r.text
        return r.json()

    def started():
        return n.log_text().count("record_event ev true nil")

    # the stream became active: on_event opened an event window of 10 s,
    # which the archive shows as a range
    wait_until(lambda: started() >= 1, 10, what="on_event record_event")
    assert "record_event plain nil stream does not record in event mode" in n.log_text()
    rg = wait_until(lambda: [r for r in n.api("/api/v1/streams/ev/ranges").json()["ranges"]
                             if r["duration"] >= 4], 20, what="an event range of ev")
    assert rg[0]["duration"] <= 20, rg

    # errors: nil, message
    assert act(action="record_event", stream="nosuch", seconds=5) == {"ok": False, "error": "unknown stream"}
    assert act(action="record_event", stream="ev", seconds=0)["error"] == "seconds: 1..86400"
    # a live token of the private stream: what the tokens API issues
    t = act(action="token", stream="ev")
    assert abs(t["expires"] - time.time() - 3600) < 5, t
    assert n.get("/ev/videoshot.jpg").status in (401, 403, 404)  # private: no token, no stream
    r = n.get("/ev/videoshot.jpg?token=" + t["token"])
    assert r.status == 200 and r.body[:2] == b"\xff\xd8", r.status
    # restart: through the cluster job, done by the stream's server
    assert act(action="restart", stream="ev") == {"ok": True}
    wait_until(lambda: "ms.restart(ev): done" in n.log_text(), 10, what="the restart done")

    # the cpanel descriptor: per stream uid, text cut to 200 bytes (100 é)
    uid = {s["name"]: s["uid"] for s in n.api("/api/v1/streams").json()["streams"]}
    p = n.api("/api/v1/lua/panel").json()
    cols = {c["title"]: c for c in p["columns"]}
    assert [c["title"] for c in p["columns"]] == ["Site", "Long", "Bad"], p
    assert cols["Site"]["values"] == {uid["ev"]: "site-ev", uid["plain"]: "site-plain"}, p
    assert cols["Long"]["values"][uid["ev"]] == "\u00e9" * 100, p
    assert cols["Bad"]["values"] == {} and "bad value" in cols["Bad"]["error"], p
    assert p["fields"][0]["title"] == "Clients" and p["fields"][0]["values"][uid["ev"]].isdigit(), p
    assert n.api("/api/v1/lua/panel", method="POST").status == 405

    # disable through a Lua endpoint: the stream stops; enable: it comes
    # back, and on_event records again
    assert act(action="disable", stream="ev") == {"ok": True}
    wait_until(lambda: n.api("/api/v1/streams/ev").json()["enabled"] is False, 10, what="ev disabled")
    n.wait_status("ev", lambda s: s.get("state") != "active", 10, "ev not active")
    assert n.get("/ev/videoshot.jpg?token=" + t["token"]).status == 503
    # on_event saw it go (states are polled once a second)
    wait_until(lambda: re.search(r"seen ev active->(stopped|inactive|suspended)", n.log_text()), 10,
               what="on_event seeing ev stop")
    assert act(action="enable", stream="ev") == {"ok": True}
    n.wait_active("ev", timeout=30)
    wait_until(lambda: started() >= 2, 10, what="on_event record_event after the comeback")
    assert n.alive()


CLUSTER_READ = """
ms.route('GET', '/state', function(req)
  local servers, serr = ms.servers()
  local cluster, cerr = ms.cluster()
  return 200, {servers = servers or ms.null, serr = serr, cluster = cluster or ms.null, cerr = cerr}
end)
"""

# what changes between two reads of the same state
VOLATILE = {"report_age_ms", "last_report_ms", "rev", "cpu_pct", "bitrate_kbps", "clients",
            "storage_used", "mem_rss_bytes", "free_bytes", "used_bytes", "used_percent", "queued_bytes",
            "applied_index", "commit_index", "last_index", "commands_applied", "state_checksum"}


def stable(o):
    if isinstance(o, dict):
        return {k: stable(v) for k, v in o.items() if k not in VOLATILE}
    if isinstance(o, list):
        return [stable(v) for v in o]
    return o


def test_servers_and_cluster_from_a_script(node, shared_cam, tmp_path):
    """ms.servers() and ms.cluster() answer what GET /api/v1/servers and
    GET /api/v1/cluster answer (the same builder on the control loop): the
    same keys for every server and the same values but the load figures
    that move between two reads."""
    d = tmp_path / "lua"
    d.mkdir()
    (d / "state.lua").write_text(CLUSTER_READ)
    n = node(streams={"cam": {"url": shared_cam.url("cam")}}, extra_cfg={"lua_dir": str(d)})
    n.wait_active("cam", timeout=30)
    # the server's load arrives with its first report after the stream runs
    wait_until(lambda: (n.api("/api/v1/servers").json()["servers"][0].get("load") or {}).get("streams"),
               15, what="the node's load report")
    r = n.api("/api/v1/lua/state/state")
    assert r.status == 200, r.text
    got = r.json()
    assert "serr" not in got and "cerr" not in got, got
    api_servers = n.api("/api/v1/servers").json()["servers"]
    api_cluster = n.api("/api/v1/cluster").json()
    assert len(got["servers"]) == len(api_servers) == 1, got
    s, a = got["servers"][0], api_servers[0]
    assert set(s) == set(a), (sorted(s), sorted(a))
    assert stable(s) == stable(a), (s, a)
    for k in ("name", "health", "raft_role", "draining", "group", "stream_limit",
              "bitrate_limit_kbps", "addresses"):
        assert s[k] == a[k], k
    assert s["raft_role"] == "leader" and s["draining"] is False, s
    assert s["load"]["streams"] == a["load"]["streams"] == 1, s
    assert len(s["load"]["storage"]) == 1, s
    assert set(got["cluster"]) == set(api_cluster), (sorted(got["cluster"]), sorted(api_cluster))
    assert stable(got["cluster"]) == stable(api_cluster), (got["cluster"], api_cluster)
    assert got["cluster"]["leader"]["name"] == s["name"], got["cluster"]
    assert got["cluster"]["voter_ids"] == [s["id"]], got["cluster"]
