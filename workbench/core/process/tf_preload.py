"""Load TensorFlow in the background once the window shows, so that Train does not freeze it.

Most of `import tensorflow` is the dynamic loader mapping and initialising two large
shared libraries, and Python's import machinery holds the GIL through that: the window
would freeze for up to seconds on the first Train. ctypes releases the GIL around
`dlopen`, so opening those libraries with ctypes first leaves the import only its Python
part, which hands the GIL over every few milliseconds.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import sys
import threading
from pathlib import Path

# The libraries TensorFlow's extension modules link against (Linux wheels); loading them
# RTLD_LOCAL is what the extension's own dependency loading does, so nothing is shadowed.
_LIBRARIES = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")
_handles: list[ctypes.CDLL] = []
_thread: threading.Thread | None = None


def tensorflow_folder() -> Path | None:
    """Where the tensorflow package is installed, found without importing it."""
    try:
        spec = importlib.util.find_spec("tensorflow")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_shared_libraries() -> list[str]:
    """Open TensorFlow's big shared libraries without holding the GIL; the names opened."""
    folder = tensorflow_folder()
    if folder is None or not sys.platform.startswith("linux"):
        return []
    opened = []
    for name in _LIBRARIES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            _handles.append(ctypes.CDLL(str(path), mode=os.RTLD_LAZY | os.RTLD_LOCAL))
        except OSError:
            continue  # the import will load (or fail to load) it the usual way, with a clear error
        opened.append(name)
    return opened


def _load() -> None:
    from workbench.core.base.quiet import native_lines_held

    try:
        with native_lines_held():  # the libraries' static initialisers log before any setting is read
            load_shared_libraries()
            import keras  # noqa: F401  (imports tensorflow, its backend)
    except Exception:  # noqa: BLE001 - the run's own import reports the problem where it can be shown
        return
    # TensorFlow and Keras add about a million long-lived objects; each full garbage collection
    # would walk them all while holding the GIL (a visible pause in training's steady state).
    # Frozen, they are left out of every collection from now on.
    gc.freeze()


def loading() -> bool:
    """Whether the background load is still running (its new objects are not frozen yet)."""
    return _thread is not None and _thread.is_alive()


def preload() -> threading.Thread:
    """Start loading TensorFlow and Keras on a background thread (once); the thread.

    Not a daemon: a process that exits while the thread is inside TensorFlow's native
    initialisation can crash, so exit waits for it (a few seconds at most).
    """
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_load, name="tensorflow-preload")
        _thread.start()
    return _thread
