"""HTTPS listener (listen.https with tls.cert/tls.key): curl, ffprobe and
ffmpeg fetch live HLS over TLS, verifying the test's self-signed
certificate; a bad certificate or key stops the node at startup with an
error naming the file."""

import subprocess

import pytest

from mslib import ffmpeg_decode, ms_bin, parse_playlist

FPS = 25


def make_cert(d, name="node"):
    cert, key = d / ("%s.crt" % name), d / ("%s.key" % name)
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return cert, key


def curl(u, cafile, limit_s=15):
    p = subprocess.run(["curl", "-sS", "--max-time", str(limit_s), "--cacert", str(cafile),
                        "-o", "-", "-w", "\n%{http_code}", u], capture_output=True, timeout=limit_s + 10)
    body, _, code = p.stdout.rpartition(b"\n")
    return p.returncode, int(code or b"0"), body, p.stderr.decode(errors="replace")


def test_hls_over_https(node, shared_cam, tmp_path, free_port):
    cert, key = make_cert(tmp_path)
    port = free_port()
    n = node(streams={"cam": shared_cam.url("cam")}, start=False)
    n.cfg["listen"]["https"] = port
    n.cfg["tls"] = {"cert": str(cert), "key": str(key)}
    n.write_config()
    n.start()
    n.wait_hls("cam", segments=2, timeout=40)
    base = "https://127.0.0.1:%d" % port

    rc, code, body, err = curl(base + "/cam/index.m3u8", cert)
    assert rc == 0 and code == 200, (rc, code, err)
    pl = parse_playlist(body.decode())
    assert len(pl["segments"]) >= 2, body[:500]
    seg = pl["segments"][-1]["uri"]
    rc, code, segbody, err = curl(base + "/cam/" + seg, cert)
    assert rc == 0 and code == 200 and len(segbody) > 1000, (rc, code, len(segbody), err)
    # the API is served over TLS too, with the same authentication
    rc, code, _, _ = curl(base + "/api/v1/system", cert)
    assert code == 401, code
    # without the CA, verification fails: the certificate really is the test's
    p = subprocess.run(["curl", "-sS", "--max-time", "10", base + "/cam/index.m3u8"],
                       capture_output=True, timeout=20)
    assert p.returncode == 60, p.stderr  # CURLE_PEER_FAILED_VERIFICATION

    p = subprocess.run(["ffprobe", "-v", "error", "-tls_verify", "1", "-ca_file", str(cert),
                        "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0",
                        base + "/cam/index.m3u8"], capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == b"", p.stderr.decode(errors="replace")
    assert b"h264,640,360" in p.stdout, p.stdout
    res = ffmpeg_decode(base + "/cam/index.m3u8", 4, extra_in=["-tls_verify", "1", "-ca_file", str(cert)])
    assert res.errors == [] and res.rc == 0 and res.frames >= 4 * FPS * 0.9, res
    # plain HTTP keeps working beside HTTPS
    assert n.get("/cam/index.m3u8").status == 200


@pytest.mark.parametrize("case", ["missing cert", "garbage key", "mismatched key"])
def test_bad_cert_is_a_startup_error(node, tmp_path, free_port, case):
    cert, key = make_cert(tmp_path)
    if case == "missing cert":
        cert = tmp_path / "nosuch.crt"
        named = str(cert)
    elif case == "garbage key":
        key = tmp_path / "garbage.key"
        key.write_text("not a key\n")
        named = str(key)
    else:
        _, key = make_cert(tmp_path, "other")
        named = str(key)
    n = node(start=False)
    n.cfg["listen"]["https"] = free_port()
    n.cfg["tls"] = {"cert": str(cert), "key": str(key)}
    n.write_config()
    p = subprocess.run([ms_bin(), "--config", str(n.config_path)], capture_output=True, timeout=30,
                       cwd=str(n.dir))
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode != 0, out[-2000:]
    assert named in out, out[-2000:]
    assert "tls" in out, out[-2000:]
