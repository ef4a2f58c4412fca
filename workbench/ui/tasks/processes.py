"""Starting the machinery that long work runs on: TensorFlow loaded in the background once the
window shows, then the fork server that training processes start from."""

from __future__ import annotations

from workbench.core.process import child_process, tf_preload


def load_tensorflow_then_fork_server() -> None:
    """TensorFlow's libraries load on a thread (the window stays live), then the fork server starts:
    two imports of TensorFlow at once would stall the window longer."""
    child_process.warm_up(after=tf_preload.preload())


def tensorflow_loading() -> bool:
    """True while the background load runs (a full garbage collection then would freeze the window)."""
    return tf_preload.loading()
