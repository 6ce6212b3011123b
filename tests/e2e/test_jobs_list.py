"""GET /v1/jobs and POST /v1/jobs/{id}/cancel over real HTTP, on SQLite and PostgreSQL.

The app is a deployed-mode API server (nothing drains its queue); jobs are submitted over
HTTP and moved on by the worker's own repository calls (claim, finish), so every status is
at hand. The last test runs the real pipeline (MiniLM, Qdrant local mode) on the document
groups of tests/e2e/test_group_visibility.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from cli.wiring import http_services
from ragline.bootstrap import Mode
from ragline.config import RaglineConfig, parse_config
from ragline.jobs import SCAN_BATCHES, JobRepository, Outcome
from ragline.models import JobStatus
from tests.e2e.test_group_visibility import (  # noqa: F401 - fixtures: the groups' index and keys
    BONUS,
    LEAVE,
    Keys,
    _answered,
    keys,
    store,
)
from tests.support.problems import problem
from tests.support.server import serving
from tests.support.services import bootstrapped
from tests.support.tenants import make_tenant
from workers.broker import make_broker, sender

LEASE = timedelta(seconds=30)
MAX_PAGES = 1_000  # a listing that has not ended by then loops


@dataclass
class World:
    jobs: JobRepository
    acme: httpx.Client  # submitter, groups: everyone
    finance: httpx.Client  # acme submitter, groups: finance
    reviewer: httpx.Client  # acme reviewer, groups: everyone
    indexer: httpx.Client  # acme indexer
    globex: httpx.Client  # submitter of another account
    admin: httpx.Client

    def submit(self, client: httpx.Client | None = None, **fields: Any) -> str:
        body = {"question": "How many days of annual leave?", "user_id": "u-1", **fields}
        response = (client or self.acme).post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def finish(self, job_id: str, status: JobStatus, groups: tuple[str, ...] = ()) -> None:
        """What a worker does: claim the job, store its outcome (answered from passages of
        these groups)."""
        claim = self.jobs.claim(job_id, LEASE)
        assert claim is not None
        passages = [
            {
                "chunk_id": f"c-{group}",
                "document_id": f"{group}/doc",
                "title": group,
                "score": 0.9,
                "text": f"a {group} passage",
                "groups": [group],
            }
            for group in groups
        ]
        assert self.jobs.finish(claim, Outcome(status=status, answer="ok", passages=passages))


def _config(repo_config: RaglineConfig) -> RaglineConfig:
    data = repo_config.model_dump()
    data["rate_limits"] = {"requests_per_second": 10_000, "burst": 10_000}
    data["deliveries"]["allow_private_targets"] = True  # a callback to loopback
    return parse_config(data)


@pytest.fixture
def world(engine: Engine, repo_config: RaglineConfig, tmp_path: Path) -> Iterator[World]:
    broker = make_broker(None)
    with bootstrapped(
        Mode.SERVER, tmp_path, _config(repo_config), engine=engine, send=sender(broker)
    ) as services:
        plaintext = {
            "acme": make_tenant(engine, "acme", roles=("submitter",))[1],
            "finance": make_tenant(engine, "acme", roles=("submitter",), groups=("finance",))[1],
            "reviewer": make_tenant(engine, "acme", roles=("reviewer",))[1],
            "indexer": make_tenant(engine, "acme", roles=("indexer",))[1],
            "globex": make_tenant(engine, "globex", roles=("submitter",))[1],
            "admin": make_tenant(engine, "platform", roles=("admin",))[1],
        }
        with serving(create_app(http_services(services, broker))) as base_url:
            clients = {
                who: httpx.Client(
                    base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
                )
                for who, key in plaintext.items()
            }
            try:
                yield World(services.jobs, **clients)
            finally:
                for client in clients.values():
                    client.close()


def _page(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _every_page(
    client: httpx.Client, *, cursor: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Each page of a listing, following next_cursor until it is null."""
    pages = []
    for _ in range(MAX_PAGES):
        page = _page(client, **params, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= page["limit"]
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the listing never ended")


def _listed(client: httpx.Client, **params: Any) -> list[str]:
    return [job["id"] for page in _every_page(client, **params) for job in page["items"]]


def _newest_first(pages: list[dict[str, Any]]) -> bool:
    ordered = [
        (datetime.fromisoformat(job["created_at"]), job["id"])
        for page in pages
        for job in page["items"]
    ]
    return ordered == sorted(ordered, reverse=True) and len(set(ordered)) == len(ordered)


# -- pagination ---------------------------------------------------------------------------------


def test_pages_list_every_job_once_newest_first_while_jobs_arrive(world: World) -> None:
    before = [world.submit(question=f"Question {n}?") for n in range(11)]

    first = _page(world.acme, limit=4)
    assert [job["id"] for job in first["items"]] == before[::-1][:4]
    assert first["next_cursor"] and first["limit"] == 4
    arrived = [world.submit(question=f"Late {n}?") for n in range(3)]
    rest = _every_page(world.acme, cursor=first["next_cursor"], limit=4)
    pages = [first, *rest]

    listed = [job["id"] for page in pages for job in page["items"]]
    assert listed == before[::-1]  # every job once; the late ones are not among them
    assert [len(page["items"]) for page in pages] == [4, 4, 3]
    assert _newest_first(pages)
    # A new listing starts with the jobs that arrived meanwhile.
    assert _listed(world.acme, limit=5) == [*arrived[::-1], *before[::-1]]
    # The items are what GET /v1/jobs/{id} shows.
    assert first["items"][0] == world.acme.get(f"/v1/jobs/{before[-1]}").json()


def test_a_page_that_ends_the_listing_has_no_cursor(world: World) -> None:
    assert _page(world.acme) == {"items": [], "next_cursor": None, "limit": 50}
    ids = [world.submit(question=f"Question {n}?") for n in range(6)]
    exact = _page(world.acme, limit=6)
    assert [job["id"] for job in exact["items"]] == ids[::-1]
    assert exact["next_cursor"] is None  # exactly a page: no empty page after it
    one_short = _page(world.acme, limit=5)
    assert one_short["next_cursor"] is not None
    last = _page(world.acme, limit=5, cursor=one_short["next_cursor"])
    assert [job["id"] for job in last["items"]] == [ids[0]] and last["next_cursor"] is None


# -- filters ------------------------------------------------------------------------------------


def test_each_filter_and_their_combinations(world: World) -> None:
    queued = world.submit(feature="hr", user_id="u-1")
    running = world.submit(feature="hr", user_id="u-2")
    answered = world.submit(feature="it", user_id="u-1")
    escalated = world.submit(feature="it", user_id="u-2")
    cancelled = world.submit(feature="hr", user_id="u-3")
    assert world.jobs.claim(running, LEASE) is not None
    world.finish(answered, JobStatus.ANSWERED, ("everyone",))
    world.finish(escalated, JobStatus.ESCALATED, ("everyone",))
    assert world.acme.post(f"/v1/jobs/{cancelled}/cancel").status_code == 200

    def ids(**params: Any) -> set[str]:
        return set(_listed(world.acme, **params))

    everything = {queued, running, answered, escalated, cancelled}
    assert ids() == everything
    assert ids(status="queued") == {queued}
    assert ids(status="cancelled") == {cancelled}
    assert ids(status="answered,running") == {answered, running}
    assert ids(status=["answered", "escalated", "cancelled"]) == {answered, escalated, cancelled}
    assert ids(status=["queued,running", "failed"]) == {queued, running}
    assert ids(status="failed") == set()
    assert ids(status="") == everything  # an empty value leaves the filter unset
    assert ids(feature="hr") == {queued, running, cancelled}
    assert ids(user_id="u-2") == {running, escalated}
    assert ids(feature="it", user_id="u-1") == {answered}
    assert ids(feature="hr", status="queued,cancelled") == {queued, cancelled}
    assert ids(feature="nope") == set()

    created = {
        job["id"]: datetime.fromisoformat(job["created_at"]) for job in _page(world.acme)["items"]
    }
    at = created[answered]
    assert ids(created_after=at.isoformat()) == {answered, escalated, cancelled}  # inclusive
    assert ids(created_before=at.isoformat()) == {queued, running}  # exclusive
    window = {"created_after": created[running].isoformat(), "created_before": at.isoformat()}
    assert ids(**window) == {running}
    assert ids(created_after=at.isoformat(), created_before=at.isoformat()) == set()
    # The same instant written with an offset, or without one (read as UTC).
    plus_two = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    naive = at.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert "+02:00" in plus_two
    assert (
        ids(created_after=plus_two) == ids(created_after=naive) == ids(created_after=at.isoformat())
    )
    assert ids(created_after=plus_two, status="escalated", feature="it") == {escalated}


def test_bad_filters_are_422_problems_naming_the_field(world: World) -> None:
    world.submit()
    late, early = "2030-01-01T00:00:00Z", "2029-01-01T00:00:00Z"
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"status": "bogus"}, "status", "bogus"),
        ({"status": "queued,finished"}, "status", "finished"),
        ({"status": ["queued", "nope"]}, "status", "cancelled"),  # the message lists them
        ({"created_after": late, "created_before": early}, "created_after", "later than"),
        ({"created_after": "yesterday"}, "created_after", "datetime"),
        ({"created_before": "0001-01-01T00:00:00+14:00"}, "created_before", "1-9999"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": 201}, "limit", "less than or equal to 200"),
        ({"limit": "ten"}, "limit", "integer"),
    ]
    for params, field, words in cases:
        body = problem(world.acme.get("/v1/jobs", params=params), 422)
        assert [error["field"] for error in body["errors"]] == [field], (params, body)
        assert words in body["detail"], (params, body)


