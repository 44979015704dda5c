"""What the bench scripts share: a work directory with the test suite's
tool environment, reading CPU from /proc, process trees, and the teardown
of what a run started. Imported by bench/*.py next to tests/integration's
mslib (on sys.path before this is imported)."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import mslib


def workdir(name):
    """Exits when the mediaserver binary is missing; else makes a temporary
    work directory ms-bench-NAME-* and points HOME and the XDG directories
    of this process (and so of the tools it starts) into it."""
    if not os.access(mslib.ms_bin(), os.X_OK):
        sys.exit("mediaserver not found at %s (run make, or set MS_BIN)" % mslib.ms_bin())
    base = Path(tempfile.mkdtemp(prefix="ms-bench-%s-" % name))
    env = mslib.tool_env(str(base / "home"))
    for k in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[k] = env[k]
    return base


def finish(base, keep=False, node=None, others=()):
    """Stops node (saying so when it did not exit 0 on SIGTERM) and each of
    others that is not None (anything with stop()), then removes base
    unless keep."""
    if node is not None:
        rc = node.stop()
        if rc not in (0, None):
            print("note: node exited with %s on SIGTERM" % rc)
    for o in others:
        if o is not None:
            o.stop()
    if keep:
        print("kept", base)
    else:
        shutil.rmtree(base, ignore_errors=True)


def cpu_ticks(pid):
    """utime + stime of a process (all its threads): fields 14 and 15 of
    /proc/PID/stat; 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy_ticks():
    """(busy, total) ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def children(pid):
    """Direct children of pid (from /proc/PID/task/*/children)."""
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree_pids(pid):
    """pid and all its descendants."""
    pids, pending = [], [pid]
    while pending:
        p = pending.pop()
        pids.append(p)
        pending += children(p)
    return pids
