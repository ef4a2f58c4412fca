"""Stop a run on SIGINT (Ctrl-C) or SIGTERM (timeout, Slurm, Kubernetes), the same way; a second signal forces the exit.

`stop_on_signals()` yields a threading.Event that the first signal sets: the run stops
within a batch, keeps its checkpoint and writes its summary ("stopped"), and the command
exits with EXIT_STOPPED (130). A second signal ends the process at once with the same
status, even while the main thread is blocked inside TensorFlow (a collective waiting for
another worker): Python runs signal handlers only between bytecodes of the main thread,
so the signals also reach a pipe (signal.set_wakeup_fd) that a small thread reads.
Qt-free and TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

EXIT_STOPPED = 130  # what shells report for Ctrl-C; a run stopped by SIGTERM exits with it too
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_signals(saying: str = "Stopping after this batch",
                    announce: Callable[[str], None] = _say) -> Iterator[threading.Event]:
    """An Event set by the first SIGINT or SIGTERM; the second one exits the process (status 130).

    Outside the main thread (where Python cannot install handlers) the Event is only a plain
    Event. The previous handlers are restored afterwards.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    count = [0]
    lock = threading.Lock()

    def received(signum: int) -> None:
        with lock:
            count[0] += 1
            first = count[0] == 1
        if first:
            announce(f"\n{signal.Signals(signum).name}: {saying} (send it again to abort)...")
            stop.set()
        else:
            announce(f"\n{signal.Signals(signum).name} again: aborting now")
            os._exit(EXIT_STOPPED)

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except (ValueError, OSError):
        previous_fd = None

    def handler(signum, frame):  # the main thread, once it runs Python again
        if previous_fd is None:  # no pipe: act here (the watcher does it otherwise)
            received(signum)

    def watch() -> None:  # sees each signal at once, even while the main thread is blocked in C code
        while True:
            try:
                data = os.read(read_end, 16)
            except OSError:
                break
            if not data:
                break
            for byte in data:
                if byte in SIGNALS:
                    received(byte)
        os.close(read_end)

    if previous_fd is not None:
        threading.Thread(target=watch, name="signal-watch", daemon=True).start()
    else:
        os.close(read_end)
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        if previous_fd is not None:
            signal.set_wakeup_fd(previous_fd)
        os.close(write_end)  # the watcher reads end-of-file and ends
