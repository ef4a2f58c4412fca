"""Small jobs for test_model_worker.py, imported by name inside the model worker process."""

from __future__ import annotations

from collections.abc import Callable

_calls = [0]  # lives as long as the worker process does


def count_to(n: int, emit: Callable[[int], None] | None = None) -> int:
    """Emit 0..n-1 (when the caller takes events) and return n."""
    for i in range(n):
        if emit is not None:
            emit(i)
    return n


def calls_so_far() -> int:
    """How many times this process has run this job: what a job leaves behind reaches the next one."""
    _calls[0] += 1
    return _calls[0]
