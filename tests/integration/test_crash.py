"""The crash handler (node/crash.h, docs/security.md "Crashes"): a node
that receives a fatal signal logs one line naming it and the address, then
a backtrace, and dies of that same signal."""
import re
import resource
import signal
import subprocess

import pytest

import mslib


def sanitizer_build():
    # ASan/TSan builds keep the sanitizer's handler (ms_crash_install skips)
    out = subprocess.run(["ldd", mslib.ms_bin()], capture_output=True, text=True).stdout
    return re.search(r"lib(a|t)san", out) is not None


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT])
def test_fatal_signal_logged_with_backtrace(tmp_path, ms_binary, sig):
    if sanitizer_build():
        pytest.skip("sanitizer build: the sanitizer reports crashes")
    # no core file from this test (the rlimit is inherited by the node)
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    n = mslib.Node(tmp_path / "n1")
    n.start()
    try:
        n.proc.send_signal(sig)
        rc = n.proc.wait(timeout=10)
    finally:
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait(timeout=10)
    assert rc == -sig, rc  # died of the signal itself
    log = n.log_text()
    name = signal.Signals(sig).name
    m = re.search(r"^mediaserver: fatal signal %s \(%d\) sent by pid \d+ \(no fault address\), "
                  r"pid %d; backtrace:\n((?:.*\[0x[0-9a-f]+\]\n){2,})" % (name, sig, n.proc.pid),
                  log, re.M)
    assert m, log[-3000:]
