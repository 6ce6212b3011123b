"""The item page as a reviewer uses it to decide (Debian's chromium driven by Playwright,
the embedded server, the handbook, a loopback model that answers what each test scripts):
the draft sentence by sentence, each linked to the passage sentence that supports it
(highlighted in the passage's text) or marked unsupported; the user's earlier questions;
one key to approve; the queue cleared from the keyboard; sampled answers marked good in
bulk; search and document filters; a note started from the reject code's template; an edit
shown as a diff and kept through an expired session."""

from __future__ import annotations

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
from tests.support.fake_model import FakeModelServer
from tests.support.server import serving
from tests.support.services import embedded_app, settings_for
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

# Browser journeys of a few seconds each: `make test-slow` (tests/unit/test_evidence.py keeps
# the evidence markup in the fast suite).
pytestmark = pytest.mark.slow

LEAVE = "How many days of annual leave do employees get?"
SUPPORTED = "Employees get 25 days of paid annual leave per calendar year [1]."
INVENTED = "Unused days are paid out at 150 percent of salary [1]."
OFF_TOPIC = [
    "Which football team won the 1998 world cup?",
    "What is the boiling point of mercury?",
    "Who painted the ceiling of the Sistine Chapel?",
    "How tall is Mount Kilimanjaro?",
    "What is the capital of Mongolia?",
]


@dataclass
class Site:
    url: str
    api: httpx.Client  # a submitter's key
    reviewer_key: str
    core: Services
    model: FakeModelServer


def _config(repo_config: RaglineConfig, sample_rate: float) -> RaglineConfig:
    data = repo_config.model_dump()
    data["review"]["sample_rate"] = sample_rate
    return parse_config(data)


@pytest.fixture
def site(
    request: pytest.FixtureRequest,
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    fake_model: FakeModelServer,
    tmp_path: Path,
) -> Iterator[Site]:
    config = _config(repo_config, getattr(request, "param", 1.0))
    settings = settings_for(tmp_path, model_base_url=fake_model.base_url)
    with embedded_app(
        config,
        tmp_path,
        handbook_store,
        embedder,
        engine=sqlite_engine,
        settings=settings,
        own_index=False,
    ) as app:
        _, submitter = make_tenant(app.services.engine, roles=("submitter",))
        _, reviewer = make_tenant(app.services.engine, roles=("reviewer",))
        with (
            serving(create_app(app.api)) as url,
            httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {submitter}"}
            ) as api,
        ):
            yield Site(url, api, reviewer, app.services, fake_model)


def _ask(site: Site, question: str, user_id: str = "u-1") -> str:
    response = site.api.post("/v1/jobs", json={"question": question, "user_id": user_id})
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])

    def final() -> bool:
        return site.api.get(f"/v1/jobs/{job_id}").json()["status"] not in ("queued", "running")

    wait_for(final, timeout_s=60)
    return job_id


def _log_in(page: Any, site: Site, then: str = "/review") -> None:
    page.goto(f"{site.url}{then}")
    page.wait_for_url("**/review/login**")
    page.fill("#key", site.reviewer_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}{then}")


def _item_of(site: Site, job_id: str) -> int:
    headers = {"Authorization": f"Bearer {site.reviewer_key}"}
    items = httpx.get(f"{site.url}/v1/reviews", params={"status": "all"}, headers=headers).json()[
        "items"
    ]
    return int(next(i["id"] for i in items if i["job_id"] == job_id))


def test_each_draft_sentence_links_to_its_evidence_or_is_marked_unsupported(
    site: Site, browser: Any
) -> None:
    site.model.behaviour.mode = "answer"
    site.model.behaviour.reply = f"{SUPPORTED} {INVENTED}"
    earlier = _ask(site, "Do part-time employees get annual leave?")
    job_id = _ask(site, LEAVE)
    page = browser.new_page()
    _log_in(page, site, f"/review/items/{_item_of(site, job_id)}")

    sentences = page.locator("#draft-sentences li")
    assert sentences.count() == 2
    supported, invented = sentences.nth(0), sentences.nth(1)
    assert "supported" in (supported.get_attribute("class") or "").split()
    assert "unsupported" in (invented.get_attribute("class") or "").split()
    assert "150 percent" in invented.inner_text() and "unsupported" in invented.inner_text()
    assert "not supported by any passage" in page.inner_text("#draft-card")
    # The supporting sentence is highlighted in its passage and linked both ways.
    supported.locator("a.evidence-link").click()
    page.wait_for_url("**#evidence-1")
    mark = page.locator("mark#evidence-1")
    assert "25 days" in mark.inner_text()
    assert mark.locator("a[href='#draft-1']").count() == 1
    assert page.locator("mark").count() >= 1
    # The user's earlier question of the last 30 days, linked to its trace.
    assert "part-time employees" in page.inner_text("#earlier")
    assert page.locator(f"#earlier a[href='/review/jobs/{earlier}']").count() == 1
    page.close()


