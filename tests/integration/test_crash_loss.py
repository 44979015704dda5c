"""What a kill -9 loses from the recording, measured end to end with a
wall-clock camera (tests/camera/camera.py --qr-clock: every frame shows a
QR code of the epoch ms at which it was made) and read back from the
archive's MP4 export after the restart: the last recorded frame before the
kill must have been made at most 1 s before it, at the default config
(ingest_batch_ms 1000; docs/dvr.md "What a crash loses")."""

import glob
import os
import subprocess
import time

from mslib import wait_until

FPS = 25


def dvr(**kw):
    d = {"enabled": True, "depth_s": 3600, "chunk_s": 2, "mode": "continuous"}
    d.update(kw)
    return d


def qr_times(mp4_url, workdir, last_s):
    """The epoch ms read from the QR codes of the frames in the last last_s
    seconds of the MP4 at mp4_url (decoded by ffmpeg, read by zbarimg)."""
    frames = workdir / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-sseof", "-%g" % last_s, "-i", mp4_url,
                          "-vsync", "0", str(frames / "%04d.pgm")], capture_output=True, text=True, timeout=60)
    assert dec.returncode == 0, dec.stderr[-2000:]
    names = sorted(str(p) for p in frames.glob("*.pgm"))
    assert names, "no frame decoded from " + mp4_url
    out = subprocess.run(["zbarimg", "-q", "--raw"] + names, capture_output=True, text=True, timeout=60)
    vals = [int(x) for x in out.stdout.split() if x.isdigit()]
    # every frame carries its code: an unreadable frame is a broken recording
    assert len(vals) == len(names), (len(vals), len(names), out.stderr[-2000:])
    return vals


def archive_bytes(n):
    return sum(os.path.getsize(p) for p in glob.glob(str(n.data_dir / "archive/*/*/*/*/*/*.m4s")))


def last_write(n, seconds):
    """time.monotonic() of the last growth of the archive files seen while
    polling them every 2 ms for seconds: the moment a batch was written
    (the writer writes each batch at once, right after the read)."""
    last, size = None, archive_bytes(n)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.002)
        s = archive_bytes(n)
        if s != size:
            last, size = time.monotonic(), s
    assert last is not None, "the archive did not grow in %g s" % seconds
    return last


def test_kill9_loses_at_most_1s(node, camera, tmp_path):
    cam = camera(size="320x240", fps=FPS, gop=FPS, audio="none", extra=("--qr-clock", "--bitrate", "600"))
    n = node(streams={"q": {"url": cam.url(), "dvr": dvr(), "channels": ["video"]}})
    n.wait_active("q", timeout=30)
    st = n.status("q")
    assert st.get("reads") == "batched", st  # the default: read once per ingest_batch_ms
    # ~10 s of recording, then the kill in the worst case: ~20 ms before the
    # next batch is read, one interval (ingest_batch_ms, 1 s) after a batch
    # was written (found by watching the files grow)
    time.sleep(7)
    t_w = last_write(n, 2.5)
    time.sleep(max(0, t_w + 0.98 - time.monotonic()))
    n.proc.kill()
    t_kill = time.time()
    n.proc.wait(timeout=10)
    # nothing is recorded after the restart: the archive's last frame is
    # the last one written before the kill
    cam.stop()
    n.start()
    rg = wait_until(lambda: n.api("/api/v1/streams/q/ranges").json()["ranges"], 20, what="archive ranges")
    end = rg[-1]["from"] + rg[-1]["duration"]
    url = n.base + "/q/archive-%d-%d.mp4" % (end - 6, 7)
    vals = qr_times(url, tmp_path, 3)
    t_last = max(vals) / 1000
    # frames in capture order, none twice
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(vals, vals[1:])) if b <= a]
    assert not bad, (bad, len(vals))
    loss = t_kill - t_last
    print("kill -9 loss (wall clock, camera to archive): %.3f s" % loss)
    assert 0 < loss <= 1.0, (t_kill, t_last, loss)
