"""The install path: the Debian package (scripts/build-deb.sh, `make deb`) and
the Ansible playbook (ansible/site.yml, role ansible/roles/mediaserver).

test_deb_package installs the .deb into a throwaway root with
`dpkg --root DIR --force-depends --force-script-chrootless` (no chroot, no
full Debian system below DIR: the libraries come from this machine; the
postinst sees DPKG_ROOT and leaves this machine's users alone).

test_ansible_cluster runs the playbook on three inventory hosts that are
all this machine: `ansible_connection=local` hosts with their own config,
data, archive, pidfile and log directories under the test's tmp dir and their
own loopback addresses 127.0.0.11/12/13 with free ports (not network
namespaces, no sshd), `mediaserver_service_manager: process` and
`mediaserver_binary` = the built binary. HOME and the Ansible temp dirs are
inside the tmp dir. The daemons are killed at the end by the pids in their
pidfiles.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import mslib
from mslib import ROOT, default_stream, ffmpeg_decode, http, parse_playlist

ADMIN = ("admin", "ansible-test-pw")
HOSTS = [("ms1", "127.0.0.11"), ("ms2", "127.0.0.12"), ("ms3", "127.0.0.13")]


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.fail("%s not installed (scripts/setup.sh installs it)" % tool)
    return path


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)


# -- the package ---------------------------------------------------------------

def test_deb_package(tmp_path, ms_binary):
    need("dpkg-deb")
    need("systemd-analyze")
    r = run([str(ROOT / "scripts" / "build-deb.sh"), os.path.dirname(ms_binary), str(tmp_path)])
    assert r.returncode == 0, r.stderr
    deb = Path(r.stdout.strip())
    version = run([ms_binary, "--version"]).stdout.split()[-1]
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    assert deb.name == "mediaserver_%s_%s.deb" % (version, arch)

    info = run(["dpkg-deb", "-I", str(deb)]).stdout
    fields = dict(re.findall(r"^ (\w[\w-]*): (.*)$", info, re.M))
    assert fields["Package"] == "mediaserver" and fields["Version"] == version
    for dep in ("adduser", "libraft0 (>= 0.1", "libuv1", "libsqlite3-0", "libmicrohttpd12", "libjansson4",
                "libssl3", "libavcodec59", "libswscale6"):
        assert dep in fields["Depends"], (dep, fields["Depends"])
    conffiles = run(["dpkg-deb", "--ctrl-tarfile", str(deb)])
    assert conffiles.returncode == 0
    contents = run(["dpkg-deb", "-c", str(deb)]).stdout
    for p in ("./usr/bin/mediaserver", "./lib/systemd/system/mediaserver.service", "./etc/mediaserver/node.json"):
        assert re.search(r" %s$" % re.escape(p), contents, re.M), (p, contents)
    x = tmp_path / "x"
    assert run(["dpkg-deb", "-e", str(deb), str(x)]).returncode == 0
    assert (x / "conffiles").read_text().split() == ["/etc/mediaserver/node.json"]
    assert "adduser --system" in (x / "postinst").read_text()

    # throwaway root: a dpkg database, /bin/kill and the systemd targets the
    # unit refers to (systemd-analyze verify --root resolves them there)
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/updates", "var/lib/dpkg/info", "bin", "lib/systemd/system"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    shutil.copy("/bin/kill", root / "bin/kill")
    for t in Path("/lib/systemd/system").glob("*.target"):
        shutil.copy(t, root / "lib/systemd/system" / t.name)
    dpkg = ["dpkg", "--root=%s" % root, "--force-depends", "--force-script-chrootless"]
    r = run(dpkg + ["-i", str(deb)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "user not created (chrootless install)" in r.stderr
    installed = root / "usr/bin/mediaserver"
    assert run([str(installed), "--version"]).stdout.strip() == "mediaserver " + version
    assert (root / "var/lib/mediaserver/archive").is_dir()
    # the packaged default config is valid as it is
    cfg = json.loads((root / "etc/mediaserver/node.json").read_text())
    assert cfg["data_dir"] == "/var/lib/mediaserver"
    r = run(["systemd-analyze", "verify", "--root=%s" % root, "mediaserver.service"])
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr
    unit = (root / "lib/systemd/system/mediaserver.service").read_text()
    for k in ("User=mediaserver", "NoNewPrivileges=yes", "ProtectSystem=strict",
              "ReadWritePaths=/var/lib/mediaserver", "PrivateTmp=yes", "Restart=on-failure",
              "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM"):
        assert k in unit.splitlines(), k

    # remove keeps the conffile, purge removes it
    r = run(dpkg + ["-r", "mediaserver"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert not installed.exists()
    assert (root / "etc/mediaserver/node.json").exists()
    r = run(dpkg + ["--purge", "mediaserver"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (root / "etc/mediaserver/node.json").exists()


# -- the playbook --------------------------------------------------------------

def test_ansible_lint(tmp_path):
    """ansible-lint --offline (production profile) on the playbook and the
    role it includes; the playbook as argument so the role's files are
    followed from it."""
    need("ansible-lint")
    env = dict(os.environ, HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), NO_COLOR="1")
    r = run(["ansible-lint", "--offline", "--nocolor", "site.yml", "upgrade.yml", "remove.yml"], cwd=str(ROOT / "ansible"), env=env,
            timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Passed with production profile: 0 failure\(s\), 0 warning\(s\) on (\d+) files", r.stderr + r.stdout)
    assert m and int(m.group(1)) >= 10, r.stdout + r.stderr



class Play:
    """The inventory of three local hosts and ansible-playbook runs on it."""

    def __init__(self, tmp, binary, streams=None):
        """streams: {host: mediaserver_streams}"""
        self.tmp = tmp
        self.hosts = {}
        for name, addr in HOSTS:
            self.hosts[name] = self._host(name, addr)
            if streams and name in streams:
                self.hosts[name]["mediaserver_streams"] = streams[name]
        self.group_vars = {
            "mediaserver_service_manager": "process",
            "mediaserver_user": "root",
            "mediaserver_binary": binary,
            "mediaserver_admin_user": ADMIN[0],
            "mediaserver_admin_password": ADMIN[1],
            "mediaserver_secret": "ansible-test-cluster-secret",
            "mediaserver_cluster_wait_s": 60,
        }
        self.inventory = tmp / "inventory.yml"
        self.write_inventory()
        home = tmp / "home"
        atmp = tmp / "ansible-tmp"
        home.mkdir()
        atmp.mkdir()
        self.env = dict(os.environ, HOME=str(home), ANSIBLE_LOCAL_TEMP=str(atmp), ANSIBLE_REMOTE_TEMP=str(atmp),
                        ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                        ANSIBLE_CONFIG=str(tmp / "none.cfg"))

    def _host(self, name, addr):
        d = self.tmp / name
        (d / "bin").mkdir(parents=True)
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": "/usr/bin/python3",
            "mediaserver_name": name,
            "mediaserver_listen_address": addr,
            "mediaserver_advertise": addr,
            "mediaserver_http_port": mslib.free_port(),
            "mediaserver_rtsp_port": mslib.free_port(),
            "mediaserver_rtmp_port": 0,
            "mediaserver_raft_port": mslib.free_port(),
            "mediaserver_data_dir": str(d / "data"),
            "mediaserver_config_dir": str(d / "etc"),
            "mediaserver_storage": [{"path": str(d / "archive"), "max_used_percent": 95}],
            "mediaserver_pid_file": str(d / "run" / "mediaserver.pid"),
            "mediaserver_log_file": str(d / "log" / "mediaserver.log"),
            "mediaserver_bin_path": str(d / "bin" / "mediaserver"),
        }

    def write_inventory(self, leave_out=()):
        """The inventory: every host in self.hosts (in order) but leave_out."""
        hosts = {n: h for n, h in self.hosts.items() if n not in leave_out}
        self.inventory.write_text(yaml.safe_dump({"mediaserver": {"hosts": hosts, "vars": self.group_vars}},
                                                 sort_keys=False))

    def add_host(self, name, addr):
        """A new host at the end of the inventory."""
        self.hosts[name] = self._host(name, addr)
        self.write_inventory()

    def node_json(self, name):
        return Path(self.hosts[name]["mediaserver_config_dir"], "node.json")

    def run(self, *extra, playbook="site.yml"):
        """ansible-playbook PLAYBOOK (of ansible/); returns (rc, output, {host: recap dict})."""
        r = subprocess.run(["ansible-playbook", "-i", str(self.inventory), str(ROOT / "ansible" / playbook)]
                           + list(extra), capture_output=True, text=True, env=self.env, cwd=str(self.tmp),
                           timeout=300)
        out = r.stdout + r.stderr
        recap = {}
        for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", out, re.M):
            recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        return r.returncode, out, recap

    def base(self, name):
        h = self.hosts[name]
        return "http://%s:%d" % (h["mediaserver_advertise"], h["mediaserver_http_port"])

    def api(self, name, path, **kw):
        return http(self.base(name) + path, auth=ADMIN, **kw)

    def pid(self, name):
        try:
            return int(Path(self.hosts[name]["mediaserver_pid_file"]).read_text())
        except (OSError, ValueError):
            return None

    def running(self, name):
        """The pid of the host's daemon when the pidfile names a live
        mediaserver of that host's binary, else None."""
        pid = self.pid(name)
        if pid is None:
            return None
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
            state = [ln for ln in open("/proc/%d/status" % pid) if ln.startswith("State:")][0]
        except (OSError, IndexError):
            return None
        if exe != self.hosts[name]["mediaserver_bin_path"] or "zombie" in state:
            return None
        return pid

    def kill_all(self):
        pids = [p for p in (self.running(n) for n in self.hosts) if p]
        for p in pids:
            os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(self.running(n) for n in self.hosts):
            time.sleep(0.2)
        left = [n for n in self.hosts if self.running(n)]
        for n in left:
            os.kill(self.running(n), signal.SIGKILL)
        return left


