"""structlog set-up, prompt hashing and stage timing.

Logs carry ids, hashes, counts and timings; never a raw question, prompt or answer.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from ragline.config import Observability


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; keep their noise at WARNING.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")


def prompt_hash(rendered_prompt: str) -> str:
    return hashlib.sha256(rendered_prompt.encode("utf-8")).hexdigest()


class StageClock:
    """Times the pipeline's stages; the timings are stored on the job and logged."""

    def __init__(self, observability: Observability) -> None:
        self.timings: dict[str, float] = {}
        self._log_latency = observability.log_latency_ms
        self._log = structlog.get_logger("ragline.pipeline")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except BaseException:
            outcome = "error"
            raise
        finally:
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            self.timings[name] = elapsed
            fields: dict[str, Any] = {"stage": name, "outcome": outcome}
            if self._log_latency:
                fields["latency_ms"] = elapsed
            self._log.info("stage_finished", **fields)
