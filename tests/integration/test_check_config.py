"""mediaserver --check-config: FILE: KEY: reason lines, exit codes, and a
node that skips an invalid stream file but runs the others."""

import json
import re
import subprocess

import mslib


def check(path):
    p = subprocess.run([mslib.ms_bin(), "--check-config", str(path)], capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def has_line(out, file, key):
    pat = re.compile(r"^%s: %s: \S" % (re.escape(str(file)), re.escape(key)), re.M)
    return pat.search(out) is not None


def test_valid_config_exits_0(node, shared_cam):
    n = node(streams={"a": shared_cam.url(), "b": shared_cam.url("cam2")}, start=False)
    rc, out = check(n.config_path)
    assert rc == 0, out


def test_invalid_node_config_reports_file_key_reason(tmp_path, ms_binary):
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps({
        "name": "n1",
        "data_dir": str(tmp_path / "data"),
        "threads": "many",
        "listen": {"http": 70000, "conns_per_ip": 0, "request_timeout_s": "10"},
        "bogus_key": 1,
        "ingest_batch_ms": 5,
    }))
    rc, out = check(cfg)
    assert rc == 1, out
    for key in ("threads", "listen.http", "listen.conns_per_ip", "listen.request_timeout_s",
                "bogus_key", "ingest_batch_ms"):
        assert has_line(out, cfg, key), "no '%s: %s: reason' line in:\n%s" % (cfg, key, out)


def test_unparsable_node_config(tmp_path, ms_binary):
    cfg = tmp_path / "node.json"
    cfg.write_text('{"name": "n1", "data_dir": ')
    rc, out = check(cfg)
    assert rc == 1, out
    assert re.search(r"^%s: " % re.escape(str(cfg)), out, re.M), out


def test_missing_required_keys(tmp_path, ms_binary):
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps({"threads": 2}))
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "name"), out
    assert has_line(out, cfg, "data_dir"), out


def test_invalid_stream_file_is_reported(node, shared_cam):
    n = node(streams={"good": shared_cam.url()}, start=False)
    bad = n.streams_dir / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "url": shared_cam.url(), "transport": "carrier-pigeon"}))
    broken = n.streams_dir / "broken.json"
    broken.write_text('{"name": "broken", ')
    rc, out = check(n.config_path)
    assert rc == 1, out
    assert has_line(out, bad, "transport"), out
    assert re.search(r"^%s: " % re.escape(str(broken)), out, re.M), out
    assert str(n.stream_path("good")) not in out, out


def test_node_runs_other_streams_despite_invalid_file(node, shared_cam):
    n = node(streams={"good": shared_cam.url()}, start=False)
    (n.streams_dir / "bad.json").write_text(
        json.dumps({"name": "bad", "url": shared_cam.url(), "channels": ["video", "smell"]}))
    n.start()
    names = set(n.streams())
    assert "good" in names
    assert "bad" not in names
    n.wait_active("good", timeout=30)
    assert "bad.json" in n.log_text(), "the invalid stream file is not reported in the node log"


# -- checks against the host: what passed the parser but failed at start --

def base_cfg(tmp_path, **extra):
    cfg = {
        "name": "n1",
        "data_dir": str(tmp_path / "data"),
        "listen": {"address": "127.0.0.1", "http": mslib.free_port(), "https": 0, "rtsp": 0,
                   "rtmp": 0, "raft": 0},
        "secret": "check-config-secret",
    }
    cfg.update(extra)
    path = tmp_path / "node.json"
    path.write_text(json.dumps(cfg))
    return path


def test_valid_minimal_config_with_missing_data_dir_exits_0(tmp_path, ms_binary):
    cfg = base_cfg(tmp_path, data_dir=str(tmp_path / "not" / "yet" / "data"))
    rc, out = check(cfg)
    assert rc == 0, out


def test_data_dir_under_a_file(tmp_path, ms_binary):
    (tmp_path / "afile").write_text("x")
    cfg = base_cfg(tmp_path, data_dir=str(tmp_path / "afile" / "data"))
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "data_dir"), out


