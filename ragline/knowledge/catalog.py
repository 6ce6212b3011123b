"""The index versions as recorded: each build is an immutable collection kb_v{N} with a
manifest row; the alias names the active one. Reading only: building is in building.py,
moving the alias and cleaning up in releasing.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.config import Knowledge
from ragline.errors import InvalidInput, NotFound
from ragline.knowledge.sources import read_folder, source_checksum
from ragline.knowledge.store import KnowledgeStore
from ragline.models import IndexPromotion, IndexVersion

log = structlog.get_logger("ragline.index")


def collection_name(version: int) -> str:
    return f"kb_v{version}"


def version_of(collection: str) -> int | None:
    prefix = "kb_v"
    if collection.startswith(prefix) and collection[len(prefix) :].isdigit():
        return int(collection[len(prefix) :])
    return None


@dataclass(frozen=True)
class VersionListing:
    manifest: IndexVersion
    active: bool


@dataclass(frozen=True)
class VersionDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]


def promoted(engine: Engine) -> Callable[[str], str | None]:
    """The database as the alias: the collection of the last promotion or rollback. There
    is one alias per database (assistant_pipeline.retrieval.source), so the name is not
    looked up."""

    def collection(alias: str) -> str | None:
        with engine.connect() as connection:
            version = connection.execute(
                select(IndexPromotion.version).order_by(col(IndexPromotion.id).desc()).limit(1)
            ).scalar()
        return collection_name(version) if version is not None else None

    return collection


def recorded_versions(engine: Engine) -> list[VersionListing]:
    """Every version as the database records it, the active one being the target of the
    last promotion or rollback: what `index list` shows while another process (the server)
    holds the store."""
    with Session(engine, expire_on_commit=False) as session:
        last = session.exec(
            select(IndexPromotion).order_by(col(IndexPromotion.id).desc()).limit(1)
        ).first()
        rows = session.exec(select(IndexVersion).order_by(col(IndexVersion.version)))
        active = last.version if last else None
        return [VersionListing(m, m.version == active) for m in rows]


class VersionCatalog:
    def __init__(
        self, engine: Engine, store: KnowledgeStore, knowledge: Knowledge, alias: str
    ) -> None:
        self.engine = engine
        self.store = store
        self.knowledge = knowledge
        self.alias = alias

    # -- reading -------------------------------------------------------------------------------

    def active_version(self) -> int | None:
        collection = self.store.resolve_alias(self.alias)
        return version_of(collection) if collection else None

    def get(self, version: int) -> IndexVersion:
        with Session(self.engine, expire_on_commit=False) as session:
            manifest = session.get(IndexVersion, version)
        if manifest is None:
            raise NotFound(f"index version {version} does not exist")
        return manifest

    def list_versions(self) -> list[VersionListing]:
        active = self.active_version()
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(IndexVersion).order_by(col(IndexVersion.version)))
            return [VersionListing(m, m.version == active) for m in rows]

    def previous_version(self) -> int | None:
        """The version the alias pointed at before the current one (what rollback restores)."""
        with Session(self.engine) as session:
            last = session.exec(
                select(IndexPromotion).order_by(col(IndexPromotion.id).desc()).limit(1)
            ).first()
        return last.previous_version if last else None

    def unchanged_since_active(self, folder: Path) -> IndexVersion | None:
        """The active version if it was built from exactly these files with these settings."""
        active = self.active_version()
        if active is None:
            return None
        try:
            manifest = self.get(active)
        except NotFound:
            return None
        same = (
            manifest.status == "ready"
            and self.store.has_lexical(manifest.collection)  # else built before hybrid search
            and manifest.source_checksum == source_checksum(read_folder(folder))
            and manifest.embedding_model == self.knowledge.embedding_model
            and manifest.chunker == self.knowledge.chunking.model_dump()
        )
        return manifest if same else None

    def diff(self, a: int, b: int) -> VersionDiff:
        """Documents added, removed and changed from version a to version b."""
        old, new = self._documents(self.get(a)), self._documents(self.get(b))
        return VersionDiff(
            added=sorted(new.keys() - old.keys()),
            removed=sorted(old.keys() - new.keys()),
            changed=sorted(d for d in old.keys() & new.keys() if old[d] != new[d]),
        )

    def _documents(self, manifest: IndexVersion) -> dict[str, str]:
        self._require_collection(manifest)
        return {
            str(payload["document_id"]): str(payload.get("document_hash", ""))
            for payload, _ in self.store.points(manifest.collection, with_vectors=False)
        }

    def _require_collection(self, manifest: IndexVersion) -> None:
        if manifest.collection not in self.store.collection_names():
            raise InvalidInput(
                f"version {manifest.version} has no collection {manifest.collection} "
                f"(it is {manifest.status})"
            )
