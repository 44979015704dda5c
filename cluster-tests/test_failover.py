"""Failover drills (orchestration): a real camera (tests/camera/camera.py),
3 nodes; kill -9 of the primary N times (MS_FAILOVER_KILLS, default 3; the
full drill of the issue is 20), recording on, with the archive gap of each
failover; backup killed, SIGSTOP/SIGCONT of the primary. Prints the
figures."""
import datetime
import os
import signal
import time

import mslib
from conftest import kill9, restart

KILLS = int(os.environ.get("MS_FAILOVER_KILLS", "3"))
CHUNK_S = 2  # DVR chunk length of the drill's streams
DVR = {"enabled": True, "depth_s": 3600, "chunk_s": CHUNK_S, "mode": "continuous"}


def st_on(n, name):
    r = n.api("/api/v1/streams/%s" % name, timeout=3)
    return r.json()["status"] if r.status == 200 else None


def placement(c, name):
    s = st_on(c.leader(), name) or {}
    return {"primary": s.get("server") or None, "backup": s.get("backup_server")}


def one_active_primary(c, name, timeout=15):
    """Every live node agrees on the primary; exactly one runs the stream."""
    def ok():
        active, servers = [], set()
        for n in c.alive():
            s = st_on(n, name)
            if s is None:
                return None
            servers.add(s["server"])
            # status.local: the node's own copy (status.state is the cluster's)
            if s["local"]["role"] in ("primary", "migrated") and s["local"]["state"] == "active":
                active.append(n.name)
        return active if len(active) == 1 and len(servers) == 1 and active[0] in servers else None
    return mslib.wait_until(ok, timeout, interval=0.1, what="exactly one active primary")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def setup_stream(c, tmp, names=("fo",), dvr=None):
    cam = mslib.Camera(tmp / "cam", audio="none", gop=10).start()
    ld = c.leader()
    for name in names:
        kw = {"dvr": dvr} if dvr else {}
        r = ld.api("/api/v1/streams", "POST",
                   mslib.default_stream(name, cam.url("cam"), channels=("video",), **kw))
        assert r.status in (200, 201), r.text
    for name in names:
        mslib.wait_until(lambda: placement(c, name)["backup"], 20, what="a backup")
        one_active_primary(c, name, timeout=30)
    return cam


def wait_failover(c, name, dead, t0, timeout=20, seg=None):
    """Seconds from t0 until a live node other than dead runs the stream
    (status active there) and until its HLS playlist lists new frames: the
    first LL-HLS part (EXT-X-PART, ~200 ms of media) or segment. With seg (a
    list), the time of the first whole segment is appended to it."""
    t_active = t_hls = t_seg = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (t_active is None or t_seg is None):
        for n in c.alive():
            if n is dead:
                continue
            try:
                s = st_on(n, name)
                runs = s and s["local"]["role"] in ("primary", "migrated")
                if t_active is None and runs and s["local"]["state"] == "active":
                    t_active = time.monotonic() - t0
                if t_active is not None and t_seg is None and runs:
                    r = n.get("/%s/index.m3u8" % name, timeout=3)
                    if r.status == 200 and t_hls is None and (
                            "#EXT-X-PART:" in r.text or "#EXTINF" in r.text):
                        t_hls = time.monotonic() - t0
                    if r.status == 200 and "#EXTINF" in r.text:
                        t_seg = time.monotonic() - t0
            except OSError:
                pass
        time.sleep(0.05)
    assert t_active is not None, "no failover within %d s" % timeout
    if seg is not None and t_seg is not None:
        seg.append(t_seg)
    return t_active, t_hls


def ranges_of(n, name):
    """[(from, to, server)] sorted: the stream's archive ranges as n lists
    them (its own local index merged with what every other server
    published into the state; docs/cluster.md "Archive index handoff")."""
    r = n.api("/api/v1/streams/%s/ranges" % name, timeout=5)
    if r.status != 200:
        return None
    return sorted((x["from"], x["from"] + x["duration"], x["server"]) for x in r.json()["ranges"])


def gap_around(iv, t_kill):
    """The hole in the union of the ranges iv that follows the last piece
    begun at or before t_kill (0 when the archive runs on through the
    kill), in seconds; None when nothing was recorded before or after the
    kill. Ranges are whole seconds (API), so the gap is too: a piece
    ending at x.4 and the next starting at x.9 touch once rounded."""
    merged = []
    for f, t, _ in iv:
        if merged and f <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], t)
        else:
            merged.append([f, t])
    before = [m for m in merged if m[0] <= t_kill]
    if not before:
        return None
    after = [m for m in merged if m[0] > before[-1][1]]
    if after:
        return after[0][0] - before[-1][1]
    return 0 if before[-1][1] > t_kill else None


