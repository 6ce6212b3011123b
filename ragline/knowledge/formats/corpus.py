"""A BEIR-style corpus (.jsonl): one JSON object per line with ``_id``, ``text`` and an
optional ``title``; blank lines are ignored. Every other key of a line is metadata; a
``metadata`` object is merged in first, so ``{"metadata": {"allowed_groups": [...]}}`` and
a top-level ``"allowed_groups"`` both work (top level wins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ragline.errors import InvalidInput


@dataclass(frozen=True)
class CorpusLine:
    number: int  # 1-based
    raw: bytes  # the line's bytes, for its content hash
    id: str
    text: str
    title: str | None
    metadata: dict[str, Any]


def corpus_lines(raw: bytes, source: str) -> Iterator[CorpusLine]:
    """Each non-blank line of the file's bytes, checked; `source` names it in errors."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        label = f"{source} line {number}"
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"{label}: not UTF-8 text") from None
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{label}: not valid JSON: {error.msg}") from None
        if not isinstance(record, dict):
            raise InvalidInput(f"{label}: not a JSON object")
        doc_id = record.get("_id")
        if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or doc_id == "":
            raise InvalidInput(f"{label}: missing `_id` (a non-empty string)")
        text = record.get("text")
        if not isinstance(text, str):
            raise InvalidInput(f"{label}: missing `text` (a string)")
        title = record.get("title")
        if title is not None and not isinstance(title, str):
            raise InvalidInput(f"{label}: `title` must be a string")
        nested = record.get("metadata")
        if nested is not None and not isinstance(nested, dict):
            raise InvalidInput(f"{label}: `metadata` must be an object")
        metadata = {
            **(nested or {}),
            **{k: v for k, v in record.items() if k not in ("_id", "text", "metadata")},
        }
        yield CorpusLine(number, line, str(doc_id), text, title, metadata)
