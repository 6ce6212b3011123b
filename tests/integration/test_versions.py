"""Index versions on real components: Qdrant local mode in tmp_path, the MiniLM embedder,
SQLite (and PostgreSQL for the manifest). A small Markdown corpus with its own smoke set
keeps every build short; what a build reuses is checked against the stored points."""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.config import Chunking, Gate, Knowledge, RaglineConfig, SmokeQuery
from ragline.errors import InvalidInput, NotFound
from ragline.jobs import JobRepository
from ragline.knowledge.chunking import chunk_document
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.smoke import NO_SMOKE_SET
from ragline.knowledge.sources import read_folder, source_checksum
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager, VersionDiff
from ragline.models import IndexPromotion, IndexVersion, Job, utcnow
from ragline.pipeline.validate import JobRequest
from tests.support.tenants import make_tenant

ALIAS = "approved-knowledge-base"

CORPUS = {
    "hr/leave.md": """# Annual Leave

## Entitlement

Every full-time employee receives 25 days of paid annual leave per calendar year. Part-time
employees receive leave in proportion to their contracted working days.

## Carry over

Up to 5 unused leave days may be carried over into the first quarter of the next year.
Carried-over days that are not taken by 31 March expire.
""",
    "it/passwords.md": """# Passwords and MFA

## Multi-factor authentication

Multi-factor authentication is mandatory for every company account, including email, the VPN
and the HR portal. Use the authenticator app; SMS codes are not accepted.

## Password length

Passwords must be at least 14 characters long and must never be reused across services.
""",
    "finance/expenses.md": """# Expenses

## Meals

The daily meal limit on domestic business travel is 40 EUR per person. Alcohol is never
reimbursed.

## Receipts

Submit every receipt in the expenses tool within 30 days of the purchase.
""",
    "support/refunds.md": """# Refunds

## Who approves a refund

Support agents may approve refunds up to 500 EUR. A refund above 2,000 EUR must be approved
by the Head of Support.

## Timing

Approved refunds are paid back to the original payment method within 10 business days.
""",
    "office/parking.md": """# Parking

## Car park

The office car park has 40 spaces, allocated first come, first served. Electric vehicles may
charge for up to four hours.

## Bicycles

Secure bicycle storage is in the basement, next to the showers.
""",
    # One long section (over 200 word pieces): the chunk size decides how it is split.
    "policies/travel.md": "# Travel\n\n## Booking\n\n"
    + " ".join(
        f"Rule {n}: trips to destination number {n} must be booked through the travel desk "
        f"at least {n + 3} days before departure, in economy class, with a refundable fare."
        for n in range(1, 13)
    )
    + "\n\n## Hotels\n\nHotels are booked through the travel desk and must not exceed 150 EUR "
    "per night.\n",
}

SMOKE = [
    SmokeQuery(
        question="How many days of paid annual leave do employees get?",
        expected_documents=["hr/leave"],
    ),
    SmokeQuery(
        question="Is multi-factor authentication mandatory?",
        expected_documents=["it/passwords"],
    ),
    SmokeQuery(
        question="Who approves a refund above 2,000 EUR?",
        expected_documents=["support/refunds"],
    ),
]

NEW_CARRY_OVER = (
    "Up to 8 unused leave days may be carried over into the next year, with the approval of "
    "your manager."
)


def write_corpus(root: Path, files: dict[str, str] | None = None) -> Path:
    for name, text in (CORPUS if files is None else files).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def edit_leave(root: Path) -> None:
    """Change one section of hr/leave: its other section keeps the same chunk text."""
    path = root / "hr" / "leave.md"
    old = CORPUS["hr/leave.md"].split("## Carry over\n\n")[1]
    path.write_text(path.read_text().replace(old, NEW_CARRY_OVER + "\n"), encoding="utf-8")


def knowledge_for(repo_config: RaglineConfig, **gate: Any) -> Knowledge:
    settings: dict[str, Any] = {
        "max_document_drop": 0.2,
        "smoke_top_k": 2,
        "smoke_min_hit_rate": 0.8,
        "smoke_queries": SMOKE,
        **gate,
    }
    return repo_config.knowledge.model_copy(update={"gate": Gate(**settings)})


