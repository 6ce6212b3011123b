"""A corpus's smoke questions: what the gate asks each new version of it before promotion.

They belong to the corpus, not to the deployment: a `smoke.yaml` beside the documents (the
indexer never reads .yaml as a document), or a file named at build time. A list of
`{question, expected_documents, groups}`; `.jsonl` files hold one such object per line.
`knowledge.gate.smoke_queries` in the config still applies to every build that brings none,
and a build with no smoke set at all skips the check and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ragline.config import SmokeQuery
from ragline.errors import InvalidInput

SMOKE_FILE = "smoke.yaml"
NO_SMOKE_SET = (
    f"no smoke set: add {SMOKE_FILE} beside the documents (or `--smoke FILE`) to have each "
    "build's retrieval checked before promotion"
)


@dataclass(frozen=True)
class SmokeSet:
    queries: list[SmokeQuery] = field(default_factory=list)
    source: str | None = None  # a file, "config", or None when there is no smoke set


def smoke_set(folder: Path, explicit: Path | None, configured: list[SmokeQuery]) -> SmokeSet:
    """The smoke set of a build from `folder`: `explicit` first, then the folder's own
    smoke.yaml, then the configured questions; empty when there is none of them."""
    if explicit is not None:
        return SmokeSet(read_smoke(explicit), str(explicit))
    beside = folder / SMOKE_FILE
    if beside.is_file():
        return SmokeSet(read_smoke(beside), str(beside))
    if configured:
        return SmokeSet(list(configured), "config")
    return SmokeSet()


def read_smoke(path: Path) -> list[SmokeQuery]:
    """The questions in a smoke file; anything unreadable is refused naming the file, the
    item and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"smoke file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"smoke file {path} cannot be read: {error}") from None
    raw = _parse(path, text)
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(
            f"smoke file {path}: expected a list of {{question, expected_documents}} items"
        )
    queries = []
    for number, item in enumerate(raw, start=1):
        try:
            queries.append(SmokeQuery.model_validate(item))
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "item"
            raise InvalidInput(
                f"smoke file {path}, item {number}: {where}: {problem['msg']}"
            ) from None
    return queries


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InvalidInput(f"smoke file {path}, line {number}: {error.msg}") from None
        return items
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"smoke file {path}{where}: not valid YAML") from None
