"""core/process/signals.py: SIGINT and SIGTERM stop a run the same way; a second one aborts, even while blocked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Blocks in C (a lock acquire without a timeout) after the first signal, as a worker waiting in a collective does.
CHILD = r"""
import sys, threading
from workbench.core.process.signals import stop_on_signals
with stop_on_signals("Stopping") as stop:
    print("ready", flush=True)
    stop.wait(30)
    print("stop set", flush=True)
    lock = threading.Lock(); lock.acquire(); lock.acquire()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_sets_the_event_and_the_second_aborts_a_blocked_process(signum):
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signum)
        lines = [child.stdout.readline().strip() for _ in range(3)]
        assert lines[0] == "" and lines[1].endswith("(send it again to abort)...") and lines[2] == "stop set", lines
        time.sleep(0.3)
        assert child.poll() is None  # blocked, as a worker in a collective is
        child.send_signal(signum)
        assert child.wait(10) == 130
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_outside_the_main_thread_it_is_a_plain_event():
    import threading

    from workbench.core.process.signals import stop_on_signals

    seen = []

    def body():
        with stop_on_signals() as stop:
            seen.append(stop.is_set())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [False]


# Replaces the C-level SIGTERM handler behind Python's back, as TensorFlow's coordination agent does when a
# MultiWorkerMirroredStrategy starts (docs/measured.md), then gives it back.
TAKEN = r"""
import ctypes, os, signal, time
from workbench.core.engine.devices import restore_sigterm_handler
seen = []
signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
libc = ctypes.CDLL(None)
libc.signal(signal.SIGTERM, 1)  # SIG_IGN, set in C: Python still reports its own handler
os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.2)
print("taken", seen, callable(signal.getsignal(signal.SIGTERM)))
print("restored", restore_sigterm_handler())
os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.2)
print("after", seen)
"""


def test_restoring_the_sigterm_handler_takes_it_back_from_native_code():
    done = subprocess.run([sys.executable, "-c", TAKEN], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["taken [] True", "restored True", "after [15]"], done.stdout + done.stderr
