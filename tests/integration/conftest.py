"""Fixtures for the integration tests: real mediaserver processes on loopback
with temporary directories, real cameras (gst-rtsp-server), real clients.

Fixtures:
  session_dir       a per-session directory (clip cache, tool HOME)
  free_port         function returning an unused loopback port
  camera            factory: camera(**Camera kwargs) -> started Camera
  shared_cam        session camera: H.264 640x360 25 fps + AAC, mounts cam, cam2, cam3
  badcam            factory: badcam(mode, *args) -> started BadCam (args: extra badcam.py options)
  node              factory: node(streams={name: url or dict}, extra_cfg) -> started Node
Every /api/v1 answer the helpers of mslib.py receive is checked against
docs/openapi.yaml (apispec.py); a violation seen on a helper thread fails
the test at teardown (api_contract).
The node's (and cameras') logs are attached to the report of a failed test;
every node is stopped with SIGTERM at teardown and must exit 0 within 5 s.
"""

import os

import pytest

import apispec
import mslib
from mslib import BadCam, Camera, Node


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s")


@pytest.fixture(scope="session", autouse=True)
def api_spec():
    """docs/openapi.yaml loaded and compiled once per session: a spec that
    cannot be loaded (bad YAML, a $ref to nothing) fails every test."""
    try:
        return apispec.spec()
    except apispec.SpecError as e:
        pytest.fail("docs/openapi.yaml: %s" % e)


@pytest.fixture(autouse=True)
def api_contract():
    """Fails the test when an answer checked on a thread other than the
    test's (where the AssertionError may be lost) did not match the spec."""
    apispec.take()
    yield
    bad = apispec.take()
    if bad:
        pytest.fail("API answers not as docs/openapi.yaml says:\n" + "\n".join(bad[:10]))


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("session")
    # Tools started from the tests (ffmpeg, node, chromium) must not write
    # into the real $HOME.
    env = mslib.tool_env(str(d / "tools"))
    for k in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[k] = env[k]
    return d


@pytest.fixture(scope="session")
def clip_cache(session_dir):
    d = session_dir / "clips"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def ms_binary():
    path = mslib.ms_bin()
    if not os.access(path, os.X_OK):
        pytest.fail("mediaserver binary not found at %s (build it or set MS_BIN)" % path)
    return path


@pytest.fixture
def free_port():
    return mslib.free_port


def _attach(item, title, path, limit=20000):
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return
    if len(text) > limit:
        text = "...(truncated)...\n" + text[-limit:]
    item._ms_logs.append((title, text))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and getattr(item, "_ms_log_sources", None):
        item._ms_logs = []
        for title, path in item._ms_log_sources:
            _attach(item, title, path)
        for title, text in item._ms_logs:
            rep.sections.append((title, text))


def _register_log(request, title, path):
    item = request.node
    if not hasattr(item, "_ms_log_sources"):
        item._ms_log_sources = []
    item._ms_log_sources.append((title, str(path)))


@pytest.fixture
def camera(request, tmp_path, clip_cache):
    cams = []

    def make(**kw):
        kw.setdefault("cache", clip_cache)
        c = Camera(tmp_path / ("cam%d" % len(cams)), **kw)
        cams.append(c)
        _register_log(request, "camera %d log" % c.port, c.log)
        return c.start()

    yield make
    for c in cams:
        c.stop()


@pytest.fixture(scope="session")
def shared_cam(session_dir, clip_cache):
    """One H.264+AAC camera shared by the tests that only need a normal
    camera (mounts cam, cam2, cam3 are separate shared media)."""
    c = Camera(session_dir / "shared-cam", mounts=("cam", "cam2", "cam3"), video="h264", audio="aac",
               cache=clip_cache)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def badcam(request, tmp_path):
    cams = []

    def make(mode, *args):
        c = BadCam(tmp_path / "badcams", mode, args=args)
        cams.append(c)
        _register_log(request, "badcam %s log" % mode, c.log)
        return c.start()

    yield make
    for c in cams:
        c.stop()


@pytest.fixture
def node(request, tmp_path, ms_binary):
    nodes = []

    def make(streams=None, extra_cfg=None, start=True, **stream_kw):
        n = Node(tmp_path / ("node%d" % len(nodes)), name="n%d" % (len(nodes) + 1), extra=extra_cfg)
        nodes.append(n)
        _register_log(request, "mediaserver %s log" % n.name, n.log)
        for name, spec in (streams or {}).items():
            if isinstance(spec, dict):
                spec = dict(spec)
                url = spec.pop("url")
                kw = dict(stream_kw)
                kw.update(spec)
                n.add_stream(name, url, **kw)
            else:
                n.add_stream(name, spec, **stream_kw)
        if start:
            n.start()
        return n

    yield make
    problems = []
    for n in nodes:
        if n.proc is None:
            continue
        was_alive = n.alive()
        rc = n.stop()
        if not was_alive and rc is not None:
            problems.append("%s had already exited with %s before teardown" % (n.name, rc))
        elif n.killed:
            problems.append("%s did not exit within 5 s of SIGTERM (killed)" % n.name)
        elif rc != 0:
            problems.append("%s exited with %s on SIGTERM" % (n.name, rc))
    if problems:
        pytest.fail("; ".join(problems))
