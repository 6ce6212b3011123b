"""The reviewer web page in a real browser (Debian's chromium driven by Playwright), against
the embedded server with the demo handbook: an off-topic job escalates, a reviewer logs in,
claims it from the keyboard, edits and delivers the answer, and the business system's
callback receiver gets one delivery signed as Standard Webhooks define."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.app import create_app
from ragline.bootstrap import Services
from ragline.config import RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Account
from tests.support.receiver import Receiver, receiving
from tests.support.server import serving
from tests.support.services import embedded_app
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

OFF_TOPIC = "Which football team won the 1998 world cup?"


@dataclass
class Site:
    url: str
    api: httpx.Client  # a submitter's key
    reviewer_key: str
    core: Services
    receiver: Receiver


def _config(repo_config: RaglineConfig, **review: Any) -> RaglineConfig:
    data = repo_config.model_dump()
    data["deliveries"].update(allow_private_targets=True, poll_interval_ms=100)  # loopback
    data["review"].update(review)
    return parse_config(data)


@pytest.fixture
def site(
    request: pytest.FixtureRequest,
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path: Path,
) -> Iterator[Site]:
    review = getattr(request, "param", {})
    config = _config(repo_config, **review)
    with embedded_app(
        config, tmp_path, handbook_store, embedder, engine=sqlite_engine, own_index=False
    ) as app:
        core, services = app.services, app.api
        _, submitter = make_tenant(core.engine, roles=("submitter",))
        _, reviewer = make_tenant(core.engine, roles=("reviewer",))
        with (
            receiving() as receiver,
            serving(create_app(services)) as url,
            httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {submitter}"}
            ) as api,
        ):
            yield Site(url, api, reviewer, core, receiver)


def _escalated_job(site: Site) -> str:
    response = site.api.post(
        "/v1/jobs",
        json={"question": OFF_TOPIC, "user_id": "u-1", "callback_url": site.receiver.url},
    )
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])

    def escalated() -> bool:
        return bool(site.api.get(f"/v1/jobs/{job_id}").json()["status"] == "escalated")

    wait_for(escalated, timeout_s=60)
    return job_id


def _log_in(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/review")
    assert page.url.endswith("/review/login")
    page.fill("#key", site.reviewer_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/review")


def test_a_reviewer_edits_an_escalation_and_the_receiver_gets_one_signed_delivery(
    site: Site, browser: Any
) -> None:
    job_id = _escalated_job(site)
    page = browser.new_page()
    _log_in(page, site)
    assert OFF_TOPIC in page.inner_text("#queue")

    page.keyboard.press("Enter")  # open the selected (most urgent) item
    page.wait_for_url("**/review/items/*")
    assert page.inner_text("#question") == OFF_TOPIC
    assert "retrieve" in page.inner_text("#trace") and "generate" in page.inner_text("#trace")
    # The signals that routed it: probability under the threshold, the scorer's version.
    verdict = page.inner_text("#answerability")
    assert "answerability@" in verdict and "threshold" in verdict
    assert page.inner_text("#evidence") and "question terms" in page.inner_text("#signals")
    page.keyboard.press("c")  # claim
    page.wait_for_selector("#edit")
    page.keyboard.press("e")  # focus the answer
    page.keyboard.press("Control+A")
    page.keyboard.type("The handbook does not cover sports results.")
    page.click("#edit")
    page.wait_for_url("**/review?msg=*")
    assert "edit" in page.inner_text("[role=status]")

    job = site.api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "answered"
    assert job["answer"] == "The handbook does not cover sports results."
    assert job["decided_by"].startswith("reviewer:")

    wait_for(lambda: site.receiver.received or None, timeout_s=30)
    with Session(site.core.engine) as session:
        account = session.get(Account, _account_id(site))
        assert account is not None
        secret = account.webhook_secret
    delivery = site.receiver.received[0]
    payload = Webhook(secret).verify(delivery.body, delivery.headers)
    assert payload["type"] == "job.answered"
    assert payload["data"]["id"] == job_id
    assert payload["data"]["answer"] == "The handbook does not cover sports results."
    tampered = delivery.body.replace(b"sports", b"SPORTS")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, delivery.headers)
    assert len(site.receiver.received) == 1  # once, by webhook-id
    page.close()


@pytest.mark.parametrize("site", [{"claim_minutes": 0.02}], indirect=True)
def test_an_expired_claim_returns_the_item_to_the_queue(site: Site, browser: Any) -> None:
    _escalated_job(site)
    page = browser.new_page()
    _log_in(page, site)
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/items/*")
    page.keyboard.press("c")
    page.wait_for_selector("#edit")
    page.wait_for_timeout(1500)  # the claim (1.2 s) lapses

    page.goto(f"{site.url}/review")
    row = page.inner_text("#queue tbody tr")
    assert OFF_TOPIC in row
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/items/*")
    assert page.locator("#claim").count() == 1  # claimable again
    page.close()


def test_a_key_without_the_reviewer_role_cannot_log_in(site: Site, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{site.url}/review/login")
    submitter_key = site.api.headers["Authorization"].removeprefix("Bearer ")
    page.fill("#key", submitter_key)
    page.click("button[type=submit]")
    assert "reviewer" in page.inner_text("[role=alert]")
    assert page.context.cookies() == []
    page.close()


def test_a_form_without_the_session_csrf_token_is_refused(site: Site) -> None:
    _escalated_job(site)
    with httpx.Client(base_url=site.url, follow_redirects=False) as browserless:
        login = browserless.post("/review/login", data={"key": site.reviewer_key})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        items = json.loads(
            httpx.get(
                f"{site.url}/v1/reviews", headers={"Authorization": f"Bearer {site.reviewer_key}"}
            ).text
        )["items"]
        forged = browserless.post(f"/review/items/{items[0]['id']}/claim", data={"csrf": "x"})
        assert forged.status_code == 403
        assert "expired or came from elsewhere" in forged.text


def _account_id(site: Site) -> str:
    with Session(site.core.engine) as session:
        return str(session.exec(select(Account.id).where(Account.name == "acme")).one())


def test_guessing_keys_at_the_login_form_is_slowed_down(site: Site) -> None:
    with httpx.Client(base_url=site.url, follow_redirects=False) as guesser:
        codes = [
            guesser.post("/review/login", data={"key": f"rl_000000000000_guess{n}"}).status_code
            for n in range(11)
        ]
        assert codes == [401] * 10 + [429]
        refused = guesser.post("/review/login", data={"key": site.reviewer_key})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_the_review_forms_take_what_the_json_api_takes(site: Site) -> None:
    """NUL and bytes that are not UTF-8 are refused at the form, as the JSON API refuses
    them, and nothing is decided; the same answer in real UTF-8 is stored as written."""
    _escalated_job(site)
    reviewer = {"Authorization": f"Bearer {site.reviewer_key}"}
    item = httpx.get(f"{site.url}/v1/reviews", headers=reviewer).json()["items"][0]["id"]
    with httpx.Client(base_url=site.url, follow_redirects=False) as browser:
        assert browser.post("/review/login", data={"key": site.reviewer_key}).status_code == 303
        page = browser.get(f"/review/items/{item}").text
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match is not None
        token = match.group(1)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        decide = f"/review/items/{item}/decision"
        for body in (
            f"csrf={token}&claim=1&decision=edit&answer=Ask%00HR",  # a NUL
            f"csrf={token}&claim=1&decision=edit&answer=Ask%FFHR",  # not UTF-8
            f"csrf={token}&claim=1&decision=edit&answer=ok&note%00=x",  # a NUL in a name
        ):
            refused = browser.post(decide, content=body, headers=form)
            assert refused.status_code == 422, refused.text[:300]
            assert "must be text" in refused.text or "not UTF-8" in refused.text
        shown = httpx.get(f"{site.url}/v1/reviews/{item}", headers=reviewer).json()
        assert shown["status"] != "decided"
        written = "Fragen Sie die Personalabteilung (Größe: ≤ 5 Tage)."
        accepted = browser.post(
            decide, data={"csrf": token, "claim": "1", "decision": "edit", "answer": written}
        )
        assert accepted.status_code == 303, accepted.text[:300]
    decided = httpx.get(f"{site.url}/v1/reviews/{item}", headers=reviewer).json()
    assert decided["status"] == "decided" and decided["final_answer"] == written
