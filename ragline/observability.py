"""structlog set-up, prompt hashing and stage timing.

Logs carry ids, hashes, counts and timings; never a raw question, prompt or answer. As a
second line of defence every other string value is scrubbed of PII and credentials.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import structlog

from ragline.config import Observability

# Values of these keys are ids, hashes, versions and enums we generate: never PII.
_SAFE_KEYS = frozenset(
    "event level timestamp logger job_id request_id key_id account_id attempt stage outcome "
    "status reason latency_ms prompt_hash prompt_version model_id model index_version rule "
    "action check feature threads collection version".split()
)
_scrubber: Callable[[str], str] | None = None


def install_log_scrubber(scrub: Callable[[str], str] | None) -> None:
    """From now on every string value of every log line passes through scrub (the
    guardrails' PII and credential redaction) before it is written."""
    global _scrubber
    _scrubber = scrub


def _scrub_event(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    scrub = _scrubber
    if scrub is None:
        return event
    for key, value in event.items():
        if isinstance(value, str) and key not in _SAFE_KEYS:
            event[key] = scrub(value)
    return event


# Characters that rewrite a log line as a terminal or a reader shows it: controls (NUL, an
# escape sequence, a carriage return that overprints) and the bidirectional overrides and
# isolates that reorder what follows ("Trojan Source"). Written as \\uXXXX instead. A
# traceback keeps its line breaks and tabs (it quotes values with repr, escaped already).
_BIDI = "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
_UNSHOWN = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_UNSHOWN_IN_TRACEBACK = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")


def _shown(text: str, unshown: re.Pattern[str] = _UNSHOWN) -> str:
    return unshown.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _neutralise(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Every string a log line holds, as text a reader sees as it is."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = _shown(value, _UNSHOWN_IN_TRACEBACK if key == "exception" else _UNSHOWN)
        elif isinstance(value, list | tuple):
            event[key] = [_shown(item) if isinstance(item, str) else item for item in value]
    return event


class _Stderr:
    """Whatever sys.stderr is when a line is written, not when logging was configured: a
    command run inside another program (a test runner's) may swap the stream and close it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
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
            _scrub_event,  # after format_exc_info: tracebacks quote values too
            _neutralise,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or cast(TextIO, _Stderr())),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; keep their noise at WARNING.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")


def prompt_hash(rendered_prompt: str) -> str:
    return hashlib.sha256(rendered_prompt.encode("utf-8")).hexdigest()


class StageClock:
    """Times the pipeline's stages as spans (start offset, duration, outcome, attributes);
    the spans are stored on the job as its trace, and each stage's latency is logged."""

    def __init__(self, observability: Observability) -> None:
        self.timings: dict[str, float] = {}
        self.spans: list[dict[str, Any]] = []
        self.started_at = datetime.now(UTC)
        self._origin = time.perf_counter()
        self._log_latency = observability.log_latency_ms
        self._log = structlog.get_logger("ragline.pipeline")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "ok"
        span: dict[str, Any] = {
            "name": name,
            "start_ms": round((started - self._origin) * 1000, 3),
            "attributes": {},
        }
        self.spans.append(span)
        try:
            yield
        except BaseException as error:
            outcome = "error"
            span["attributes"]["error"] = type(error).__name__
            raise
        finally:
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            self.timings[name] = elapsed
            span.update(duration_ms=elapsed, outcome=outcome)
            fields: dict[str, Any] = {"stage": name, "outcome": outcome}
            if self._log_latency:
                fields["latency_ms"] = elapsed
            self._log.info("stage_finished", **fields)

    def annotate(self, **attributes: Any) -> None:
        """Attributes of the latest stage (ids, versions, scores, verdicts: never text)."""
        if self.spans:
            self.spans[-1]["attributes"].update(attributes)

    def trace(self, attempt: int) -> dict[str, Any]:
        return {"started_at": self.started_at.isoformat(), "attempt": attempt, "spans": self.spans}