def _cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_a_malformed_or_altered_cursor_is_a_422_problem_never_a_500(world: World) -> None:
    for n in range(3):
        world.submit(question=f"Question {n}?")
    real = _page(world.acme, limit=1)["next_cursor"]
    assert real is not None
    decoded = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    bad = {
        "not base64": "not a cursor!",
        "truncated": real[:-5],
        "padding char": real + "=",
        "too long": "A" * 513,
        "not json": base64.urlsafe_b64encode(b"\xff\xfe garbage").decode(),
        "a list": _cursor([1, 2]),
        "other version": _cursor({**decoded, "v": 2}),
        "extra key": _cursor({**decoded, "offset": 10}),
        "no id": _cursor({"v": 1, "at": decoded["at"]}),
        "naive time": _cursor({**decoded, "at": "2026-01-01T00:00:00"}),
        "not a time": _cursor({**decoded, "at": "soon"}),
        "time past year 1": _cursor({**decoded, "at": "0001-01-01T00:00:00+14:00"}),
        "numeric id": _cursor({**decoded, "id": 7}),
        "NUL in the id": _cursor({**decoded, "id": "a\x00b"}),
        "id too long": _cursor({**decoded, "id": "f" * 33}),
    }
    for name, cursor in bad.items():
        body = problem(world.acme.get("/v1/jobs", params={"cursor": cursor}), 422)
        assert body["errors"][0]["field"] == "cursor", (name, body)
        assert "next_cursor" in body["detail"] or "512" in body["detail"], (name, body)
    # A well-formed position is only a place to resume from: scope and filters still apply.
    forged = _cursor({"v": 1, "at": "2999-01-01T00:00:00+00:00", "id": "f" * 32})
    assert len(_page(world.acme, cursor=forged)["items"]) == 3
    assert _page(world.globex, cursor=forged)["items"] == []
    assert _page(world.acme, cursor="")["next_cursor"] is None  # empty: the first page


