"""The contract checker itself (apispec.py): docs/openapi.yaml loads, every
response schema compiles, and answers the spec does not describe are
refused (no node). Then one tour of every /api/v1 operation on a real
node, whose answers mslib.http validates (~1 s)."""

import json

import jsonschema
import pytest

import apispec
from mslib import wait_until

BASE = "http://127.0.0.1:1/api/v1"
JSON = {"Content-Type": "application/json"}


def body(o):
    return json.dumps(o).encode()


def test_every_response_schema_compiles():
    sp = apispec.spec()
    n = 0
    for tmpl, item in sp.doc["paths"].items():
        for method, op in item.items():
            if method not in apispec._METHODS:
                continue
            for status, resp in op["responses"].items():
                resp = apispec._deref(sp.doc, resp)
                for media in (resp.get("content") or {}).values():
                    if "schema" in media:
                        schema = apispec._to_json_schema(media["schema"])
                        jsonschema.Draft4Validator.check_schema(schema)
                        n += 1
    assert n > 50, "only %d response schemas found" % n


def test_good_answers_pass():
    ok = apispec.check("GET", BASE + "/streams/x/ranges?from=1", 200, JSON,
                       body({"ranges": [{"from": 1, "duration": 5, "server": "n1"}]}))
    assert ok is None
    assert apispec.check("DELETE", BASE + "/streams/cam", 200, JSON,
                         body({"ok": True, "uid": "u1"})) is None
    # HEAD answers have no body; playback URLs are not under /api/v1
    assert apispec.check("HEAD", BASE + "/system", 200, JSON, b"") is None
    assert apispec.check("GET", "http://127.0.0.1:1/cam/index.m3u8", 200, {}, b"#EXTM3U") is None


@pytest.mark.parametrize("method,path,status,payload,expect", [
    ("GET", "/nosuch", 404, {"error": "not found"}, "path not in docs/openapi.yaml"),
    ("GET", "/system", 418, {"error": "teapot"}, "status not documented"),
    ("DELETE", "/streams/cam", 200, {"ok": True}, "'uid' is a required property"),
    ("GET", "/streams/x/ranges", 200, {"ranges": [{"from": "1", "duration": 5}]},
     "is not of type 'integer'"),
    ("POST", "/streams/x/tokens", 400, {"message": "no error key"}, "'error' is a required"),
    # a wrong method is fine only as 405 with an Allow header of documented methods
    ("PATCH", "/system", 405, {"error": "method not allowed"}, "method not documented"),
])
def test_undescribed_answers_fail(method, path, status, payload, expect):
    msg = apispec.check(method, BASE + path, status, JSON, body(payload))
    assert msg is not None and expect in msg, msg
    assert path.split("?")[0] in msg and str(status) in msg


def test_method_not_allowed_needs_a_documented_allow():
    err = body({"error": "method not allowed"})
    hdr = dict(JSON, Allow="POST")
    assert apispec.check("GET", BASE + "/streams/x/tokens", 405, hdr, err) is None
    hdr = dict(JSON, Allow="POST, TRACE")
    assert "undocumented: TRACE" in apispec.check("GET", BASE + "/streams/x/tokens", 405, hdr, err)


def test_nullable_and_refs_are_resolved():
    sp = apispec.spec()
    share = BASE + "/streams/x/share"
    assert sp and apispec.check("POST", share, 200, JSON, body({"url": "u", "expires": None})) is None
    msg = apispec.check("POST", share, 200, JSON, body({"url": "u", "expires": "never"}))
    assert msg and "expires" in msg