def test_data_dir_is_a_file(tmp_path, ms_binary):
    (tmp_path / "afile").write_text("x")
    cfg = base_cfg(tmp_path, data_dir=str(tmp_path / "afile"))
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "data_dir"), out


def test_storage_path_under_a_file(tmp_path, ms_binary):
    (tmp_path / "afile").write_text("x")
    cfg = base_cfg(tmp_path, storage=[{"path": str(tmp_path / "ok")},
                                      {"path": str(tmp_path / "afile" / "archive")}])
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "storage[1].path"), out
    assert not has_line(out, cfg, "storage[0].path"), out


def test_missing_tls_files(tmp_path, ms_binary):
    (tmp_path / "cert.pem").write_text("not checked beyond readability")
    cfg = base_cfg(tmp_path, tls={"cert": str(tmp_path / "cert.pem"),
                                  "key": str(tmp_path / "missing.key")})
    d = json.loads(cfg.read_text())
    d["listen"]["https"] = mslib.free_port()
    cfg.write_text(json.dumps(d))
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "tls.key"), out
    assert not has_line(out, cfg, "tls.cert"), out


def test_missing_lua_dir(tmp_path, ms_binary):
    cfg = base_cfg(tmp_path, lua_dir=str(tmp_path / "no-lua"))
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "lua_dir"), out


def test_join_with_loopback_advertise(tmp_path, ms_binary):
    d = {"cluster": {"join": ["192.0.2.10:7000"]}}
    cfg = base_cfg(tmp_path, **d)
    c = json.loads(cfg.read_text())
    c["listen"]["raft"] = mslib.free_port()
    cfg.write_text(json.dumps(c))
    rc, out = check(cfg)  # advertise defaults to 127.0.0.1
    assert rc == 1, out
    assert has_line(out, cfg, "advertise"), out
    # every join target on loopback (one host): fine
    c["cluster"]["join"] = ["127.0.0.1:7000", "localhost:7001"]
    cfg.write_text(json.dumps(c))
    rc, out = check(cfg)
    assert rc == 0, out
    # a routable advertise: fine
    c["cluster"]["join"] = ["192.0.2.10:7000"]
    c["advertise"] = "192.0.2.11"
    cfg.write_text(json.dumps(c))
    rc, out = check(cfg)
    assert rc == 0, out


def test_port_in_use_is_a_warning(tmp_path, ms_binary):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        port = s.getsockname()[1]
        cfg = base_cfg(tmp_path)
        c = json.loads(cfg.read_text())
        c["listen"]["http"] = port
        cfg.write_text(json.dumps(c))
        rc, out = check(cfg)
        assert rc == 0, out
        assert "%s: listen.http: warning: port %d is in use" % (cfg, port) in out, out
    finally:
        s.close()


def test_join_without_secret_refused(tmp_path, ms_binary):
    """A node that joins a cluster needs the cluster's secret: without one
    it could sign nothing the others accept (docs/security.md "Keys")."""
    cfg = tmp_path / "node.json"
    conf = {"name": "n1", "data_dir": str(tmp_path / "data"),
            "listen": {"http": mslib.free_port(), "raft": mslib.free_port(), "rtsp": 0,
                       "rtmp": 0},
            "cluster": {"join": ["127.0.0.1:%d" % mslib.free_port()]}}
    cfg.write_text(json.dumps(conf))
    rc, out = check(cfg)
    assert rc == 1, out
    assert has_line(out, cfg, "secret"), out
    # the daemon itself refuses to start
    p = subprocess.run([mslib.ms_bin(), "--config", str(cfg)], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert has_line((p.stdout + p.stderr).decode(errors="replace"), cfg, "secret")
    # with a secret it is valid; without join, no secret is fine (random per run)
    conf["secret"] = "s3cret"
    cfg.write_text(json.dumps(conf))
    assert check(cfg)[0] == 0
    del conf["secret"]
    del conf["cluster"]
    cfg.write_text(json.dumps(conf))
    assert check(cfg)[0] == 0
