"""Helpers for the integration tests: ports, the test camera, the node
process, HTTP with admin auth, ffmpeg/ffprobe checks. Imported by
conftest.py and the tests; no pytest dependency here so the benchmarks can
reuse it."""

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import apispec

ROOT = Path(__file__).resolve().parents[2]
PY = "/usr/bin/python3"  # Debian's: the one that has gi
CAMERA = ROOT / "tests" / "camera" / "camera.py"
BADCAM = ROOT / "tests" / "camera" / "badcam.py"


def ms_bin():
    return os.environ.get("MS_BIN") or str(ROOT / "build" / "mediaserver")


_used_ports = set()
_ports_lock = threading.Lock()


def free_port():
    """A loopback TCP port nobody listens on (and that this process has not
    handed out before)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _used_ports:
                _used_ports.add(port)
                return port
    raise RuntimeError("no free port")


def tool_env(tmp):
    """Environment for child tools with HOME/XDG pointed into tmp."""
    env = dict(os.environ)
    for sub in ("home", "cache", "config", "data"):
        os.makedirs(os.path.join(tmp, sub), exist_ok=True)
    env["HOME"] = os.path.join(tmp, "home")
    env["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
    env["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
    env["XDG_DATA_HOME"] = os.path.join(tmp, "data")
    return env


class _LineReader:
    """Reads a child's stdout lines on a thread (bounded waits)."""

    def __init__(self, pipe, logfile):
        self.q = queue.Queue()
        self.log = logfile
        self.t = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.t.start()

    def _run(self, pipe):
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with open(self.log, "a") as f:
                f.write(line + "\n")
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                return None
            if line.startswith(prefix):
                return line
        return None


def stop_process(p, grace=5.0):
    """SIGTERM, then SIGKILL after grace seconds. Returns (returncode, killed)."""
    if p.poll() is not None:
        return p.returncode, False
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=grace), False
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(timeout=10), True


