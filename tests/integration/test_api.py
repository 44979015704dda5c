"""Admin auth on the REST API and the Prometheus endpoint."""

from mslib import http


def test_api_auth_and_metrics(node, shared_cam):
    n = node(streams={"cam": shared_cam.url()})
    r = n.api("/api/v1/streams", auth=False)
    assert r.status == 401, r.status
    r = http(n.base + "/api/v1/streams", auth=("admin", "wrong"))
    assert r.status == 401, r.status
    r = http(n.base + "/api/v1/streams", headers={"Authorization": "Bearer not-a-key"})
    assert r.status == 401, r.status
    r = n.api("/api/v1/streams")
    assert r.status == 200
    body = r.json()
    assert [s["name"] for s in body["streams"]] == ["cam"]
    assert "status" in body["streams"][0]
    r = n.api("/api/v1/streams/nope")
    assert r.status == 404
    assert "error" in r.json()

    r = n.api("/api/v1/system")
    assert r.status == 200
    assert r.json(), r.text

    n.wait_active("cam", timeout=30)
    m = n.get("/metrics")
    assert m.status == 200
    assert m.headers.get("Content-Type", "").startswith("text/plain"), m.headers
    lines = [ln for ln in m.text.splitlines() if ln.startswith("ms_stream_")]
    assert lines, m.text[:2000]
    assert any('stream="cam"' in ln for ln in lines), lines[:20]
