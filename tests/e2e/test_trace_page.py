"""The operator's trace page (`/review/jobs/{id}`) in a real browser: a job answered by the
embedded server, found by its id, shows the prompt version, index version and the exact
passages the job stored, and its stages as a timeline."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from api.trace_view import WORKER_STAGES
from ragline.config import RaglineConfig
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from tests.support.server import serving
from tests.support.services import embedded_app
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

QUESTION = "How many days of paid annual leave does a full-time employee get?"


@dataclass
class Site:
    url: str
    api: httpx.Client
    operator_key: str
    other_account: httpx.Client


@pytest.fixture
def site(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path: Path,
) -> Iterator[Site]:
    with embedded_app(
        repo_config, tmp_path, handbook_store, embedder, engine=sqlite_engine, own_index=False
    ) as app:
        core, services = app.services, app.api
        _, submitter = make_tenant(core.engine, roles=("submitter",))
        _, operator = make_tenant(core.engine, roles=("reviewer",))
        _, stranger = make_tenant(core.engine, name="globex", roles=("submitter",))
        with (
            serving(create_app(services)) as url,
            httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {submitter}"}
            ) as api,
            httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {stranger}"}
            ) as other,
        ):
            yield Site(url, api, operator, other)


def _answered(api: httpx.Client, question: str) -> dict[str, Any]:
    response = api.post("/v1/jobs", json={"question": question, "user_id": "u-1"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] not in ("queued", "running") else None

    return wait_for(finished, timeout_s=60)


def _log_in(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/review/login")
    page.fill("#key", site.operator_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/review")


def test_a_jobs_trace_shows_its_versions_passages_and_stage_timeline(
    site: Site, browser: Any
) -> None:
    job = _answered(site.api, QUESTION)
    assert job["status"] == "answered"
    stored = site.api.get(f"/v1/jobs/{job['id']}/trace").json()
    retrieve = next(s for s in stored["spans"] if s["name"] == "retrieve")
    chunk_ids = [c["chunk_id"] for c in retrieve["attributes"]["chunks"]]

    page = browser.new_page()
    _log_in(page, site)
    page.fill("#job-id", job["id"])
    page.click("#job-id + button")
    page.wait_for_url(f"**/review/jobs/{job['id']}")

    assert page.inner_text("#prompt-version") == job["versions"]["prompt_version"]
    assert page.inner_text("#index-version") == job["versions"]["index_version"]
    shown = page.inner_text("#passages")
    assert chunk_ids and all(chunk_id in shown for chunk_id in chunk_ids)
    names = page.locator("#timeline tr.span").evaluate_all("rows => rows.map(r => r.dataset.name)")
    for stage in ("admission", "queue", "embed", "retrieve", "generate", "score", "route"):
        assert stage in names
    assert names.index("retrieve") < names.index("generate") < names.index("route")
    # Each worker stage has a bar; the bars lie within the run and do not overlap.
    bars = page.locator("#timeline tr.span td:last-child div div").evaluate_all(
        "bars => bars.map(b => [parseFloat(b.style.left), parseFloat(b.style.width)])"
    )
    assert len(bars) == len([n for n in names if n in WORKER_STAGES])
    for (left, width), (next_left, _) in itertools.pairwise(bars):
        assert 0 <= left <= 100 and left + width <= 100.5
        assert next_left >= left + width - 0.5
    page.click("#timeline tr.span[data-name=generate] summary")
    assert "prompt_hash" in page.inner_text("#timeline tr.span[data-name=generate]")
    assert QUESTION in page.inner_text("main")
    page.close()


def test_the_trace_page_needs_a_session_and_stays_within_the_account(
    site: Site, browser: Any
) -> None:
    theirs = _answered(site.other_account, QUESTION)
    with httpx.Client(base_url=site.url, follow_redirects=False) as anonymous:
        response = anonymous.get(f"/review/jobs/{theirs['id']}")
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/review/login"
        )

    page = browser.new_page()
    _log_in(page, site)
    response = page.goto(f"{site.url}/review/jobs/{theirs['id']}")
    assert response is not None and response.status == 404
    assert "not found" in page.inner_text("[role=alert]")
    response = page.goto(f"{site.url}/review/jobs/no-such-job")
    assert response is not None and response.status == 404
    page.close()
