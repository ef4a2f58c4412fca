"""Problems worded for a person: what validation, scans and loaders return instead of raising."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config or a dataset, worded for a person.

    `field` is the dotted config path (``"training.learning_rate"``) so the UI can
    mark the widget; it is empty for problems that belong to no single field.
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(ValueError):
    """Raised when a config cannot be read at all; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
