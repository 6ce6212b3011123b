"""Document groups on every read path (ragline/visibility.py), over HTTP in embedded mode: a
key of the same account that may not read a job's passages gets 404 for the job, its trace,
its review item (get, claim) and finds it in neither the review queue nor the export; the
key that asked sees all of it. Real Qdrant local mode, MiniLM, the extractive model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from ragline.bootstrap import Mode
from ragline.config import RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.store import KnowledgeStore
from tests.support.server import serving
from tests.support.services import bootstrapped, embedded_app
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

BONUS = "How large is the 2025 bonus pool?"
LEAVE = "How many days of annual leave do employees get?"
CORPUS = {
    "finance/bonus-pool-2025.md": """---
title: Bonus Pool 2025
allowed_groups: [finance]
---
# Bonus Pool 2025

The 2025 bonus pool is 4.2 million EUR, 9% of the operating profit.
""",
    "hr/leave.md": """# Annual Leave

Every full-time employee receives 25 days of paid annual leave per calendar year.
""",
}


def _config(repo_config: RaglineConfig) -> RaglineConfig:
    data = repo_config.model_dump()
    data["review"]["sample_rate"] = 1.0  # every answer is also a review item
    data["knowledge"]["gate"]["smoke_queries"] = []
    return parse_config(data)


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[KnowledgeStore]:
    root = tmp_path_factory.mktemp("groups")
    for name, text in CORPUS.items():
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "docs" / name).write_text(text, encoding="utf-8")
    store = QdrantStore.open(path=root / "qdrant")
    with bootstrapped(
        Mode.INDEX, root, _config(repo_config), store=store, embedder=embedder
    ) as services:
        assert services.index is not None
        services.index.promote(services.index.build(root / "docs").version)
    yield store
    store.close()


@dataclass
class Keys:
    finance: httpx.Client  # groups: finance
    everyone: httpx.Client  # groups: everyone
    admin: httpx.Client


@pytest.fixture
def keys(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    tmp_path: Path,
    embedder: Embedder,
    store: KnowledgeStore,
) -> Iterator[Keys]:
    with embedded_app(
        _config(repo_config), tmp_path, store, embedder, engine=sqlite_engine, own_index=False
    ) as app:
        roles = ("submitter", "reviewer")
        _, finance = make_tenant(sqlite_engine, "acme", roles=roles, groups=("finance",))
        _, everyone = make_tenant(sqlite_engine, "acme", roles=roles, groups=("everyone",))
        _, admin = make_tenant(sqlite_engine, "ops", roles=("admin",))
        with serving(create_app(app.api)) as base:

            def client(key: str) -> httpx.Client:
                return httpx.Client(
                    base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
                )

            with client(finance) as f, client(everyone) as e, client(admin) as a:
                yield Keys(f, e, a)


def _answered(client: httpx.Client, question: str) -> dict[str, Any]:
    submitted = client.post("/v1/jobs", json={"question": question, "user_id": "u-1"})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    def final() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] not in ("queued", "running") else None

    job = wait_for(final, timeout_s=60)
    assert job["status"] == "answered", job
    return job


def _item_of(client: httpx.Client, job_id: str) -> int | None:
    listed = client.get("/v1/reviews", params={"status": "all"}).json()["items"]
    return next((i["id"] for i in listed if i["job_id"] == job_id), None)


def test_a_finance_derived_answer_is_hidden_from_a_key_without_finance(keys: Keys) -> None:
    job = _answered(keys.finance, BONUS)
    assert "4.2 million" in job["answer"]
    job_id = job["id"]
    item = _item_of(keys.finance, job_id)
    assert item is not None  # sampled: the finance key reviews it

    hidden = {
        "job": keys.everyone.get(f"/v1/jobs/{job_id}").status_code,
        "trace": keys.everyone.get(f"/v1/jobs/{job_id}/trace").status_code,
        "item": keys.everyone.get(f"/v1/reviews/{item}").status_code,
        "claim": keys.everyone.post(f"/v1/reviews/{item}/claim").status_code,
    }
    assert hidden == {"job": 404, "trace": 404, "item": 404, "claim": 404}
    assert _item_of(keys.everyone, job_id) is None
    # The 404 says what a missing job's says: nothing tells the job exists.
    missing = keys.everyone.get("/v1/jobs/no-such-job").json()["detail"]
    assert keys.everyone.get(f"/v1/jobs/{job_id}").json()["detail"] == missing.replace(
        "no-such-job", job_id
    )

    claimed = keys.finance.post(f"/v1/reviews/{item}/claim")
    assert claimed.status_code == 200, claimed.text
    decided = keys.finance.post(f"/v1/reviews/{item}/decision", json={"decision": "good"})
    assert decided.status_code == 200, decided.text
    exported = {
        name: keys_client.get("/v1/reviews/export").text
        for name, keys_client in (("finance", keys.finance), ("everyone", keys.everyone))
    }
    assert "4.2 million" in exported["finance"] and "4.2 million" not in exported["everyone"]
    assert keys.admin.get(f"/v1/jobs/{job_id}").status_code == 200  # admins read everything


def test_each_key_reads_what_it_could_have_retrieved(keys: Keys) -> None:
    """The leave document allows `everyone`: a finance-only key may not read its answer."""
    leave = _answered(keys.everyone, LEAVE)
    assert keys.everyone.get(f"/v1/jobs/{leave['id']}").status_code == 200
    assert keys.finance.get(f"/v1/jobs/{leave['id']}").status_code == 404
    stored = keys.admin.get(f"/v1/jobs/{leave['id']}").json()
    assert stored["status"] == "answered"
