"""DVR on a real small filesystem: a size-limited tmpfs mounted in the test's
directory is the storage root. Retention by fullness removes the oldest
chunks and keeps the index equal to the files; a full disk (ENOSPC) pauses
recording with the reason in status.dvr while live HLS keeps working, and
recording resumes once space is freed. Needs CAP_SYS_ADMIN (mount): skipped
otherwise."""

import errno
import os
import sqlite3
import subprocess
import time

import pytest

from mslib import parse_playlist, wait_until

FPS = 25
TMPFS_MB = 24


@pytest.fixture
def tmpfs_root(tmp_path):
    """A 24 MiB tmpfs; unmounted in teardown whatever happened. Request it
    before `node` so that it is torn down after the node stopped."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % TMPFS_MB, "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs (needs root/CAP_SYS_ADMIN): %s" % p.stderr.strip())
    try:
        yield mnt
    finally:
        p = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=20)
        if p.returncode != 0:  # still busy (a node that did not exit): detach it
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def dvr(**kw):
    d = {"enabled": True, "depth_s": 3600, "chunk_s": 2, "mode": "continuous"}
    d.update(kw)
    return d


def index_rows(n, root):
    db = sqlite3.connect("file:%s?mode=ro" % (n.data_dir / "dvr_index.sqlite"), uri=True)
    try:
        return db.execute("SELECT path, start_ms, bytes, open FROM chunks WHERE root=? ORDER BY start_ms",
                          (str(root),)).fetchall()
    finally:
        db.close()


def chunk_files(root):
    out = set()
    for d, _, names in os.walk(root):
        out |= {os.path.join(d, f) for f in names if f.endswith(".m4s")}
    return out


def used_percent(root):
    sv = os.statvfs(root)
    used = (sv.f_blocks - sv.f_bfree) * sv.f_frsize
    avail = sv.f_bavail * sv.f_frsize
    return 100.0 * used / (used + avail)


def index_equals_files(n, root):
    rows = index_rows(n, root)
    files = chunk_files(root)
    if {r[0] for r in rows} != files:
        return False
    return all(os.path.getsize(p) == size for p, _, size, is_open in rows if not is_open)


def test_retention_by_fullness_on_tmpfs(tmpfs_root, node, camera):
    cam = camera(gop=FPS, extra=("--bitrate", "2000"))
    n = node(streams={"full": {"url": cam.url(), "dvr": dvr()}},
             extra_cfg={"storage": [{"path": str(tmpfs_root), "max_used_percent": 10}]})
    n.wait_active("full", timeout=30)
    wait_until(lambda: len(index_rows(n, tmpfs_root)) >= 2, 20, what="first chunks recorded")
    first = index_rows(n, tmpfs_root)[0]
    # 10 % of 24 MiB at ~2 Mbit/s fills in ~10 s; a retention pass runs
    # every 10 s.
    wait_until(lambda: not os.path.exists(first[0]), 90, interval=0.5,
               what="the oldest chunk removed for space")
    removed_before = first[1]
    # the pass removed oldest first and stopped at the limit
    st = n.api("/api/v1/system").json()["storage"][0]
    assert st["path"] == str(tmpfs_root) and st["max_used_percent"] == 10, st
    rows = index_rows(n, tmpfs_root)
    assert rows and all(r[1] > removed_before for r in rows), rows
    # Every chunk of a newer start is still there: no hole inside what is
    # left (only the oldest go).
    starts = [r[1] for r in rows]
    assert starts == sorted(starts)
    wait_until(lambda: index_equals_files(n, tmpfs_root), 5, what="index rows equal to chunk files")
    # The recording continued through the deletions.
    rg = n.api("/api/v1/streams/full/ranges").json()["ranges"]
    assert len(rg) == 1 and rg[0]["from"] * 1000 >= removed_before - 1000, rg
    assert rg[0]["from"] + rg[0]["duration"] >= time.time() - 3, rg
    # After a pass, used% is back at or under the limit (plus what was
    # recorded since: at most ~one pass worth).
    wait_until(lambda: n.api("/api/v1/system").json()["storage"][0]["used_percent"] <= 10, 25,
               what="used_percent reported at or under max_used_percent after a pass")
    assert used_percent(tmpfs_root) < 50


def fill(root):
    """Writes a dummy file until the filesystem is full (bounded)."""
    path = os.path.join(root, "dummy.fill")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    block = b"\0" * (1 << 20)
    full = False
    try:
        for _ in range(TMPFS_MB * 2 + 8):
            try:
                os.write(fd, block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                full = True
                break
        # the last partial page: small writes until ENOSPC as well
        for _ in range(1024):
            try:
                os.write(fd, b"\0" * 512)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
    finally:
        os.close(fd)
    assert full, "the tmpfs did not fill"
    return path


def test_disk_full_pauses_then_resumes(tmpfs_root, node, camera):
    cam = camera(gop=FPS)
    # 100 %: no retention by fullness, so freeing space is up to the test
    n = node(streams={"df": {"url": cam.url(), "dvr": dvr()}},
             extra_cfg={"storage": [{"path": str(tmpfs_root), "max_used_percent": 100}]})
    n.wait_active("df", timeout=30)
    n.wait_hls("df", segments=2, timeout=30)
    wait_until(lambda: n.status("df")["dvr"].get("recording") and len(index_rows(n, tmpfs_root)) >= 2,
               20, what="recording")
    assert n.status("df")["dvr"]["paused"] is None

    dummy = fill(tmpfs_root)
    t_full = time.time()
    st = n.wait_status("df", lambda s: s.get("dvr", {}).get("paused"), 15, "status.dvr.paused")
    assert "disk full" in st["dvr"]["paused"], st["dvr"]
    assert st["dvr"]["recording"] is False, st["dvr"]
    # Live HLS keeps going while the archive cannot be written.
    seq0 = parse_playlist(n.wait_hls("df"))["segments"][-1]["msn"]
    time.sleep(5)
    pl = parse_playlist(n.wait_hls("df"))
    assert pl["segments"][-1]["msn"] > seq0, (seq0, pl["segments"])
    seg = n.get("/df/" + pl["segments"][-1]["uri"])
    assert seg.status == 200 and len(seg.body) > 1000, seg.status
    assert n.status("df")["state"] == "active"
    bytes_full = sum(r[2] for r in index_rows(n, tmpfs_root))

    os.unlink(dummy)
    t_free = time.time()
    st = n.wait_status("df", lambda s: s["dvr"].get("paused") is None and s["dvr"].get("recording"), 15,
                       "recording resumed")
    time.sleep(4)
    rows = index_rows(n, tmpfs_root)
    assert sum(r[2] for r in rows) > bytes_full + 100000, (bytes_full, rows[-3:])
    # The archive shows the hole: a range that ended around the fill and
    # one that starts after the space came back.
    rg = n.api("/api/v1/streams/df/ranges").json()["ranges"]
    assert len(rg) >= 2, rg
    assert rg[0]["from"] + rg[0]["duration"] <= t_full + 3, (rg, t_full)
    assert t_free - 1 <= rg[-1]["from"] <= t_free + 4, (rg, t_free)
    assert rg[-1]["from"] + rg[-1]["duration"] >= time.time() - 3, rg
    wait_until(lambda: index_equals_files(n, tmpfs_root), 5, what="index rows equal to chunk files")
