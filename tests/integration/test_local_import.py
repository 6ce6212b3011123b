"""Upgrading an embedded data folder from Qdrant local mode to the edge engine: the promoted
knowledge base is copied into sealed shards once, answers the same questions with the same
passages, and a local store another process still holds is left for the next start."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from ragline.bootstrap import open_store
from ragline.config import RaglineConfig
from ragline.errors import IndexNotReady
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.lexical import LexicalEncoder
from ragline.knowledge.local_import import import_local_versions, local_versions
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.versions import IndexManager
from ragline.schema import create_schema
from tests.support.environment import HANDBOOK
from tests.support.services import settings_for

ALIAS = "approved-knowledge-base"
QUESTIONS = [
    "How long is a free trial, and can it be extended?",
    "How many days of annual leave do employees get?",
    "Who may see the sales commission plan?",
    "How do I reset my password?",
]


@dataclass
class LocalFolder:
    data_dir: Path
    engine: Engine
    versions: list[int]


@pytest.fixture(scope="module")
def local_folder(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[LocalFolder]:
    """A data folder as Qdrant local mode left it: two versions of part of the handbook,
    the second promoted. Tests copy it before changing anything."""
    data_dir = tmp_path_factory.mktemp("local-folder")
    corpus = data_dir.parent / "local-corpus"
    shutil.copytree(HANDBOOK / "product", corpus / "product")
    engine = create_engine(f"sqlite:///{data_dir / 'ragline.db'}")
    create_schema(engine)
    store = QdrantStore.open(path=data_dir / "qdrant")
    manager = IndexManager(engine, store, embedder, repo_config.knowledge, alias=ALIAS)
    first = manager.build(corpus).version
    shutil.copytree(HANDBOOK / "hr", corpus / "hr")
    second = manager.build(corpus).version
    manager.promote(second)
    store.close()
    engine.dispose()
    yield LocalFolder(data_dir, engine, [first, second])


def _copy(folder: LocalFolder, target: Path) -> tuple[Path, Engine]:
    shutil.copytree(folder.data_dir, target)
    return target, create_engine(f"sqlite:///{target / 'ragline.db'}")


def _top(store: QdrantStore | EdgeStore, embedder: Embedder, mode: str) -> list[list[str]]:
    encoder = LexicalEncoder()
    found = []
    for question in QUESTIONS:
        vector = embedder.embed_one(question).tolist()
        _, passages = store.search(
            ALIAS,
            vector,
            5,
            ["everyone"],
            encoder.query(question),
            mode,  # type: ignore[arg-type]
        )
        found.append([p.chunk_id for p in passages])
    return found


def test_the_promoted_knowledge_base_survives_the_switch_with_the_same_passages(
    local_folder: LocalFolder, tmp_path: Path, embedder: Embedder
) -> None:
    data_dir, engine = _copy(local_folder, tmp_path / "data")
    local = QdrantStore.open(path=data_dir / "qdrant")
    expected = {mode: _top(local, embedder, mode) for mode in ("dense", "hybrid")}
    local_counts = {name: local.count(name) for name in local.collection_names()}
    local.close()

    with structlog.testing.capture_logs() as logs:
        store = open_store(settings_for(data_dir), engine)  # the default engine: edge
    try:
        assert isinstance(store, EdgeStore)
        assert store.collection_names() == sorted(local_counts)
        assert {name: store.count(name) for name in local_counts} == local_counts
        imported = [e for e in logs if e["event"] == "local_index_imported"]
        assert sorted(e["collection"] for e in imported) == sorted(local_counts)
        assert store.resolve_alias(ALIAS) == f"kb_v{local_folder.versions[-1]}"
        assert _top(store, embedder, "dense") == expected["dense"]
        hybrid = _top(store, embedder, "hybrid")
        # Exact search on both sides; fused scores may tie, so compare what came back.
        assert [set(ids) for ids in hybrid] == [set(ids) for ids in expected["hybrid"]]
    finally:
        store.close()
    # The local folder is untouched, and the next start copies nothing, not even a
    # version `ragline index gc` dropped since.
    assert local_versions(data_dir / "qdrant") == sorted(local_counts)
    again = EdgeStore.open(data_dir / "index", promoted(engine))
    dropped = f"kb_v{local_folder.versions[0]}"
    again.delete_collection(dropped)
    assert import_local_versions(data_dir / "qdrant", again) == []
    assert dropped not in again.collection_names()
    again.close()
    engine.dispose()


def test_a_local_store_held_by_another_process_is_left_for_the_next_start(
    local_folder: LocalFolder, tmp_path: Path, embedder: Embedder
) -> None:
    data_dir, engine = _copy(local_folder, tmp_path / "data")
    holder = QdrantStore.open(path=data_dir / "qdrant")  # a server still on local mode
    store = EdgeStore.open(data_dir / "index", promoted(engine))
    try:
        with structlog.testing.capture_logs() as logs:
            assert import_local_versions(data_dir / "qdrant", store) == []
        assert [e["event"] for e in logs] == ["local_index_not_imported"]
        assert "open in another process" in logs[0]["error"]
        vector = embedder.embed_one(QUESTIONS[0]).tolist()
        with pytest.raises(IndexNotReady, match=r"missing .* rebuild it"):
            store.search(ALIAS, vector, 5, ["everyone"])
        holder.close()
        # The next process to start copies the versions; this one finds the shard it
        # lacked on its next search rather than refusing it for good.
        next_start = EdgeStore.open(data_dir / "index", promoted(engine))
        assert len(import_local_versions(data_dir / "qdrant", next_start)) == 2
        next_start.close()
        collection, passages = store.search(ALIAS, vector, 5, ["everyone"])
        assert collection == f"kb_v{local_folder.versions[-1]}" and passages
    finally:
        store.close()
        engine.dispose()


def test_a_folder_without_local_mode_versions_costs_nothing(tmp_path: Path) -> None:
    assert local_versions(tmp_path / "qdrant") == []
    (tmp_path / "qdrant").mkdir()
    (tmp_path / "qdrant" / "meta.json").write_text("{not json")
    with structlog.testing.capture_logs() as logs:
        assert local_versions(tmp_path / "qdrant") == []
    assert logs[0]["event"] == "local_index_unreadable"
