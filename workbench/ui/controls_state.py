"""Which controls may be used, decided in one place from what is running right now."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControlsState:
    """What is active: a run (maybe stopping or paused), a tuning study (`sweep_running`), a GAN run; and problems.

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
        """A run, tuning study or GAN run trains: the Runs panel starts no other run (models load beside it)."""
        return self.running or self.sweep_running or self.gan_running

    @property
    def sweep_blocked(self) -> bool:
        """The Tuning tab waits while a run or the GAN lab trains."""
        return self.running or self.gan_running

    @property
    def gan_blocked(self) -> bool:
        """The GAN lab waits while a run or a tuning study trains."""
        return self.running or self.sweep_running