# -- scope --------------------------------------------------------------------------------------


def test_another_accounts_jobs_are_never_listed(world: World) -> None:
    acme = {world.submit(question=f"Acme {n}?") for n in range(3)}
    globex = {world.submit(world.globex, question=f"Globex {n}?") for n in range(3)}
    assert set(_listed(world.acme, limit=1)) == acme
    assert set(_listed(world.reviewer)) == acme  # any key of the account, reviewers too
    assert set(_listed(world.globex, limit=2)) == globex
    for job_id in globex:  # even when the cursor points into the other account's jobs
        forged = _cursor({"v": 1, "at": "2999-01-01T00:00:00+00:00", "id": job_id})
        assert set(_listed(world.acme, cursor=forged)) == acme
    assert set(_listed(world.admin, limit=2)) == acme | globex
    problem(world.indexer.get("/v1/jobs"), 403)


def test_jobs_a_key_may_not_read_are_skipped_and_pages_still_advance(world: World) -> None:
    """The finance jobs fill two pages' scans (SCAN_BATCHES batches of limit + 1 each): the
    everyone key gets a short page, an empty one with a cursor, then the rest."""
    limit = 2
    hidden = 2 * SCAN_BATCHES * (limit + 1)  # a page's whole scan finds nothing readable
    oldest = world.submit(question="old")
    world.finish(oldest, JobStatus.ANSWERED, ("everyone",))
    finance = [world.submit(question=f"Finance {n}?") for n in range(hidden)]
    for job_id in finance:
        world.finish(job_id, JobStatus.ANSWERED, ("finance",))
    newest = world.submit(question="new")  # queued: no passages yet, any key reads it

    pages = _every_page(world.acme, limit=limit)
    assert [job["id"] for page in pages for job in page["items"]] == [newest, oldest]
    assert any(not page["items"] and page["next_cursor"] for page in pages)
    assert len(pages) < MAX_PAGES and _newest_first(pages)
    for job_id in (finance[0], finance[-1]):
        assert world.acme.get(f"/v1/jobs/{job_id}").status_code == 404  # the same rule

    assert _listed(world.finance, limit=limit) == [newest, *finance[::-1]]
    assert set(_listed(world.admin, limit=50)) == {oldest, newest, *finance}


