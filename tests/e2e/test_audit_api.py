"""The audit trail over HTTP (GET /v1/audit) after a day of operating ragline through its
API: account, keys, webhook-secret rotation, budgets, index builds, promotions and a
rollback, review claims and decisions, a webhook resent. Each change is one entry naming
the key that made it and the request it came with; the chain verifies; the list filters
and pages; only admins read it. Embedded mode, SQLite, the handbook, the extractive model.

A rotated webhook secret keeps signing deliveries beside the new one for its overlap:
a receiver holding either verifies them (Standard Webhooks' library)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from standardwebhooks.webhooks import Webhook

from api.app import create_app
from ragline import audit
from ragline.accounts import Accounts
from ragline.config import RaglineConfig, parse_config
from ragline.delivery import signing_secrets
from ragline.errors import InvalidInput
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import utcnow
from ragline.webhooks import headers
from tests.support.server import serving
from tests.support.services import embedded_app
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for


def _config(repo_config: RaglineConfig) -> RaglineConfig:
    data = repo_config.model_dump()
    data["review"]["sample_rate"] = 1.0  # every answer is also a review item
    data["deliveries"]["allow_private_targets"] = True
    data["knowledge"]["gate"]["smoke_queries"] = []
    return parse_config(data)


def _final(client: httpx.Client, job_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] not in ("queued", "running") else None

    return wait_for(final, timeout_s=60)


def test_every_change_through_the_api_is_one_entry_naming_its_key_and_request(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
) -> None:
    config = _config(repo_config)
    with embedded_app(config, tmp_path, handbook_store, embedder, engine=sqlite_engine) as app:
        admin, admin_key = make_tenant(sqlite_engine, "ops", roles=("admin",))
        before = audit.verify(sqlite_engine).head_seq  # what the tenants' set-up wrote
        with serving(create_app(app.api)) as base:
            auth = {"Authorization": f"Bearer {admin_key}"}
            with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
                requests: list[tuple[str, str]] = []  # (action, request id)

                def call(action: str, method: str, path: str, **kwargs: Any) -> Any:
                    response = client.request(method, path, **kwargs)
                    assert response.status_code < 300, (path, response.text)
                    requests.append((action, response.headers["x-request-id"]))
                    return response.json()

                call("account.create", "POST", "/v1/admin/accounts", json={"name": "acme"})
                issued = call(
                    "key.create",
                    "POST",
                    "/v1/admin/keys",
                    json={"account": "acme", "roles": ["submitter", "reviewer"]},
                )
                old_secret = client.get("/v1/admin/accounts/acme/webhook-secret").json()["secret"]
                rotated = call(
                    "account.webhook_secret.rotate",
                    "POST",
                    "/v1/admin/accounts/acme/webhook-secret",
                    params={"overlap_hours": 6},
                )
                budget = {"scope": "account", "account": "acme", "window": "daily", "limit": 3}
                call("budget.set", "PUT", "/v1/admin/budgets", json=budget)
                docs = tmp_path / "docs"
                docs.mkdir()
                (docs / "leave.md").write_text("# Leave\n\nEveryone gets 25 days of leave.\n")
                first = call(
                    "index.build",
                    "POST",
                    "/v1/index/builds",
                    json={"folder": str(docs), "promote": False},
                )
                call("index.promote", "POST", "/v1/index/promote", json={"version": 1})
                (docs / "leave.md").write_text("# Leave\n\nEveryone gets 26 days of leave.\n")
                call("index.build", "POST", "/v1/index/builds", json={"folder": str(docs)})
                call("index.promote", "POST", "/v1/index/promote", json={"version": 2})
                call("index.rollback", "POST", "/v1/index/rollback", json={"reason": "typo"})
                assert first["version"] == 1

                job = {
                    "question": "How many days of annual leave do employees get?",
                    "user_id": "u-1",
                    "callback_url": "http://127.0.0.1:9/hook",
                }
                submitted = client.post(
                    "/v1/jobs", json=job, headers={"Authorization": f"Bearer {issued['key']}"}
                )
                assert submitted.status_code == 202, submitted.text
                job_id = submitted.json()["id"]
                _final(client, job_id)
                items = client.get("/v1/reviews", params={"status": "all"}).json()["items"]
                item = next(i["id"] for i in items if i["job_id"] == job_id)
                call("review.claim", "POST", f"/v1/reviews/{item}/claim")
                call("review.release", "POST", f"/v1/reviews/{item}/release")
                call("review.claim", "POST", f"/v1/reviews/{item}/claim")
                call(
                    "review.decide",
                    "POST",
                    f"/v1/reviews/{item}/decision",
                    json={"decision": "good"},
                )
                delivery = client.get("/v1/deliveries").json()["items"][0]["id"]
                call("delivery.resend", "POST", f"/v1/deliveries/{delivery}/resend")
                call("key.revoke", "DELETE", f"/v1/admin/keys/{issued['id']}")

                listed: list[dict[str, Any]] = []
                cursor = None
                while True:
                    params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
                    page = client.get("/v1/audit", params=params).json()
                    listed += page["items"]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break

                # A rotated secret still signs for its overlap: both receivers verify.
                account = app.services.accounts.account("acme")
                in_use = signing_secrets(account)
                assert in_use == [rotated["secret"], old_secret]
                assert rotated["previous_valid_until"] is not None
                body = b'{"type":"job.answered"}'
                sent = headers(in_use, "msg_1", int(time.time()), body)
                for secret in (old_secret, rotated["secret"]):
                    assert Webhook(secret).verify(body, sent) == {"type": "job.answered"}

                # Filters, and who may read the trail.
                only_index = client.get("/v1/audit", params={"action": "index."}).json()
                assert [e["action"] for e in only_index["items"]] == [
                    "index.rollback",
                    "index.promote",
                    "index.build",
                    "index.promote",
                    "index.build",
                ]
                acme_id = account.id
                of_acme = client.get("/v1/audit", params={"account": "acme"}).json()["items"]
                assert {e["account_id"] for e in of_acme} == {acme_id}
                bad = client.get("/v1/audit", params={"cursor": "nope"})
                assert bad.status_code == 422 and "cursor" in bad.text
                assert client.get("/v1/audit", params={"account": "nope"}).status_code == 404
                submitter = {"Authorization": f"Bearer {issued['key']}"}
                assert client.get("/v1/audit", headers=submitter).status_code == 401  # revoked

    # Newest first; the ones this test's requests made, each with its key and request.
    ours = [e for e in reversed(listed) if e["seq"] > before and e["actor"] != "system:prompts"]
    assert [(e["action"], e["request_id"]) for e in ours] == requests
    assert {e["actor"] for e in ours} == {f"key:{admin.key_id}"}
    assert [e["seq"] for e in reversed(listed)] == list(range(1, len(listed) + 1))
    report = audit.verify(sqlite_engine)
    assert report.intact and report.entries == len(listed)


def test_a_rotation_without_overlap_stops_the_old_secret_at_once(
    sqlite_engine: Engine,
) -> None:
    accounts = Accounts(sqlite_engine)
    accounts.create_account("acme")
    rotated = accounts.rotate_webhook_secret("acme", overlap=timedelta(0))
    assert signing_secrets(rotated) == [rotated.webhook_secret]
    with pytest.raises(InvalidInput, match="overlap"):
        accounts.rotate_webhook_secret("acme", overlap=timedelta(days=31))
    # An overlap that has ended: the old secret no longer signs.
    rotated = accounts.rotate_webhook_secret("acme", overlap=timedelta(hours=1))
    assert len(signing_secrets(rotated)) == 2
    rotated.previous_secret_until = utcnow() - timedelta(seconds=1)
    assert signing_secrets(rotated) == [rotated.webhook_secret]
