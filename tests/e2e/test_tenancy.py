"""Tenancy over real HTTP: authentication and roles on every route, isolation between
accounts, the admin API, per-key rate limits and queue backpressure.

Each app is a real uvicorn server on loopback (tests.support.server.serving) over its own
SQLite database; the main one runs worker threads on the demo handbook so that jobs are
really answered or escalated. Accounts: acme and globex (a submitter and a reviewer key
each), platform (an admin key) and an indexer-only key in acme."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from cli.wiring import http_services
from ragline.accounts import Accounts
from ragline.bootstrap import Mode
from ragline.config import Jobs, RaglineConfig, RateLimits
from ragline.db import make_engine
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import ApiKey, utcnow
from ragline.schema import create_schema
from tests.support.problems import problem
from tests.support.server import serving
from tests.support.services import bootstrapped, settings_for
from tests.support.waiting import wait_for
from workers.broker import make_broker, sender

FINAL = {"answered", "escalated", "rejected", "failed"}
JOB = {
    "question": "How many days of annual leave do employees get?",
    "user_id": "u-1",
    "feature": "handbook",
}
CHALLENGE = 'Bearer realm="ragline"'


# -- serving an app ---------------------------------------------------------------------------


@dataclass
class Served:
    app: FastAPI
    client: httpx.Client
    engine: Engine


def new_engine(directory: Path) -> Engine:
    engine = make_engine(f"sqlite:///{directory / 'ragline.db'}")
    create_schema(engine)
    return engine


@contextmanager
def serve_app(
    config: RaglineConfig,
    engine: Engine,
    data_dir: Path,
    *,
    store: KnowledgeStore | None = None,
    embedder: Embedder | None = None,
) -> Iterator[Served]:
    """Build and serve the app for this config. With a store and embedder it also answers
    jobs (embedded mode); without, nothing drains the queue."""
    broker = make_broker(None)
    # Without a store, a deployed API that leaves the store to its workers (Qdrant local
    # mode's one owner), so health is about the database, the broker and the queue.
    settings = settings_for(data_dir, index_engine="qdrant-local") if store is None else None
    with bootstrapped(
        Mode.SERVER if store is None else Mode.EMBEDDED,
        data_dir,
        config,
        settings=settings,
        engine=engine,
        store=store,
        embedder=embedder,
        send=sender(broker),
    ) as services:
        app = create_app(http_services(services, broker, worker_threads=2))
        with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            yield Served(app, client, engine)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def unauthorized(response: httpx.Response) -> str:
    body = problem(response, 401)
    assert response.headers.get("WWW-Authenticate") == CHALLENGE
    return str(body["detail"])


# -- the main app and its tenants ---------------------------------------------------------------


@dataclass
class Tenants:
    keys: dict[str, str] = field(default_factory=dict)  # "acme-submitter" -> plaintext
    ids: dict[str, str] = field(default_factory=dict)  # "acme-submitter" -> key id
    accounts: dict[str, str] = field(default_factory=dict)  # name -> account id

    def key(self, who: str) -> dict[str, str]:
        return bearer(self.keys[who])


ROLE_KEYS = {
    "submitter": "acme-submitter",
    "reviewer": "acme-reviewer",
    "indexer": "indexer",
    "tenant-indexer": "acme-indexer",
    "admin": "admin",
}


def _make_tenants(engine: Engine) -> Tenants:
    accounts = Accounts(engine)
    tenants = Tenants()
    for name in ("acme", "globex", "platform"):
        tenants.accounts[name] = accounts.create_account(name).id
    wanted = {
        "acme-submitter": ("acme", ["submitter"]),
        "acme-reviewer": ("acme", ["reviewer"]),
        "globex-submitter": ("globex", ["submitter"]),
        "globex-reviewer": ("globex", ["reviewer"]),
        "admin": ("platform", ["admin"]),
        "indexer": ("platform", ["indexer"]),  # operates the shared knowledge base
        "acme-indexer": ("acme", ["indexer"]),  # a tenant's: refused on every index route
        "victim": ("acme", ["submitter"]),  # the key non-admins try to revoke
    }
    for who, (account, roles) in wanted.items():
        issued = accounts.create_key(account, roles=roles, name=who)
        tenants.keys[who] = issued.plaintext
        tenants.ids[who] = issued.key.id
    return tenants


@pytest.fixture(scope="module")
def main_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = new_engine(tmp_path_factory.mktemp("tenancy-main"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def tenants(main_db: Engine) -> Tenants:
    return _make_tenants(main_db)


@pytest.fixture(scope="module")
def main(
    main_db: Engine,
    tenants: Tenants,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    # Rate limits out of the way: these tests send many requests per key, and many wrong
    # keys from one address (tests/e2e/test_auth_throttle.py is about that limit).
    lifted = RateLimits(requests_per_second=10_000, burst=100_000)
    config = repo_config.model_copy(
        update={
            "rate_limits": lifted,
            "api": repo_config.api.model_copy(update={"failed_auth": lifted}),
        }
    )
    with serve_app(
        config,
        main_db,
        tmp_path_factory.mktemp("tenancy-data"),
        store=handbook_store,
        embedder=embedder,
    ) as served:
        yield served


def submit(
    served: Served, key: dict[str, str], body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return served.client.post("/v1/jobs", json=body or JOB, headers={**key, **headers})


def finished(served: Served, key: dict[str, str], job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = served.client.get(f"/v1/jobs/{job_id}", headers=key)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["status"] in FINAL else None

    return wait_for(probe, timeout_s=60, every_s=0.1)


@pytest.fixture(scope="module")
def acme_job(main: Served, tenants: Tenants) -> str:
    response = submit(main, tenants.key("acme-submitter"))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@dataclass
class Escalated:
    acme: str
    globex: str


@pytest.fixture(scope="module")
def escalated(main: Served, tenants: Tenants) -> Escalated:
    """One escalated job per account (off-topic questions), finished, so each account has
    a review item and usage in the ledger."""
    ids = {}
    for account, question in (
        ("acme", "Which football team won the 1998 world cup?"),
        ("globex", "Which football team won the 2010 world cup in South Africa?"),
    ):
        key = tenants.key(f"{account}-submitter")
        response = submit(main, key, {"question": question, "user_id": "u-9", "feature": "fun"})
        assert response.status_code == 202, response.text
        ids[account] = response.json()["id"]
    for account, job_id in ids.items():
        job = finished(main, tenants.key(f"{account}-submitter"), job_id)
        assert job["status"] == "escalated", job
    return Escalated(acme=ids["acme"], globex=ids["globex"])


# -- every route: authentication and roles ----------------------------------------------------


@dataclass(frozen=True)
class RouteCase:
    path: str  # with {job_id} / {key_id} filled from the fixtures
    forbidden: tuple[str, ...]  # roles that must get 403
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    public: bool = False


ADMINS_ONLY = ("submitter", "reviewer", "indexer")
NOT_PLATFORM = ("submitter", "reviewer", "tenant-indexer")
ROUTES: dict[tuple[str, str], RouteCase] = {
    ("POST", "/v1/jobs"): RouteCase("/v1/jobs", ("reviewer", "indexer"), json=JOB),
    ("GET", "/v1/jobs"): RouteCase("/v1/jobs", ("indexer",)),
    ("GET", "/v1/jobs/{job_id}"): RouteCase("/v1/jobs/{job_id}", ("indexer",)),
    ("POST", "/v1/jobs/{job_id}/cancel"): RouteCase(
        "/v1/jobs/{job_id}/cancel", ("reviewer", "indexer")
    ),
    ("GET", "/v1/jobs/{job_id}/trace"): RouteCase("/v1/jobs/{job_id}/trace", ("indexer",)),
    ("GET", "/v1/reviews"): RouteCase("/v1/reviews", ("submitter", "indexer")),
    ("GET", "/v1/reviews/export"): RouteCase("/v1/reviews/export", ("submitter", "indexer")),
    ("GET", "/v1/reviews/{item_id}"): RouteCase("/v1/reviews/{item_id}", ("submitter", "indexer")),
    ("POST", "/v1/reviews/{item_id}/claim"): RouteCase(
        "/v1/reviews/{item_id}/claim", ("submitter", "indexer")
    ),
    ("POST", "/v1/reviews/{item_id}/release"): RouteCase(
        "/v1/reviews/{item_id}/release", ("submitter", "indexer")
    ),
    ("POST", "/v1/reviews/{item_id}/decision"): RouteCase(
        "/v1/reviews/{item_id}/decision", ("submitter", "indexer"), json={"decision": "approve"}
    ),
    ("GET", "/v1/deliveries"): RouteCase("/v1/deliveries", ("reviewer", "indexer")),
    ("POST", "/v1/deliveries/{delivery_id}/resend"): RouteCase(
        "/v1/deliveries/{delivery_id}/resend", ("reviewer", "indexer")
    ),
    ("GET", "/v1/admin/accounts/{name}/webhook-secret"): RouteCase(
        "/v1/admin/accounts/{name}/webhook-secret", ADMINS_ONLY
    ),
    ("POST", "/v1/admin/accounts/{name}/webhook-secret"): RouteCase(
        "/v1/admin/accounts/{name}/webhook-secret", ADMINS_ONLY
    ),
    # Usage: every key may see its own account's spend (no role needed).
    # What the account spends: submitters (the README's grant) and admins.
    ("GET", "/v1/usage"): RouteCase("/v1/usage", ("reviewer", "indexer")),
    ("POST", "/v1/admin/accounts"): RouteCase(
        "/v1/admin/accounts", ADMINS_ONLY, json={"name": "sneaky"}
    ),
    ("GET", "/v1/admin/accounts"): RouteCase("/v1/admin/accounts", ADMINS_ONLY),
    ("GET", "/v1/audit"): RouteCase("/v1/audit", ADMINS_ONLY),
    ("DELETE", "/v1/users/{user_id}"): RouteCase("/v1/users/u-1", ADMINS_ONLY),
    ("POST", "/v1/admin/keys"): RouteCase(
        "/v1/admin/keys", ADMINS_ONLY, json={"account": "acme", "roles": ["admin"]}
    ),
    ("GET", "/v1/admin/keys"): RouteCase("/v1/admin/keys", ADMINS_ONLY),
    ("DELETE", "/v1/admin/keys/{key_id}"): RouteCase("/v1/admin/keys/{key_id}", ADMINS_ONLY),
    ("PUT", "/v1/admin/budgets"): RouteCase(
        "/v1/admin/budgets",
        ADMINS_ONLY,
        json={"scope": "account", "account": "acme", "window": "daily", "limit": 0.01},
    ),
    ("GET", "/v1/admin/budgets"): RouteCase(
        "/v1/admin/budgets", ADMINS_ONLY, params={"account": "acme"}
    ),
    # Index operations through the store's owner: the knowledge base is shared, so the
    # platform account's indexer role (and admins); a tenant's indexer key is refused.
    ("POST", "/v1/index/builds"): RouteCase(
        "/v1/index/builds", NOT_PLATFORM, json={"folder": "/no/such/folder"}
    ),
    ("GET", "/v1/index/versions"): RouteCase("/v1/index/versions", NOT_PLATFORM),
    ("POST", "/v1/index/promote"): RouteCase(
        "/v1/index/promote", NOT_PLATFORM, json={"version": 99}
    ),
    ("POST", "/v1/index/rollback"): RouteCase("/v1/index/rollback", NOT_PLATFORM, json={}),
    ("GET", "/v1/index/diff"): RouteCase(
        "/v1/index/diff", NOT_PLATFORM, params={"a": "1", "b": "2"}
    ),
    ("GET", "/v1/health"): RouteCase("/v1/health", (), public=True),
}
PROTECTED = [route for route, case in ROUTES.items() if not case.public]
FORBIDDEN = [(route, role) for route, case in ROUTES.items() for role in case.forbidden]


def call(
    served: Served,
    route: tuple[str, str],
    tenants: Tenants,
    job_id: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    method, _ = route
    case = ROUTES[route]
    path = case.path.format(
        job_id=job_id,
        key_id=tenants.ids["victim"],
        item_id=999_999,  # refused before any lookup
        delivery_id="msg_none",
        name="acme",
    )
    return served.client.request(
        method, path, json=case.json, params=case.params, headers=headers or {}
    )


def _state(engine: Engine) -> dict[str, Any]:
    """Everything a refused request must leave alone."""
    with engine.connect() as connection:
        return {
            "accounts": connection.execute(text("SELECT name FROM accounts ORDER BY name")).all(),
            "keys": connection.execute(
                text("SELECT id, revoked_at FROM api_keys ORDER BY id")
            ).all(),
            "jobs": connection.execute(text("SELECT count(*) FROM jobs")).scalar(),
            "limits": connection.execute(
                text("SELECT id, limit_micros FROM budget_limits ORDER BY id")
            ).all(),
        }


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route, including those of included routers (FastAPI
    0.16x keeps them behind a wrapper in app.routes; iter_route_contexts walks them). The
    review page's HTML routes (cookie sessions, not keys) are tested in test_review_page."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        contexts: list[Any] = list(app.routes)
        return {
            (method, _template(route.path))
            for route in contexts
            if isinstance(route, APIRoute) and route.include_in_schema
            for method in route.methods or ()
        }
    return {
        (method, _template(str(context.path)))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema
        for method in context.methods or ()
    }


def _template(path: str) -> str:
    """The path as OpenAPI publishes it: /v1/users/{user_id:path} is /v1/users/{user_id}."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def test_the_route_table_covers_every_route_of_the_app(main: Served) -> None:
    served = api_routes(main.app)
    assert served == set(ROUTES), "a route was added or removed: update ROUTES"
    # The same set as the published OpenAPI document (nothing hidden from it).
    published = {
        (method.upper(), path)
        for path, operations in main.app.openapi()["paths"].items()
        for method in operations
    }
    assert published == served


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r[0]} {r[1]}")
def test_no_key_or_a_bad_key_is_401_with_a_challenge(
    main: Served, tenants: Tenants, acme_job: str, route: tuple[str, str]
) -> None:
    before = _state(main.engine)
    assert "required" in unauthorized(call(main, route, tenants, acme_job))
    for header in (
        {"Authorization": f"Basic {tenants.keys['admin']}"},  # a valid key, wrong scheme
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer rl_000000000000_nosuchsecret"},
        {"Authorization": "Bearer " + tenants.keys["admin"][:-2]},
    ):
        detail = unauthorized(call(main, route, tenants, acme_job, header))
        assert "required" in detail or detail == "invalid API key", (header, detail)
    assert _state(main.engine) == before


