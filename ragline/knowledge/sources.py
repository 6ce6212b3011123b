"""Reading a folder of documents: Markdown and text files with optional YAML front matter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ragline.errors import InvalidInput

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt")


@dataclass(frozen=True)
class Document:
    id: str
    source: str
    title: str
    text: str
    content_hash: str
    allowed_groups: tuple[str, ...] = ("everyone",)
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


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


def _first_heading(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return None


def _as_strings(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def read_document(path: Path, root: Path) -> Document:
    relative = path.relative_to(root).as_posix()
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{relative}: not UTF-8 text") from None
    try:
        front, body = split_front_matter(raw)
    except (yaml.YAMLError, ValueError) as error:
        raise InvalidInput(f"{relative}: invalid front matter: {error}") from None
    title = str(front.get("title") or _first_heading(body) or path.stem.replace("-", " "))
    known = {"title", "allowed_groups", "tags"}
    return Document(
        id=relative.rsplit(".", 1)[0],
        source=relative,
        title=title,
        text=body.strip(),
        content_hash=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
        allowed_groups=_as_strings(front.get("allowed_groups"), ("everyone",)),
        tags=_as_strings(front.get("tags"), ()),
        metadata={k: v for k, v in front.items() if k not in known},
    )


def read_folder(root: Path) -> list[Document]:
    """Every supported file under root, recursively, in a stable order."""
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder")
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")
    )
    return [doc for doc in (read_document(p, root) for p in paths) if doc.text]


def source_checksum(documents: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        digest.update(f"{doc.id}\0{doc.content_hash}\n".encode())
    return digest.hexdigest()
