"""Network namespaces for the partition drills.

The test builds its own little network, entirely outside the root network
namespace, and tears it down again. Names carry the test's pid (`<tag>`),
so parallel runs do not collide:

- `ms<tag>b`, the *bridge* namespace: the cluster bridge `brc` and the
  camera bridge `brk`, with no address and no route at all (layer 2 only);
- `ms<tag>n<i>`, one namespace per node: veth `cl0` on the cluster bridge
  (198.18.1.i/24) and veth `cam0` on the camera bridge (198.18.2.i/24);
- `ms<tag>c`, the *client* namespace: `cl0` on the cluster bridge
  (198.18.1.254) and `cam0` on the camera bridge (198.18.2.254). Every
  client of the nodes lives here: pytest's own HTTP requests, the test
  camera and the ffmpeg players.

The addresses are from 198.18.0.0/15, the range set aside for benchmarking
(RFC 2544 appendix C.2.2, RFC 6815): never a production network. They are
the same in every run, as each run's bridges are its own. Every
veth is created inside the bridge namespace with its peer directly in the
node's (or the client's) namespace, so the root namespace gets neither a
link nor an address, and no namespace the test makes has a default route:
each knows only its two connected /24s, so no test packet can leave the
machine, whatever the root namespace's routes are.

How pytest gets into the client namespace: `Net.setup()` moves the calling
thread (pytest runs fixtures and the test in its main thread) into it with
setns(2), and `Net.teardown()` moves it back. A network namespace belongs
to a thread, not to the process (setns(2) with CLONE_NEWNET changes only the
caller), and everything the thread creates in between inherits it: its
sockets (urllib, http.client: `mslib.http`, `Node.api`), the threads it
starts, and its child processes (`mslib.Camera`, `mslib.ffmpeg_decode`).
So no proxy and no patching of the HTTP helpers: a socket can only be opened
in the client namespace, and a forgotten code path cannot fall back to the
root namespace's routes. Setup checks it: a child process must see the
client's addresses and no default route. pytest's other threads (if any)
stay where they were; they do no test traffic.

Every mediaserver runs inside its namespace (`ip netns exec`), listens on
0.0.0.0, advertises its cluster address and joins the others' cluster
addresses, so Raft, the join datagrams and the forwarded writes all go over
the cluster network. A partition of node i sets both ends of its cluster
link down: it keeps its camera link (it can go on recording), and pytest
still reaches its API over the camera network. Heal sets them up again.

Needs root. `setup_or_skip(net)` builds the network; when namespaces cannot
be made it skips the test with the reason, except under CI (CI=true), where
a drill that cannot run is a failure. `teardown()` deletes the namespaces
it made (bridges and veths go with them) and never raises."""
import ctypes
import os
import shutil
import signal
import subprocess

import pytest

import mslib
from conftest import Cluster

CLONE_NEWNET = 0x40000000
CLUSTER_NET = "198.18.1."  # /24, inside 198.18.0.0/15 (RFC 2544, RFC 6815)
CAMERA_NET = "198.18.2."
CLIENT = 254  # the client's host number on both networks


class NetnsUnavailable(Exception):
    pass


def _ip(*args, check=True, stdin=None):
    p = subprocess.run(["ip"] + list(args), capture_output=True, timeout=15, input=stdin)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.decode(errors="replace").strip()))
    return p


