"""Log lines show what they hold (ragline/observability.py): NUL, terminal escapes, a
carriage return and the bidirectional overrides in any value are written as \\uXXXX, in
both formats, so a request path cannot hide or reorder what a reader of the log sees."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from ragline.observability import configure_logging


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    """structlog's configuration is global: put back whatever the session had."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


HOSTILE = "/v1/jobs/\x00x\x1b[2J\rok \u202egnp.exe\u2066"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_controls_and_bidi_overrides_are_escaped(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream)
    structlog.get_logger("test").info("request_finished", path=HOSTILE, seen=[HOSTILE])
    line = stream.getvalue()
    for character in ("\x00", "\x1b", "\r", "\u202e", "\u2066"):
        assert character not in line
    if fmt == "json":
        assert (
            json.loads(line)["path"] == "/v1/jobs/\\u0000x\\u001b[2J\\u000dok \\u202egnp.exe\\u2066"
        )
    else:
        assert "\\u202egnp.exe" in line


def test_a_traceback_keeps_its_lines() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        raise ValueError("bad \u202e value")
    except ValueError:
        structlog.get_logger("test").exception("failed")
    exception = json.loads(stream.getvalue())["exception"]
    assert "\n" in exception and "\u202e" not in exception
