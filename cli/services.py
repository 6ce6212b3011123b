"""How a command gets its objects: from the composition root, for as long as it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ragline.bootstrap import Mode, Services, opened
from ragline.settings import load_settings


@contextmanager
def open_services(mode: Mode = Mode.COMMAND) -> Iterator[Services]:
    """Mode.COMMAND (database and config) unless the command asks questions through the
    pipeline (Mode.EVALUATE: the vector store and the embedding model as well)."""
    with opened(load_settings(), mode) as services:
        yield services
