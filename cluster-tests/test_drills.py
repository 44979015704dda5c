"""Rolling restart drill: a real camera (tests/camera/camera.py), 3 nodes,
2 streams. Every node in turn gets SIGTERM (graceful: it hands leadership
over) and is started again; the drill waits for convergence after each.
A watcher polls GET /api/v1/streams every 200 ms on a node that is not the
one restarting and records, per stream, the server running it over time.
Each stream may be interrupted at most once (one move of its primary).

The order is chosen as an operator would: next a node that holds no stream
moved before and whose streams have their backup on a node already
restarted (so a moved stream never has to move again); else a node holding
no primary; else the first one left. Prints the moves and the times."""
import threading
import time

import mslib
from conftest import restart
from test_failover import one_active_primary, placement, setup_stream

POLL_S = 0.2


class Watcher(threading.Thread):
    """Records (t, stream, server) whenever the server running a stream
    changes, as seen by a node that is not being restarted."""

    def __init__(self, c, names):
        super().__init__(daemon=True)
        self.c, self.names = c, names
        self.avoid = None
        self.stop_ev = threading.Event()
        self.hist = {n: [] for n in names}
        self.polls = 0

    def run(self):
        while not self.stop_ev.is_set():
            for n in list(self.c.alive()):
                if n is self.avoid:
                    continue
                try:
                    r = n.api("/api/v1/streams", timeout=2)
                except OSError:
                    continue
                if r.status != 200:
                    continue
                now = time.monotonic()
                self.polls += 1
                for s in r.json()["streams"]:
                    name = s["name"]
                    if name not in self.hist:
                        continue
                    srv = (s.get("status") or {}).get("server") or None
                    h = self.hist[name]
                    if srv and (not h or h[-1][1] != srv):
                        h.append((now, srv))
                break
            self.stop_ev.wait(POLL_S)


def test_rolling_restart(three, tmp_path):
    c = three
    names = ("rr1", "rr2")
    cam = setup_stream(c, tmp_path, names)
    w = Watcher(c, names)
    w.start()
    try:
        left = list(c.nodes)
        done, moved = [], set()
        t_drill = time.monotonic()
        for _ in range(len(c.nodes)):
            pl = {s: placement(c, s) for s in names}

            def held(nn):
                return [s for s in names if pl[s]["primary"] == nn]

            safe = [nn for nn in left if not (set(held(nn)) & moved)
                    and all(pl[s]["backup"] in done for s in held(nn))]
            idle = [nn for nn in left if not held(nn)]
            name = (safe or idle or left)[0]
            node = c.nodes[name]
            w.avoid = node
            t0 = time.monotonic()
            node.stop()  # SIGTERM: graceful, leadership handed over
            assert node.exit_code == 0 and not node.killed, node.exit_code
            t_stop = time.monotonic() - t0
            for s in held(name):
                # its streams go to their backup; wait until one runs them
                mslib.wait_until(lambda: placement(c, s)["primary"] not in (None, name), 20,
                                 what="%s moved off %s" % (s, name))
                one_active_primary(c, s)
                moved.add(s)
            t_moved = time.monotonic() - t0
            restart(node)
            c.converged()
            for s in names:
                one_active_primary(c, s)
            w.avoid = None
            print("rolling restart: %s (primary of %s) stopped in %.2f s, streams moved after"
                  " %.2f s, back and converged after %.2f s" % (
                      name, ",".join(held(name)) or "-", t_stop, t_moved,
                      time.monotonic() - t0))
            left.remove(name)
            done.append(name)
        time.sleep(1.0)  # the watcher sees the final placement
        w.stop_ev.set()
        w.join(timeout=5)
        chk = c.converged()
        for s in names:
            one_active_primary(c, s)
        for s in names:
            path = " -> ".join(srv for _, srv in w.hist[s])
            print("rolling restart: %s ran on %s (%d interruption(s))"
                  % (s, path, len(w.hist[s]) - 1))
        print("rolling restart: %d nodes in %.1f s, %d polls, state_checksum %s…"
              % (len(done), time.monotonic() - t_drill, w.polls, chk[:12]))
        assert w.polls > 10
        for s in names:
            assert w.hist[s], s
            assert len(w.hist[s]) - 1 <= 1, (s, w.hist[s])
    finally:
        w.stop_ev.set()
        cam.stop()
