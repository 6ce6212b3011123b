"""Reading a folder of documents for the indexer. Each format's reader is its own module
under ragline/knowledge/formats/; what is common to all (ids, sidecars, metadata, hashes,
errors) is here.

Formats (by suffix, case-insensitive; files and folders whose name starts with "." are
ignored):

- ``.md``/``.markdown``/``.txt``: UTF-8 text with optional YAML front matter.
- ``.html``/``.htm``: text extracted with the standard library's ``html.parser``; script,
  style, nav, header, footer, aside, form, noscript and template are dropped;
  ``<h1>``..``<h6>`` become Markdown headings so the chunker still sees sections;
  paragraphs, list items (``- item``) and table rows (cells joined by `` | ``) become
  separate paragraphs. Title: ``<title>``, else the first ``<h1>``, else the file name.
- ``.pdf`` (pypdf): the text of each page, pages joined by a blank line. Title: the PDF's
  metadata title, else the file name. A PDF that cannot be opened with an empty password
  is an InvalidInput ("encrypted PDF"); a PDF without extractable text (a scan) is
  skipped like an empty file, with a ``pdf_without_text`` warning in the log.
- ``.jsonl``: a BEIR-style corpus, one JSON object per line with ``_id``, ``text`` and an
  optional ``title``; blank lines are ignored. Every other key of a line is metadata; a
  ``metadata`` object is merged in first, so ``{"metadata": {"allowed_groups": [...]}}``
  and a top-level ``"allowed_groups"`` both work (top level wins).

Ids. A file's id is its path relative to the root without its extension (``hr/leave.md``
-> ``hr/leave``). A corpus line's id is its ``_id`` exactly when the file is
``corpus.jsonl`` directly in the root; for any other ``.jsonl`` it is the file's id, "/",
and the ``_id`` (``extra/more.jsonl`` -> ``extra/more/<_id>``). Two documents with the
same id anywhere in the folder (``a.md`` and ``a.txt``, a repeated ``_id``) are an
InvalidInput naming both sources. Documents with no text are skipped before this check.

Metadata. A file ``<name>.meta.yaml`` next to a source file (any format, including a
corpus, where it applies to every line) is a YAML mapping merged over the file's own
metadata (front matter, corpus line): on a key in both, the sidecar wins. Sidecars are not
documents (one without its file is ignored). Known keys: ``title``, ``allowed_groups``
(default ``["everyone"]``) and ``tags`` (a string or a list of strings); the others are
kept in ``Document.metadata``.

Content hash: sha256 of the file's raw bytes (a corpus line's bytes) and, when there is a
sidecar, of the sidecar's bytes too; so editing a sidecar changes the hash. Without a
sidecar the hash is the sha256 of the raw bytes alone.

Every bad input is an InvalidInput naming the file (and the line, for a corpus): a file
that cannot be read, text that is not UTF-8, an encrypted or unreadable PDF, invalid front
matter or sidecar YAML, a corpus line that is not a JSON object or lacks ``_id``/``text``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

from ragline.errors import InvalidInput
from ragline.knowledge.formats.corpus import corpus_lines
from ragline.knowledge.formats.html import html_to_text
from ragline.knowledge.formats.pdf import pdf_to_text
from ragline.knowledge.formats.text import first_heading, split_front_matter

log = structlog.get_logger("ragline.sources")

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
CORPUS_SUFFIXES = (".jsonl",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES + CORPUS_SUFFIXES
SIDECAR_SUFFIX = ".meta.yaml"
ROOT_CORPUS = "corpus.jsonl"

_KNOWN_KEYS = frozenset({"title", "allowed_groups", "tags"})


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


def _as_strings(value: Any, default: tuple[str, ...], key: str) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return tuple(str(v) for v in value)
    raise ValueError(f"`{key}` must be a string or a list of strings")


# -- reading bytes -------------------------------------------------------------------------


def _read_bytes(path: Path, label: str) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise InvalidInput(f"{label}: cannot read file: permission denied") from None
    except OSError as error:
        raise InvalidInput(f"{label}: cannot read file: {error.strerror or error}") from None


def _decode(raw: bytes, label: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InvalidInput(f"{label}: not UTF-8 text (line {line})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _load_sidecar(path: Path, root: Path) -> tuple[dict[str, Any], bytes]:
    """The sidecar's mapping and raw bytes ({} and b"" when there is none)."""
    sidecar = _sidecar_path(path)
    if not sidecar.is_file():
        return {}, b""
    label = _relative(sidecar, root)
    raw = _read_bytes(sidecar, label)
    try:
        data = yaml.safe_load(_decode(raw, label))
    except yaml.YAMLError as error:
        raise InvalidInput(f"{label}: invalid sidecar YAML: {error}") from None
    if data is None:
        return {}, raw
    if not isinstance(data, dict):
        raise InvalidInput(f"{label}: invalid sidecar YAML: must be a mapping")
    return data, raw


def _hash(origin: str, raw: bytes, sidecar: bytes) -> str:
    """Of the file it came from (so a rename to another format is a change), its bytes and
    its sidecar's."""
    digest = hashlib.sha256(origin.encode("utf-8") + b"\0")
    digest.update(raw)
    if sidecar:
        digest.update(b"\0sidecar\0")
        digest.update(sidecar)
    return digest.hexdigest()


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _document(
    *,
    doc_id: str,
    source: str,
    label: str,
    fallback_title: str,
    text: str,
    content_hash: str,
    meta: dict[str, Any],
) -> Document:
    try:
        allowed = _as_strings(meta.get("allowed_groups"), ("everyone",), "allowed_groups")
        tags = _as_strings(meta.get("tags"), (), "tags")
    except ValueError as error:
        raise InvalidInput(f"{label}: invalid metadata: {error}") from None
    title = meta.get("title")
    return Document(
        id=doc_id,
        source=source,
        title=(str(title).strip() if title is not None else "") or fallback_title,
        text=text.strip(),
        content_hash=content_hash,
        allowed_groups=allowed,
        tags=tags,
        metadata={k: v for k, v in meta.items() if k not in _KNOWN_KEYS},
    )


