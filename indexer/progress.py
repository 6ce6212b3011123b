"""Build progress: a live bar on a terminal, a log line per 10% otherwise (CI, pipes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ragline.knowledge.versions import Progress as ProgressCallback

log = structlog.get_logger("ragline.index")


@contextmanager
def terminal_progress(stream: TextIO) -> Iterator[ProgressCallback]:
    if not stream.isatty():
        yield _log_lines()
        return
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=stream), transient=False) as bar:
        tasks: dict[str, TaskID] = {}
        started: dict[str, float] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, rate="")
                started[stage] = time.perf_counter()
            elapsed = max(time.perf_counter() - started[stage], 1e-6)
            bar.update(tasks[stage], completed=done, total=total, rate=f"{done / elapsed:,.0f}/s")

        yield update


def _log_lines() -> ProgressCallback:
    reported: dict[str, int] = {}
    started: dict[str, float] = {}

    def update(stage: str, done: int, total: int) -> None:
        started.setdefault(stage, time.perf_counter())
        tenth = done * 10 // max(total, 1)
        if reported.get(stage) == tenth:
            return
        reported[stage] = tenth
        elapsed = max(time.perf_counter() - started[stage], 1e-6)
        log.info(
            "index_build_progress",
            stage=stage,
            done=done,
            total=total,
            rate=round(done / elapsed, 1),
        )

    return update
