"""Index versions built in Qdrant local mode (data_dir/qdrant: ragline's embedded store
before the edge engine, or RAGLINE_INDEX_ENGINE=qdrant-local) copied into sealed edge shards
the first time a process opens the edge store, so that a promoted knowledge base survives
the switch without a rebuild. The local folder is left as it was: setting
RAGLINE_INDEX_ENGINE=qdrant-local again serves it as before.

Each version keeps its chunks, payloads and dense vectors. Its lexical vectors are weighed
again from the chunks' text exactly as a build weighs them (BM25 over the version's average
chunk length), so a version built before hybrid retrieval can now be searched in every mode.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ragline.errors import StoreBusy
from ragline.knowledge.catalog import version_of
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.lexical import LexicalEncoder

if TYPE_CHECKING:
    from ragline.knowledge.qdrant_store import QdrantStore

log = structlog.get_logger("ragline.index")

BATCH = 256
# The versions copied so far (or found empty), beside the shards: a version copied once and
# later dropped by `ragline index gc` is not copied again.
RECORD = "imported-from-qdrant-local.json"


def local_versions(local: Path) -> list[str]:
    """The index versions Qdrant local mode holds in `local`, read from its metadata file
    (opening the store would load every point of every version into memory)."""
    meta = local / "meta.json"
    if not meta.is_file():
        return []
    try:
        collections = json.loads(meta.read_text()).get("collections", {})
    except (OSError, ValueError) as error:
        log.warning("local_index_unreadable", path=str(meta), error=type(error).__name__)
        return []
    return sorted(name for name in collections if version_of(name) is not None)


def import_local_versions(local: Path, edge: EdgeStore) -> list[str]:
    """Copy every version in `local` that `edge` lacks into a sealed shard; returns the
    names copied. Processes starting together take turns (a lock beside the shards), so
    each version is copied once. When another process holds the local store (a server
    still running Qdrant local mode), nothing is copied and a warning says so: the
    versions stay in the database and can be copied at the next start."""
    if not _missing(local, edge):
        return []
    with _turn(edge.root):
        missing = _missing(local, edge)  # another process may have copied them meanwhile
        if not missing:
            return []
        # Only now: qdrant-client costs ~90 MB, which a process with nothing to copy need not pay.
        from ragline.knowledge.qdrant_store import QdrantStore

        try:
            source = QdrantStore.open(path=local)
        except StoreBusy as error:
            log.warning("local_index_not_imported", versions=missing, error=str(error))
            return []
        try:
            for name in missing:
                started = time.perf_counter()
                chunks = _copy(source, edge, name)
                _record(edge.root, name)
                log.info(
                    "local_index_imported",
                    collection=name,
                    chunks=chunks,
                    seconds=round(time.perf_counter() - started, 1),
                )
        finally:
            source.close()
    return missing


def _missing(local: Path, edge: EdgeStore) -> list[str]:
    done = set(edge.collection_names()) | set(_recorded(edge.root))
    return [name for name in local_versions(local) if name not in done]


def _recorded(root: Path) -> list[str]:
    try:
        return list(json.loads((root / RECORD).read_text()))
    except FileNotFoundError:
        return []


def _record(root: Path, name: str) -> None:
    names = sorted({*_recorded(root), name})
    partial = root / f"{RECORD}.partial"
    partial.write_text(json.dumps(names))
    os.replace(partial, root / RECORD)


@contextmanager
def _turn(root: Path) -> Iterator[None]:
    descriptor = os.open(root / "import.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def _copy(source: QdrantStore, edge: EdgeStore, name: str) -> int:
    """One version, in two passes over the source: the chunks' lengths (BM25's average)
    first, then the points in batches."""
    encoder = LexicalEncoder()
    lengths = [
        len(encoder.terms(payload["text"]))
        for payload, _ in source.points(name, with_vectors=False)
    ]
    if not lengths:
        log.warning("local_index_empty", collection=name)
        return 0
    average = sum(lengths) / len(lengths)
    created = False
    batch: list[tuple[dict[str, Any], list[float]]] = []

    def flush() -> None:
        payloads = [payload for payload, _ in batch]
        edge.upsert(
            name,
            payloads,
            [vector for _, vector in batch],
            lexical=[encoder.document(payload["text"], average) for payload in payloads],
        )
        batch.clear()

    try:
        for payload, vector in source.points(name, with_vectors=True):
            if vector is None:
                raise ValueError(f"{name}: a point has no dense vector")
            if not created:
                edge.create_collection(name, len(vector))
                created = True
            batch.append((payload, vector))
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
        edge.seal(name)
    except BaseException:
        if created:
            edge.delete_collection(name)  # drops the unsealed build: nothing half-copied
        raise
    return len(lengths)
