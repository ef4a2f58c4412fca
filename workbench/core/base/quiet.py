"""A quiet terminal: TensorFlow's C++ log lines stay off stderr unless asked for (--verbose).

Two kinds of lines reach a terminal from TensorFlow's native code:
- lines logged while it runs (`E0000 ... failed call to cuInit ...` on a machine without a
  GPU): TF_CPP_MIN_LOG_LEVEL, read when TensorFlow loads, silences them. It is set in the
  environment, so child processes (the fork server, each run's process) inherit it.
- lines logged by the shared libraries' static initialisers while `import tensorflow` runs
  (`oneDNN custom operations are on`, `Could not find cuda drivers`, absl's
  `All log messages before absl::InitializeLog()`), before any setting is read. For
  those, `import_tensorflow_quietly` points file descriptor 2 at a temporary file for the
  length of the import, then writes back to stderr every line that is not such a log line.

`quiet_terminal(verbose)` is called first thing by the CLI and the app; Python's own logging
of TensorFlow and absl is raised to errors. Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

QUIET_FLAG = "WORKBENCH_QUIET_TF"  # set in the environment: children import TensorFlow quietly too
LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (FATAL only)

# "I0000 00:00:1796053041.578529   24034 cuda_platform.cc:52] ...", and absl's and the CPU guard's notes
NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
    r"|This TensorFlow binary is optimized to use available CPU instructions)"
)
_lock = threading.Lock()


def quiet_terminal(verbose: bool = False) -> None:
    """Before TensorFlow is imported: keep its log lines off stderr (unless `verbose`).

    A TF_CPP_MIN_LOG_LEVEL the user set is respected. With `verbose` nothing is changed and
    children are told so.
    """
    if verbose:
        os.environ.pop(QUIET_FLAG, None)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", LEVEL)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ[QUIET_FLAG] = "1"
    for name in ("tensorflow", "absl", "tf2onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def is_quiet() -> bool:
    return os.environ.get(QUIET_FLAG) == "1"


def is_native_log_line(line: str) -> bool:
    return bool(NATIVE_LOG.match(line))


@contextlib.contextmanager
def native_lines_held() -> Iterator[None]:
    """While inside: stderr (file descriptor 2) goes to a temporary file; afterwards every line
    of it that is not a native log line is written to stderr. A no-op unless the terminal is quiet.

    Other threads' stderr output meanwhile is kept, only delayed.
    """
    if not is_quiet():
        yield
        return
    with _lock, tempfile.TemporaryFile(mode="w+b") as held:
        _flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not is_native_log_line(line)]
            if kept:
                os.write(2, "".join(kept).encode("utf-8", "replace"))


def _flush() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


def import_tensorflow_quietly() -> None:
    """`import keras` (and so TensorFlow) with the static initialisers' lines left out of stderr."""
    if "tensorflow" in sys.modules:
        return
    with native_lines_held():
        import keras  # noqa: F401  (imports tensorflow, its backend)
