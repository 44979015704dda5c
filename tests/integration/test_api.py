"""Admin auth on the REST API and the Prometheus endpoint."""

import json

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
    """The node's own load report (node/cluster/reports.c: the leader writes it on a
    notable change, else every 5 s) counts its running camera and its input
    bitrate, read from the RTSP client without copying its whole status."""
    n = node(streams={"cam": shared_cam.url()})
    n.wait_active("cam", timeout=30)

    def load():
        rows = n.api("/api/v1/servers").json()["servers"]
        assert len(rows) == 1, rows
        ld = rows[0]["load"]
        # null until the server's first load report (docs/api.md): a node
        # answers before its first report lands in the replicated state
        if ld is None:
            return None
        assert isinstance(rows[0]["id"], str) and rows[0]["id"].isdigit(), rows[0]
        return ld if ld.get("active") == 1 and ld.get("bitrate_kbps", 0) > 0 else None
    ld = wait_until(load, 12, what="the running camera in the node's load report")
    assert ld["streams"] == 1 and ld["clients"] == 0, ld
    st = n.status("cam")
    assert abs(ld["bitrate_kbps"] - st["bitrate_kbps"]) <= max(0.5 * st["bitrate_kbps"], 50), (ld, st)


def test_stream_items_added_activation_memory_and_system_external_access(node, shared_cam):
    """Fields of the web panel: added (auto from a stream file, manual over
    the API), activation (auto when enabled by its config, manual when
    disabled), status.memory_bytes (GOP cache + HLS window), and
    /api/v1/system external_access."""
    n = node(streams={"cam": shared_cam.url()})
    n.wait_hls("cam", segments=2, timeout=40)
    r = n.api("/api/v1/streams", method="POST",
              body={"name": "viaapi", "url": shared_cam.url("cam2"), "enabled": False})
    assert r.status == 201, r.text
    by = {s["name"]: s for s in n.api("/api/v1/streams").json()["streams"]}
    assert by["cam"]["added"] == "auto" and by["cam"]["activation"] == "auto", by["cam"]
    assert by["viaapi"]["added"] == "manual", by["viaapi"]
    assert by["viaapi"]["activation"] == "manual", by["viaapi"]
    mem = by["cam"]["status"]["memory_bytes"]
    assert isinstance(mem, int) and mem > 10000, by["cam"]["status"]  # a GOP and 2+ segments
    assert by["viaapi"]["status"]["memory_bytes"] == 0, by["viaapi"]["status"]
    one = n.api("/api/v1/streams/cam").json()
    assert one["added"] == "auto" and one["status"]["memory_bytes"] > 0, one
    sysj = n.api("/api/v1/system").json()
    assert sysj["external_access"] is False, sysj


def test_create_does_not_overwrite_an_existing_uid(node):
    """POST /api/v1/streams creates: a body naming the uid of an existing
    stream is answered 409 (field uid) and that stream is left as it was
    (before: 201, and the private recording stream became public, not
    recording, renamed)."""
    n = node()
    first = {"name": "priv", "url": "rtsp://127.0.0.1:9/x", "dvr": {"enabled": True, "depth_s": 3600},
             "access": {"mode": "private"}}
    r = n.api("/api/v1/streams", method="POST", body=first)
    assert r.status == 201, r.text
    orig = r.json()
    r = n.api("/api/v1/streams", method="POST",
              body={"name": "other", "url": "rtsp://127.0.0.1:9/y", "uid": orig["uid"]})
    assert r.status == 409, r.text
    assert r.json().get("field") == "uid" and r.json().get("error"), r.text
    now = n.api("/api/v1/streams/" + orig["uid"]).json()
    assert now["name"] == "priv" and now["access"] == orig["access"] and now["dvr"] == orig["dvr"], now
    # PUT still updates it
    r = n.api("/api/v1/streams/priv", method="PUT", body=dict(first, url="rtsp://127.0.0.1:9/z"))
    assert r.status == 200, r.text


def test_req_id_reused_with_another_body(node):
    """X-MS-Req-Id: a retry of the same request gets the first answer again
    (applied once); the same id with another body is answered 409 (before:
    201 with the first request's object)."""
    n = node()

    def post(body, rid):
        return http(n.base + "/api/v1/streams", method="POST", body=body, auth=n.admin,
                    headers={"X-MS-Req-Id": rid})
    a = {"name": "ra", "url": "rtsp://127.0.0.1:9/a"}
    r1 = post(a, "rid-1")
    assert r1.status == 201, r1.text
    # a retry (same request, keys in another order) : same answer, one stream
    r2 = post(json.dumps(dict(reversed(list(a.items())))).encode(), "rid-1")
    assert r2.status == 201 and r2.json()["uid"] == r1.json()["uid"], r2.text
    r3 = post({"name": "rb", "url": "rtsp://127.0.0.1:9/b"}, "rid-1")
    assert r3.status == 409, r3.text
    assert r3.json().get("field") == "X-MS-Req-Id", r3.text
    names = sorted(s["name"] for s in n.api("/api/v1/streams").json()["streams"])
    assert names == ["ra"], names
    # another id creates
    assert post({"name": "rb", "url": "rtsp://127.0.0.1:9/b"}, "rid-2").status == 201