@dataclass
class Index:
    engine: Engine
    store: KnowledgeStore
    embedder: Embedder
    knowledge: Knowledge
    manager: IndexManager
    docs: Path
    root: Path

    def with_knowledge(self, knowledge: Knowledge) -> IndexManager:
        return IndexManager(self.engine, self.store, self.embedder, knowledge, alias=ALIAS)

    def copy_of_corpus(self, name: str, files: dict[str, str] | None = None) -> Path:
        return write_corpus(self.root / name, files)


def _open_index(
    engine: Engine, tmp_path: Path, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[Index]:
    store = QdrantStore.open(path=tmp_path / "qdrant")
    knowledge = knowledge_for(repo_config)
    manager = IndexManager(engine, store, embedder, knowledge, alias=ALIAS)
    docs = write_corpus(tmp_path / "docs")
    try:
        yield Index(engine, store, embedder, knowledge, manager, docs, tmp_path)
    finally:
        store.close()


@pytest.fixture
def index(
    sqlite_engine: Engine, tmp_path: Path, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[Index]:
    yield from _open_index(sqlite_engine, tmp_path, embedder, repo_config)


@pytest.fixture
def index_on_each_backend(
    engine: Engine, tmp_path: Path, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[Index]:
    yield from _open_index(engine, tmp_path, embedder, repo_config)


# -- helpers -------------------------------------------------------------------------------


def points(store: KnowledgeStore, collection: str) -> dict[str, tuple[dict[str, Any], Any]]:
    """chunk_id -> (payload, vector as float32 array)."""
    found = {}
    for payload, vector in store.points(collection):
        assert vector is not None, payload["chunk_id"]
        found[str(payload["chunk_id"])] = (payload, np.asarray(vector, dtype=np.float32))
    return found


def promotions(engine: Engine) -> list[IndexPromotion]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(IndexPromotion).order_by(col(IndexPromotion.id))))


def snapshot(index: Index) -> dict[str, Any]:
    """Everything a failed operation must leave exactly as it was."""
    return {
        "alias": index.store.resolve_alias(ALIAS),
        "collections": sorted(index.store.collection_names()),
        "versions": [
            listing.manifest.model_dump() | {"active": listing.active}
            for listing in index.manager.list_versions()
        ],
        "promotions": [p.model_dump() for p in promotions(index.engine)],
        "points": {
            name: index.store.count(name) for name in sorted(index.store.collection_names())
        },
    }


def timed_build(manager: IndexManager, folder: Path, label: str, **kw: Any) -> IndexVersion:
    started = time.perf_counter()
    manifest = manager.build(folder, **kw)
    print(
        f"{label}: v{manifest.version} {manifest.chunk_count} chunks, "
        f"{manifest.reused_chunks} reused, {manifest.embedded_chunks} embedded "
        f"in {time.perf_counter() - started:.2f}s"
    )
    return manifest


# -- building and the manifest ---------------------------------------------------------------


def test_first_build_writes_a_complete_manifest_and_promote_moves_the_alias(
    index_on_each_backend: Index,
) -> None:
    index = index_on_each_backend
    events: list[tuple[str, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        events.append((stage, done, total))

    manifest = timed_build(index.manager, index.docs, "full build", progress=progress)

    documents = read_folder(index.docs)
    stored = points(index.store, manifest.collection)
    assert manifest.version == 1
    assert manifest.collection == "kb_v1"
    assert manifest.status == "ready"
    assert manifest.error is None
    assert manifest.source == str(index.docs.resolve())
    assert manifest.source_checksum == source_checksum(documents)
    assert manifest.document_count == len(CORPUS) == 6
    expected = [
        chunk
        for document in documents
        for chunk in chunk_document(
            document, index.knowledge.chunking, index.embedder.count_tokens, index.embedder.truncate
        )
    ]
    assert len(expected) > len(documents)  # several sections per document
    assert manifest.chunk_count == len(stored) == index.store.count("kb_v1") == len(expected)
    assert {c.chunk_id: c.content_hash for c in expected} == {
        c: p["content_hash"] for c, (p, _) in stored.items()
    }
    assert manifest.token_count == sum(int(p["token_count"]) for p, _ in stored.values()) > 0
    assert manifest.embedding_model == index.knowledge.embedding_model
    assert manifest.embedding_dim == index.embedder.dimension == 384
    assert manifest.chunker == index.knowledge.chunking.model_dump()
    assert manifest.built_by == f"{getpass.getuser()}@{socket.gethostname()}"
    assert manifest.duration_ms is not None and manifest.duration_ms > 0
    assert manifest.finished_at is not None and manifest.finished_at >= manifest.created_at
    assert manifest.base_version is None
    assert manifest.reused_chunks == 0
    assert manifest.embedded_chunks == manifest.chunk_count
    assert manifest.checks["passed"] is True
    assert manifest.checks["failures"] == []
    assert manifest.checks["smoke"] == {
        "queries": 3,
        "source": "config",
        "hit_rate": 1.0,
        "missed": [],
    }
    assert manifest.checks["corpus"] == "first version"
    assert manifest.promoted_at is None
    assert index.manager.get(1).model_dump() == manifest.model_dump()  # what was committed

    # Every document is in the collection, with its ACL, and each vector is the text's.
    assert {p["document_id"] for p, _ in stored.values()} == {d.id for d in documents}
    payload, vector = stored["hr/leave#0"]
    assert payload["allowed_groups"] == ["everyone"]
    assert payload["document_hash"] == next(d for d in documents if d.id == "hr/leave").content_hash
    assert np.allclose(vector, index.embedder.embed_one(payload["text"]), atol=1e-5)

    # Progress reached the end of each stage.
    assert ("documents", 6, 6) in events
    assert ("chunks", len(expected), len(expected)) in events
    assert events[-1] == ("checks", 1, 1)

    # Built is not promoted.
    assert index.store.resolve_alias(ALIAS) is None
    assert index.manager.active_version() is None

    promoted = index.manager.promote(1)

    assert index.store.resolve_alias(ALIAS) == "kb_v1"
    assert index.manager.active_version() == 1
    assert promoted.promoted_at is not None
    assert [(m.manifest.version, m.active) for m in index.manager.list_versions()] == [(1, True)]
    [row] = promotions(index.engine)
    assert (row.version, row.previous_version, row.action, row.forced, row.reason) == (
        1,
        None,
        "promote",
        False,
        "",
    )
    collection, found = index.store.search(
        ALIAS, index.embedder.embed_one(SMOKE[0].question).tolist(), 1, ["everyone"]
    )
    assert collection == "kb_v1"
    assert found[0].document_id == "hr/leave"


def test_unchanged_rebuild_reuses_every_chunk_and_vector(index: Index) -> None:
    first = timed_build(index.manager, index.docs, "full build")
    index.manager.promote(first.version)
    assert index.manager.unchanged_since_active(index.docs) is not None

    second = timed_build(index.manager, index.docs, "unchanged rebuild")

    assert second.version == 2
    assert second.base_version == 1
    assert second.status == "ready" and second.checks["passed"]
    assert second.chunk_count == first.chunk_count
    assert second.reused_chunks == second.chunk_count
    assert second.embedded_chunks == 0
    assert second.source_checksum == first.source_checksum
    before, after = points(index.store, "kb_v1"), points(index.store, "kb_v2")
    assert after.keys() == before.keys()
    for chunk_id, (payload, vector) in after.items():
        old_payload, old_vector = before[chunk_id]
        assert payload == old_payload, chunk_id
        assert _same_vector(vector, old_vector), chunk_id
    # The alias stays where it was.
    assert index.store.resolve_alias(ALIAS) == "kb_v1"


def test_editing_one_document_embeds_only_its_changed_chunks(index: Index) -> None:
    first = index.manager.build(index.docs)
    index.manager.promote(first.version)
    edit_leave(index.docs)

    second = timed_build(index.manager, index.docs, "one section edited")

    assert second.base_version == 1
    assert second.chunk_count == first.chunk_count
    assert second.embedded_chunks == 1
    assert second.reused_chunks == second.chunk_count - 1
    before, after = points(index.store, "kb_v1"), points(index.store, "kb_v2")
    assert after.keys() == before.keys()
    changed = {
        chunk_id
        for chunk_id, (payload, _) in after.items()
        if payload["content_hash"] != before[chunk_id][0]["content_hash"]
    }
    assert changed == {"hr/leave#1"}
    new_payload, new_vector = after["hr/leave#1"]
    assert NEW_CARRY_OVER in new_payload["text"]
    assert np.allclose(new_vector, index.embedder.embed_one(new_payload["text"]), atol=1e-5)
    assert not np.allclose(new_vector, before["hr/leave#1"][1], atol=1e-3)
    for chunk_id, (payload, vector) in after.items():
        if chunk_id != "hr/leave#1":
            assert _same_vector(vector, before[chunk_id][1]), chunk_id
            assert payload["text"] == before[chunk_id][0]["text"], chunk_id
    # Only the edited document carries a new document hash.
    rehashed = {
        p["document_id"]
        for chunk_id, (p, _) in after.items()
        if p["document_hash"] != before[chunk_id][0]["document_hash"]
    }
    assert rehashed == {"hr/leave"}
    assert second.source_checksum != first.source_checksum


def test_a_chunker_change_rechunks_but_reuses_vectors_by_chunk_hash(index: Index) -> None:
    first = index.manager.build(index.docs)
    index.manager.promote(first.version)
    smaller = Chunking(max_tokens=120, overlap_tokens=32)
    knowledge = index.knowledge.model_copy(update={"chunking": smaller})
    old = {p["content_hash"]: v for p, v in points(index.store, "kb_v1").values()}

    second = timed_build(index.with_knowledge(knowledge), index.docs, "chunker changed")

    assert second.chunker == smaller.model_dump() != first.chunker
    assert second.base_version == 1
    # The chunks are those of the new parameters, not the old ones.
    expected = {
        chunk.chunk_id: chunk
        for document in read_folder(index.docs)
        for chunk in chunk_document(
            document, smaller, index.embedder.count_tokens, index.embedder.truncate
        )
    }
    after = points(index.store, "kb_v2")
    assert {c: p["content_hash"] for c, (p, _) in after.items()} == {
        c: chunk.content_hash for c, chunk in expected.items()
    }
    assert len([c for c in after if c.startswith("policies/travel#")]) > len(
        [c for c in points(index.store, "kb_v1") if c.startswith("policies/travel#")]
    )
    # Identical chunk text keeps its vector; only new text is embedded.
    reused = [c for c, (p, _) in after.items() if p["content_hash"] in old]
    fresh = [c for c in after if c not in reused]
    assert second.reused_chunks == len(reused) > 0
    assert second.embedded_chunks == len(fresh) > 0
    assert all(c.startswith("policies/travel#") for c in fresh)
    for chunk_id in reused:
        payload, vector = after[chunk_id]
        assert _same_vector(vector, old[payload["content_hash"]]), chunk_id
    for chunk_id in fresh:
        payload, vector = after[chunk_id]
        assert np.allclose(vector, index.embedder.embed_one(payload["text"]), atol=1e-5)


# -- the gate ------------------------------------------------------------------------------


def test_an_empty_version_fails_its_checks_and_is_not_promoted(index: Index) -> None:
    active = index.manager.build(index.docs)
    index.manager.promote(active.version)
    # Documents with headings and no body: readable, but no chunk survives.
    empty = index.copy_of_corpus(
        "headings-only", {"a.md": "# Heading only\n\n## Nothing below\n", "b.md": "# B\n"}
    )

    built = index.manager.build(empty)

    assert built.status == "ready"
    assert built.document_count == 2
    assert built.chunk_count == 0
    assert index.store.count(built.collection) == 0
    assert built.checks["passed"] is False
    assert any(f.startswith("empty") for f in built.checks["failures"])
    before = snapshot(index)
    with pytest.raises(InvalidInput, match=r"failed its checks: empty"):
        index.manager.promote(built.version)
    assert snapshot(index) == before
    assert index.store.resolve_alias(ALIAS) == "kb_v1"


def test_a_large_document_drop_fails_and_force_needs_a_reason(index: Index) -> None:
    active = index.manager.build(index.docs)
    index.manager.promote(active.version)
    fewer = index.copy_of_corpus(
        "fewer",
        {k: v for k, v in CORPUS.items() if k not in ("office/parking.md", "policies/travel.md")},
    )

    built = index.manager.build(fewer)

    assert built.document_count == 4
    assert built.checks["passed"] is False
    assert built.checks["document_drop"] == pytest.approx(2 / 6, abs=1e-4)
    [failure] = built.checks["failures"]  # the smoke set still hits
    assert "document count dropped 33% (from 6 to 4)" in failure
    assert built.checks["corpus"] == "same corpus as the active v1"
    assert built.checks["smoke"]["hit_rate"] == 1.0
    before = snapshot(index)

    with pytest.raises(InvalidInput, match=r"document count dropped 33%"):
        index.manager.promote(built.version)
    assert snapshot(index) == before

    with pytest.raises(InvalidInput, match="--reason"):
        index.manager.promote(built.version, force=True)
    with pytest.raises(InvalidInput, match="--reason"):
        index.manager.promote(built.version, force=True, reason="   ")
    assert snapshot(index) == before

    index.manager.promote(built.version, force=True, reason="two policies retired", by="ops")

    assert index.store.resolve_alias(ALIAS) == built.collection
    last = promotions(index.engine)[-1]
    assert last.version == built.version
    assert last.previous_version == active.version
    assert last.action == "promote"
    assert last.forced is True
    assert last.reason == "two policies retired"
    assert last.by == "ops"


def test_a_corpus_brings_its_own_smoke_set_and_one_without_skips_the_check(
    index: Index, repo_config: RaglineConfig, tmp_path: Path
) -> None:
    # Beside the documents: used instead of the configured questions, and not indexed.
    beside = index.docs / "smoke.yaml"
    beside.write_text(
        "- {question: 'How long is the office car park?', expected_documents: [office/parking]}\n"
        "- question: Where are bicycles stored?\n  expected_documents: [office/parking]\n"
    )
    own = index.manager.build(index.docs)
    assert own.checks["smoke"]["source"] == str(beside)
    assert own.checks["smoke"]["queries"] == 2 and own.checks["passed"] is True
    assert own.document_count == len(CORPUS)

    # Named at build time: wins over the folder's file.
    named = tmp_path / "named.jsonl"
    named.write_text(
        '{"question": "What is the hotel limit per night?", "expected_documents": ["x/nowhere"]}\n'
    )
    strict = index.manager.build(index.docs, smoke=named)
    assert strict.checks["smoke"]["source"] == str(named)
    assert strict.checks["smoke"]["hit_rate"] == 0.0 and strict.checks["passed"] is False

    # No smoke set anywhere: the check is skipped, said so, and does not fail the build.
    beside.unlink()
    bare = index.with_knowledge(knowledge_for(repo_config, smoke_queries=[]))
    skipped = bare.build(index.docs)
    assert skipped.checks["smoke"] == {"queries": 0, "skipped": NO_SMOKE_SET}
    assert skipped.checks["passed"] is True


def test_a_first_build_of_another_corpus_is_not_a_document_drop(
    index: Index, repo_config: RaglineConfig
) -> None:
    index.manager.promote(index.manager.build(index.docs).version)
    other = index.copy_of_corpus("other", {"notes/one.md": "# One\n\nThe office opens at 8."})
    bare = index.with_knowledge(knowledge_for(repo_config, smoke_queries=[]))

    built = bare.build(other)

    assert built.checks["passed"] is True, built.checks["failures"]
    assert built.checks["document_drop"] == 0.0
    assert built.checks["corpus"].startswith("new corpus: 0 of its 1 documents are in the active")


def test_a_smoke_set_that_misses_fails_the_checks(index: Index, repo_config: RaglineConfig) -> None:
    active = index.manager.build(index.docs)
    index.manager.promote(active.version)
    wrong = SmokeQuery(
        question="Where can I park my electric car?", expected_documents=["it/passwords"]
    )
    strict = knowledge_for(repo_config, smoke_queries=[*SMOKE, wrong], smoke_top_k=1)

    built = index.with_knowledge(strict).build(index.docs)

    assert built.checks["passed"] is False
    assert built.checks["smoke"]["missed"] == [wrong.question]
    assert built.checks["smoke"]["hit_rate"] == 0.75
    [failure] = built.checks["failures"]
    assert "smoke evaluation hit rate 75% is below 80%" in failure
    assert wrong.question in failure
    before = snapshot(index)
    with pytest.raises(InvalidInput, match="smoke evaluation") as refused:
        index.manager.promote(built.version)
    assert wrong.question in str(refused.value)
    assert snapshot(index) == before


# -- rollback, diff, gc ----------------------------------------------------------------------


def test_rollback_restores_the_previous_version_and_a_second_goes_forward(index: Index) -> None:
    with pytest.raises(InvalidInput, match="no earlier promoted version"):
        index.manager.rollback()
    first = index.manager.build(index.docs)
    index.manager.promote(first.version)
    with pytest.raises(InvalidInput, match="no earlier promoted version"):
        index.manager.rollback()
    assert index.store.resolve_alias(ALIAS) == "kb_v1"

    edit_leave(index.docs)
    second = index.manager.build(index.docs)
    index.manager.promote(second.version)
    assert index.store.resolve_alias(ALIAS) == "kb_v2"

    def answer_source() -> tuple[str, str]:
        vector = index.embedder.embed_one("How many leave days can be carried over?")
        collection, found = index.store.search(ALIAS, vector.tolist(), 1, ["everyone"])
        return collection, found[0].text

    assert answer_source()[0] == "kb_v2" and NEW_CARRY_OVER in answer_source()[1]

    back = index.manager.rollback(reason="bad edit", by="ops")

    assert back.version == 1
    assert index.store.resolve_alias(ALIAS) == "kb_v1"
    assert index.manager.active_version() == 1
    collection, text = answer_source()
    assert collection == "kb_v1" and NEW_CARRY_OVER not in text and "31 March" in text
    last = promotions(index.engine)[-1]
    assert (last.action, last.version, last.previous_version, last.reason, last.by) == (
        "rollback",
        1,
        2,
        "bad edit",
        "ops",
    )

    forward = index.manager.rollback()

    assert forward.version == 2
    assert index.store.resolve_alias(ALIAS) == "kb_v2"
    assert [(p.action, p.version, p.previous_version) for p in promotions(index.engine)] == [
        ("promote", 1, None),
        ("promote", 2, 1),
        ("rollback", 1, 2),
        ("rollback", 2, 1),
    ]


def test_diff_shows_added_removed_and_changed_documents(index: Index) -> None:
    index.manager.build(index.docs)
    (index.docs / "office" / "parking.md").unlink()
    (index.docs / "hr" / "remote-work.md").write_text(
        "# Remote work\n\n## Days at home\n\nEmployees may work from home two days a week.\n"
    )
    edit_leave(index.docs)
    index.manager.build(index.docs)

    assert index.manager.diff(1, 2) == VersionDiff(
        added=["hr/remote-work"], removed=["office/parking"], changed=["hr/leave"]
    )
    assert index.manager.diff(2, 1) == VersionDiff(
        added=["office/parking"], removed=["hr/remote-work"], changed=["hr/leave"]
    )
    assert index.manager.diff(1, 1) == VersionDiff(added=[], removed=[], changed=[])
    with pytest.raises(NotFound):
        index.manager.diff(1, 99)


def _interrupt_after_chunks(stage: str, done: int, total: int) -> None:
    if stage == "chunks" and done > 0:
        raise KeyboardInterrupt


def test_gc_keeps_the_active_the_previous_and_the_newest(index: Index) -> None:
    v1 = index.manager.build(index.docs)
    index.manager.promote(v1.version)
    edit_leave(index.docs)
    v2 = index.manager.build(index.docs)
    index.manager.promote(v2.version)  # active 2, previous 1
    (index.docs / "hr" / "remote-work.md").write_text("# Remote work\n\nTwo days a week.\n")
    v3 = index.manager.build(index.docs)  # ready, never promoted
    (index.docs / "hr" / "remote-work.md").write_text("# Remote work\n\nThree days a week.\n")
    with pytest.raises(KeyboardInterrupt):
        index.manager.build(index.docs, progress=_interrupt_after_chunks)  # v4 failed
    v5 = index.manager.build(index.docs)
    statuses = {m.manifest.version: m.manifest.status for m in index.manager.list_versions()}
    assert statuses == {1: "ready", 2: "ready", 3: "ready", 4: "failed", 5: "ready"}
    assert v5.version == 5 and v3.version == 3
    assert "kb_v4" in index.store.collection_names()

    dropped = index.manager.gc(keep=1)

    assert sorted(dropped) == [3, 4]
    assert sorted(index.store.collection_names()) == ["kb_v1", "kb_v2", "kb_v5"]
    statuses = {m.manifest.version: m.manifest.status for m in index.manager.list_versions()}
    assert statuses == {1: "ready", 2: "ready", 3: "deleted", 4: "deleted", 5: "ready"}
    assert index.store.resolve_alias(ALIAS) == "kb_v2"
    assert index.manager.gc(keep=1) == []
    with pytest.raises(InvalidInput, match="deleted"):
        index.manager.promote(3)
    with pytest.raises(InvalidInput, match="no collection kb_v3"):
        index.manager.diff(2, 3)
    with pytest.raises(InvalidInput, match="at least 1"):
        index.manager.gc(keep=0)
    # Rollback still has its target.
    assert index.manager.rollback().version == 1


def _job_answered_from(engine: Engine, collection: str, days_ago: float) -> None:
    principal, _ = make_tenant(engine)
    job, _ = JobRepository(engine).submit(
        JobRequest(question=f"from {collection}?", user_id="u-1"),
        account_id=principal.account_id,
        deadline=timedelta(minutes=1),
    )
    with Session(engine) as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.index_version = collection
        row.created_at = utcnow() - timedelta(days=days_ago)
        session.add(row)
        session.commit()


def test_gc_keeps_a_version_recent_jobs_were_answered_from_unless_forced(index: Index) -> None:
    for number in range(1, 5):  # v1..v4, v4 active, v3 previous
        (index.docs / "hr" / "remote-work.md").write_text(f"# Remote work\n\n{number} days.\n")
        index.manager.promote(index.manager.build(index.docs).version)
    _job_answered_from(index.engine, "kb_v1", days_ago=2)  # within keep_cited_days (30)
    _job_answered_from(index.engine, "kb_v2", days_ago=45)  # too old to protect it
    assert index.manager.cited_versions() == {1}

    assert index.manager.gc(keep=1) == [2]
    assert "kb_v1" in index.store.collection_names()
    with pytest.raises(InvalidInput, match="--force needs --reason"):
        index.manager.gc(keep=1, force=True)
    assert index.manager.gc(keep=1, force=True, reason="disk full") == [1]
    assert sorted(index.store.collection_names()) == ["kb_v3", "kb_v4"]


def test_an_interrupted_build_is_marked_failed_and_gc_removes_it(index: Index) -> None:
    active = index.manager.build(index.docs)
    index.manager.promote(active.version)
    edit_leave(index.docs)
    seen: list[tuple[str, int, int]] = []

    def interrupt(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))
        _interrupt_after_chunks(stage, done, total)

    with pytest.raises(KeyboardInterrupt):
        index.manager.build(index.docs, progress=interrupt)

    assert seen[-1][0] == "chunks"
    failed = index.manager.get(2)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("interrupted")
    assert failed.finished_at is not None
    assert index.store.resolve_alias(ALIAS) == "kb_v1"
    assert index.manager.active_version() == 1
    with pytest.raises(InvalidInput, match="failed, not ready"):
        index.manager.promote(2)
    assert index.store.resolve_alias(ALIAS) == "kb_v1"

    # The next build starts from the active version, not from the broken one.
    again = index.manager.build(index.docs)
    assert (again.version, again.base_version, again.embedded_chunks) == (3, 1, 1)

    assert index.manager.gc(keep=1) == [2]
    assert index.manager.get(2).status == "deleted"
    assert "kb_v2" not in index.store.collection_names()
    assert index.store.resolve_alias(ALIAS) == "kb_v1"


# -- bad input -----------------------------------------------------------------------------


def test_bad_input_changes_nothing(index: Index) -> None:
    index.manager.promote(index.manager.build(index.docs).version)
    edit_leave(index.docs)
    index.manager.build(index.docs)  # v2, ready, not promoted
    before = snapshot(index)
    assert before["alias"] == "kb_v1" and len(before["versions"]) == 2

    empty = index.root / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="holds no documents"):
        index.manager.build(empty)
    assert snapshot(index) == before

    blank = index.copy_of_corpus("blank", {"a.md": "  \n", "b.txt": "", "c.png": "x"})
    with pytest.raises(InvalidInput, match="holds no documents"):
        index.manager.build(blank)
    assert snapshot(index) == before

    with pytest.raises(InvalidInput, match="not a folder"):
        index.manager.build(index.root / "missing")
    assert snapshot(index) == before

    not_utf8 = index.copy_of_corpus("not-utf8")
    (not_utf8 / "hr" / "latin1.md").write_bytes("# Congés\n\nDurée: 25 jours.\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"hr/latin1\.md: not UTF-8"):
        index.manager.build(not_utf8)
    assert snapshot(index) == before

    duplicates = index.copy_of_corpus("duplicates")
    (duplicates / "a.md").write_text("# A\n\nAlpha.\n")
    (duplicates / "a.txt").write_text("Alpha as plain text.\n")
    with pytest.raises(InvalidInput, match=r"duplicate document id 'a': a\.md and a\.txt"):
        index.manager.build(duplicates)
    assert snapshot(index) == before

    with pytest.raises(NotFound, match="99"):
        index.manager.promote(99)
    with pytest.raises(NotFound, match="99"):
        index.manager.promote(99, force=True, reason="typo")
    with pytest.raises(NotFound):
        index.manager.diff(99, 1)
    assert snapshot(index) == before

    # And the next good build still gets the next number.
    assert index.manager.build(index.docs).version == 3


# -- regressions: bugs found while writing these tests ------------------------------------------


def test_promoting_the_active_version_again_keeps_the_rollback_target(index: Index) -> None:
    index.manager.promote(index.manager.build(index.docs).version)
    edit_leave(index.docs)
    index.manager.promote(index.manager.build(index.docs).version)
    index.manager.promote(2)  # e.g. a deploy script retried

    assert index.manager.previous_version() == 1
    assert index.manager.gc(keep=1) == []
    assert index.manager.rollback().version == 1


def test_a_file_that_changes_format_is_chunked_again(index: Index) -> None:
    page = "<h1>Gamma</h1><p>Gamma text.</p><script>track()</script>\n"
    folder = index.copy_of_corpus("format", {**CORPUS, "gamma.txt": page})
    index.manager.promote(index.manager.build(folder).version)
    (folder / "gamma.txt").rename(folder / "gamma.html")

    assert index.manager.unchanged_since_active(folder) is None  # --if-changed must rebuild
    rebuilt = index.manager.build(folder)
    gamma = [p for p, _ in index.store.points(rebuilt.collection) if p["document_id"] == "gamma"]
    assert [p["source"] for p in gamma] == ["gamma.html"]
    assert all("<script>" not in p["text"] for p in gamma)


def _same_vector(a: object, b: object) -> bool:
    """Equal up to float32 rounding: Qdrant (client 1.20) normalises cosine vectors again on
    upsert, which moves the last bits of a copied vector. That copies were not re-embedded
    is asserted through embedded_chunks."""
    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6))