def _batch(ns, lines):
    """Runs `ip` commands in namespace ns in one process (`ip -n ns -batch -`)."""
    _ip("-n", ns, "-batch", "-", stdin="".join(l + "\n" for l in lines).encode())


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    """setns(2) of the calling thread into the network namespace fd."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


def setup_or_skip(net):
    """net.setup(); when namespaces cannot be made: pytest.skip with the
    reason, or pytest.fail under CI (CI=true), where the drill must run."""
    try:
        return net.setup()
    except NetnsUnavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail("partition drill cannot run under CI: %s" % e, pytrace=False)
        pytest.skip(str(e))


class Net:
    """Node namespaces 1..N and a client namespace on a cluster bridge and a
    camera bridge, which live in a namespace of their own."""

    def __init__(self, count=3):
        self.count = count
        self.tag = str(os.getpid())
        self.ns_bridge = "ms%sb" % self.tag
        self.ns_client = "ms%sc" % self.tag
        self.ns = ["ms%sn%d" % (self.tag, i) for i in range(1, count + 1)]
        self.made_ns = []
        self.home_fd = None  # the calling thread's own namespace while it is in the client's
        self.cut = set()

    # -- addresses -----------------------------------------------------------
    def cluster_ip(self, i):
        return CLUSTER_NET + str(i)

    def camera_ip(self, i):
        return CAMERA_NET + str(i)

    @property
    def client_camera_ip(self):
        """The client namespace's camera-network address (the test camera binds it)."""
        return CAMERA_NET + str(CLIENT)

    def prefix(self, i):
        return ["ip", "netns", "exec", self.ns[i - 1]]

    # -- life cycle ----------------------------------------------------------
    def setup(self):
        """Builds the network and moves the calling thread into the client
        namespace. Raises NetnsUnavailable when it cannot (after undoing
        what it made)."""
        if os.geteuid() != 0:
            raise NetnsUnavailable("partition drills need root (ip netns, bridges, veth)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("iproute2 (ip) is not installed")
        try:
            for ns in [self.ns_bridge, self.ns_client] + self.ns:
                p = _ip("netns", "add", ns, check=False)
                if p.returncode != 0:  # also when it exists: not ours, left alone
                    raise NetnsUnavailable("ip netns add %s: %s" % (ns, p.stderr.decode(errors="replace").strip()))
                self.made_ns.append(ns)
            # hosts: (namespace, host number, bridge-side name prefix)
            hosts = [(self.ns_client, CLIENT, "cli")] + [(self.ns[i - 1], i, "n%d" % i)
                                                          for i in range(1, self.count + 1)]
            lines = ["link set lo up"]
            for br in ("brc", "brk"):
                lines += ["link add %s type bridge" % br, "link set %s up" % br]
            for ns, _, side in hosts:
                for kind, br, inner in (("c", "brc", "cl0"), ("k", "brk", "cam0")):
                    lines += ["link add %s%s type veth peer name %s netns %s" % (side, kind, inner, ns),
                              "link set %s%s master %s" % (side, kind, br),
                              "link set %s%s up" % (side, kind)]
            _batch(self.ns_bridge, lines)
            for ns, host, _ in hosts:
                _batch(ns, ["link set lo up",
                            "addr add %s%d/24 dev cl0" % (CLUSTER_NET, host), "link set cl0 up",
                            "addr add %s%d/24 dev cam0" % (CAMERA_NET, host), "link set cam0 up"])
            self._enter_client()
        except NetnsUnavailable:
            self.teardown()
            raise
        except Exception as e:
            self.teardown()
            raise NetnsUnavailable("building the test network failed: %s" % e) from e
        return self

    def _enter_client(self):
        fd = os.open("/var/run/netns/" + self.ns_client, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _setns(fd)
        finally:
            os.close(fd)
        # what a child process (camera, ffmpeg) sees: the client's two
        # connected networks, no default route
        routes = _ip("-4", "route", "show").stdout.decode()
        addrs = _ip("-4", "-o", "addr", "show").stdout.decode()
        want = "%s%d/24" % (CAMERA_NET, CLIENT)
        if want not in addrs or "default" in routes or len(routes.strip().splitlines()) != 2:
            raise RuntimeError("not in the client namespace as expected:\n%s%s" % (addrs, routes))

    def teardown(self):
        """Moves the calling thread back to its own namespace and deletes the
        namespaces setup made (their bridges and veths with them); never
        raises. Stop the processes in the namespaces first; any still there
        (a failed test's) are killed."""
        if self.home_fd is not None:
            try:
                _setns(self.home_fd)
            except OSError:
                pass
            os.close(self.home_fd)
            self.home_fd = None
        self._kill_leftovers()
        if self.made_ns:
            _ip("-force", "-batch", "-", check=False,
                stdin="".join("netns del %s\n" % ns for ns in reversed(self.made_ns)).encode())
        self.made_ns = []

    def _kill_leftovers(self):
        """SIGKILLs the processes still in the namespaces setup made (only
        the test starts processes there: a camera or node a failed test did
        not stop), so that deleting the namespaces frees them at once."""
        for ns in self.made_ns:
            for pid in _ip("netns", "pids", ns, check=False).stdout.split():
                if int(pid) != os.getpid():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass

    # -- faults --------------------------------------------------------------
    def partition(self, i):
        """Cuts node i from the cluster network (both ends of its link down);
        its camera link stays up."""
        _ip("-n", self.ns_bridge, "link", "set", "n%dc" % i, "down")
        _ip("-n", self.ns[i - 1], "link", "set", "cl0", "down")
        self.cut.add(i)

    def heal(self, i):
        _ip("-n", self.ns[i - 1], "link", "set", "cl0", "up")
        _ip("-n", self.ns_bridge, "link", "set", "n%dc" % i, "up")
        self.cut.discard(i)


class NetCluster(Cluster):
    """conftest.Cluster whose nodes live in the namespaces of a Net: node
    `n<i>` runs in namespace i, advertises its cluster address, and pytest
    (in the client namespace) talks to it over its camera address (which a
    partition leaves up)."""

    def __init__(self, tmp, net):
        super().__init__(tmp)
        self.net = net
        self.index = {}

    def add(self, name, join=True, start=True):
        i = len(self.nodes) + 1
        extra = {"advertise": self.net.cluster_ip(i)}
        if join and self.nodes:
            extra["cluster"] = {"join": ["%s:%d" % (self.net.cluster_ip(self.index[n.name]), n.raft_port)
                                         for n in self.nodes.values() if n.alive()]}
        n = mslib.Node(self.tmp / name, name=name, extra=extra, host=self.net.camera_ip(i),
                       cmd_prefix=self.net.prefix(i))
        n.cfg["listen"]["address"] = "0.0.0.0"
        n.write_config()
        self.nodes[name] = n
        self.index[name] = i
        if start:
            n.start(timeout=30)
        return n

    def cluster_base(self, n):
        """The node's advertised HTTP address (where redirects point)."""
        return "http://%s:%d" % (self.net.cluster_ip(self.index[n.name]), n.http_port)

    def partition(self, n):
        self.net.partition(self.index[n.name])

    def heal(self, n):
        self.net.heal(self.index[n.name])
