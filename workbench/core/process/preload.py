"""Imported once by the fork server of core/child_process.py, never by the app itself.

TensorFlow, Keras and the core's training code load here, so each run's child process
forks with them in place. `gc.freeze()` keeps the children's collections off those
objects, which also keeps the pages shared with the server instead of copied.
"""

import gc

from workbench.core.base.quiet import import_tensorflow_quietly
from workbench.core.process.child_process import lower_priority


def _load() -> None:
    lower_priority()  # this import of TensorFlow, too, yields the CPU to the window
    import_tensorflow_quietly()  # keras and tensorflow; their native log lines left out unless --verbose

    # Optuna's RDB storage loads these when a study opens: ~1 s a study otherwise (docs/measured.md)
    import alembic.command  # noqa: F401
    import sqlalchemy.orm  # noqa: F401

    from workbench.core.data import pipeline  # noqa: F401
    from workbench.core.engine import model  # noqa: F401
    from workbench.core.gan import training as gan_training  # noqa: F401
    from workbench.core.train import run, sweep  # noqa: F401
    from workbench.core.tune import study  # noqa: F401 - Optuna

    gc.freeze()


_load()
