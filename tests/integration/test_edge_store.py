"""The embedded engine (qdrant-edge) against Qdrant local mode on the same handbook: the same
passages for the same question in every retrieval mode and group set; sealed shards that
no interrupted build, concurrent indexer or damaged file can pass off as a version; many
processes reading one version, and promotions reaching them through the database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import structlog
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from ragline.config import RaglineConfig
from ragline.errors import IndexNotReady
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import SEAL, EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.lexical import LexicalEncoder
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.store import KnowledgeStore, RetrievalMode
from ragline.knowledge.versions import IndexManager
from ragline.schema import create_schema
from tests.support.environment import REPO
from tests.support.waiting import wait_for

HANDBOOK = REPO / "examples" / "handbook"
ALIAS = "approved-knowledge-base"
QUESTIONS = [
    json.loads(line)["question"]
    for line in (REPO / "eval" / "guardrails.jsonl").read_text().splitlines()
    if line.strip()
][:40]
GROUPS = (("everyone",), ("everyone", "sales", "support-staff"), ("sales",))


@dataclass
class Built:
    engine: Engine
    store: EdgeStore
    manager: IndexManager
    version: int


def _manager(
    engine: Engine, store: KnowledgeStore, embedder: Embedder, config: RaglineConfig
) -> IndexManager:
    return IndexManager(engine, store, embedder, config.knowledge, alias=ALIAS)


S = TypeVar("S", bound=KnowledgeStore)


def _handbook(
    root: Path, open_store: Callable[[Engine], S], embedder: Embedder, config: RaglineConfig
) -> Iterator[tuple[Engine, S, IndexManager, int]]:
    """The handbook built and promoted once, on a store opened over a SQLite manifest;
    closed when the module's tests are done."""
    engine = create_engine(f"sqlite:///{root / 'manifest.db'}")
    create_schema(engine)
    store = open_store(engine)
    manager = _manager(engine, store, embedder, config)
    version = manager.build(HANDBOOK).version
    manager.promote(version)
    yield engine, store, manager, version
    store.close()
    engine.dispose()


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[Built]:
    """The handbook built and promoted once on the embedded engine."""
    root = tmp_path_factory.mktemp("edge")
    for built in _handbook(
        root, lambda engine: EdgeStore.open(root / "index", promoted(engine)), embedder, repo_config
    ):
        yield Built(*built)


