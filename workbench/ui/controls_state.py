"""Which controls may be used, decided in one place from what is running right now."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControlsState:
    """What is active: a run (maybe stopping or paused), a dropout sweep, a GAN run; and problems.

    Plain Python so the rules read (and test) without widgets; the window applies the answers.
    """

    running: bool
    stopping: bool
    paused: bool
    has_problems: bool
    sweep_running: bool
    gan_running: bool

    @property
    def can_train(self) -> bool:
        return not self.running and not self.has_problems and not self.sweep_running and not self.gan_running

    @property
    def can_stop(self) -> bool:
        """Stop and Pause: only while a run trains and is not already stopping."""
        return self.running and not self.stopping

    @property
    def can_edit(self) -> bool:
        """The settings panels, opening a config or a folder, resuming: not while a run trains."""
        return not self.running

    @property
    def models_busy(self) -> bool:
        """A sweep or the GAN lab trains too, holding the Keras lock."""
        return self.running or self.sweep_running or self.gan_running

    @property
    def sweep_blocked(self) -> bool:
        """The Dropout lab waits while a run or the GAN lab trains."""
        return self.running or self.gan_running

    @property
    def gan_blocked(self) -> bool:
        """The GAN lab waits while a run or a dropout sweep trains."""
        return self.running or self.sweep_running
