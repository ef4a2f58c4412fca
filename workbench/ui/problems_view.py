"""The one-line problem summary above the curves, worded from the problems found."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workbench.core.base.problems import Problem


def problem_summary(problems: Sequence[Problem], label_for: Callable[[str], str], report=None) -> tuple[str, str]:
    """(text, tooltip): the first problem and a count, or "Ready" with the scan's size when none."""
    if not problems:
        if report is None:
            return "Ready", ""
        images = sum(report.counts.values())
        return f"Ready: {images} images in {len(report.class_names)} classes", ""
    first = problems[0]
    where = label_for(first.field) if first.field else ""
    lead = f"{where}: {first.message}" if where else first.message
    count = len(problems)
    text = f"Fix {count} problem{'s' if count > 1 else ''} to train — {lead}"
    details = "\n".join(
        f"• {label_for(p.field)}: {p.message}" if p.field else f"• {p.message}" for p in problems
    )
    return text, details
