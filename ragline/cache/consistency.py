"""Do two answers to the same question contradict each other? Compared on what a claim is
made of: its numbers, dates and names. Two answers may quote different sentences of the
same passages, so one that merely says more is no contradiction; two that share none of
their numbers (30 days against 14 days), dates or names are."""

from __future__ import annotations

import re

from ragline.cache.equivalence import parse

_CITATION = re.compile(r"\[\d+(?:\s*[,-]\s*\d+)*\]")


def contradiction(answer: str, other: str) -> str | None:
    """What the two answers disagree on (numbers, dates, names), or None."""
    a, b = parse(_CITATION.sub(" ", answer)), parse(_CITATION.sub(" ", other))
    numbers_a, numbers_b = set(a.numbers), set(b.numbers)
    if numbers_a and numbers_b and not numbers_a & numbers_b:
        return f"numbers: {', '.join(sorted(numbers_a))} / {', '.join(sorted(numbers_b))}"
    if a.dates and b.dates and not a.dates & b.dates:
        return f"dates: {', '.join(sorted(a.dates))} / {', '.join(sorted(b.dates))}"
    if a.entities and b.entities and not a.entities & b.entities:
        return f"names: {', '.join(sorted(a.entities))} / {', '.join(sorted(b.entities))}"
    return None