# -- cancel -------------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_once_and_listed_as_such(world: World) -> None:
    job_id = world.submit(callback_url="http://127.0.0.1:9/hooks/ragline")
    response = world.acme.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "cancelled" and view["finished_at"] is not None
    assert view["answer"] is None and "cancelled while queued" in view["detail"]
    assert world.acme.get(f"/v1/jobs/{job_id}").json() == view
    assert _listed(world.acme, status="cancelled") == [job_id]

    again = problem(world.acme.post(f"/v1/jobs/{job_id}/cancel"), 409)
    assert "cancelled" in again["detail"]
    assert world.acme.get("/v1/deliveries").json()["items"] == []  # no result is owed


def test_cancel_is_409_once_a_worker_has_the_job_and_404_outside_its_scope(
    world: World,
) -> None:
    running = world.submit()
    answered = world.submit()
    assert world.jobs.claim(running, LEASE) is not None
    world.finish(answered, JobStatus.ANSWERED, ("everyone",))
    for job_id, status in ((running, "running"), (answered, "answered")):
        body = problem(world.acme.post(f"/v1/jobs/{job_id}/cancel"), 409)
        assert f"is {status}" in body["detail"], body
        assert world.acme.get(f"/v1/jobs/{job_id}").json()["status"] == status

    queued = world.submit()
    missing = problem(world.acme.post("/v1/jobs/no-such-job/cancel"), 404)["detail"]
    other = problem(world.globex.post(f"/v1/jobs/{queued}/cancel"), 404)["detail"]
    assert other == missing.replace("no-such-job", queued)  # nothing tells it exists
    finance = world.submit(world.finance)
    world.finish(finance, JobStatus.ANSWERED, ("finance",))
    problem(world.acme.post(f"/v1/jobs/{finance}/cancel"), 404)  # not 409: it is unreadable
    problem(world.reviewer.post(f"/v1/jobs/{queued}/cancel"), 403)  # submitters cancel
    assert world.jobs.get(queued).status == JobStatus.QUEUED

    other_submitter = world.submit(world.finance)  # another key of the same account
    assert world.acme.post(f"/v1/jobs/{other_submitter}/cancel").status_code == 200
    admin = world.admin.post(f"/v1/jobs/{queued}/cancel")
    assert admin.status_code == 200 and admin.json()["status"] == "cancelled"


# -- the real pipeline on document groups ------------------------------------------------------


def test_an_answer_from_finance_passages_is_listed_only_to_keys_with_finance(
    keys: Keys,  # noqa: F811 - the fixture imported above
) -> None:
    bonus = _answered(keys.finance, BONUS)["id"]
    leave = _answered(keys.everyone, LEAVE)["id"]
    assert _listed(keys.finance, status="answered") == [bonus]
    assert _listed(keys.everyone, status="answered") == [leave]
    assert _listed(keys.everyone, limit=1) == [leave]
    assert set(_listed(keys.admin, limit=1)) == {bonus, leave}
