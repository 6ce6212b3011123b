"""Markdown and plain text: optional YAML front matter (the document's metadata), the
first ``# `` heading as the title."""

from __future__ import annotations

from typing import Any

import yaml


def split_front_matter(raw: str) -> tuple[dict[str, Any], str]:
    if not raw.startswith("---"):
        return {}, raw
    lines = raw.splitlines(keepends=True)
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            data = yaml.safe_load("".join(lines[1:end])) or {}
            if not isinstance(data, dict):
                raise ValueError("front matter must be a mapping")
            return data, "".join(lines[end + 1 :])
    return {}, raw


def first_heading(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return None
