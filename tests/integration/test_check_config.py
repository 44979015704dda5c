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
