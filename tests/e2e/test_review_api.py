"""The review workflow over HTTP in embedded mode: a real uvicorn server with worker threads
answering (or escalating) jobs on the demo handbook, SQLite, the real MiniLM model.

Account acme has a submitter key and two reviewer keys (alice, bob); globex has a reviewer
key (mallory) that must not see acme's items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from ragline.accounts import Accounts
from ragline.config import RaglineConfig
from ragline.evaluation.dataset import load_dataset
from ragline.jobs import JobRepository, Outcome
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import JobStatus, utcnow
from ragline.pipeline.validate import JobRequest
from tests.support.server import serving
from tests.support.services import embedded_app
from tests.support.waiting import wait_for

OFF_TOPIC = "Which football team won the 1998 world cup?"
FINAL = {"answered", "escalated", "rejected", "failed"}
PROBLEM = "application/problem+json"


@dataclass
class Api:
    client: httpx.Client
    engine: Engine
    account_id: str
    submitter: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    mallory: dict[str, str]


def _key(accounts: Accounts, account: str, name: str, *roles: str) -> dict[str, str]:
    issued = accounts.create_key(account, roles=roles, name=name)
    return {"Authorization": f"Bearer {issued.plaintext}"}


@pytest.fixture
def api(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
) -> Iterator[Api]:
    with embedded_app(
        repo_config, tmp_path, handbook_store, embedder, engine=sqlite_engine, own_index=False
    ) as app:
        services = app.api
        accounts = Accounts(sqlite_engine)
        acme = accounts.create_account("acme")
        accounts.create_account("globex")
        with (
            serving(create_app(services)) as base_url,
            httpx.Client(base_url=base_url, timeout=30) as client,
        ):
            yield Api(
                client=client,
                engine=sqlite_engine,
                account_id=acme.id,
                submitter=_key(accounts, "acme", "intranet", "submitter"),
                alice=_key(accounts, "acme", "alice", "reviewer"),
                bob=_key(accounts, "acme", "bob", "reviewer"),
                mallory=_key(accounts, "globex", "mallory", "reviewer"),
            )


def escalate(api: Api, question: str = OFF_TOPIC) -> tuple[str, int]:
    """Submit a question the handbook cannot answer; (job id, review item id) once the
    pipeline has escalated it."""
    body = {"question": question, "user_id": "u-42", "feature": "handbook"}
    accepted = api.client.post("/v1/jobs", json=body, headers=api.submitter)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]

    def done() -> dict[str, Any] | None:
        job = api.client.get(f"/v1/jobs/{job_id}", headers=api.submitter).json()
        return job if job["status"] in FINAL else None

    job = wait_for(done, timeout_s=60)
    assert (job["status"], job["reason"]) == ("escalated", "low_confidence"), job
    return job_id, item_for(api, job_id)["id"]


def item_for(api: Api, job_id: str) -> dict[str, Any]:
    response = api.client.get("/v1/reviews", params={"status": "all"}, headers=api.alice)
    assert response.status_code == 200, response.text
    return next(i for i in response.json()["items"] if i["job_id"] == job_id)


def claim(api: Api, item: int, who: dict[str, str]) -> httpx.Response:
    return api.client.post(f"/v1/reviews/{item}/claim", headers=who)


def decide(api: Api, item: int, who: dict[str, str], **body: Any) -> httpx.Response:
    return api.client.post(f"/v1/reviews/{item}/decision", json=body, headers=who)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def test_an_escalated_question_is_listed_with_priority_due_time_and_no_claim(api: Api) -> None:
    job_id, item_id = escalate(api)
    response = api.client.get("/v1/reviews", headers=api.alice)
    assert response.status_code == 200
    body = response.json()
    assert (body["limit"], body["offset"]) == (50, 0)
    [item] = body["items"]
    assert (item["id"], item["job_id"], item["reason"]) == (item_id, job_id, "low_confidence")
    assert (item["status"], item["priority"], item["overdue"], item["claim"]) == (
        "open",
        "normal",
        False,
        None,
    )
    assert item["question"] == OFF_TOPIC
    assert item["due_at"] is not None and item["sla_breached"] is False
    assert item["decision"] is None and item["final_answer"] is None


def test_the_first_reviewer_claims_and_a_second_gets_409_naming_the_holder(api: Api) -> None:
    _, item_id = escalate(api)
    claimed = claim(api, item_id, api.alice)
    assert claimed.status_code == 200, claimed.text
    view = claimed.json()
    assert view["status"] == "claimed"
    assert view["claim"]["by"] == "alice" and view["claim"]["until"] is not None

    problem = assert_problem(claim(api, item_id, api.bob), 409)
    assert problem["detail"].startswith(f"review item {item_id} is claimed by alice until ")
    assert api.client.get(f"/v1/reviews/{item_id}", headers=api.bob).json()["claim"]["by"] == (
        "alice"
    )


def test_an_edit_delivers_the_reviewers_answer_to_the_submitter(api: Api) -> None:
    job_id, item_id = escalate(api)
    assert claim(api, item_id, api.alice).status_code == 200
    edited = "France won the 1998 World Cup, but this assistant only covers the handbook."
    response = decide(api, item_id, api.alice, decision="edit", answer=edited, note="off-topic")
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["status"], view["decision"], view["final_answer"], view["note"]) == (
        "decided",
        "edit",
        edited,
        "off-topic",
    )
    assert view["claim"] is None

    job = api.client.get(f"/v1/jobs/{job_id}", headers=api.submitter).json()
    assert (job["status"], job["answer"], job["citations"]) == ("answered", edited, [])
    assert job["decided_by"] == "reviewer:alice"


def test_a_decision_without_a_claim_is_409(api: Api) -> None:
    job_id, item_id = escalate(api)
    problem = assert_problem(
        decide(api, item_id, api.alice, decision="reject", reason_code="out_of_scope"), 409
    )
    assert problem["detail"] == f"claim review item {item_id} before deciding it"
    job = api.client.get(f"/v1/jobs/{job_id}", headers=api.submitter).json()
    assert job["status"] == "escalated"


def test_deciding_twice_is_409(api: Api) -> None:
    job_id, item_id = escalate(api)
    assert claim(api, item_id, api.alice).status_code == 200
    first = decide(api, item_id, api.alice, decision="reject", reason_code="out_of_scope")
    assert first.status_code == 200, first.text
    problem = assert_problem(decide(api, item_id, api.alice, decision="edit", answer="x"), 409)
    assert problem["detail"] == f"review item {item_id} was already decided (reject)"
    job = api.client.get(f"/v1/jobs/{job_id}", headers=api.submitter).json()
    assert (job["status"], job["reason"]) == ("rejected", "out_of_scope")
    assert job["answer"] == RaglineConfig().review.fallback_answer


def test_an_empty_edit_is_422_naming_the_answer(api: Api) -> None:
    _, item_id = escalate(api)
    assert claim(api, item_id, api.alice).status_code == 200
    problem = assert_problem(decide(api, item_id, api.alice, decision="edit", answer="  "), 422)
    assert problem["errors"] == [{"field": "answer", "message": "the answer must not be empty"}]
    assert api.client.get(f"/v1/reviews/{item_id}", headers=api.alice).json()["status"] == (
        "claimed"
    )


def test_an_unknown_decision_is_422_naming_the_decision(api: Api) -> None:
    _, item_id = escalate(api)
    assert claim(api, item_id, api.alice).status_code == 200
    problem = assert_problem(decide(api, item_id, api.alice, decision="maybe"), 422)
    assert [e["field"] for e in problem["errors"]] == ["decision"]


def test_a_submitter_key_gets_403_on_the_review_queue(api: Api) -> None:
    _, item_id = escalate(api)
    for response in (
        api.client.get("/v1/reviews", headers=api.submitter),
        api.client.get(f"/v1/reviews/{item_id}", headers=api.submitter),
        claim(api, item_id, api.submitter),
        api.client.get("/v1/reviews/export", headers=api.submitter),
    ):
        problem = assert_problem(response, 403)
        assert problem["detail"] == "this API key lacks the 'reviewer' role"


def test_another_accounts_reviewer_gets_404_on_the_item(api: Api) -> None:
    _, item_id = escalate(api)
    assert api.client.get("/v1/reviews", headers=api.mallory).json()["items"] == []
    for response in (
        api.client.get(f"/v1/reviews/{item_id}", headers=api.mallory),
        claim(api, item_id, api.mallory),
        decide(api, item_id, api.mallory, decision="edit", answer="mine now"),
    ):
        problem = assert_problem(response, 404)
        assert problem["detail"] == f"review item {item_id} not found"
    assert api.client.get(f"/v1/reviews/{item_id}", headers=api.alice).json()["status"] == "open"


def test_the_export_streams_one_json_line_per_decision(api: Api, tmp_path: Path) -> None:
    _, edited = escalate(api)
    _, rejected = escalate(api, "Who painted the Mona Lisa?")
    escalate(api, "What is the boiling point of tungsten?")  # undecided: not exported
    for item_id, body in (
        (edited, {"decision": "edit", "answer": "France."}),
        (rejected, {"decision": "reject", "reason_code": "out_of_scope"}),
    ):
        assert claim(api, item_id, api.alice).status_code == 200
        assert decide(api, item_id, api.alice, **body).status_code == 200

    response = api.client.get("/v1/reviews/export", headers=api.alice)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = response.text.splitlines()
    assert len(lines) == 2 and response.text.endswith("\n")
    examples = [json.loads(line) for line in lines]
    assert [(e["id"], e["question"], e["verdict"], e["final_answer"]) for e in examples] == [
        (f"review-{edited}", OFF_TOPIC, "edit", "France."),
        (
            f"review-{rejected}",
            "Who painted the Mona Lisa?",
            "reject",
            RaglineConfig().review.fallback_answer,
        ),
    ]
    assert [e["expected"] for e in examples] == ["answered", "escalated"]
    assert all("draft" in e and e["passages"] for e in examples)
    # The export is an evaluation dataset as it stands: `ragline eval run` reads it.
    exported = tmp_path / "reviewed.jsonl"
    exported.write_text(response.text)
    dataset = load_dataset(exported)
    assert [i.id for i in dataset] == [f"review-{edited}", f"review-{rejected}"]
    assert dataset[0].gold_answer == "France." and dataset[1].expected == "escalated"
    assert api.client.get("/v1/reviews/export", headers=api.mallory).text == ""


def _timeout_escalation(api: Api) -> str:
    """An item with another reason, made the way a worker would store a timed-out job."""
    jobs = JobRepository(api.engine)
    request = JobRequest(question="How do I book a meeting room?", user_id="u-7")
    job, _ = jobs.submit(request, account_id=api.account_id, deadline=timedelta(seconds=60))
    lease = jobs.claim(job.id, timedelta(seconds=30))
    assert lease is not None
    outcome = Outcome(status=JobStatus.ESCALATED, reason="timeout")
    assert jobs.finish(lease, outcome, review_due=utcnow() + timedelta(hours=2))
    return job.id


def test_the_status_and_reason_filters_work_over_http(api: Api) -> None:
    decided_job, decided = escalate(api)
    open_job, _ = escalate(api, "Who painted the Mona Lisa?")
    timeout_job = _timeout_escalation(api)
    assert claim(api, decided, api.alice).status_code == 200
    assert decide(api, decided, api.alice, decision="edit", answer="France.").status_code == 200

    def jobs(**params: str) -> list[str]:
        response = api.client.get("/v1/reviews", params=params, headers=api.bob)
        assert response.status_code == 200, response.text
        return [item["job_id"] for item in response.json()["items"]]

    assert jobs(status="decided") == [decided_job]
    assert jobs() == [timeout_job, open_job]  # pending, the earliest due first
    assert set(jobs(status="all")) == {decided_job, open_job, timeout_job}
    assert jobs(reason="timeout") == [timeout_job]
    assert jobs(reason="low_confidence") == [open_job]
    assert jobs(reason="low_confidence", status="all") == [decided_job, open_job]
    assert_problem(api.client.get("/v1/reviews?status=closed", headers=api.bob), 422)
    # Empty values, as the README's parameter list or a form with empty fields sends them,
    # leave those filters unset.
    assert jobs(reason="", feature="", overdue="") == [timeout_job, open_job]
    unknown = api.client.get("/v1/reviews?reason=late", headers=api.bob)
    assert_problem(unknown, 422)
    assert "low_confidence" in unknown.text  # the valid reasons are named
