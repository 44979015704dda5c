"""Admin auth on the REST API and the Prometheus endpoint."""

from mslib import http, wait_until


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


def test_servers_load_of_a_single_node(node, shared_cam):
    """The node's own load report (node/cluster.c: the leader writes it on a
    notable change, else every 5 s) counts its running camera and its input
    bitrate, read from the RTSP client without copying its whole status."""
    n = node(streams={"cam": shared_cam.url()})
    n.wait_active("cam", timeout=30)

    def load():
        rows = n.api("/api/v1/servers").json()["servers"]
        assert len(rows) == 1, rows
        ld = rows[0]["load"] or {}  # null before the node's first report (docs/openapi.yaml)
        return ld if ld.get("active") == 1 and ld.get("bitrate_kbps", 0) > 0 else None
    ld = wait_until(load, 12, what="the running camera in the node's load report")
    assert ld["streams"] == 1 and ld["clients"] == 0, ld
    st = n.status("cam")
    assert abs(ld["bitrate_kbps"] - st["bitrate_kbps"]) <= max(0.5 * st["bitrate_kbps"], 50), (ld, st)