class Monitor:
    """Polls every node during a rolling upgrade: the longest time no node
    named a leader, and per stream the intervals when no node ran it
    active (count and longest)."""

    def __init__(self, play, streams):
        import threading
        self.play, self.streams = play, streams
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.longest_leaderless = 0.0
        self.longest_down = {s: 0.0 for s in streams}
        self.downs = {s: 0 for s in streams}

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=30)

    def _get(self, name, path):
        try:
            r = http(self.play.base(name) + path, auth=ADMIN, timeout=2)
            return r.json() if r.status == 200 else None
        except Exception:  # noqa: BLE001 (a node restarting)
            return None

    def _run(self):
        no_leader_since, down_since = None, {s: None for s in self.streams}
        while not self.stop_ev.is_set():
            now = time.monotonic()
            leader = any((self._get(n, "/api/v1/cluster") or {}).get("leader") for n in self.play.hosts)
            if leader:
                no_leader_since = None
            else:
                no_leader_since = no_leader_since or now
                self.longest_leaderless = max(self.longest_leaderless, now - no_leader_since)
            for s in self.streams:
                up = any(((self._get(n, "/api/v1/streams/" + s) or {}).get("status") or {}).get("state")
                         == "active" for n in self.play.hosts)
                if up:
                    down_since[s] = None
                else:
                    if down_since[s] is None:
                        self.downs[s] += 1
                    down_since[s] = down_since[s] or now
                    self.longest_down[s] = max(self.longest_down[s], now - down_since[s])
            self.stop_ev.wait(0.25)

    def summary(self):
        return "longest without a leader %.1f s; %s" % (self.longest_leaderless, ", ".join(
            "%s: %d interruption(s), longest %.1f s" % (s, self.downs[s], self.longest_down[s])
            for s in self.streams))


