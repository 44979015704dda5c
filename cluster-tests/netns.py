"""Network namespaces for the partition drills.

The test builds its own little network and tears it down again:

- one namespace per node (`ms<tag>n<i>`, tag = the test's pid), each with
  two veth links: `cl0` on the *cluster* bridge (node <-> node traffic,
  10.213.X.i/24) and `cam0` on the *camera* bridge (10.214.X.i/24);
- two bridges in the root namespace (`msc<tag>`, `msk<tag>`), which hold
  10.213.X.254 and 10.214.X.254 so pytest (and the camera, which runs in
  the root namespace bound to 10.214.X.254) can reach every node;
- X is picked from the pid among the /24s that no root interface uses.

Every mediaserver runs inside its namespace (`ip netns exec`), listens on
0.0.0.0, advertises its cluster address and joins the others' cluster
addresses, so Raft, the join datagrams and the forwarded writes all go over
the cluster network. A partition of node i sets both ends of its cluster
link down: it keeps its camera link (it can go on recording), and pytest
still reaches its API over the camera network. Heal sets them up again.

Only addresses of the two bridges are used; nothing is routed out of the
machine (the namespaces have no default route). Needs root; a test calls
`Net.setup()`, which raises `NetnsUnavailable` with the reason when the
namespaces cannot be made (the test then skips)."""
import os
import shutil
import subprocess

import mslib
from conftest import Cluster


class NetnsUnavailable(Exception):
    pass


def _ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, timeout=15)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.decode(errors="replace").strip()))
    return p


class Net:
    """Namespaces n1..nN on a cluster bridge and a camera bridge."""

    def __init__(self, count=3):
        self.count = count
        self.tag = str(os.getpid())
        self.x = None
        self.ns = ["ms%sn%d" % (self.tag, i) for i in range(1, count + 1)]
        self.br_cluster = "msc" + self.tag
        self.br_camera = "msk" + self.tag
        self.made_ns = []
        self.made_links = []
        self.cut = set()

    # -- addresses -----------------------------------------------------------
    def cluster_ip(self, i):
        return "10.213.%d.%d" % (self.x, i)

    def camera_ip(self, i):
        return "10.214.%d.%d" % (self.x, i)

    @property
    def root_camera_ip(self):
        return "10.214.%d.254" % self.x

    def prefix(self, i):
        return ["ip", "netns", "exec", self.ns[i - 1]]

    def _veth_root(self, kind, i):
        return "m%s%sn%d" % (kind, self.tag, i)

    # -- life cycle ----------------------------------------------------------
    def setup(self):
        if os.geteuid() != 0:
            raise NetnsUnavailable("partition drills need root (ip netns, bridges, veth)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("iproute2 (ip) is not installed")
        used = _ip("-4", "-o", "addr", "show").stdout.decode()
        start = os.getpid() % 250
        for k in range(250):
            x = (start + k) % 250 + 1
            if ("10.213.%d." % x) not in used and ("10.214.%d." % x) not in used:
                self.x = x
                break
        if self.x is None:
            raise NetnsUnavailable("no free 10.213.X.0/24 and 10.214.X.0/24 pair")
        p = _ip("netns", "add", self.ns[0], check=False)
        if p.returncode != 0:
            raise NetnsUnavailable("ip netns add failed: %s" % p.stderr.decode(errors="replace").strip())
        self.made_ns.append(self.ns[0])
        try:
            for br, net in ((self.br_cluster, 213), (self.br_camera, 214)):
                _ip("link", "add", br, "type", "bridge")
                self.made_links.append(br)
                _ip("addr", "add", "10.%d.%d.254/24" % (net, self.x), "dev", br)
                _ip("link", "set", br, "up")
            for i in range(1, self.count + 1):
                ns = self.ns[i - 1]
                if ns not in self.made_ns:
                    _ip("netns", "add", ns)
                    self.made_ns.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
                for kind, br, inner, net in (("c", self.br_cluster, "cl0", 213),
                                             ("k", self.br_camera, "cam0", 214)):
                    root = self._veth_root(kind, i)
                    peer = root + "p"
                    _ip("link", "add", root, "type", "veth", "peer", "name", peer)
                    self.made_links.append(root)
                    _ip("link", "set", peer, "netns", ns)
                    _ip("-n", ns, "link", "set", peer, "name", inner)
                    _ip("-n", ns, "addr", "add", "10.%d.%d.%d/24" % (net, self.x, i), "dev", inner)
                    _ip("-n", ns, "link", "set", inner, "up")
                    _ip("link", "set", root, "master", br)
                    _ip("link", "set", root, "up")
        except Exception:
            self.teardown()
            raise
        return self

    def teardown(self):
        """Deletes what setup made (a namespace takes its veth ends with it);
        never raises."""
        for ns in reversed(self.made_ns):
            _ip("netns", "del", ns, check=False)
        for link in reversed(self.made_links):
            _ip("link", "del", link, check=False)  # already gone with its peer: harmless
        self.made_ns, self.made_links = [], []

    # -- faults --------------------------------------------------------------
    def partition(self, i):
        """Cuts node i from the cluster network (both ends of its link down);
        its camera link stays up."""
        _ip("link", "set", self._veth_root("c", i), "down")
        _ip("-n", self.ns[i - 1], "link", "set", "cl0", "down")
        self.cut.add(i)

    def heal(self, i):
        _ip("-n", self.ns[i - 1], "link", "set", "cl0", "up")
        _ip("link", "set", self._veth_root("c", i), "up")
        self.cut.discard(i)


class NetCluster(Cluster):
    """conftest.Cluster whose nodes live in the namespaces of a Net: node
    `n<i>` runs in namespace i, advertises its cluster address, and pytest
    talks to it over its camera address (which a partition leaves up)."""

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
