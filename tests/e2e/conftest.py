"""A private X server for end-to-end tests: big enough for the window, 24-bit colour."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

SCREEN = "1600x1000x24"


@pytest.fixture(scope="session")
def x_display():
    """Start Xvfb on a free display number (it tells us which through -displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryDirectory() as home:
        server = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", SCREEN, "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            server.kill()
            pytest.fail("Xvfb did not start")
        try:
            yield f":{number}"
        finally:
            server.terminate()
            server.wait(timeout=10)