# -- corpus (.jsonl) -----------------------------------------------------------------------


def _corpus_lines(
    path: Path, root: Path, sidecar: dict[str, Any], sidecar_raw: bytes
) -> Iterator[tuple[int, Document]]:
    source = _relative(path, root)
    stem = source[: -len(path.suffix)]
    prefix = "" if source == ROOT_CORPUS else stem + "/"
    for line in corpus_lines(_read_bytes(path, source), source):
        yield (
            line.number,
            _document(
                doc_id=prefix + line.id,
                source=source,
                label=f"{source} line {line.number}",
                fallback_title=line.id,
                text=line.text,
                content_hash=_hash(source, line.raw, sidecar_raw),
                meta={**line.metadata, **sidecar},
            ),
        )


def read_corpus(path: Path, root: Path) -> list[Document]:
    """The documents of one BEIR-style .jsonl corpus file (empty texts dropped)."""
    sidecar, sidecar_raw = _load_sidecar(path, root)
    located = [
        (f"{doc.source} line {number}", doc)
        for number, doc in _corpus_lines(path, root, sidecar, sidecar_raw)
    ]
    return _unique(located)


# -- single files --------------------------------------------------------------------------


def _read_single(path: Path, root: Path, sidecar: dict[str, Any], sidecar_raw: bytes) -> Document:
    relative = _relative(path, root)
    suffix = path.suffix.lower()
    doc_id = relative[: -len(path.suffix)]
    stem = path.stem.replace("-", " ")
    raw = _read_bytes(path, relative)
    meta: dict[str, Any]
    if suffix in PDF_SUFFIXES:
        found_title, text = pdf_to_text(raw, relative)
        meta = {}
    elif suffix in HTML_SUFFIXES:
        found_title, text = html_to_text(_decode(raw, relative))
        meta = {}
    elif suffix in TEXT_SUFFIXES:
        decoded = _decode(raw, relative)
        try:
            meta, text = split_front_matter(decoded)
        except (yaml.YAMLError, ValueError) as error:
            raise InvalidInput(f"{relative}: invalid front matter: {error}") from None
        found_title = first_heading(text)
    else:
        raise InvalidInput(f"{relative}: unsupported file type {path.suffix!r}")
    return _document(
        doc_id=doc_id,
        source=relative,
        label=relative,
        fallback_title=found_title or stem,
        text=text,
        content_hash=_hash(relative, raw, sidecar_raw),
        meta={**meta, **sidecar},
    )


def read_document(path: Path, root: Path) -> Document:
    """One Markdown, text, HTML or PDF file (a .jsonl corpus holds many: see read_corpus)."""
    if path.suffix.lower() in CORPUS_SUFFIXES:
        raise InvalidInput(
            f"{_relative(path, root)}: a .jsonl corpus holds many documents; use read_corpus"
        )
    sidecar, sidecar_raw = _load_sidecar(path, root)
    return _read_single(path, root, sidecar, sidecar_raw)


# -- folders -------------------------------------------------------------------------------


def _unique(located: Iterable[tuple[str, Document]]) -> list[Document]:
    """The documents with text, in order; a repeated id is an InvalidInput naming both."""
    seen: dict[str, str] = {}
    documents: list[Document] = []
    for where, doc in located:
        if not doc.text:
            continue
        if doc.id in seen:
            raise InvalidInput(f"duplicate document id {doc.id!r}: {seen[doc.id]} and {where}")
        seen[doc.id] = where
        documents.append(doc)
    return documents


def _source_files(root: Path) -> list[Path]:
    paths = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if (
            path.suffix.lower() in SUPPORTED_SUFFIXES
            and not any(part.startswith(".") for part in parts)
            and path.is_file()
        ):
            paths.append(path)
    return sorted(paths)


def _located(root: Path) -> Iterator[tuple[str, Document]]:
    for path in _source_files(root):
        sidecar, sidecar_raw = _load_sidecar(path, root)
        if path.suffix.lower() in CORPUS_SUFFIXES:
            for number, doc in _corpus_lines(path, root, sidecar, sidecar_raw):
                yield f"{doc.source} line {number}", doc
            continue
        doc = _read_single(path, root, sidecar, sidecar_raw)
        if not doc.text and path.suffix.lower() in PDF_SUFFIXES:
            log.warning("pdf_without_text", source=doc.source)
        yield doc.source, doc


def read_folder(root: Path) -> list[Document]:
    """Every document under root, recursively, in a stable order (empty ones dropped)."""
    try:
        is_folder = root.is_dir()
    except OSError as error:  # is_dir() answers False only for a missing path, not for
        # one that cannot name a file at all (ENAMETOOLONG: a name over 255 bytes)
        raise InvalidInput(f"{root} is not a folder ({error.strerror})") from None
    if not is_folder:
        raise InvalidInput(f"{root} is not a folder")
    return _unique(_located(root))


def source_checksum(documents: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        digest.update(f"{doc.id}\0{doc.content_hash}\n".encode())
    return digest.hexdigest()