def test_health_needs_no_key(main: Served) -> None:
    response = main.client.get("/v1/health")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("route_role", FORBIDDEN, ids=lambda rr: f"{rr[0][0]} {rr[0][1]} {rr[1]}")
def test_a_key_without_the_role_is_403_and_changes_nothing(
    main: Served, tenants: Tenants, acme_job: str, route_role: tuple[tuple[str, str], str]
) -> None:
    route, role = route_role
    before = _state(main.engine)
    response = call(main, route, tenants, acme_job, tenants.key(ROLE_KEYS[role]))
    body = problem(response, 403)
    assert "role" in body["detail"]
    assert _state(main.engine) == before


@pytest.mark.parametrize(
    ("route", "role"),
    [
        (("POST", "/v1/jobs"), "submitter"),
        (("GET", "/v1/jobs/{job_id}"), "submitter"),
        (("GET", "/v1/jobs/{job_id}"), "reviewer"),
        (("GET", "/v1/reviews"), "reviewer"),
        (("GET", "/v1/usage"), "submitter"),
        (("GET", "/v1/admin/accounts"), "admin"),
        (("GET", "/v1/admin/keys"), "admin"),
        (("GET", "/v1/admin/budgets"), "admin"),
        (("GET", "/v1/reviews/export"), "reviewer"),
        (("GET", "/v1/deliveries"), "submitter"),
        (("GET", "/v1/admin/accounts/{name}/webhook-secret"), "admin"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_a_key_with_the_role_gets_through(
    main: Served, tenants: Tenants, acme_job: str, route: tuple[str, str], role: str
) -> None:
    """The positive control of the 401/403 tests: the same requests with the right key."""
    response = call(main, route, tenants, acme_job, tenants.key(ROLE_KEYS[role]))
    assert 200 <= response.status_code < 300, response.text


# -- isolation between accounts -----------------------------------------------------------------


def test_another_accounts_job_is_404_exactly_like_a_missing_one(
    main: Served, tenants: Tenants, acme_job: str
) -> None:
    for who in ("acme-submitter", "acme-reviewer", "admin"):
        seen = main.client.get(f"/v1/jobs/{acme_job}", headers=tenants.key(who))
        assert seen.status_code == 200, (who, seen.text)
        assert seen.json()["id"] == acme_job

    missing_id = uuid.uuid4().hex
    for who in ("globex-submitter", "globex-reviewer"):
        foreign = main.client.get(f"/v1/jobs/{acme_job}", headers=tenants.key(who))
        missing = main.client.get(f"/v1/jobs/{missing_id}", headers=tenants.key(who))
        foreign_body = problem(foreign, 404)
        missing_body = problem(missing, 404)
        assert acme_job in foreign_body["detail"]
        foreign_body["detail"] = foreign_body["detail"].replace(acme_job, "<id>")
        missing_body["detail"] = missing_body["detail"].replace(missing_id, "<id>")
        assert foreign_body == missing_body


def test_reviewers_see_only_their_accounts_queue_and_an_admin_sees_all(
    main: Served, tenants: Tenants, escalated: Escalated
) -> None:
    def queue(who: str) -> set[str]:
        response = main.client.get("/v1/reviews", headers=tenants.key(who))
        assert response.status_code == 200, response.text
        return {item["job_id"] for item in response.json()["items"]}

    def owners(job_ids: set[str]) -> set[str]:
        jobs = JobRepository(main.engine)
        return {jobs.account_name(jobs.get(job_id).account_id) for job_id in job_ids}

    acme, globex, everyone = queue("acme-reviewer"), queue("globex-reviewer"), queue("admin")
    assert escalated.acme in acme and escalated.globex not in acme
    assert escalated.globex in globex and escalated.acme not in globex
    assert owners(acme) == {"acme"} and owners(globex) == {"globex"}
    assert {escalated.acme, escalated.globex} <= everyone
    assert acme | globex <= everyone

    # The escalated job itself is invisible across accounts too.
    foreign = main.client.get(f"/v1/jobs/{escalated.acme}", headers=tenants.key("globex-reviewer"))
    problem(foreign, 404)


def test_usage_is_the_callers_account_only(
    main: Served, tenants: Tenants, escalated: Escalated
) -> None:
    def usage(who: str, **params: str) -> httpx.Response:
        return main.client.get(
            "/v1/usage", params={"group_by": "account", **params}, headers=tenants.key(who)
        )

    def accounts_in(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [row["key"] for row in response.json()["rows"]]

    assert accounts_in(usage("acme-submitter")) == ["acme"]
    assert accounts_in(usage("globex-submitter")) == ["globex"]
    assert accounts_in(usage("globex-submitter", account="globex")) == ["globex"]
    assert {"acme", "globex"} <= set(accounts_in(usage("admin")))
    assert accounts_in(usage("admin", account="acme")) == ["acme"]

    # Naming another account is a 404 for a non-admin, like an account that does not exist.
    foreign = problem(usage("globex-submitter", account="acme"), 404)
    missing = problem(usage("globex-submitter", account="nosuch"), 404)
    assert foreign["detail"].replace("acme", "<name>") == missing["detail"].replace(
        "nosuch", "<name>"
    )
    problem(usage("acme-submitter", account="globex"), 404)

    # An admin's view of one account is that account's own view.
    own = usage("acme-submitter").json()["total"]
    assert usage("admin", account="acme").json()["total"] == own
    assert own["calls"] >= 1


def test_idempotency_keys_are_per_api_key(main: Served, tenants: Tenants) -> None:
    acme_key, globex_key = tenants.key("acme-submitter"), tenants.key("globex-submitter")
    body = {**JOB, "question": "Is MFA mandatory for remote access?"}
    first = submit(main, acme_key, body, **{"Idempotency-Key": "shared-key-1"})
    other = submit(main, globex_key, body, **{"Idempotency-Key": "shared-key-1"})
    assert first.status_code == other.status_code == 202, (first.text, other.text)
    assert first.json()["id"] != other.json()["id"]
    assert "Idempotent-Replayed" not in other.headers

    replay = submit(main, acme_key, body, **{"Idempotency-Key": "shared-key-1"})
    assert replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"

    # Each job is its own account's.
    jobs = JobRepository(main.engine)
    assert jobs.get(first.json()["id"]).account_id == tenants.accounts["acme"]
    assert jobs.get(other.json()["id"]).account_id == tenants.accounts["globex"]
    assert main.client.get(f"/v1/jobs/{other.json()['id']}", headers=acme_key).status_code == 404

    # The finding: a second key of the same account, with fewer document groups, sent the
    # same key and got the first key's job (and its answer) back. It now gets its own job.
    narrow = Accounts(main.engine).create_key("acme", roles=["submitter"], groups=["sales"])
    own = submit(main, bearer(narrow.plaintext), body, **{"Idempotency-Key": "shared-key-1"})
    assert own.status_code == 202 and "Idempotent-Replayed" not in own.headers
    assert own.json()["id"] != first.json()["id"]
    assert jobs.get(own.json()["id"]).groups == ["sales"]


def test_a_replay_is_compared_on_the_body_as_sent_not_as_redacted(
    main: Served, tenants: Tenants
) -> None:
    """Two questions that differ only in an e-mail address redact to the same text; the
    second is another request, so the key's reuse is a conflict, not a replay."""
    key = tenants.key("acme-submitter")
    ask = {**JOB, "question": "Can you reset the VPN token for alice@example.com?"}
    first = submit(main, key, ask, **{"Idempotency-Key": "pii-1"})
    assert first.status_code == 202, first.text
    stored = JobRepository(main.engine).get(first.json()["id"])
    assert "alice@example.com" not in stored.question  # redacted at admission

    someone_else = {**ask, "question": ask["question"].replace("alice", "bob")}
    problem(submit(main, key, someone_else, **{"Idempotency-Key": "pii-1"}), 409)
    again = submit(main, key, ask, **{"Idempotency-Key": "pii-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


# -- the admin API ------------------------------------------------------------------------------


def test_admin_creates_an_account_and_a_key_shown_once_then_revokes_it(
    main: Served, tenants: Tenants
) -> None:
    admin = tenants.key("admin")
    client = main.client

    created = client.post("/v1/admin/accounts", json={"name": "initech"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "initech"
    problem(client.post("/v1/admin/accounts", json={"name": "initech"}, headers=admin), 409)
    problem(client.post("/v1/admin/accounts", json={"name": "Bad Name"}, headers=admin), 422)
    listed = client.get("/v1/admin/accounts", headers=admin).json()
    assert {"acme", "globex", "platform", "initech"} <= {a["name"] for a in listed}

    issued = client.post(
        "/v1/admin/keys",
        json={"account": "initech", "roles": ["submitter"], "groups": ["sales"], "name": "crm"},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    view = issued.json()
    plaintext = view["key"]
    assert plaintext.startswith(f"rl_{view['id']}_")
    assert view["account"] == "initech" and view["roles"] == ["submitter"]
    assert view["groups"] == ["sales"] and view["revoked_at"] is None
    secret = plaintext.split("_", 2)[2]

    works = client.get("/v1/usage", headers=bearer(plaintext))
    assert works.status_code == 200, works.text

    for params in ({}, {"account": "initech"}):
        keys = client.get("/v1/admin/keys", params=params, headers=admin)
        assert keys.status_code == 200, keys.text
        assert secret not in keys.text and plaintext not in keys.text
        entry = next(k for k in keys.json() if k["id"] == view["id"])
        assert "key" not in entry and entry["name"] == "crm"
    only_initech = client.get("/v1/admin/keys", params={"account": "initech"}, headers=admin)
    assert {k["account"] for k in only_initech.json()} == {"initech"}

    revoked = client.delete(f"/v1/admin/keys/{view['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert revoked.json()["account"] == "initech"
    assert "revoked" in unauthorized(client.get("/v1/usage", headers=bearer(plaintext)))
    assert "revoked" in unauthorized(submit(main, bearer(plaintext)))

    problem(client.delete("/v1/admin/keys/nosuchkey", headers=admin), 404)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"account": "acme", "roles": ["owner"]}, 422),
        ({"account": "acme", "roles": []}, 422),
        ({"account": "acme", "roles": ["submitter"], "groups": ["bad group"]}, 422),
        ({"account": "acme", "roles": ["submitter"], "expires_at": "2001-01-01T00:00:00Z"}, 422),
        ({"account": "acme", "roles": ["submitter"], "expires_at": "2999-01-01T00:00:00"}, 422),
        ({"account": "nosuch", "roles": ["submitter"]}, 404),
    ],
)
def test_invalid_key_requests_are_refused(
    main: Served, tenants: Tenants, body: dict[str, Any], status: int
) -> None:
    before = _state(main.engine)
    problem(main.client.post("/v1/admin/keys", json=body, headers=tenants.key("admin")), status)
    assert _state(main.engine) == before


def test_an_expired_key_is_401(main: Served, tenants: Tenants) -> None:
    admin = tenants.key("admin")
    later = (utcnow() + timedelta(days=1)).isoformat()
    issued = main.client.post(
        "/v1/admin/keys",
        json={"account": "acme", "roles": ["reviewer"], "expires_at": later},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    key = bearer(issued.json()["key"])
    assert main.client.get("/v1/reviews", headers=key).status_code == 200

    with Session(main.engine) as session:  # time passes
        row = session.get(ApiKey, issued.json()["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    # A change made outside the API process reaches it within RAGLINE_KEY_CACHE_MS (1 s).
    wait_for(lambda: main.client.get("/v1/reviews", headers=key).status_code == 401)
    assert "expired" in unauthorized(main.client.get("/v1/reviews", headers=key))


def test_admin_sets_and_reads_budgets(
    main: Served, tenants: Tenants, repo_config: RaglineConfig
) -> None:
    admin = tenants.key("admin")
    client = main.client
    assert client.post("/v1/admin/accounts", json={"name": "hooli"}, headers=admin).is_success
    default_daily = repo_config.budgets.accounts["default"].daily

    def budgets(**params: str) -> dict[tuple[str, str], dict[str, Any]]:
        response = client.get("/v1/admin/budgets", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return {(b["subject"], b["window"]): b for b in response.json()}

    before = budgets(account="hooli")
    assert before[("hooli", "daily")]["limit"] == default_daily

    put = client.put(
        "/v1/admin/budgets",
        json={"scope": "account", "account": "hooli", "window": "daily", "limit": 3.5},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    daily = {(b["subject"], b["window"]): b for b in put.json()}[("hooli", "daily")]
    assert daily["limit"] == 3.5 and daily["spent"] == 0 and daily["reserved"] == 0
    after = budgets(account="hooli")
    assert after[("hooli", "daily")]["limit"] == 3.5
    assert after[("hooli", "monthly")] == before[("hooli", "monthly")]

    feature = client.put(
        "/v1/admin/budgets",
        json={
            "scope": "feature",
            "account": "hooli",
            "feature": "support",
            "window": "monthly",
            "limit": 10,
        },
        headers=admin,
    )
    assert feature.status_code == 200, feature.text
    with_feature = budgets(account="hooli", feature="support")
    assert with_feature[("hooli/support", "monthly")]["limit"] == 10
    assert with_feature[("hooli", "daily")]["limit"] == 3.5

    cleared = client.put(
        "/v1/admin/budgets",
        json={"scope": "account", "account": "hooli", "window": "daily", "limit": None},
        headers=admin,
    )
    assert cleared.status_code == 200, cleared.text
    assert budgets(account="hooli")[("hooli", "daily")]["limit"] == default_daily

    # Another account's budgets are untouched.
    assert budgets(account="acme")[("acme", "daily")]["limit"] == default_daily

    bad = {"scope": "feature", "account": "hooli", "window": "daily", "limit": 1}
    problem(client.put("/v1/admin/budgets", json=bad, headers=admin), 422)
    negative = {"scope": "account", "account": "hooli", "window": "daily", "limit": -1}
    problem(client.put("/v1/admin/budgets", json=negative, headers=admin), 422)
    unknown = {"scope": "account", "account": "nosuch", "window": "daily", "limit": 1}
    problem(client.put("/v1/admin/budgets", json=unknown, headers=admin), 404)
    problem(client.get("/v1/admin/budgets", params={"account": "nosuch"}, headers=admin), 404)


# -- rate limits --------------------------------------------------------------------------------

# One token every 20 s: no refill can happen between the requests of a test.
TINY = RateLimits(requests_per_second=0.05, burst=3)


@pytest.fixture(scope="module")
def limited(
    repo_config: RaglineConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Tenants]]:
    directory = tmp_path_factory.mktemp("tenancy-limited")
    engine = new_engine(directory)
    tenants = _make_tenants(engine)
    config = repo_config.model_copy(update={"rate_limits": TINY})
    with serve_app(config, engine, directory) as served:
        yield served, tenants
    engine.dispose()


def test_a_key_over_its_rate_gets_429_with_retry_after(
    limited: tuple[Served, Tenants],
) -> None:
    served, tenants = limited
    busy = tenants.key("acme-submitter")
    for _ in range(TINY.burst):
        assert served.client.get("/v1/usage", headers=busy).status_code == 200
    refused = served.client.get("/v1/usage", headers=busy)
    body = problem(refused, 429)
    assert "too many requests" in body["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 1 / TINY.requests_per_second
    # Every route shares the key's bucket.
    problem(submit(served, busy), 429)

    # Another key, even of the same account, has its own bucket.
    for other in ("victim", "globex-submitter"):
        assert served.client.get("/v1/usage", headers=tenants.key(other)).status_code == 200
    # Health is not rate limited.
    assert served.client.get("/v1/health").status_code == 200


# -- backpressure -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backlogged(
    repo_config: RaglineConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Tenants]]:
    """No workers: nothing drains the queue."""
    directory = tmp_path_factory.mktemp("tenancy-backlog")
    engine = new_engine(directory)
    tenants = _make_tenants(engine)
    config = repo_config.model_copy(
        update={
            "jobs": Jobs(max_queue_depth=3, retry_after_s=7),
            "rate_limits": RateLimits(requests_per_second=10_000, burst=100_000),
        }
    )
    with serve_app(config, engine, directory) as served:
        yield served, tenants
    engine.dispose()


def test_a_full_queue_closes_admission_with_503_and_health_says_so(
    backlogged: tuple[Served, Tenants],
) -> None:
    served, tenants = backlogged
    acme, globex = tenants.key("acme-submitter"), tenants.key("globex-submitter")

    health = served.client.get("/v1/health").json()
    assert health["queue"] == {"max_depth": 3, "depth": 0, "admission": "open"}

    accepted = [submit(served, key) for key in (acme, globex, acme)]
    assert [r.status_code for r in accepted] == [202, 202, 202], [r.text for r in accepted]

    refused = submit(served, globex, {**JOB, "question": "One more?"})
    body = problem(refused, 503)
    assert "retry later" in body["detail"]
    assert refused.headers["Retry-After"] == "7"

    health_response = served.client.get("/v1/health")
    assert health_response.status_code == 200, health_response.text
    health = health_response.json()
    assert health["mode"] == "deployed"  # no workers in this process
    assert health["queue"] == {"max_depth": 3, "depth": 3, "admission": "closed"}
    # Qdrant local mode belongs to the worker: the API says so rather than leaving it out.
    assert health["components"]["store"]["detail"].startswith("local mode: opened by the worker")
    assert JobRepository(served.engine).queue_depth() == 3  # the refused job was not stored

    # Reading still works while admission is closed.
    job_id = accepted[0].json()["id"]
    assert served.client.get(f"/v1/jobs/{job_id}", headers=acme).json()["status"] == "queued"


def test_a_replayed_submission_gets_its_job_back_while_admission_is_closed(
    backlogged: tuple[Served, Tenants],
) -> None:
    served, tenants = backlogged
    acme = tenants.key("acme-submitter")
    with Session(served.engine) as session:
        session.execute(text("DELETE FROM jobs"))
        session.commit()
    headers = {**acme, "Idempotency-Key": "retry-while-full"}
    body = {**JOB, "question": "Retried while full?"}
    first = served.client.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == 202, first.text
    while JobRepository(served.engine).queue_depth() < 3:
        assert submit(served, acme, {**JOB, "question": "Filler?"}).status_code == 202
    assert submit(served, acme, {**JOB, "question": "New one?"}).status_code == 503
    again = served.client.post("/v1/jobs", json=body, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
