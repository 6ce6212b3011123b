"""The answer cache as a new user meets it, over HTTP against the embedded server (the
handbook, a loopback model that extracts passage [1] or says what a test scripts): a
question asked again in other words by another user is answered at once from the first
(the job names it); a changed number is not; a contradicting answer reaches the review page
beside the one it contradicts; the operator page and `ragline cache stats|clear` count it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from ragline.bootstrap import Services
from ragline.config import RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from tests.support.console import run_cli
from tests.support.fake_model import FakeModelServer
from tests.support.processes import ragline_env
from tests.support.server import serving
from tests.support.services import embedded_app, settings_for
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

CARRY = "How many unused annual leave days can I carry over into next year?"
CARRY_AGAIN = "What is the number of unused annual leave days I may carry into the next year?"
LEAVE = "How many days of annual leave does a full-time employee get?"
LEAVE_AGAIN = "How many days of annual leave does a full-time employee receive?"
REQUESTS = "Annual leave requests of up to 3 days: how far in advance must they be submitted?"
REQUESTS_CHANGED = (
    "Annual leave requests of up to 10 days: how far in advance must they be submitted?"
)


@dataclass
class Site:
    url: str
    alice: httpx.Client
    bob: httpx.Client
    reviewer_key: str
    admin_key: str
    core: Services
    model: FakeModelServer


@pytest.fixture
def site(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    fake_model: FakeModelServer,
    tmp_path: Path,
) -> Iterator[Site]:
    data = repo_config.model_dump()
    data["review"]["sample_rate"] = 0.0
    fake_model.behaviour.mode = "extract"
    with embedded_app(
        parse_config(data),
        tmp_path,
        handbook_store,
        embedder,
        engine=sqlite_engine,
        settings=settings_for(tmp_path, model_base_url=fake_model.base_url),
        own_index=False,
    ) as app:
        core = app.services
        _, alice = make_tenant(core.engine, roles=("submitter",))
        _, bob = make_tenant(core.engine, roles=("submitter",))
        _, reviewer = make_tenant(core.engine, roles=("reviewer",))
        _, admin = make_tenant(core.engine, roles=("admin",))
        with serving(create_app(app.api)) as url:
            clients = [
                httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {k}"})
                for k in (alice, bob)
            ]
            try:
                yield Site(url, *clients, reviewer, admin, core, fake_model)
            finally:
                for client in clients:
                    client.close()


def _final(client: httpx.Client, question: str, user: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs", json={"question": question, "user_id": user, **fields})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    found: dict[str, Any] = {}

    def final() -> bool:
        found.update(client.get(f"/v1/jobs/{job_id}").json())
        return found["status"] not in ("queued", "running")

    wait_for(final, timeout_s=60)
    return found


def test_asked_again_in_other_words_by_another_user_is_answered_from_the_first(
    site: Site,
) -> None:
    first = _final(site.alice, CARRY, "alice")
    assert first["status"] == "answered" and first["cache"]["hit"] is False
    calls = len(site.model.behaviour.requests)

    again = _final(site.bob, CARRY_AGAIN, "bob")
    assert again["status"] == "answered"
    assert again["cache"] == {"hit": True, "source_job": first["id"], "reviewed": False}
    assert again["decided_by"] == "cache"
    assert again["answer"] == first["answer"] and again["versions"] == first["versions"]
    assert len(site.model.behaviour.requests) == calls  # no model call
    trace = site.bob.get(f"/v1/jobs/{again['id']}/trace").json()
    cache_span = next(s for s in trace["spans"] if s["name"] == "cache")
    assert cache_span["attributes"]["source_job"] == first["id"]

    asked = _final(site.alice, REQUESTS, "alice")
    changed = _final(site.bob, REQUESTS_CHANGED, "bob")  # a number changed: answered afresh
    assert asked["status"] == changed["status"] == "answered"
    assert changed["cache"]["hit"] is False
    assert len(site.model.behaviour.requests) == calls + 2

    env = ragline_env(site.core.settings.data_dir)
    stats = run_cli("cache", "stats", "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    counted = json.loads(stats.stdout)
    assert counted["hits"] == 1 and counted["finished"] == 4
    assert counted["entries"] == {"answered": 3}

    with httpx.Client(base_url=site.url, follow_redirects=True) as admin:
        admin.post("/review/login", data={"key": site.admin_key})
        page = admin.get("/review/ops")
        assert page.status_code == 200
        assert 'id="cache-hits">1<' in page.text and 'id="cache-hit-rate">25.0%<' in page.text

    cleared = run_cli("cache", "clear", "--yes", env=env)
    assert cleared.returncode == 0 and "removed 3 entries" in cleared.stdout
    fresh = _final(site.bob, CARRY_AGAIN, "bob")
    assert fresh["cache"]["hit"] is False


def test_a_contradiction_is_shown_to_the_reviewer_beside_the_earlier_answer(
    site: Site,
) -> None:
    first = _final(site.alice, LEAVE, "alice")
    assert "25 days" in first["answer"]
    site.model.behaviour.mode = "answer"
    site.model.behaviour.reply = "An employee working 4 days a week receives 20 days [1]."
    second = _final(site.bob, LEAVE_AGAIN, "bob", cache=False)
    assert second["status"] == "escalated" and second["reason"] == "inconsistent"
    assert "contradicts a recent answer" in second["detail"]

    with httpx.Client(base_url=site.url, follow_redirects=True) as reviewer:
        reviewer.post("/review/login", data={"key": site.reviewer_key})
        items = httpx.get(
            f"{site.url}/v1/reviews", headers={"Authorization": f"Bearer {site.reviewer_key}"}
        ).json()["items"]
        (item,) = [i for i in items if i["job_id"] == second["id"]]
        page = reviewer.get(f"/review/items/{item['id']}").text
    assert 'id="compared"' in page and "Contradicts an earlier answer" in page
    assert "receives 20 days" in page.split('id="this-answer"')[1].split("</pre>")[0]
    assert "receives 25 days" in page.split('id="earlier-answer"')[1].split("</pre>")[0]
    assert first["id"][:8] in page
