"""Push (docs/rtmp.md "Push"): a camera stream with push to an independent
RTMP server, Debian's nginx with libnginx-mod-rtmp; ffmpeg plays the name
back from nginx and decodes it; nginx is killed (status.push shows the
error and retries), started again, and the push comes back by itself."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from mslib import ffmpeg_decode, wait_until

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(not (os.path.exists(MODULE) and os.path.exists(NGINX)),
                                reason="nginx with libnginx-mod-rtmp is not installed")


class Nginx:
    """nginx as a foreground process with its config, logs and pid in dir."""

    def __init__(self, d, port):
        self.dir = d
        self.port = port
        d.mkdir(parents=True, exist_ok=True)
        (d / "logs").mkdir(exist_ok=True)
        self.conf = d / "nginx.conf"
        self.conf.write_text(
            "load_module %s;\n"
            "daemon off;\nmaster_process off;\n"
            "error_log %s/error.log info;\npid %s/nginx.pid;\n"
            "events { worker_connections 64; }\n"
            "rtmp { server { listen 127.0.0.1:%d; application live { live on; } } }\n"
            % (MODULE, d, d, port))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "ab"),
                                     stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is not None or self._listening(), 10,
                   what="nginx listening")
        assert self.proc.poll() is None, (self.dir / "stderr").read_text()[-2000:]

    def _listening(self):
        import socket
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", self.port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def nginx(tmp_path, free_port):
    made = []

    def make():
        n = Nginx(tmp_path / "nginx", free_port())
        made.append(n)
        n.start()
        return n

    yield make
    for n in made:
        n.kill()


def push_status(n, name):
    p = n.status(name)["push"]
    assert len(p) == 1
    return p[0]


def test_push_to_nginx_and_reconnect(node, shared_cam, nginx):
    t0 = time.monotonic()
    ng = nginx()
    target = "rtmp://127.0.0.1:%d/live/pushed" % ng.port
    n = node(streams={"c1": {"url": shared_cam.url("cam"), "push": [{"url": target}]}})

    st = n.wait_status("c1", lambda s: s.get("push") and s["push"][0]["state"] == "publishing"
                       and s["push"][0]["healthy"], timeout=20, what="push publishing")
    assert st["push"][0]["url"] == target
    assert st["push"][0]["connects"] == 1
    r = ffmpeg_decode(target, 2, timeout=20)
    assert r.frames >= 25, r
    assert not r.errors, r
    sent = push_status(n, "c1")["bytes_sent"]
    assert sent > 10000

    # nginx goes away: the push reports the error and retries
    ng.kill()
    st = n.wait_status("c1", lambda s: s["push"][0]["state"] in ("retrying", "connecting")
                       and s["push"][0]["failures"] >= 1 and s["push"][0]["last_error"],
                       timeout=15, what="push failure seen")
    assert not st["push"][0]["healthy"]
    time.sleep(2)
    assert push_status(n, "c1")["state"] != "publishing"

    # back: the push reconnects and nginx plays the stream again
    ng.start()
    st = n.wait_status("c1", lambda s: s["push"][0]["state"] == "publishing"
                       and s["push"][0]["connects"] == 2 and s["push"][0]["healthy"],
                       timeout=20, what="push reconnected")
    assert st["push"][0]["bytes_sent"] > sent
    r = ffmpeg_decode(target, 2, timeout=20)
    assert r.frames >= 25, r
    assert not r.errors, r
    assert time.monotonic() - t0 < 60


def test_push_to_node_refused_and_accepted(node, shared_cam, free_port):
    """Push into the node's own RTMP server: a wrong publish key is refused
    with an onStatus error that status.push reports (and retried), while
    the target with the right key publishes a publish:// stream that then
    runs like a camera."""
    n = node(streams={"studio": {"url": "publish://", "publish_key": "s3cret"}}, start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.write_config()
    base = "rtmp://127.0.0.1:%d/live/" % n.rtmp_port
    n.add_stream("c1", shared_cam.url("cam2"),
                 push=[{"url": base + "studio?key=wrong"}, {"url": base + "studio?key=s3cret"}])
    n.start()

    st = n.wait_status("c1", lambda s: len(s.get("push", [])) == 2
                       and s["push"][0]["failures"] >= 1
                       and s["push"][1]["state"] == "publishing" and s["push"][1]["healthy"],
                       timeout=20, what="one push refused, one publishing")
    assert "refused: NetStream.Publish" in st["push"][0]["last_error"], st["push"][0]
    assert st["push"][0]["state"] != "publishing"
    assert st["push"][1]["connects"] == 1
    assert st["push"][0]["connects"] == 0
    studio = n.wait_status("studio", lambda s: s["state"] == "active" and s["video_codec"],
                           timeout=15, what="studio fed by the push")
    assert studio["video_codec"].lower() == "h264"
    r = ffmpeg_decode(base + "studio", 2, timeout=20)
    assert r.frames >= 25, r


def test_push_over_api_and_removed(node, shared_cam, free_port):
    """push set over the API (POST) starts at once; a PUT without it stops
    the push (status.push empty) and the target loses its publisher; a bad
    push URL is refused with the field named."""
    n = node(streams={"studio": "publish://"}, start=False)
    n.rtmp_port = free_port()
    n.cfg["listen"]["rtmp"] = n.rtmp_port
    n.write_config()
    n.start()
    # a host name: resolved with getaddrinfo (its first address is used)
    target = "rtmp://localhost:%d/live/studio" % n.rtmp_port
    body = {"name": "c3", "url": shared_cam.url("cam3"), "push": [{"url": target}]}
    r = n.api("/api/v1/streams", method="POST", body=body)
    assert r.status == 201, r.text
    assert r.json()["push"] == [{"url": target}]
    n.wait_status("c3", lambda s: s.get("push") and s["push"][0]["healthy"], timeout=20,
                  what="push publishing")
    n.wait_status("studio", lambda s: s["state"] == "active", timeout=10, what="studio active")

    r = n.api("/api/v1/streams/c3", method="PUT", body=dict(body, push=[]))
    assert r.status == 200, r.text
    n.wait_status("c3", lambda s: s.get("push") == [], timeout=10, what="push gone")
    n.wait_status("studio", lambda s: s["state"] == "inactive", timeout=10, what="studio idle")

    r = n.api("/api/v1/streams/c3", method="PUT",
              body=dict(body, push=[{"url": "rtmp://h/only-app"}]), spec=False)
    assert r.status == 400, r.text
    assert "push[0]" in r.text, r.text