class Camera:
    """tests/camera/camera.py as a child process on a loopback port."""

    def __init__(self, workdir, port=None, mounts=("cam",), video="h264", audio="aac", auth="",
                 fps=25, size="640x360", gop=25, live=False, protocols="udp,tcp", cache=None,
                 extra=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.mounts = list(mounts)
        self.video, self.audio, self.auth = video, audio, auth
        self.fps = fps
        self.width, self.height = (int(x) for x in size.split("x"))
        self.args = ["--port", str(self.port), "--video", video, "--audio", audio, "--fps", str(fps),
                     "--size", size, "--gop", str(gop), "--protocols", protocols,
                     "--tmp", str(self.workdir / "state")]
        for m in self.mounts:
            self.args += ["--mount", m]
        if auth:
            self.args += ["--auth", auth]
        if live:
            self.args.append("--live")
        if cache:
            self.args += ["--cache", str(cache)]
        self.args += list(extra)
        self.log = self.workdir / ("camera-%d.log" % self.port)
        self.proc = None

    def start(self, timeout=90):
        self.proc = subprocess.Popen([PY, str(CAMERA)] + self.args, stdout=subprocess.PIPE,
                                     stderr=open(self.log, "ab"), stdin=subprocess.DEVNULL)
        reader = _LineReader(self.proc.stdout, str(self.log))
        for _ in self.mounts:
            if reader.wait_for("READY", timeout) is None:
                self.stop()
                raise RuntimeError("camera did not start: " + self.log.read_text(errors="replace")[-2000:])
        return self

    def url(self, mount=None, auth=None):
        cred = ""
        if auth is None and self.auth:
            auth = self.auth
        if auth:
            cred = auth + "@"
        return "rtsp://%s127.0.0.1:%d/%s" % (cred, self.port, mount or self.mounts[0])

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc:
            stop_process(self.proc, grace=3)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class BadCam:
    """tests/camera/badcam.py in one mode."""

    def __init__(self, workdir, mode, port=None, args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.args = list(args)
        self.port = port or free_port()
        self.log = self.workdir / ("badcam-%s-%d.log" % (mode, self.port))
        self.proc = None

    def start(self, timeout=20):
        self.proc = subprocess.Popen([PY, str(BADCAM), "--port", str(self.port), "--mode", self.mode] + self.args,
                                     stdout=subprocess.PIPE, stderr=open(self.log, "ab"),
                                     stdin=subprocess.DEVNULL)
        if _LineReader(self.proc.stdout, str(self.log)).wait_for("READY", timeout) is None:
            self.stop()
            raise RuntimeError("badcam did not start: " + self.log.read_text(errors="replace")[-2000:])
        return self

    def url(self):
        return "rtsp://127.0.0.1:%d/bad" % self.port

    def stop(self):
        if self.proc:
            stop_process(self.proc, grace=3)


class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def spec_check(method, url, res):
    """Checks an /api/v1 answer against docs/openapi.yaml (apispec.py).
    A violation raises AssertionError on the main thread; on another thread
    it is recorded too, and the test fails at teardown (conftest.py). With
    MS_OPENAPI_RECORD=FILE violations are only appended to FILE (to list
    them all in one run while fixing the spec)."""
    msg = apispec.check(method, url, res.status, res.headers, res.body)
    if msg is None:
        return
    rec = os.environ.get("MS_OPENAPI_RECORD")
    if rec:
        with open(rec, "a") as f:
            f.write(msg.replace("\n", " | ") + "\n")
        return
    if threading.current_thread() is not threading.main_thread():
        apispec.record(msg)
    raise AssertionError("API answer not as docs/openapi.yaml says: " + msg)


def http(url, method="GET", body=None, auth=None, timeout=10, headers=None, spec=True):
    """One HTTP request; returns HttpResult for every status (no raise on
    4xx/5xx). auth is (user, password) for Basic, or None. Every /api/v1
    answer is checked against docs/openapi.yaml (spec_check); spec=False
    only for requests a test makes malformed on purpose (a path or method
    the API does not have)."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            res = HttpResult(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        res = HttpResult(e.code, dict(e.headers), e.read())
    if spec:
        spec_check(method, url, res)
    return res


def default_stream(name, url, transport="tcp", channels=("video", "audio"), **kw):
    """A stream file body: short HLS segments and fast reconnects so tests
    do not wait long; no DVR."""
    s = {
        "name": name,
        "url": url,
        "transport": transport,
        "channels": list(channels),
        "reconnect": {"interval_ms": 500, "max_interval_ms": 2000},
        "dvr": {"enabled": False},
        "hls": {"segment_ms": 1000, "part_ms": 200, "window": 6},
    }
    for k, v in kw.items():
        s[k] = v
    return s


class Node:
    """One mediaserver process with its config, stream files and log in
    workdir."""

    def __init__(self, workdir, name="n1", admin=("admin", "secret"), extra=None, host="127.0.0.1",
                 cmd_prefix=()):
        """host: the address tests use to reach the node; cmd_prefix: argv
        put before the binary (e.g. `ip netns exec NS` for the partition
        drills)."""
        self.dir = Path(workdir)
        self.host = host
        self.cmd_prefix = list(cmd_prefix)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.admin = admin
        self.http_port = free_port()
        self.raft_port = free_port()
        self.data_dir = self.dir / "data"
        self.streams_dir = self.dir / "streams"
        self.data_dir.mkdir(exist_ok=True)
        self.streams_dir.mkdir(exist_ok=True)
        self.config_path = self.dir / "node.json"
        self.log = self.dir / "node.log"
        self.cfg = {
            "name": name,
            "data_dir": str(self.data_dir),
            "threads": 2,
            "listen": {"address": "127.0.0.1", "http": self.http_port, "https": 0, "rtsp": 0,
                       "rtmp": 0, "raft": self.raft_port},
            "advertise": "127.0.0.1",
            "secret": "integration-test-secret",
            "admin": {"user": admin[0], "password": admin[1]},
            "storage": [{"path": str(self.data_dir / "archive"), "max_used_percent": 95}],
            "streams_dir": str(self.streams_dir),
        }
        if extra:
            self.cfg.update(extra)
        self.proc = None
        self.exit_code = None
        self.killed = False
        self.write_config()

    # -- files -------------------------------------------------------------
    def write_config(self):
        self.config_path.write_text(json.dumps(self.cfg, indent=2))

    def stream_path(self, name):
        return self.streams_dir / ("%s.json" % name)

    def add_stream(self, name, url, **kw):
        body = default_stream(name, url, **kw)
        self.stream_path(name).write_text(json.dumps(body, indent=2))
        return body

    def write_stream_raw(self, filename, text):
        (self.streams_dir / filename).write_text(text)

    def remove_stream(self, name):
        self.stream_path(name).unlink()

    # -- process -----------------------------------------------------------
    def start(self, timeout=30):
        self.proc = subprocess.Popen(self.cmd_prefix + [ms_bin(), "--config", str(self.config_path)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(self.dir))
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mediaserver exited with %s at start:\n%s" % (
                    self.proc.returncode, self.log_text()[-4000:]))
            try:
                r = self.api("/api/v1/system", timeout=2)
                if r.status == 200:
                    return self
                last = "HTTP %d" % r.status
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError("mediaserver did not answer /api/v1/system (%s):\n%s" % (last, self.log_text()[-4000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        """SIGTERM, SIGKILL after 5 s. Records exit_code/killed."""
        if self.proc is None:
            return None
        if self.exit_code is None:
            self.exit_code, self.killed = stop_process(self.proc, grace=5.0)
        return self.exit_code

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # -- HTTP --------------------------------------------------------------
    @property
    def base(self):
        return "http://%s:%d" % (self.host, self.http_port)

    def api(self, path, method="GET", body=None, auth=True, timeout=10, headers=None, spec=True):
        return http(self.base + path, method=method, body=body, auth=self.admin if auth else None,
                    timeout=timeout, headers=headers, spec=spec)

    def get(self, path, timeout=10, headers=None, spec=True):
        return http(self.base + path, timeout=timeout, headers=headers, spec=spec)

    def streams(self):
        r = self.api("/api/v1/streams")
        assert r.status == 200, "GET /api/v1/streams: %d %s" % (r.status, r.text[:500])
        return {s["name"]: s for s in r.json()["streams"]}

    def stream(self, name):
        r = self.api("/api/v1/streams/%s" % name)
        assert r.status == 200, "GET /api/v1/streams/%s: %d %s" % (name, r.status, r.text[:500])
        return r.json()

    def status(self, name):
        return self.stream(name)["status"]

    def wait_status(self, name, pred, timeout=30, what=""):
        """Polls the stream's status until pred(status) holds; returns it.
        Fails with the last status seen."""
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            assert self.alive(), "mediaserver died (rc=%s)" % self.proc.returncode
            r = self.api("/api/v1/streams/%s" % name)
            if r.status == 200:
                st = r.json().get("status", {})
                if pred(st):
                    return st
            time.sleep(0.2)
        brief = {k: v for k, v in (st or {}).items() if k != "sdp"}
        raise AssertionError("stream %s: timeout %ss waiting for %s; last status %s" % (
            name, timeout, what or "condition", json.dumps(brief)))

    def wait_active(self, name, timeout=30):
        return self.wait_status(name, lambda s: s.get("state") == "active", timeout, "state=active")

    def hls_url(self, name):
        return "%s/%s/index.m3u8" % (self.base, name)

    def wait_hls(self, name, segments=2, timeout=30):
        """Waits until the live playlist lists at least `segments` full
        segments; returns the playlist text."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.get("/%s/index.m3u8" % name)
            last = "%d %s" % (r.status, r.text[:300])
            if r.status == 200 and len(parse_playlist(r.text)["segments"]) >= segments:
                return r.text
            time.sleep(0.2)
        raise AssertionError("HLS of %s not ready after %ss: %s" % (name, timeout, last))

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, "/metrics: %d" % r.status
        return r.text


# -- HLS playlists ---------------------------------------------------------
def parse_playlist(text):
    """Minimal RFC 8216 media playlist parser: media sequence, segments
    (uri, duration, discontinuity before), parts, preload hint, tags."""
    out = {"media_sequence": 0, "segments": [], "parts": [], "preload_hint": None, "tags": set(),
           "discontinuities": 0, "target_duration": None, "server_control": ""}
    pending_parts = []
    disc = False
    dur = None
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln:
            continue
        if ln.startswith("#"):
            tag = ln.split(":", 1)[0]
            out["tags"].add(tag)
            val = ln.split(":", 1)[1] if ":" in ln else ""
            if tag == "#EXT-X-MEDIA-SEQUENCE":
                out["media_sequence"] = int(val)
            elif tag == "#EXT-X-TARGETDURATION":
                out["target_duration"] = int(val)
            elif tag == "#EXT-X-DISCONTINUITY":
                disc = True
                out["discontinuities"] += 1
            elif tag == "#EXTINF":
                dur = float(val.split(",")[0])
            elif tag == "#EXT-X-PART":
                attrs = parse_attrs(val)
                pending_parts.append(attrs)
                out["parts"].append(attrs)
            elif tag == "#EXT-X-PRELOAD-HINT":
                out["preload_hint"] = parse_attrs(val)
            elif tag == "#EXT-X-SERVER-CONTROL":
                out["server_control"] = val
            continue
        msn = out["media_sequence"] + len(out["segments"])
        out["segments"].append({"uri": ln, "duration": dur, "discontinuity": disc, "msn": msn,
                                "parts": pending_parts})
        pending_parts = []
        disc = False
        dur = None
    out["trailing_parts"] = pending_parts
    return out


def parse_attrs(val):
    attrs = {}
    for m in re.finditer(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', val):
        v = m.group(2)
        attrs[m.group(1)] = v[1:-1] if v.startswith('"') else v
    return attrs


# -- real clients ----------------------------------------------------------
class DecodeResult:
    def __init__(self, frames, errors, rc, elapsed):
        self.frames = frames
        self.errors = errors
        self.rc = rc
        self.elapsed = elapsed

    def __repr__(self):
        return "DecodeResult(frames=%d, rc=%s, elapsed=%.1fs, errors=%r)" % (
            self.frames, self.rc, self.elapsed, self.errors[:10])


def ffmpeg_decode(url, seconds, timeout=None, extra_in=()):
    """Decodes the first video track for `seconds` of media:
    `ffmpeg -v error -i URL -t SECS -map 0:v:0 -f null - -progress pipe:1`.
    Every stderr line counts as an error."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error"] + list(extra_in) + ["-i", url, "-t", str(seconds),
                                                                     "-map", "0:v:0", "-f", "null", "-",
                                                                     "-progress", "pipe:1"]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout or seconds * 3 + 30)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", (e.stderr or b"") + b"\n(ffmpeg timed out)"
    frames = 0
    for ln in out.decode(errors="replace").splitlines():
        if ln.startswith("frame="):
            try:
                frames = int(ln.split("=", 1)[1])
            except ValueError:
                pass
    errors = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    return DecodeResult(frames, errors, rc, time.monotonic() - t0)


def ffprobe(url, timeout=60):
    """Returns the list of streams ffprobe sees (dicts with codec_name, ...)."""
    p = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", url],
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, "ffprobe %s failed: %s" % (url, p.stderr.decode(errors="replace")[-1000:])
    return json.loads(p.stdout)["streams"]


def hop(url, n=1):
    """url as a node's 302 Location gives it: with ms_hop=n added
    (api/redirect.c counts redirect hops to stop loops)."""
    return url + ("&" if "?" in url else "?") + "ms_hop=%d" % n


def wait_until(pred, timeout, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timeout %ss waiting for %s" % (timeout, what))
