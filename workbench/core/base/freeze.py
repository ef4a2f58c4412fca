"""What a freeze policy left trainable, counted: a plain value the engine fills and the window shows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FreezeSummary:
    """What a freeze policy left trainable, counted over layers that have parameters."""

    layers_total: int
    layers_trainable: int
    params_trainable: int
    params_frozen: int

    @property
    def text(self) -> str:
        total = self.params_trainable + self.params_frozen
        return (
            f"{self.layers_trainable} of {self.layers_total} layers trainable, "
            f"{format_count(self.params_trainable)} of {format_count(total)} parameters"
        )


def format_count(n: int) -> str:
    """1234567 -> "1.2 M", 12345 -> "12.3 k", 123 -> "123"."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} M"
    if n >= 1_000:
        return f"{n / 1_000:.1f} k"
    return str(n)
