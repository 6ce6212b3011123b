"""Index versions in the browser (/review/index) on the embedded server, whose index routes
own a store in the test's folder: an indexer logs in at /review/login and reads every
version with its checks, diffs two, promotes (a version that failed its checks only forced
with a reason) and rolls back, each move audited under its key; a forged form changes
nothing; a reviewer-only key is sent to log in; names from the documents render as text;
and in a real browser (Debian's chromium) a version is promoted by clicking."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session as DbSession

from api.app import create_app
from ragline import audit
from ragline.audit import AuditQuery
from ragline.config import RaglineConfig, parse_config
from ragline.evaluation.gate import gate_run_name
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager
from ragline.models import EvalRun
from tests.support.server import serving
from tests.support.services import EmbeddedApp, embedded_app
from tests.support.tenants import make_tenant

EVIL_DOCUMENT = "notes/<script>alert('doc')"  # a document id: its file's path
EVIL_QUESTION = "<script>alert('smoke')</script> Which moon has the tallest volcano?"
DOCUMENTS = {
    "hr/leave.md": "# Annual leave\n\nEvery employee receives 25 days of paid annual leave.\n",
    "hr/training.md": "# Training\n\nThe yearly training budget is 1,500 EUR per person.\n",
    "it/passwords.md": "# Passwords\n\nMulti-factor authentication is mandatory for all.\n",
}
CHANGED = {
    "hr/training.md": "# Training\n\nThe yearly training budget is 2,000 EUR per person.\n",
    f"{EVIL_DOCUMENT}.md": "---\ntitle: <script>alert('title')</script>\n---\n\nA note.\n",
}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    url: str
    app: EmbeddedApp
    manager: IndexManager
    indexer_key: str
    indexer_key_id: str
    reviewer_key: str
    admin_key: str
    admin_key_id: str
    tenant_indexer_key: str  # an indexer key of another account than the platform's
    v1: int
    v2: int  # training changed, the evil note added; passed its checks
    v3: int  # the same documents, with a smoke set it fails


def _config(repo_config: RaglineConfig) -> RaglineConfig:
    data = repo_config.model_dump()
    data["knowledge"]["gate"]["smoke_queries"] = []  # the handbook's questions: not these files
    return parse_config(data)


def _folder(root: Path, files: dict[str, str], smoke: list[dict[str, Any]] | None = None) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if smoke is not None:
        (root / "smoke.yaml").write_text(yaml.safe_dump(smoke))
    return root


@pytest.fixture
def site(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path: Path,
) -> Iterator[Site]:
    with embedded_app(
        _config(repo_config),
        tmp_path,
        handbook_store,
        embedder,
        engine=sqlite_engine,
        own_index=True,
    ) as app:
        manager = app.api.index
        assert manager is not None
        v1 = manager.build(_folder(tmp_path / "v1", DOCUMENTS)).version
        manager.promote(v1)
        second = {**DOCUMENTS, **CHANGED}
        v2 = manager.build(_folder(tmp_path / "v2", second)).version
        failing = [{"question": EVIL_QUESTION, "expected_documents": ["astronomy/mars"]}]
        v3 = manager.build(_folder(tmp_path / "v3", second, smoke=failing)).version
        indexer, indexer_key = make_tenant(app.services.engine, name="platform", roles=("indexer",))
        _, reviewer_key = make_tenant(app.services.engine, roles=("reviewer",))
        admin, admin_key = make_tenant(app.services.engine, name="hq", roles=("admin",))
        _, tenant_indexer_key = make_tenant(app.services.engine, name="acme", roles=("indexer",))
        with serving(create_app(app.api)) as url:
            yield Site(
                url,
                app,
                manager,
                indexer_key,
                indexer.key_id,
                reviewer_key,
                admin_key,
                admin.key_id,
                tenant_indexer_key,
                v1,
                v2,
                v3,
            )


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    """A browser without a browser: logged in as the indexer, redirects not followed."""
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as browserless:
        login = browserless.post("/review/login", data={"key": site.indexer_key})
        assert login.status_code == 303, login.text
        assert login.headers["location"] == "/review/index"  # an indexer's own page
        yield browserless


def _csrf(client: httpx.Client) -> str:
    page = client.get("/review/index")
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def _moves(site: Site, action: str) -> list[audit.AuditEntry]:
    found, _ = audit.entries(site.app.services.engine, AuditQuery(action=action))
    return found


def test_the_page_lists_every_version_with_its_checks(site: Site, client: httpx.Client) -> None:
    page = client.get("/review/index")
    assert page.status_code == 200
    html = page.text
    for version in (site.v1, site.v2, site.v3):
        assert f'id="version-{version}"' in html
    row = _row(html, site.v1)
    assert "active" in row and "passed" in row and "3" in row
    assert "smoke check skipped: no smoke set" in row
    failed = _row(html, site.v3)
    assert "failed" in failed and "smoke hit rate 0.0% of 1 questions" in failed
    assert f'id="force-{site.v3}"' in failed  # forcing is offered only where checks failed
    assert f'id="force-{site.v2}"' not in html
    # The failure names the missed question, as text.
    assert "&lt;script&gt;alert(&#39;smoke&#39;)&lt;/script&gt;" in failed
    assert "<script>alert('smoke')" not in html
    assert "passed" in _row(html, site.v2)
    assert 'id="promotions"' in html and "promote" in html.split('id="promotions"')[1]


def test_the_diff_shows_what_changed_between_two_versions(site: Site, client: httpx.Client) -> None:
    page = client.get("/review/index/diff", params={"a": site.v1, "b": site.v2})
    assert page.status_code == 200, page.text
    changed = page.text.split('id="changed"')[1].split("</ul>")[0]
    added = page.text.split('id="added"')[1].split("</ul>")[0]
    removed = page.text.split('id="removed"')[1].split("</ul>")[0]
    assert "hr/training" in changed and "hr/leave" not in changed
    assert "notes/&lt;script&gt;alert(&#39;doc&#39;)" in added  # the evil id, as text
    assert "<script>alert('doc')" not in page.text
    assert "none" in removed

    unknown = client.get("/review/index/diff", params={"a": site.v1, "b": 99})
    assert unknown.status_code == 404 and "index version 99 does not exist" in unknown.text
    nonsense = client.get("/review/index/diff", params={"a": "x<b>", "b": site.v2})
    assert nonsense.status_code == 422 and "choose a version number" in nonsense.text
    assert "x<b>" not in nonsense.text


def test_promoting_a_version_moves_the_alias_and_is_audited_under_the_key(
    site: Site, client: httpx.Client
) -> None:
    promoted = client.post(
        f"/review/index/{site.v2}/promote",
        data={"csrf": _csrf(client), "reason": "new training budget"},
    )
    assert promoted.status_code == 303
    assert promoted.headers["location"].startswith("/review/index?msg=")
    assert site.manager.active_version() == site.v2
    shown = client.get(promoted.headers["location"]).text
    assert f"version {site.v2} promoted" in shown
    assert "new training budget" in shown.split('id="promotions"')[1]

    entry = _moves(site, "index.promote")[0]
    assert entry.actor == f"key:{site.indexer_key_id}"
    assert entry.target == f"index:{site.v2}"
    assert entry.after["reason"] == "new training budget"


def test_a_version_that_failed_its_checks_needs_force_and_a_reason(
    site: Site, client: httpx.Client
) -> None:
    token = _csrf(client)
    path = f"/review/index/{site.v3}/promote"
    unforced = client.post(path, data={"csrf": token, "reason": "trust me"})
    assert unforced.status_code == 422
    assert f"index version {site.v3} failed its checks" in unforced.text
    # Overriding the gate is an admin's call, not an indexer's.
    by_indexer = client.post(path, data={"csrf": token, "force": "1", "reason": "trust me"})
    assert by_indexer.status_code == 403 and "admin key" in by_indexer.text
    assert site.manager.active_version() == site.v1

    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as admin:
        assert admin.post("/review/login", data={"key": site.admin_key}).status_code == 303
        token = _csrf(admin)
        no_reason = admin.post(path, data={"csrf": token, "force": "1", "reason": "  "})
        assert no_reason.status_code == 422 and "needs --reason" in no_reason.text
        assert site.manager.active_version() == site.v1
        forced = admin.post(
            path, data={"csrf": token, "force": "1", "reason": "smoke set is wrong"}
        )
        assert forced.status_code == 303
    assert site.manager.active_version() == site.v3
    entry = _moves(site, "index.promote")[0]
    assert entry.actor == f"key:{site.admin_key_id}"
    assert entry.after == {
        "active_version": site.v3,
        "forced": True,
        "reason": "smoke set is wrong",
    }
    moves = client.get("/review/index").text.split('id="promotions"')[1]
    assert "forced" in moves and "smoke set is wrong" in moves


def test_a_rollback_needs_a_reason_and_restores_the_version_before(
    site: Site, client: httpx.Client
) -> None:
    token = _csrf(client)
    client.post(f"/review/index/{site.v2}/promote", data={"csrf": token})
    assert site.manager.active_version() == site.v2

    refused = client.post("/review/index/rollback", data={"csrf": token, "reason": ""})
    assert refused.status_code == 422 and "a rollback needs a reason" in refused.text
    assert site.manager.active_version() == site.v2

    rolled = client.post("/review/index/rollback", data={"csrf": token, "reason": "bad answers"})
    assert rolled.status_code == 303
    assert site.manager.active_version() == site.v1
    assert f"version {site.v1} is active" in client.get(rolled.headers["location"]).text
    entry = _moves(site, "index.rollback")[0]
    assert entry.actor == f"key:{site.indexer_key_id}"
    assert entry.before == {"active_version": site.v2}
    assert entry.after["reason"] == "bad answers"


def test_a_form_without_the_session_csrf_token_changes_nothing(
    site: Site, client: httpx.Client
) -> None:
    before = len(_moves(site, "index."))
    for data in ({}, {"csrf": "forged"}):
        forged = client.post(f"/review/index/{site.v2}/promote", data=data)
        assert forged.status_code == 403
        assert "expired or came from elsewhere" in forged.text
        rollback = client.post("/review/index/rollback", data={**data, "reason": "x"})
        assert rollback.status_code == 403
    assert site.manager.active_version() == site.v1
    assert len(_moves(site, "index.")) == before


def test_a_reviewer_only_key_is_sent_to_log_in(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as reviewer:
        login = reviewer.post("/review/login", data={"key": site.reviewer_key})
        assert login.status_code == 303 and login.headers["location"] == "/review"
        page = reviewer.get("/review/index")
        assert page.status_code == 303
        assert page.headers["location"] == "/review/login?next=%2Freview%2Findex"
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as again:
        again.post("/review/login", data={"key": site.reviewer_key})
        queue = again.get("/review")
        token = CSRF.search(queue.text)
        assert token
        promote = again.post(f"/review/index/{site.v2}/promote", data={"csrf": token.group(1)})
        assert promote.status_code == 303 and promote.headers["location"].startswith(
            "/review/login"
        )
    assert site.manager.active_version() == site.v1


def test_a_server_that_does_not_own_the_store_offers_no_actions(site: Site) -> None:
    elsewhere = dataclasses.replace(site.app.api, index=None, background=[])
    with (
        serving(create_app(elsewhere)) as url,
        httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client,
    ):
        client.post("/review/login", data={"key": site.indexer_key})
        page = client.get("/review/index")
        assert page.status_code == 200
        assert "does not own the knowledge store" in page.text
        assert f'id="version-{site.v2}"' in page.text  # as the database records them
        assert "/promote" not in page.text and 'id="rollback"' not in page.text
        token = CSRF.search(page.text)
        assert token
        refused = client.post(
            f"/review/index/{site.v2}/promote", data={"csrf": token.group(1), "reason": "x"}
        )
        assert refused.status_code == 503
    assert site.manager.active_version() == site.v1


def test_an_indexer_promotes_a_version_by_clicking(site: Site, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{site.url}/review/index")
    assert "/review/login" in page.url
    page.fill("#key", site.indexer_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/review/index")
    assert "failed" in page.inner_text(f"#version-{site.v3} .checks")
    row = page.locator(f"#version-{site.v2}")
    row.locator("input[name=reason]").fill("clicked in the browser")
    page.click(f"#promote-{site.v2}")
    page.wait_for_url("**/review/index?msg=*")
    assert f"version {site.v2} promoted" in page.inner_text("[role=status]")
    assert "active" in page.inner_text(f"#version-{site.v2}")
    assert site.manager.active_version() == site.v2
    assert _moves(site, "index.promote")[0].actor == f"key:{site.indexer_key_id}"
    page.close()


def _row(html: str, version: int) -> str:
    return html.split(f'id="version-{version}"')[1].split("</tr>")[0]


def _gate_run(site: Site, version: int, must_include: list[float]) -> None:
    """A stored run of the promote gate (`ragline index promote N --eval FILE` writes them)."""
    items = [
        {"id": f"q{n}", "scores": {"must_include": score}} for n, score in enumerate(must_include)
    ]
    run = EvalRun(
        id=f"ev_gate{version}",
        name=gate_run_name(version),
        dataset="gate.jsonl",
        dataset_hash="same-items",
        items=items,
    )
    with DbSession(site.app.services.engine) as session:
        session.add(run)
        session.commit()


def test_each_candidate_shows_its_last_eval_gate_against_the_active_version(
    site: Site, client: httpx.Client
) -> None:
    html = client.get("/review/index").text
    assert f"ragline index promote {site.v2} --eval FILE" in _row(html, site.v2)  # none ran

    _gate_run(site, site.v1, [1.0] * 20)
    _gate_run(site, site.v2, [1.0] * 20)
    _gate_run(site, site.v3, [0.0] * 20)
    html = client.get("/review/index").text
    assert "no regression" in _row(html, site.v2) and "gate.jsonl, 20 items" in _row(html, site.v2)
    assert "regressed must_include" in _row(html, site.v3)


def test_a_tenants_indexer_key_cannot_operate_the_shared_knowledge_base(site: Site) -> None:
    """The knowledge base answers every account: an indexer key of another account than the
    platform's signs in to nothing that moves it."""
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as browserless:
        browserless.post("/review/login", data={"key": site.tenant_indexer_key})
        page = browserless.get("/review/index")
        assert page.status_code == 303 and page.headers["location"].startswith("/review/login")
        moved = browserless.post("/review/index/rollback", data={"reason": "mine now"})
        assert moved.status_code == 303 and moved.headers["location"].startswith("/review/login")
    assert site.manager.active_version() == site.v1
