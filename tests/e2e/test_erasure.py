"""Erasing a person (DELETE /v1/users/{user_id}, `ragline erase`) on a database the product
filled: every table holds rows, then one user's data is erased and every row of every table
is searched for what identified them. Their spend stays in the ledger, other users' data
stays, the audit trail records who erased whom under a digest, and an unknown user or a
running job erases nothing. Embedded mode, SQLite, the handbook, the extractive model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from api.app import create_app
from ragline import audit
from ragline.config import RaglineConfig, parse_config
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.run import run_evaluation
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, JobStatus
from tests.support.console import run_cli
from tests.support.processes import ragline_env
from tests.support.server import serving
from tests.support.services import EmbeddedApp, embedded_app
from tests.support.tables import every_row
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

ERASED_USER = "alice@example.com"
OTHER_USER = "u-7"
ALICE_ASKS = ["How many days of annual leave do I get?", "How do I file travel expenses?"]
TICKET = "TICKET-ALICE-0042"  # in her jobs' metadata
OTHER_ASKS = "Can I work remotely?"


def _config(repo_config: RaglineConfig) -> RaglineConfig:
    data = repo_config.model_dump()
    data["review"]["sample_rate"] = 1.0  # every answer is also a review item
    data["deliveries"]["allow_private_targets"] = True  # the callback is on loopback
    data["knowledge"]["gate"]["smoke_queries"] = []
    return parse_config(data)


@dataclass
class Filled:
    app: EmbeddedApp
    engine: Engine
    admin: httpx.Client
    submitter: httpx.Client
    admin_key_id: str
    account_id: str
    her_jobs: list[str]


def _ask(client: httpx.Client, question: str, user_id: str) -> str:
    submitted = client.post(
        "/v1/jobs",
        json={
            "question": question,
            "user_id": user_id,
            "feature": "handbook",
            "metadata": {"ticket": TICKET if user_id == ERASED_USER else "T-OTHER"},
            "callback_url": "http://127.0.0.1:9/hook",
        },
    )
    assert submitted.status_code == 202, submitted.text
    job_id: str = submitted.json()["id"]

    def final() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] not in ("queued", "running") else None

    wait_for(final, timeout_s=60)
    return job_id


@pytest.fixture
def filled(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
) -> Iterator[Filled]:
    config = _config(repo_config)
    with embedded_app(config, tmp_path, handbook_store, embedder, engine=sqlite_engine) as app:
        acme, submitter_key = make_tenant(sqlite_engine, "acme", roles=("submitter", "reviewer"))
        admin, admin_key = make_tenant(sqlite_engine, "ops", roles=("admin",))
        with serving(create_app(app.api)) as base:

            def client(key: str) -> httpx.Client:
                return httpx.Client(
                    base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
                )

            with client(submitter_key) as submitter, client(admin_key) as admin_client:
                jobs = [_ask(submitter, q, ERASED_USER) for q in ALICE_ASKS]
                other = _ask(submitter, OTHER_ASKS, OTHER_USER)
                # The extractive provider's calls are free and hold no budget; a priced
                # call's reservation, given back, leaves the counters a priced one keeps.
                book = app.services.budgets
                book.release(book.reserve(other, "acme", None, 1_000), other)
                # A reviewer decides one of her answers; the decision becomes an eval item.
                items = submitter.get("/v1/reviews", params={"status": "all"}).json()["items"]
                item = next(i["id"] for i in items if i["job_id"] == jobs[0])
                assert submitter.post(f"/v1/reviews/{item}/claim").status_code == 200
                decided = submitter.post(f"/v1/reviews/{item}/decision", json={"decision": "good"})
                assert decided.status_code == 200, decided.text
                # A signed-in page session (about a key, never a person).
                signed_in = httpx.post(f"{base}/review/login", data={"key": admin_key})
                assert signed_in.status_code == 303, signed_in.text
                budget = {"scope": "account", "account": "acme", "window": "daily", "limit": 9}
                assert admin_client.put("/v1/admin/budgets", json=budget).status_code == 200
                docs = tmp_path / "docs"
                docs.mkdir()
                (docs / "leave.md").write_text("# Leave\n\nEveryone gets 25 days of leave.\n")
                build = {"folder": str(docs), "promote": True}
                built = admin_client.post("/v1/index/builds", json=build)
                assert built.status_code == 201, built.text
                stored = app.services.jobs.get(jobs[0], None)
                run_evaluation(
                    app.services,
                    [
                        EvalItem(id=f"review-{item}", question=stored.question),
                        EvalItem(id="unrelated", question="What is the parental leave policy?"),
                    ],
                    dataset="from-reviews",
                )
                yield Filled(
                    app,
                    sqlite_engine,
                    admin_client,
                    submitter,
                    admin.key_id,
                    acme.account_id,
                    jobs,
                )


# The deliverer keeps retrying the callbacks (nobody listens) while a test runs.
_SENDING = {"status", "attempts", "next_attempt_at", "last_status_code", "last_error"}


def _stored(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row, without the deliveries' sending progress."""
    rows = every_row(engine)
    rows["deliveries"] = [
        {k: v for k, v in row.items() if k not in _SENDING} for row in rows["deliveries"]
    ]
    return rows


