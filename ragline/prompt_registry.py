"""The prompt registry: template versions as they were, by `name@hash`.

Templates live as files under prompts/; a file's version is its content hash. Every process
records the versions it loads (and `ragline prompts` the ones it reads), so the version
stored on a job can be shown and compared long after the file has changed.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ragline import audit
from ragline.audit import Actor
from ragline.errors import ConfigError, NotFound
from ragline.models import PromptVersion
from ragline.pipeline.prompts import PromptTemplate


def record(engine: Engine, template: PromptTemplate) -> None:
    with Session(engine) as session:
        if session.get(PromptVersion, template.version) is not None:
            return
        session.add(
            PromptVersion(version=template.version, name=template.name, content=template.source)
        )
        try:
            session.flush()
        except IntegrityError:  # another process recorded it first
            session.rollback()
            return
        # A new prompt version is a change to what the product answers with.
        audit.append(
            session,
            Actor.system("prompts"),
            "prompt.record",
            f"prompt:{template.version}",
            after={"name": template.name},
        )
        session.commit()


def current(folder: Path) -> list[PromptTemplate]:
    """The templates in the folder now (files that do not parse are reported, not skipped)."""
    return [PromptTemplate.load(folder, path.stem) for path in sorted(folder.glob("*.j2"))]


def versions(engine: Engine, name: str | None = None) -> list[PromptVersion]:
    query = select(PromptVersion).order_by(
        col(PromptVersion.name), col(PromptVersion.first_seen_at)
    )
    if name is not None:
        query = query.where(col(PromptVersion.name) == name)
    with Session(engine) as session:
        return list(session.exec(query))


def resolve(engine: Engine, folder: Path, reference: str) -> PromptVersion:
    """NAME (the file as it is now) or NAME@HASH (a recorded version, or the file's)."""
    name, _, digest = reference.partition("@")
    try:
        template = PromptTemplate.load(folder, name)
    except ConfigError:
        template = None
    if template is not None:
        record(engine, template)
        if not digest or template.version == reference:
            return PromptVersion(version=template.version, name=name, content=template.source)
    with Session(engine) as session:
        found = session.get(PromptVersion, reference) if digest else None
    if found is None:
        raise NotFound(f"prompt version {reference} is not known")
    return found


def diff(old: PromptVersion, new: PromptVersion) -> str:
    return "".join(
        difflib.unified_diff(
            old.content.splitlines(keepends=True),
            new.content.splitlines(keepends=True),
            fromfile=old.version,
            tofile=new.version,
        )
    )
