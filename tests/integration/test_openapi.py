"""The contract checker itself (apispec.py): docs/openapi.yaml loads, every
response schema compiles, and answers the spec does not describe are
refused. No node is started: the other tests check the real answers
through mslib.http."""

import json

import jsonschema
import pytest

import apispec

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
