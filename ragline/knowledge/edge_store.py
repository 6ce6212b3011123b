"""The embedded vector store on Qdrant's own engine in process (qdrant-edge): HNSW, sparse
vectors with IDF and payload indexes, at a few milliseconds per query where Qdrant local
mode scans every point in Python (bench/retrieval_engines.py).

Each index version is an immutable shard in its own folder, `ROOT/kb_vN`:
- built in `ROOT/kb_vN.partial` (create_collection, upsert), then sealed: HNSW built, files
  flushed, a checksum of every file written to SEAL, and the folder renamed into place in
  one step. A build interrupted mid-way leaves only a `.partial` folder, which is never
  listed, searched or promoted;
- written without a write-ahead log, so a sealed shard takes no lock: every process (the
  server, each worker, `ragline index`) opens it at once. The engine's first load of a
  shard rewrites some of its files; sealing does that load, so later loads leave every
  file as sealed (the seal check would say otherwise);
- checked against its SEAL when a process first opens it: a missing or corrupt shard is
  refused with a clear error (IndexNotReady), never searched. Checking reads every file
  (about a second per million chunks), so a process that is already answering opens a newly
  promoted version in the background and keeps answering from the one it served until the
  new one is ready (or refused: then it stays on the old one and says so).

The alias is the database's: the version of the last promotion or rollback (`aliases`),
read again at most every ALIAS_TTL_S; a process that answers jobs also follows it from a
thread (follow), opening a newly promoted version as soon as it is read, so a promotion
reaches every running process within a second (plus the new version's check) without a
restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import structlog
from qdrant_edge import (
    AcornSearchParams,
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    HnswIndexConfig,
    KeywordIndexParams,
    MatchAny,
    Modifier,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)
from qdrant_edge import SparseVector as EdgeSparse

from ragline.errors import IndexNotReady
from ragline.knowledge.lexical import SparseVector
from ragline.knowledge.store import (
    DENSE,
    FUSED_EXTRA,
    LEXICAL,
    AliasedSearch,
    Passage,
    RetrievalMode,
    cosine,
    fused_order,
    point_id,
)

log = structlog.get_logger("ragline.store")

AliasSource = Callable[[str], str | None]  # alias -> the collection promoted behind it
ALIAS_TTL_S = 0.5
WARM_RETRY_S = 1.0  # a promoted version that could not be opened is tried again after this
SEAL = "SEAL.json"  # every file of a sealed shard with its size and SHA-256
ATOMIC_WRITE = ".atomicwrite"  # the engine's staging folder for a file it replaces
PARTIAL = ".partial"
RRF_K = 2  # Qdrant's (server and local mode) reciprocal-rank constant
# Qdrant's HNSW defaults; segments under full_scan_threshold KB (and filters matching fewer
# points than that) are searched exactly, which is what small knowledge bases get.
HNSW = HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000)
# The default (10,000 KB, ~6,600 vectors of 384 floats) would leave smaller segments without
# a graph; a sealed shard is optimised once, so index whatever it holds.
INDEXING_THRESHOLD_KB = 1_000
# Every query filters on the caller's groups. A filter that keeps a minority of a large
# shard cuts the HNSW graph into pieces a plain search cannot cross: measured at 300k
# chunks, a group held by 20% of them gave recall@10 0.248 (0.478 with ef 256). ACORN
# (Qdrant's filtered graph search) also walks neighbours' neighbours when the filter keeps
# at most 40% of the points (its default), which gave 0.987 at 2 ms p50; broader filters
# and unfiltered queries search as before.
SEARCH = SearchParams(acorn=AcornSearchParams(enable=True))
# A panic inside the engine (a truncated file) surfaces as pyo3's PanicException, which
# derives from BaseException; catch it by name rather than every BaseException.
_ENGINE_PANIC = "PanicException"


class EdgeStore(AliasedSearch):
    """The KnowledgeStore interface (ragline/knowledge/store.py) over sealed shards."""

    remote = False

    def __init__(self, root: Path, aliases: AliasSource) -> None:
        self.root = root
        self._aliases = aliases
        self._lock = threading.Lock()
        self._readers: dict[str, EdgeShard] = {}
        self._writers: dict[str, tuple[EdgeShard, int]] = {}  # collection -> (shard, lock fd)
        self._alias_cache: dict[str, tuple[float, str | None]] = {}
        self._serving: dict[str, str] = {}  # alias -> the version that last answered
        self._refused: dict[str, str] = {}  # collection -> why it cannot be opened
        self._opening: dict[str, threading.Lock] = {}  # collection -> held while loading
        self._warming: dict[str, float] = {}  # collection -> when a background open began

    @classmethod
    def open(cls, path: Path, aliases: AliasSource) -> EdgeStore:
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, aliases)

    def close(self) -> None:
        with self._lock:
            for shard in self._readers.values():
                shard.close()
            self._readers.clear()
            for collection in list(self._writers):
                self._abandon(collection)

    def ping(self) -> None:
        if not self.root.is_dir():
            raise IndexNotReady(f"the knowledge store folder {self.root} is missing")

    # -- versions --------------------------------------------------------------------------

    def collection_names(self) -> list[str]:
        """Sealed shards only: a build in progress or interrupted is not a version yet."""
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and not entry.name.endswith(PARTIAL) and (entry / SEAL).is_file()
        )

    def has_lexical(self, collection: str) -> bool:
        return True  # every shard is built with its lexical vectors

    def create_collection(self, name: str, dimension: int) -> None:
        """Start building `name` in its .partial folder, holding a lock on it so that a
        second indexer cannot write into the same version."""
        partial = self._partial(name)
        if (self.root / name).exists():
            raise IndexNotReady(f"{name} is already built in {self.root}")
        lock_fd = os.open(self.root / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise IndexNotReady(f"{name} is being built by another indexer") from None
        shutil.rmtree(partial, ignore_errors=True)  # what an interrupted build left
        config = EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=dimension, distance=Distance.Cosine)},
            sparse_vectors={LEXICAL: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            hnsw_config=HNSW,
            optimizers=EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
            wal_enabled=False,  # no lock when sealed; durability comes from seal()'s flush
        )
        shard = EdgeShard.create(str(partial), config)
        shard.update(UpdateOperation.create_field_index("allowed_groups", KeywordIndexParams()))
        with self._lock:
            self._writers[name] = (shard, lock_fd)

    def upsert(
        self,
        collection: str,
        payloads: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
        lexical: Sequence[SparseVector] | None = None,
    ) -> None:
        shard = self._writer(collection)
        points = []
        for i, (payload, vector) in enumerate(zip(payloads, vectors, strict=True)):
            named: dict[str, Any] = {DENSE: list(vector)}
            if lexical is not None:
                named[LEXICAL] = EdgeSparse(indices=lexical[i].indices, values=lexical[i].values)
            points.append(Point(point_id(payload["chunk_id"]), named, payload))
        shard.update(UpdateOperation.upsert_points(points))

    def seal(self, collection: str) -> None:
        """Build the HNSW graph, flush, record every file's checksum and move the shard
        into place: from here on it never changes."""
        shard, lock_fd = self._writers[collection]
        started = time.perf_counter()
        shard.optimize()
        shard.flush()
        shard.close()
        partial = self._partial(collection)
        # The first load replays the segments' trackers and rewrites the stored config;
        # do it here, so that what the seal records is what every later load leaves as is.
        EdgeShard.load(str(partial)).close()
        (partial / SEAL).write_text(json.dumps(_checksums(partial), indent=1, sort_keys=True))
        os.rename(partial, self.root / collection)
        with self._lock:
            del self._writers[collection]
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)
        (self.root / f"{collection}.lock").unlink(missing_ok=True)
        log.info(
            "shard_sealed", collection=collection, seconds=round(time.perf_counter() - started, 2)
        )

    def delete_collection(self, name: str) -> None:
        with self._lock:
            self._refused.pop(name, None)
            reader = self._readers.pop(name, None)
            if reader is not None:
                reader.close()
            if name in self._writers:
                self._abandon(name)
        shutil.rmtree(self._partial(name), ignore_errors=True)
        shutil.rmtree(self.root / name, ignore_errors=True)

    def count(self, collection: str) -> int:
        return int(self._shard(collection).count(CountRequest(exact=True)))

    def points(
        self, collection: str, with_vectors: bool = True, batch: int = 1000
    ) -> Iterator[tuple[dict[str, Any], list[float] | None]]:
        """Every point of a collection as (payload, dense vector), in pages."""
        shard = self._shard(collection)
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                ScrollRequest(
                    offset=offset,
                    limit=batch,
                    with_payload=True,
                    with_vector=[DENSE] if with_vectors else False,
                )
            )
            for record in records:
                yield dict(record.payload or {}), _dense(record.vector) if with_vectors else None
            if offset is None:
                return

    # -- the alias -------------------------------------------------------------------------

    def resolve_alias(self, alias: str) -> str | None:
        now = time.monotonic()
        cached = self._alias_cache.get(alias)
        if cached is not None and now - cached[0] < ALIAS_TTL_S:
            return cached[1]
        try:
            collection = self._aliases(alias)
        except Exception as error:
            if cached is None:
                raise
            # The database is unreachable for a moment: keep answering from the version
            # last read rather than failing every search; try again on the next one.
            log.warning("index_alias_unread", alias=alias, error=type(error).__name__)
            self._alias_cache[alias] = (now, cached[1])  # and ask again in ALIAS_TTL_S
            return cached[1]
        self._alias_cache[alias] = (now, collection)
        return collection

    def follow(self, alias: str) -> Callable[[], None]:
        """Watch the alias from a thread of its own, for a process that answers jobs: it is
        read every ALIAS_TTL_S and a newly promoted version opened (checked, loaded) at
        once, so the process answers from it within ALIAS_TTL_S and its opening time of
        the promotion whether or not jobs arrive meanwhile. Searches alone noticed a
        promotion only on the next job, and answered from the old version while the new
        one opened. Returns what stops the watch."""
        stop = threading.Event()

        def watch() -> None:
            failing = False
            while not stop.wait(ALIAS_TTL_S):
                try:
                    promoted = self.resolve_alias(alias)
                except Exception as error:  # no version read yet and the database is down
                    if not failing:
                        log.warning("index_alias_unread", alias=alias, error=type(error).__name__)
                    failing = True
                    continue
                failing = False
                if promoted is not None and not self._is_open(promoted):
                    self._open_in_background(promoted)

        watcher = threading.Thread(target=watch, name=f"follow-{alias}", daemon=True)
        watcher.start()

        def unfollow() -> None:
            stop.set()
            watcher.join(timeout=2 * ALIAS_TTL_S)

        return unfollow

    def point_alias(self, alias: str, collection: str) -> None:
        """The database's promotion row moves the alias (IndexReleases records it); this
        process reads it again at once rather than after ALIAS_TTL_S."""
        self._alias_cache.pop(alias, None)

    def alias_moved(self, alias: str) -> None:
        self._alias_cache.pop(alias, None)

    # -- searching -------------------------------------------------------------------------

    def search(
        self,
        alias: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> tuple[str, list[Passage]]:
        """AliasedSearch.search, except that the version this process served before keeps
        answering (and is named as the one that did) while a newly promoted version is
        being opened in the background, and for good if that version cannot be opened
        (missing, damaged). With no version served before, the promoted one is opened
        here, and a refusal is the answer."""
        promoted = self.resolve_alias(alias)
        if promoted is None:
            raise IndexNotReady(f"no index version is promoted behind '{alias}'")
        serving = self._serving.get(alias)
        if serving is None or serving == promoted or self._is_open(promoted):
            target = promoted
        else:
            self._open_in_background(promoted)
            target = serving
        try:
            passages = self.search_collection(target, vector, limit, groups, lexical, mode)
        except IndexNotReady as refused:
            if serving is None or target == serving:
                raise
            log.error(
                "index_version_refused", promoted=promoted, serving=serving, error=str(refused)
            )
            target = serving
            passages = self.search_collection(target, vector, limit, groups, lexical, mode)
        self._serving[alias] = target
        return target, passages

    def search_collection(
        self,
        collection: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> list[Passage]:
        """As KnowledgeStore.search_collection: the group filter is part of the query and
        of each prefetch; every passage's score is its cosine similarity to the question."""
        if not groups:
            return []
        if mode != "dense" and lexical is None:
            raise ValueError(f"mode {mode} needs the question's lexical vector")
        allowed = Filter(
            must=[FieldCondition(key="allowed_groups", match=MatchAny(any=list(groups)))]
        )
        dense_query = list(vector)
        sparse_query: Any = (
            EdgeSparse(indices=lexical.indices, values=lexical.values) if lexical else None
        )
        request: QueryRequest
        if mode == "dense":
            request = QueryRequest(
                limit=limit,
                query=Query.Nearest(dense_query, using=DENSE),
                filter=allowed,
                params=SEARCH,
                with_payload=True,
                with_vector=False,
            )
        elif mode == "sparse":
            request = QueryRequest(
                limit=limit,
                query=Query.Nearest(sparse_query, using=LEXICAL),
                filter=allowed,
                with_payload=True,
                with_vector=[DENSE],
            )
        else:
            candidates = max(limit * 4, 20)
            request = QueryRequest(
                limit=limit + FUSED_EXTRA,
                prefetches=[
                    Prefetch(
                        limit=candidates,
                        query=Query.Nearest(dense_query, using=DENSE),
                        filter=allowed,
                        params=SEARCH,
                    ),
                    Prefetch(
                        limit=candidates,
                        query=Query.Nearest(sparse_query, using=LEXICAL),
                        filter=allowed,
                    ),
                ],
                query=cast(Any, Fusion.Rrf(k=RRF_K)),  # the stubs leave Rrf out of the union
                filter=allowed,
                with_payload=True,
                with_vector=[DENSE],
            )
        scored = [
            (
                float(hit.score),
                Passage.of(
                    hit.payload or {},
                    float(hit.score)
                    if mode == "dense"
                    else cosine(_dense(hit.vector), dense_query),
                ),
            )
            for hit in self._shard(collection).query(request)
        ]
        if mode == "hybrid":
            return fused_order(scored, limit)
        return [passage for _, passage in scored]

    # -- shards ----------------------------------------------------------------------------

    def _partial(self, name: str) -> Path:
        return self.root / f"{name}{PARTIAL}"

    def _writer(self, collection: str) -> EdgeShard:
        with self._lock:
            if collection not in self._writers:
                raise IndexNotReady(f"{collection} is not being built by this process")
            return self._writers[collection][0]

    def _is_open(self, collection: str) -> bool:
        with self._lock:
            return collection in self._readers or collection in self._writers

    def _open_in_background(self, collection: str) -> None:
        """Open (check and load) a version in a thread of its own, once at a time and not
        again within WARM_RETRY_S of the last try; a refusal is logged there (and
        remembered when the shard is damaged, see _shard)."""
        now = time.monotonic()
        with self._lock:
            if collection in self._refused or now - self._warming.get(collection, -1e9) < (
                WARM_RETRY_S
            ):
                return
            self._warming[collection] = now

        def warm() -> None:
            try:
                self._shard(collection)
                log.info("index_version_opened", collection=collection)
            except IndexNotReady as refused:
                log.error("index_version_refused", promoted=collection, error=str(refused))

        threading.Thread(target=warm, name=f"open-{collection}", daemon=True).start()

    def _shard(self, collection: str) -> EdgeShard:
        """The shard to read: the one being built (its own checks), else the sealed one,
        opened once per process after checking it against its seal. The check runs outside
        the store's lock (other versions keep answering), one thread per version."""
        with self._lock:
            if collection in self._writers:
                return self._writers[collection][0]
            shard = self._readers.get(collection)
            if shard is not None:
                return shard
            if collection in self._refused:  # checked once: a shard never changes
                raise IndexNotReady(self._refused[collection])
            opening = self._opening.setdefault(collection, threading.Lock())
        with opening:
            with self._lock:
                shard = self._readers.get(collection)
                if shard is not None:  # another thread opened it meanwhile
                    return shard
                if collection in self._refused:
                    raise IndexNotReady(self._refused[collection])
            try:
                shard = self._load(collection)
            except IndexNotReady as refused:
                # A damaged shard stays damaged; a missing one may still arrive (a copy
                # onto a shared volume, an import from Qdrant local mode).
                if (self.root / collection).exists():
                    with self._lock:
                        self._refused[collection] = str(refused)
                raise
            with self._lock:
                self._readers[collection] = shard
            return shard

    def _load(self, collection: str) -> EdgeShard:
        folder = self.root / collection
        seal = folder / SEAL
        if not seal.is_file():
            raise IndexNotReady(
                f"index version {collection} is missing from {self.root} (no sealed shard): "
                "rebuild it with `ragline index build`"
            )
        expected = json.loads(seal.read_text())
        actual = _checksums(folder)
        if actual != expected:
            damaged = sorted(
                name
                for name in expected.keys() | actual.keys()
                if expected.get(name) != actual.get(name)
            )
            raise IndexNotReady(
                f"index version {collection} is corrupt ({len(damaged)} files differ from "
                f"its seal, e.g. {damaged[0]}): rebuild it or roll back"
            )
        try:
            return EdgeShard.load(str(folder))
        except BaseException as error:
            if isinstance(error, Exception) or type(error).__name__ == _ENGINE_PANIC:
                raise IndexNotReady(
                    f"index version {collection} cannot be opened: {error}"
                ) from None
            raise

    def _abandon(self, collection: str) -> None:
        """Drop a build this process did not seal (the caller holds self._lock)."""
        shard, lock_fd = self._writers.pop(collection)
        shard.close()
        shutil.rmtree(self._partial(collection), ignore_errors=True)
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


def _dense(vector: Any) -> list[float] | None:
    """The dense vector of a record's named vectors."""
    found = vector.get(DENSE) if isinstance(vector, dict) else None
    return list(found) if found is not None else None


def _checksums(folder: Path) -> dict[str, list[Any]]:
    """Size and SHA-256 of every file but the seal and the engine's atomic-write staging: a
    load rewrites edge_config.json (same bytes) through a `.atomicwrite*` folder, and
    another process opening the version at that moment (every worker does, on a promotion)
    must not take the staged copy for damage."""
    sums: dict[str, list[Any]] = {}
    for path in sorted(folder.rglob("*")):
        staged = any(part.startswith(ATOMIC_WRITE) for part in path.relative_to(folder).parts)
        if path.is_file() and path.name != SEAL and not staged:
            digest = hashlib.sha256()
            with path.open("rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
            sums[str(path.relative_to(folder))] = [path.stat().st_size, digest.hexdigest()]
    return sums