@pytest.fixture(scope="module")
def local(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[KnowledgeStore]:
    """The same handbook built and promoted in Qdrant local mode."""
    root = tmp_path_factory.mktemp("local")
    for _, store, _, _ in _handbook(
        root, lambda _: QdrantStore.open(path=root / "qdrant"), embedder, repo_config
    ):
        yield store


def _ids(store: KnowledgeStore, vector, lexical, mode: RetrievalMode, groups) -> list[str]:
    _, passages = store.search(ALIAS, vector, 10, groups, lexical=lexical, mode=mode)
    return [p.chunk_id for p in passages]


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_the_same_passages_as_qdrant_local_mode_for_every_question_and_group_set(
    edge: Built, local: KnowledgeStore, embedder: Embedder, mode: RetrievalMode
) -> None:
    """Both search exactly at this size (under full_scan_threshold): dense rankings are
    identical. Equal BM25 scores come back in each engine's own order, which moves a
    sparse ranking and, where the tie is at a prefetch's cut, a fused one; fused ties
    themselves are broken alike (store.fused_order)."""
    encoder = LexicalEncoder()
    vectors = embedder.embed(QUESTIONS)
    same_order = same_set = compared = 0
    for question, vector in zip(QUESTIONS, vectors.tolist(), strict=True):
        lexical = encoder.query(question)
        for groups in GROUPS:
            ours = _ids(edge.store, vector, lexical, mode, groups)
            theirs = _ids(local, vector, lexical, mode, groups)
            compared += 1
            same_order += ours == theirs
            same_set += set(ours) == set(theirs)
            if mode == "dense":
                assert ours == theirs, (question, groups)
    assert compared == len(QUESTIONS) * len(GROUPS)
    print(f"{mode}: same order {same_order}/{compared}, same set {same_set}/{compared}")
    if mode != "dense":
        assert same_set / compared >= 0.9, (mode, same_set, compared)
    if mode == "hybrid":
        assert same_order / compared >= 0.95, (same_order, compared)


def test_scores_are_cosine_in_every_mode_and_groups_filter_inside_the_query(
    edge: Built, embedder: Embedder
) -> None:
    question = "Who may see the sales commission plan?"
    vector = embedder.embed_one(question).tolist()
    lexical = LexicalEncoder().query(question)
    for mode in ("dense", "sparse", "hybrid"):
        _, everyone = edge.store.search(ALIAS, vector, 30, ["everyone"], lexical, mode)
        assert everyone and all("everyone" in p.groups for p in everyone)
        assert all(-1.0 <= p.score <= 1.0 for p in everyone)
        _, sales = edge.store.search(ALIAS, vector, 30, ["sales"], lexical, mode)
        assert sales and all(p.groups == ("sales",) for p in sales)
    assert edge.store.search(ALIAS, vector, 5, [], lexical, "hybrid")[1] == []


def test_an_interrupted_build_leaves_nothing_promotable(
    tmp_path: Path, sqlite_engine: Engine, embedder: Embedder, repo_config: RaglineConfig
) -> None:
    store = EdgeStore.open(tmp_path / "index", promoted(sqlite_engine))
    manager = _manager(sqlite_engine, store, embedder, repo_config)

    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "chunks" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manager.build(HANDBOOK, progress=interrupt)
    failed = manager.list_versions()[-1].manifest
    assert failed.status == "failed"
    assert store.collection_names() == []
    store.close()  # the build's folder goes with the process that wrote it
    reopened = EdgeStore.open(tmp_path / "index", promoted(sqlite_engine))
    assert reopened.collection_names() == []
    with pytest.raises(Exception, match=r"not ready|no collection"):
        _manager(sqlite_engine, reopened, embedder, repo_config).promote(failed.version)
    assert not list((tmp_path / "index").glob("*.partial"))
    reopened.close()


def test_two_indexers_cannot_write_the_same_version(tmp_path: Path) -> None:
    first = EdgeStore.open(tmp_path, lambda alias: None)
    second = EdgeStore.open(tmp_path, lambda alias: None)
    first.create_collection("kb_v7", 4)
    with pytest.raises(IndexNotReady, match="being built by another indexer"):
        second.create_collection("kb_v7", 4)
    first.upsert(
        "kb_v7",
        [{"chunk_id": "a", "document_id": "d", "text": "x", "allowed_groups": ["g"]}],
        [[1.0, 0.0, 0.0, 0.0]],
    )
    first.seal("kb_v7")
    with pytest.raises(IndexNotReady, match="already built"):
        second.create_collection("kb_v7", 4)
    assert second.collection_names() == ["kb_v7"]
    assert second.count("kb_v7") == 1
    first.close()
    second.close()


def test_two_builds_at_once_each_get_their_own_version(
    tmp_path: Path, sqlite_engine: Engine, embedder: Embedder, repo_config: RaglineConfig
) -> None:
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.md").write_text(f"# Policy {name}\n\nThe {name} rule is strict.\n")
        folders.append(folder)
    store = EdgeStore.open(tmp_path / "index", promoted(sqlite_engine))
    results: dict[str, object] = {}

    def build(folder: Path) -> None:
        manager = _manager(sqlite_engine, store, embedder, repo_config)
        try:
            results[folder.name] = manager.build(folder).version
        except Exception as error:  # reported below
            results[folder.name] = error

    threads = [threading.Thread(target=build, args=(f,)) for f in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    built = {v for v in results.values() if isinstance(v, int)}
    # Both built, or one refused cleanly: never two builds in one shard.
    assert built, results
    for version in built:
        assert store.count(f"kb_v{version}") == 1
    for outcome in results.values():
        if not isinstance(outcome, int):
            assert isinstance(outcome, Exception)
    store.close()


def test_a_damaged_or_missing_shard_is_refused_with_a_clear_error(
    edge: Built, tmp_path: Path, embedder: Embedder
) -> None:
    copy = tmp_path / "index"
    shutil.copytree(edge.store.root, copy)
    collection = f"kb_v{edge.version}"
    victim = max(
        (p for p in (copy / collection).rglob("*") if p.is_file() and p.name != SEAL),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    damaged = EdgeStore.open(copy, promoted(edge.engine))
    vector = embedder.embed_one("annual leave").tolist()
    with pytest.raises(IndexNotReady, match="corrupt"):
        damaged.search(ALIAS, vector, 5, ["everyone"])
    shutil.rmtree(copy / collection)
    with pytest.raises(IndexNotReady, match="missing"):
        EdgeStore.open(copy, promoted(edge.engine)).search(ALIAS, vector, 5, ["everyone"])
    damaged.close()


READER = """
import sys, time, json
from sqlalchemy import create_engine
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.observability import configure_logging
configure_logging("INFO", "json")  # on stderr: stdout says which version answered
root, url, vector = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
store = EdgeStore.open(__import__("pathlib").Path(root), promoted(create_engine(url)))
print(json.dumps(store.search("approved-knowledge-base", vector, 3, ["everyone"])[0]), flush=True)
for line in sys.stdin:  # each line: search again and say which version answered
    print(json.dumps(store.search("approved-knowledge-base", vector, 3, ["everyone"])[0]),
          flush=True)
"""


def test_many_processes_read_one_version_and_see_a_promotion_without_restarting(
    edge: Built, embedder: Embedder, tmp_path: Path
) -> None:
    vector = embedder.embed_one("How many days of annual leave?").tolist()
    url = str(edge.engine.url)
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(edge.store.root), url, json.dumps(vector)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    try:
        before = f"kb_v{edge.version}"
        for reader in readers:  # this process holds the same shard open meanwhile
            assert reader.stdout is not None
            assert json.loads(reader.stdout.readline()) == before
        edge.store.search(ALIAS, vector, 3, ["everyone"])
        (tmp_path / "v2").mkdir()
        (tmp_path / "v2" / "leave.md").write_text("# Leave\n\nEveryone gets 30 days of leave.\n")
        newer = edge.manager.build(tmp_path / "v2").version
        edge.manager.promote(newer, force=True, reason="test: another corpus")

        for reader in readers:
            wait_for(lambda r=reader: answered_by(r, f"kb_v{newer}"), timeout_s=10)
        edge.manager.rollback(reason="test: back")
        for reader in readers:
            wait_for(lambda r=reader: answered_by(r, before), timeout_s=10)
    finally:
        for reader in readers:
            reader.kill()
            reader.wait()
        if edge.manager.active_version() != edge.version:
            edge.manager.promote(edge.version)


def answered_by(reader: subprocess.Popen[str], version: str) -> bool:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write("\n")
    reader.stdin.flush()
    return bool(json.loads(reader.stdout.readline()) == version)


def _tiny(store: EdgeStore, collection: str, text: str) -> None:
    store.create_collection(collection, 4)
    store.upsert(
        collection,
        [
            {
                "chunk_id": f"{collection}#0",
                "document_id": "d",
                "text": text,
                "allowed_groups": ["g"],
            }
        ],
        [[1.0, 0.0, 0.0, 0.0]],
    )
    store.seal(collection)


def _serving_v1_of_two(tmp_path: Path, alias: dict[str, str]) -> tuple[EdgeStore, EdgeStore]:
    """Versions kb_v1 ("first") and kb_v2 ("second") built, and a worker's store that has
    answered from kb_v1, both reading the alias from `alias["now"]`."""
    builder = EdgeStore.open(tmp_path, lambda _: alias["now"])
    _tiny(builder, "kb_v1", "first")
    _tiny(builder, "kb_v2", "second")
    worker = EdgeStore.open(tmp_path, lambda _: alias["now"])
    assert worker.search(ALIAS, [1.0, 0, 0, 0], 1, ["g"])[0] == "kb_v1"
    return builder, worker


def test_a_worker_keeps_serving_the_previous_version_when_the_promoted_one_is_damaged(
    tmp_path: Path,
) -> None:
    alias = {"now": "kb_v1"}
    builder, worker = _serving_v1_of_two(tmp_path, alias)
    seal = json.loads((tmp_path / "kb_v2" / SEAL).read_text())
    victim = tmp_path / "kb_v2" / max(seal, key=lambda name: seal[name][0])
    victim.write_bytes(b"\0" * victim.stat().st_size)
    alias["now"] = "kb_v2"
    worker.alias_moved(ALIAS)
    with structlog.testing.capture_logs() as logs:
        # The new version is checked in the background; the old one answers meanwhile
        # and, once the new one is refused, for good.
        collection, passages = worker.search(ALIAS, [1.0, 0, 0, 0], 1, ["g"])
        assert (collection, passages[0].text) == ("kb_v1", "first")  # named as what answered
        refusal = wait_for(
            lambda: next((e for e in logs if e["event"] == "index_version_refused"), None),
            timeout_s=10,
        )
    assert refusal["promoted"] == "kb_v2" and "corrupt" in refusal["error"]
    assert worker.search(ALIAS, [1.0, 0, 0, 0], 1, ["g"])[0] == "kb_v1"
    fresh = EdgeStore.open(tmp_path, lambda _: alias["now"])  # nothing served before: refused
    with pytest.raises(IndexNotReady, match="corrupt"):
        fresh.search(ALIAS, [1.0, 0, 0, 0], 1, ["g"])
    for store in (builder, worker, fresh):
        store.close()


def test_a_process_following_the_alias_opens_a_promoted_version_before_a_job_asks(
    tmp_path: Path,
) -> None:
    alias = {"now": "kb_v1"}
    builder, worker = _serving_v1_of_two(tmp_path, alias)
    with structlog.testing.capture_logs() as logs:
        unfollow = worker.follow(ALIAS)
        alias["now"] = "kb_v2"  # promoted elsewhere; no job arrives meanwhile
        opened = wait_for(
            lambda: next((e for e in logs if e["event"] == "index_version_opened"), None),
            timeout_s=10,
        )
    assert opened["collection"] == "kb_v2"
    # The next job is answered from the new version: none is left to the old one while the
    # new one is checked (a search alone would open it in the background and answer v1).
    collection, passages = worker.search(ALIAS, [1.0, 0, 0, 0], 1, ["g"])
    assert (collection, passages[0].text) == ("kb_v2", "second")
    unfollow()
    for store in (builder, worker):
        store.close()


def test_a_version_another_process_is_loading_is_not_taken_for_damage(tmp_path: Path) -> None:
    # Loading a shard rewrites edge_config.json (same bytes) through a staging folder; on
    # a promotion every worker loads the version at once, and one that checked the folder
    # mid-write refused the version as corrupt, for good.
    builder = EdgeStore.open(tmp_path, lambda _: "kb_v1")
    _tiny(builder, "kb_v1", "first")
    staging = tmp_path / "kb_v1" / ".atomicwriteQx3b"
    staging.mkdir()
    (staging / "tmpfile.tmp").write_text('{"half": ')
    worker = EdgeStore.open(tmp_path, lambda _: "kb_v1")
    collection, passages = worker.search(ALIAS, [1.0, 0, 0, 0], 1, ["g"])
    assert (collection, passages[0].text) == ("kb_v1", "first")
    for store in (builder, worker):
        store.close()