def _mentions(rows: dict[str, list[dict[str, Any]]], *needles: str) -> dict[str, int]:
    """Rows per table whose text holds any of the needles."""
    found: dict[str, int] = {}
    for table, table_rows in rows.items():
        for row in table_rows:
            text = json.dumps(row, default=str)
            if any(needle in text for needle in needles):
                found[table] = found.get(table, 0) + 1
    return found


def test_a_persons_data_is_erased_everywhere_and_the_trail_shows_who(filled: Filled) -> None:
    before = _stored(filled.engine)
    empty = sorted(table for table, rows in before.items() if not rows)
    assert empty == [], f"the fixture should fill every table: {empty} are empty"
    her = (ERASED_USER, TICKET, *ALICE_ASKS)
    assert _mentions(before, *her).keys() >= {"jobs", "eval_runs"}
    # Rows about her jobs (a random id each): review items with the reviewers' drafts and
    # notes, webhook deliveries; the ledger and the audit trail keep the bare ids.
    about_her = _mentions(before, *filled.her_jobs)
    assert about_her.keys() >= {"review_items", "deliveries", "usage_records"}

    erased = filled.admin.delete(f"/v1/users/{ERASED_USER}")

    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["jobs"] == 2 and body["review_items"] == 2 and body["deliveries"] >= 1
    assert body["eval_items"] == 1 and body["accounts"] == ["acme"]
    after = _stored(filled.engine)
    assert _mentions(after, *her) == {}, "her data is still stored"
    kept_ids = _mentions(after, *filled.her_jobs)
    assert kept_ids.keys() == {"usage_records", "audit_entries"}
    assert kept_ids["usage_records"] == about_her["usage_records"]
    # Everyone else's data and every amount of spend are as they were.
    assert _mentions(after, OTHER_USER, OTHER_ASKS)["jobs"] == 1
    assert after["usage_records"] == before["usage_records"]
    assert after["budget_counters"] == before["budget_counters"]
    kept = next(r for r in after["eval_runs"] if r["dataset"] == "from-reviews")["items"]
    assert [i["question"] for i in kept] == ["[erased]", "What is the parental leave policy?"]
    assert kept[0]["status"] == before["eval_runs"][-1]["items"][0]["status"]  # scores stay

    entry = filled.admin.get("/v1/audit", params={"action": "user.erase"}).json()["items"][0]
    assert entry["actor"] == f"key:{filled.admin_key_id}"
    assert entry["target"] == audit.user_ref(filled.account_id, ERASED_USER) == body["user_ref"]
    assert entry["request_id"] == erased.headers["x-request-id"]
    assert entry["after"]["jobs"] == 2
    assert audit.verify(filled.engine).intact

    again = filled.admin.delete(f"/v1/users/{ERASED_USER}")
    assert again.status_code == 404 and ERASED_USER in again.json()["detail"]
    assert _stored(filled.engine) == after  # an unknown user: nothing changes, no entry


def test_erasure_refuses_non_admins_unknown_accounts_and_running_jobs(filled: Filled) -> None:
    assert filled.submitter.delete(f"/v1/users/{OTHER_USER}").status_code == 403
    unknown = filled.admin.delete(f"/v1/users/{OTHER_USER}", params={"account": "nope"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
    with filled.engine.begin() as connection:
        connection.execute(
            update(Job).where(Job.user_id == OTHER_USER).values(status=JobStatus.RUNNING)
        )
    before = _stored(filled.engine)

    refused = filled.admin.delete(f"/v1/users/{OTHER_USER}")

    assert refused.status_code == 409 and "nothing was erased" in refused.json()["detail"]
    assert _stored(filled.engine) == before


def test_an_operator_erases_from_the_cli(filled: Filled, tmp_path: Path) -> None:
    env = ragline_env(tmp_path)
    erased = run_cli("erase", "--user", OTHER_USER, "--account", "acme", "--yes", env=env)
    assert erased.returncode == 0, erased.stderr
    assert f"erased user '{OTHER_USER}' in acme: 1 jobs" in erased.stdout
    assert _mentions(_stored(filled.engine), OTHER_USER, OTHER_ASKS) == {}
    missing = run_cli("erase", "--user", OTHER_USER, "--yes", env=env)
    assert missing.returncode != 0 and "no data is held" in missing.stderr

    listed = run_cli("audit", "list", "--action", "user.", env=env)
    assert listed.returncode == 0 and "operator:" in listed.stdout
    assert OTHER_USER not in listed.stdout  # the trail names a digest
    verified = run_cli("audit", "verify", env=env)
    # (The embedded app's own threads log to the same captured stdout meanwhile.)
    assert verified.returncode == 0, verified.stderr
    assert any(line.startswith("intact: ") for line in verified.stdout.splitlines())