def archive_segments(n, name, frm, dur):
    """[(start, end)] UTC seconds of the archive segments n serves for the
    window (archive-FROM-DURATION.m3u8; RFC 8216 4.3.2.6
    EXT-X-PROGRAM-DATE-TIME dates a segment, later ones follow by EXTINF)."""
    try:
        r = n.get("/%s/archive-%d-%d.m3u8" % (name, frm, dur), timeout=5)
    except OSError:
        return []
    if r.status != 200:
        return []
    out, t, d = [], None, None
    for ln in r.text.splitlines():
        ln = ln.strip()
        if ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            t = datetime.datetime.strptime(ln.split(":", 1)[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        elif ln.startswith("#EXTINF:"):
            d = float(ln.split(":", 1)[1].split(",")[0])
        elif ln and not ln.startswith("#") and t is not None and d is not None:
            out.append((t, t + d))
            t, d = t + d, None
    return out


def archive_gap(c, name, old, new, t_kill, timeout=20):
    """Archive gap of one failover: waits until the ranges listed by the new
    primary hold the old primary's piece up to the kill (the old primary
    publishes its last ranges once restarted, every 5 s) and the new
    primary's piece going on past the kill, then measures the hole around
    the kill. Returns (gap, ranges)."""
    iv = []

    def published():
        nonlocal iv
        iv = ranges_of(c.nodes[new], name) or []
        old_end = max((t for f, t, s in iv if s == old and f <= t_kill), default=None)
        new_on = [t for f, t, s in iv if s == new and t >= t_kill + 2 * CHUNK_S]
        return old_end is not None and old_end >= t_kill - CHUNK_S and bool(new_on)
    try:
        mslib.wait_until(published, timeout, interval=0.25, what="ranges published")
    except AssertionError:
        pass  # measured on what is there; the assertion below says it
    return gap_around(iv, t_kill), iv


def playable_gap(c, name, old, new, t_kill):
    """The same gap measured to the frame: the archive segments (dated by
    EXT-X-PROGRAM-DATE-TIME) that the old and the new primary serve for a
    window around the kill, merged (pieces closer than 0.1 s touch)."""
    frm = int(t_kill) - 3 * CHUNK_S
    segs = sorted(archive_segments(c.nodes[old], name, frm, 7 * CHUNK_S) +
                  archive_segments(c.nodes[new], name, frm, 7 * CHUNK_S))
    return gap_around([(f - 0.05, t + 0.05, None) for f, t in segs], t_kill), segs


def test_kill_primary_drill(three, tmp_path):
    """Two streams (the leader places them on different servers), so the
    rounds alternate between a primary that is not the leader and one that
    is (a new election on top of the failover)."""
    c = three
    names = ("fo", "fo2")
    cam = setup_stream(c, tmp_path, names, dvr=DVR)
    try:
        kinds = {True: ([], [], []), False: ([], [], [])}  # was_leader -> (active, part, segment)
        gaps, pgaps = [], []
        # some archive on the first primaries before the first kill
        for n in names:
            mslib.wait_until(lambda: sum(t - f for f, t, _ in ranges_of(c.leader(), n) or [])
                             >= 2 * CHUNK_S, 30, what="archive of %s" % n)
        for i in range(KILLS):
            ld = c.leader()
            want_leader = i % 2 == 1
            pick = [n for n in names if (c.nodes[placement(c, n)["primary"]] is ld) == want_leader]
            name = (pick or list(names))[0]
            prim = c.nodes[placement(c, name)["primary"]]
            was_leader = ld is prim
            t0, t_kill = time.monotonic(), time.time()
            kill9(prim)
            ta, th = wait_failover(c, name, prim, t0, seg=kinds[was_leader][2])
            kinds[was_leader][0].append(ta)
            if th is not None:
                kinds[was_leader][1].append(th)
            print("kill %d: primary %s of %s%s: active on the backup after %.2f s, new frames in"
                  " HLS (first part) after %s s" % (i, prim.name, name, " (also the leader)"
                                                    if was_leader else "", ta,
                                                    "%.2f" % th if th is not None else "-"))
            restart(prim)
            c.converged()
            for n in names:
                one_active_primary(c, n)
            # no failback: the restarted server took nothing back
            newp = placement(c, name)["primary"]
            assert newp != prim.name
            gap, iv = archive_gap(c, name, prim.name, newp, t_kill)
            pgap, segs = playable_gap(c, name, prim.name, newp, t_kill)
            near = ", ".join("%s %+.1f..%+.1f" % (sv, f - t_kill, t - t_kill)
                             for f, t, sv in iv if t >= t_kill - 10 and f <= t_kill + 10)
            print("kill %d: archive gap %s s in the ranges, %s s in the playable archive (%s ->"
                  " %s; failover %.2f s; ranges around the kill, s from it: %s)"
                  % (i, gap, "%.2f" % pgap if pgap is not None else "-", prim.name, newp, ta,
                     near))
            # Ranges are whole seconds (from rounded down, end rounded up),
            # so their gap is the true one minus up to 2 s; the playable
            # archive (segment dates) gives it to the frame. Either may
            # exceed the failover time by up to one chunk: the killed
            # primary may lose the last second not yet on disk (RPO <= 1 s)
            # and the new primary's recording starts at its first keyframe
            # after activation (GOP 0.4 s here).
            assert gap is not None and gap <= ta + CHUNK_S, (gap, ta, iv, t_kill)
            assert pgap is not None and pgap <= ta + CHUNK_S, (pgap, ta, segs, t_kill)
            gaps.append(gap)
            pgaps.append(pgap)
        allt = kinds[True][0] + kinds[False][0]
        allh = kinds[True][1] + kinds[False][1]
        allseg = kinds[True][2] + kinds[False][2]

        def fig(v):
            return "p50 %.2f s, p99 %.2f s" % (pct(v, 50), pct(v, 99)) if v else "-"

        for lab, (ta, th, ts) in (("primary not the leader", kinds[False]),
                                  ("primary also the leader", kinds[True]),
                                  ("all", (allt, allh, allseg))):
            if ta:
                print("failover (%s, %d kills): active %s; new frames in HLS (first part) %s;"
                      " whole segment %s" % (lab, len(ta), fig(ta), fig(th), fig(ts)))
        print("archive gap per failover (%d kills, chunk %d s): ranges (whole s) p50 %.1f s,"
              " p99 %.1f s; playable archive p50 %.2f s, p99 %.2f s, max %.2f s"
              % (len(gaps), CHUNK_S, pct(gaps, 50), pct(gaps, 99), pct(pgaps, 50),
                 pct(pgaps, 99), max(pgaps)))
        # targets: p50 <= 2 s, p99 <= 4 s (a little slack for a loaded CI machine)
        assert pct(allt, 50) <= 2.5 and pct(allt, 99) <= 4.5, allt
    finally:
        cam.stop()


def test_backup_killed_and_sigstop(three, tmp_path):
    c = three
    cam = setup_stream(c, tmp_path)
    try:
        pl = placement(c, "fo")
        b = c.nodes[pl["backup"]]
        t0 = time.monotonic()
        kill9(b)
        nb = mslib.wait_until(lambda: (lambda p: p["backup"] if p["backup"] not in (None, b.name)
                                        else None)(placement(c, "fo")), 15, what="a new backup")
        print("backup %s killed: new backup %s after %.2f s" % (b.name, nb, time.monotonic() - t0))
        assert placement(c, "fo")["primary"] == pl["primary"]
        restart(b)
        c.converged()
        one_active_primary(c, "fo")
        # SIGSTOP of the primary (not the leader when possible), then SIGCONT
        pl = placement(c, "fo")
        prim = c.nodes[pl["primary"]]
        t0 = time.monotonic()
        prim.proc.send_signal(signal.SIGSTOP)
        try:
            ta, _ = wait_failover(c, "fo", prim, t0)
            print("SIGSTOP of primary %s: active on %s after %.2f s"
                  % (prim.name, placement(c, "fo")["primary"], ta))
        finally:
            prim.proc.send_signal(signal.SIGCONT)
        c.converged()
        one_active_primary(c, "fo")
        # no failback: the resumed server takes nothing back, also later
        # (a deposed leader's stale decisions are dropped, never forwarded)
        newp = placement(c, "fo")["primary"]
        print("after SIGCONT: primary %s" % newp)
        assert newp != prim.name
        time.sleep(3)
        c.converged()
        one_active_primary(c, "fo")
        assert placement(c, "fo")["primary"] == newp
    finally:
        cam.stop()