@pytest.mark.parametrize("site", [0.0], indirect=True)
def test_five_escalations_are_cleared_from_the_keyboard_one_key_each(
    site: Site, browser: Any
) -> None:
    site.model.behaviour.mode = "extract"  # a draft from passages that do not answer
    jobs = [_ask(site, question) for question in OFF_TOPIC]
    assert {site.api.get(f"/v1/jobs/{j}").json()["status"] for j in jobs} == {"escalated"}
    page = browser.new_page()
    _log_in(page, site)

    keys = 0
    for _ in jobs:
        page.keyboard.press("Enter")  # open the most urgent item
        page.wait_for_url("**/review/items/*")
        page.keyboard.press("a")  # claim and approve its draft
        page.wait_for_url("**/review?msg=*")
        keys += 2
    assert keys == 10
    assert "Nothing to review." in page.inner_text("#queue")
    statuses = {site.api.get(f"/v1/jobs/{j}").json()["status"] for j in jobs}
    assert statuses == {"answered"}
    page.close()


def test_sampled_answers_are_marked_good_in_bulk_and_found_by_text_or_document(
    site: Site, browser: Any
) -> None:
    site.model.behaviour.mode = "extract"
    leave = _ask(site, LEAVE)
    expenses = _ask(site, "How do I file travel expenses?")
    leave_item, expenses_item = _item_of(site, leave), _item_of(site, expenses)
    page = browser.new_page()
    _log_in(page, site, "/review?reason=sampled")

    page.fill("#search", "ANNUAL leave")
    page.click("form[action='/review'] button[type=submit]")
    shown = page.locator("#queue tr[data-item]")
    assert [shown.nth(i).get_attribute("data-item") for i in range(shown.count())] == [
        str(leave_item)
    ]
    documents = {p["document_id"] for p in site.api.get(f"/v1/jobs/{leave}").json()["citations"]}
    page.goto(f"{site.url}/review?document={documents.pop()}")
    assert str(leave_item) in [
        page.locator("#queue tr[data-item]").nth(i).get_attribute("data-item")
        for i in range(page.locator("#queue tr[data-item]").count())
    ]

    page.goto(f"{site.url}/review?reason=sampled")
    page.check("#select-sampled")
    page.click("#bulk-good")
    page.wait_for_url("**/review?reason=sampled&msg=*")
    assert "2 marked good" in page.inner_text("[role=status]")
    headers = {"Authorization": f"Bearer {site.reviewer_key}"}
    for item in (leave_item, expenses_item):
        decided = httpx.get(f"{site.url}/v1/reviews/{item}", headers=headers).json()
        assert decided["decision"] == "good"
    page.close()


@pytest.mark.parametrize("site", [0.0], indirect=True)
def test_an_edit_shows_its_diff_and_survives_an_expired_session(site: Site, browser: Any) -> None:
    site.model.behaviour.mode = "extract"
    job_id = _ask(site, OFF_TOPIC[0])
    item = _item_of(site, job_id)
    page = browser.new_page()
    _log_in(page, site, f"/review/items/{item}")
    page.keyboard.press("c")
    page.wait_for_selector("#edit")
    page.keyboard.press("r")  # the note starts from the first reject code's template
    assert page.input_value("#note").startswith("Outside what the knowledge base covers")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.keyboard.press("Control+A")
    page.keyboard.type("We do not answer questions about sports.")
    diff = page.inner_text("#edit-diff")
    assert "Changes to the draft" in diff and "sports." in diff
    assert page.locator("#edit-diff ins").count() >= 1

    page.context.clear_cookies()  # the session ends while the reviewer types
    page.click("#edit")
    page.wait_for_url("**/review/login?next=*")
    page.fill("#key", site.reviewer_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/review/items/{item}")
    assert page.input_value("#answer") == "We do not answer questions about sports."
    page.click("#edit")
    page.wait_for_url("**/review?msg=*")
    job = site.api.get(f"/v1/jobs/{job_id}").json()
    assert (job["status"], job["answer"]) == (
        "answered",
        "We do not answer questions about sports.",
    )
    page.close()
