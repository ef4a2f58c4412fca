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


@dataclass(frozen=True)
class LayerRow:
    """One backbone layer with parameters, as the freeze map lists it (engine/model.freeze_map fills it)."""

    name: str
    type: str
    output_shape: tuple[int | None, ...]
    params: int  # all of the layer's weights (a BatchNorm's moving statistics included)
    block: str
    trainable: bool
    trainable_params: int = 0  # the weights that train (a BatchNorm's scale and offset, not its statistics)


def format_count(n: int) -> str:
    """1234567 -> "1.2 M", 12345 -> "12.3 k", 123 -> "123"."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} M"
    if n >= 1_000:
        return f"{n / 1_000:.1f} k"
    return str(n)
