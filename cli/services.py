"""How a command gets its objects: from the composition root, for as long as it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ragline.bootstrap import Mode, Services, opened
from ragline.observability import configure_logging
from ragline.settings import load_settings


@contextmanager
def open_services(mode: Mode = Mode.COMMAND) -> Iterator[Services]:
    """Mode.COMMAND (database and config) unless the command asks questions through the
    pipeline (Mode.EVALUATE: the vector store and the embedding model as well)."""
    settings = load_settings()
    # A command's stdout is its output (`--json` lines): logs go to stderr, and below
    # WARNING only when asked for with RAGLINE_LOG_LEVEL=DEBUG.
    level = settings.log_level if settings.log_level in ("DEBUG", "ERROR") else "WARNING"
    configure_logging(level, settings.log_format)
    with opened(settings, mode) as services:
        yield services