def test_every_api_call_answers_as_documented(node):
    """One call of each /api/v1 operation (and its usual refusals) on a
    single node that leads its own one-node cluster: mslib.http validates
    every answer against docs/openapi.yaml, this test checks the statuses.
    Streams point at a port nobody listens on: only the API matters here."""
    n = node()
    api = n.api
    cam = {"name": "tour", "url": "rtsp://127.0.0.1:9/tour", "dvr": {"enabled": False}}

    info = api("/api/v1/cluster").json()
    assert info["state"] == "leader" and info["voters"] == 1, info
    assert api("/api/v1/servers").status == 200
    assert api("/api/v1/servers/n1").status == 200
    assert api("/api/v1/servers/nosuch").status == 404
    r = api("/api/v1/servers/n1", "PUT", {"stream_limit": 50})
    assert r.status == 200 and r.json()["server"]["stream_limit"] == 50, r.text
    assert api("/api/v1/servers/n1", "PUT", {"nosuch": 1}).status == 400

    assert api("/api/v1/groups", "POST", {"name": "g1", "subnets": ["192.0.2.0/24"]}).status == 200
    assert api("/api/v1/groups", "POST", {"name": "g2", "subnets": ["not-a-cidr"]}).status == 400
    assert api("/api/v1/groups").json()["groups"][0]["name"] == "g1"
    assert api("/api/v1/groups/g1", "PUT", {"subnets": ["198.51.100.0/24"]}).status == 200
    assert api("/api/v1/groups/g1").json()["subnets"] == ["198.51.100.0/24"]
    assert api("/api/v1/groups/nosuch").status == 404
    assert api("/api/v1/clusters", "POST", {"name": "c1", "group": "g1", "main": "n1"}).status == 200
    assert api("/api/v1/clusters", "POST", {"name": "c2", "group": "g1", "main": "nosuch"}).status == 404
    assert api("/api/v1/clusters/c1", "PUT", {"group": "g1", "main": "n1"}).status == 200
    assert api("/api/v1/clusters").json()["clusters"][0]["main"] == "n1"
    assert api("/api/v1/clusters/c1").status == 200
    assert api("/api/v1/groups/g1", "DELETE").status == 409  # c1 uses it
    assert api("/api/v1/clusters/c1", "DELETE").status == 200
    assert api("/api/v1/groups/g1", "DELETE").status == 200

    r = api("/api/v1/streams", "POST", cam)
    assert r.status == 201 and r.json()["placement"]["added"], r.text
    uid = r.json()["uid"]
    assert api("/api/v1/streams", "POST", cam).status == 409  # name taken
    assert api("/api/v1/streams", "POST", dict(cam, nosuch=1)).status == 400
    assert api("/api/v1/streams", "POST", b"{not json").status == 400
    assert api("/api/v1/streams/tour?consistent=1").status == 200
    assert api("/api/v1/streams?consistent=1").status == 200
    assert api("/api/v1/streams?dvr=maybe").status == 400
    assert api("/api/v1/streams/tour", "PUT", dict(cam, camera="lobby")).json()["camera"] == "lobby"
    assert api("/api/v1/streams/tour", "PUT", dict(cam, uid="other")).status == 400
    assert api("/api/v1/streams/tour/disable", "POST").json()["enabled"] is False
    assert api("/api/v1/streams/tour/enable", "POST").json()["enabled"] is True
    assert api("/api/v1/streams/tour/restart", "POST").status in (200, 409)
    assert api("/api/v1/streams/tour/update-indexes", "POST").json() == {"ok": True}
    assert api("/api/v1/streams/tour/transfer", "POST", {"cluster": "nosuch"}).status == 404
    # enable places the stream again within a second: a transfer asked
    # before that has no primary to move away from (the search would pick n1)
    wait_until(lambda: api("/api/v1/streams/tour").json()["status"].get("server") == "n1",
                     10, what="tour placed on n1 again")
    assert api("/api/v1/streams/tour/transfer", "POST").status == 409  # no other server
    assert api("/api/v1/streams/tour/ranges").json() == {"ranges": []}
    assert api("/api/v1/streams/tour/events", "POST", {"duration_s": 5}).status == 409
    r = api("/api/v1/streams/tour", "PATCH", {"camera": "x"})
    assert r.status in (200, 405), r.text  # 405 until PATCH lands
    assert api("/api/v1/streams/tour", "DELETE").json() == {"ok": True, "uid": uid}
    assert api("/api/v1/streams/tour", "DELETE").status == 404
    for path in ("/restart", "/enable", "/update-indexes"):
        assert api("/api/v1/streams/tour" + path, "POST").status == 404, path
    assert api("/api/v1/streams/tour/tokens", "GET").status == 405
    assert api("/api/v1/system", auth=False).status == 401
    assert api("/api/v1/nosuch", spec=False).status == 404


def test_calls_on_the_state_without_raft_answer_501(node):
    """listen.raft = 0: every call on the replicated state answers 501 with
    the JSON error the spec documents; local reads still answer."""
    n = node(start=False)
    n.cfg["listen"] = dict(n.cfg["listen"], raft=0)
    n.write_config()
    n.start()
    for method, path, body in (("GET", "/cluster", None), ("GET", "/servers", None),
                               ("GET", "/servers/n1", None), ("GET", "/groups", None),
                               ("POST", "/clusters", {"name": "c"}),
                               ("POST", "/streams", {"name": "a", "url": "rtsp://127.0.0.1:9/a"}),
                               ("PUT", "/streams/a", {"name": "a", "url": "rtsp://127.0.0.1:9/a"}),
                               ("DELETE", "/streams/a", None), ("POST", "/streams/a/restart", None),
                               ("POST", "/streams/a/transfer", None)):
        r = n.api("/api/v1" + path, method, body)
        assert r.status == 501 and "listen.raft" in r.json()["error"], (method, path, r.status, r.text)
    assert n.api("/api/v1/streams").json() == {"streams": []}