def test_ansible_cluster(tmp_path, ms_binary, shared_cam):
    need("ansible-playbook")
    need("start-stop-daemon")
    # ms3 also gets a stream file through mediaserver_streams (the role's
    # stream directory); a stream file enters the cluster state like an API call
    filecam = default_stream("filecam", shared_cam.url("cam2"))
    play = Play(tmp_path, ms_binary, streams={"ms3": [filecam]})
    try:
        # 1. first run: installs, configures, forms the cluster
        t0 = time.monotonic()
        rc, out, recap = play.run()
        bringup = time.monotonic() - t0
        print("3-node bring-up (first ansible-playbook run): %.1f s" % bringup)
        assert rc == 0, out[-6000:]
        assert set(recap) == {n for n, _ in HOSTS}, out[-3000:]
        assert all(r["failed"] == 0 and r["changed"] > 0 for r in recap.values()), recap
        # ms1 bootstrapped (no join), the others joined it
        cfgs = {n: json.loads(Path(h["mediaserver_config_dir"], "node.json").read_text())
                for n, h in play.hosts.items()}
        seed = "127.0.0.11:%d" % play.hosts["ms1"]["mediaserver_raft_port"]
        assert cfgs["ms1"]["cluster"]["join"] == []
        assert cfgs["ms2"]["cluster"]["join"] == [seed] and cfgs["ms3"]["cluster"]["join"] == [seed]
        pids = {n: play.running(n) for n in play.hosts}
        assert all(pids.values()), pids
        leaders = set()
        for n in play.hosts:
            r = play.api(n, "/api/v1/cluster")
            assert r.status == 200, r.text
            c = r.json()
            assert sorted(m["name"] for m in c["members"]) == ["ms1", "ms2", "ms3"], c
            assert c["leader"], c
            leaders.add(c["leader"]["name"])
        assert len(leaders) == 1, leaders

        f = Path(play.hosts["ms3"]["mediaserver_config_dir"], "streams", "filecam.json")
        assert json.loads(f.read_text()) == filecam
        mslib.wait_until(lambda: play.api("ms1", "/api/v1/streams/filecam").status == 200, 15,
                         what="filecam in the state")
        st = play.api("ms1", "/api/v1/streams/filecam").json()
        assert st["added"] == "auto", st  # from a stream file, not the API

        # 2. a stream added through one node plays from the node that runs it
        body = default_stream("cam1", shared_cam.url())
        r = play.api("ms2", "/api/v1/streams", method="POST", body=body)
        assert r.status == 201, r.text
        # the node that runs it: its own copy (status.local) is active
        # (another node may not have applied the write yet: 404)
        def state(n, stream):
            r = play.api(n, "/api/v1/streams/" + stream)
            st = (r.json() or {}).get("status") or {} if r.status == 200 else {}
            return (st.get("local") or {}).get("state")

        def runner():
            on = [n for n in play.hosts if state(n, "cam1") == "active"]
            return on[0] if len(on) == 1 else None
        server = mslib.wait_until(runner, 40, interval=0.5, what="cam1 active on one node")
        assert play.api(server, "/api/v1/streams/cam1").json()["status"]["server"] == server
        url = play.base(server) + "/cam1/index.m3u8"
        mslib.wait_until(lambda: (lambda r: r.status == 200 and len(parse_playlist(r.text)["segments"]) >= 2)(
            http(url)), 30, what="HLS of cam1 on %s" % server)
        d = ffmpeg_decode(url, 2)
        assert d.rc == 0 and d.frames >= 25, d

        # 3. a hand edit of one host's node.json: --check --diff names that
        # host and file only and changes nothing; a normal run puts it back
        # and restarts that host only (the others: changed=0, same pids)
        edited = play.node_json("ms2")
        good = edited.read_text()
        assert '"log_level": "info"' in good
        edited.write_text(good.replace('"log_level": "info"', '"log_level": "debug"'))
        hand = edited.read_text()
        t0 = time.monotonic()
        rc, out, recap = play.run("--check", "--diff")
        print("--check --diff run: %.1f s" % (time.monotonic() - t0))
        assert rc == 0, out[-6000:]
        assert {n: r["changed"] for n, r in recap.items()} == {"ms1": 0, "ms2": 1, "ms3": 0}, (recap, out[-6000:])
        diffs = re.findall(r"^--- before: (\S+)\n\+\+\+ after: .*\n((?:[-+ @].*\n)+)", out, re.M)
        assert [d[0] for d in diffs] == [str(edited)], out[-6000:]
        removed = [ln for ln in diffs[0][1].splitlines() if ln.startswith("-")]
        added = [ln for ln in diffs[0][1].splitlines() if ln.startswith("+")]
        assert [ln[1:].strip().rstrip(",") for ln in removed] == ['"log_level": "debug"'], diffs
        assert [ln[1:].strip().rstrip(",") for ln in added] == ['"log_level": "info"'], diffs
        assert edited.read_text() == hand
        assert {n: play.running(n) for n in play.hosts} == pids
        t0 = time.monotonic()
        rc, out, recap = play.run()
        print("run that restores ms2's node.json: %.1f s" % (time.monotonic() - t0))
        assert rc == 0, out[-6000:]
        assert recap["ms1"]["changed"] == 0 and recap["ms3"]["changed"] == 0, (recap, out[-6000:])
        assert recap["ms2"]["changed"] >= 2, recap  # the node config and the restart
        assert edited.read_text() == good
        now = {n: play.running(n) for n in play.hosts}
        assert now["ms1"] == pids["ms1"] and now["ms3"] == pids["ms3"], (pids, now)
        assert now["ms2"] and now["ms2"] != pids["ms2"], (pids, now)
        pids = now

        # 4. a broken variable fails at validation, before any restart
        before = {n: Path(h["mediaserver_config_dir"], "node.json").read_text() for n, h in play.hosts.items()}
        rc, out, recap = play.run("-e", json.dumps({"mediaserver_http_port": 70000}))
        assert rc != 0
        assert all(r["failed"] == 1 for r in recap.values()), recap
        assert re.search(r"Node config \(validated.*\n.*fatal: ", out), out[-6000:]
        assert re.search(r"\S+: listen\.http: must be an integer 0\.\.65535", out), out[-6000:]
        assert "RUNNING HANDLER" not in out, out[-6000:]
        assert {n: play.running(n) for n in play.hosts} == pids
        after = {n: Path(h["mediaserver_config_dir"], "node.json").read_text() for n, h in play.hosts.items()}
        assert after == before
        assert play.api("ms3", "/api/v1/cluster").status == 200

        # 5. rolling upgrade (ansible/upgrade.yml) to a "new" binary (the same
        # program with a few bytes appended, so that the install task sees a
        # change and restarts the daemon) while both streams play
        new_bin = tmp_path / "mediaserver-new"
        shutil.copy(ms_binary, new_bin)
        with open(new_bin, "ab") as fh:
            fh.write(b"\0upgrade\0")
        mon = Monitor(play, ["cam1", "filecam"]).start()
        t0 = time.monotonic()
        rc, out, recap = play.run("-e", json.dumps({"mediaserver_binary": str(new_bin)}),
                                  playbook="upgrade.yml")
        took = time.monotonic() - t0
        time.sleep(2)
        mon.stop()
        print("rolling upgrade of 3 nodes: %.1f s; %s" % (took, mon.summary()))
        assert rc == 0, out[-8000:]
        assert all(r["failed"] == 0 for r in recap.values()), recap
        # one host at a time: drained, restarted, undrained, in inventory order
        order = [m.group(1) for m in re.finditer(r"^TASK \[mediaserver : Drain\].*\n(?:.*\n)*?\w+: \[(ms\d)\]", out, re.M)]
        assert order == ["ms1", "ms2", "ms3"], (order, out[-6000:])
        new_pids = {n: play.running(n) for n in play.hosts}
        assert all(new_pids.values()) and all(new_pids[n] != pids[n] for n in pids), (pids, new_pids)
        assert all(Path(h["mediaserver_bin_path"]).read_bytes().endswith(b"\0upgrade\0")
                   for h in play.hosts.values())
        # the cluster never lost its leader for long (a graceful stop hands
        # the leadership over), every stream played on
        assert mon.longest_leaderless < 6.0, mon.summary()
        for name in ("cam1", "filecam"):
            assert mon.longest_down[name] < 10.0, mon.summary()
        server = mslib.wait_until(runner, 40, interval=0.5, what="cam1 active on one node")
        d = ffmpeg_decode(play.base(server) + "/cam1/index.m3u8", 2)
        assert d.rc == 0 and d.frames >= 25, d
        pids = new_pids

        # 6. a 4th host added to the inventory joins the running cluster; the
        # other three change nothing (changed=0: no config changes, no restart)
        play.group_vars["mediaserver_binary"] = str(new_bin)  # the inventory names the new binary now
        play.add_host("ms4", "127.0.0.14")
        before = {n: play.node_json(n).read_text() for n in pids}
        t0 = time.monotonic()
        rc, out, recap = play.run()
        print("adding a 4th host: %.1f s" % (time.monotonic() - t0))
        assert rc == 0, out[-6000:]
        assert {n: r["changed"] for n, r in recap.items() if n != "ms4"} == {"ms1": 0, "ms2": 0, "ms3": 0}, \
            (recap, out[-6000:])
        assert recap["ms4"]["changed"] > 0, recap
        assert {n: play.running(n) for n in pids} == pids
        assert {n: play.node_json(n).read_text() for n in pids} == before
        assert json.loads(play.node_json("ms4").read_text())["cluster"]["join"] == [seed]
        pids["ms4"] = play.running("ms4")
        assert pids["ms4"], out[-3000:]
        leaders = set()
        for n in play.hosts:
            c = play.api(n, "/api/v1/cluster").json()
            assert sorted(m["name"] for m in c["members"]) == ["ms1", "ms2", "ms3", "ms4"], (n, c)
            assert c["leader"], (n, c)
            leaders.add(c["leader"]["name"])
        assert len(leaders) == 1, leaders

        # 7. ansible/remove.yml takes it out again: drained, DELETEd through
        # another member, stopped; the streams play on, 3 members remain
        mslib.wait_until(lambda: play.api("ms4", "/api/v1/servers/ms4").json().get("load") is not None, 20,
                         what="ms4's first load report")
        mon = Monitor(play, ["cam1", "filecam"]).start()
        t0 = time.monotonic()
        rc, out, recap = play.run("-e", "mediaserver_remove=ms4", playbook="remove.yml")
        took = time.monotonic() - t0
        mon.stop()
        print("removing ms4: %.1f s; %s" % (took, mon.summary()))
        assert rc == 0, out[-6000:]
        assert recap["ms4"]["failed"] == 0 and recap["ms4"]["changed"] > 0, recap
        assert play.running("ms4") is None
        assert not Path(play.hosts["ms4"]["mediaserver_data_dir"], "raft").exists()
        del pids["ms4"]
        assert {n: play.running(n) for n in pids} == pids
        # the playbook waited for ms1 (the member the DELETE went through);
        # the others apply the membership change on their own
        def three_members(n):
            c = play.api(n, "/api/v1/cluster").json()
            return (sorted(m["name"] for m in c["members"]) == ["ms1", "ms2", "ms3"] and c["leader"]
                    and play.api(n, "/api/v1/servers/ms4").status == 404)
        for n in pids:
            mslib.wait_until(lambda: three_members(n), 15, what="%s: 3 members, a leader, no ms4" % n)
        assert mon.longest_leaderless < 6.0, mon.summary()
        for name in ("cam1", "filecam"):
            assert mon.longest_down[name] < 10.0, mon.summary()
            mslib.wait_until(lambda: any(state(n, name) == "active" for n in pids), 20, what="%s active" % name)
    finally:
        left = play.kill_all()
    assert not left, "did not exit within 20 s of SIGTERM (killed): %s" % left
