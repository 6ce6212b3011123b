"""Headers and assets of the HTTP surface (issue 20, finding 10): every response says
`nosniff` and, unless a route chose otherwise, `no-store`; the review pages run no inline
script and their policy allows scripts from this origin only, served by ragline itself;
Swagger UI (a CDN's scripts) is off unless RAGLINE_API_DOCS asks for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from ragline.config import RaglineConfig
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from tests.support.server import serving
from tests.support.services import EmbeddedApp, embedded_app, settings_for
from tests.support.tenants import make_tenant

SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


@pytest.fixture
def site(embedded: EmbeddedApp) -> Iterator[tuple[str, str]]:
    _, admin_key = make_tenant(embedded.services.engine, "ops", roles=("admin",))
    with serving(create_app(embedded.api)) as url:
        yield url, admin_key


def test_every_response_says_nosniff_and_api_answers_are_not_stored(
    site: tuple[str, str],
) -> None:
    url, key = site
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=60) as client:
        responses = {
            "health": client.get("/v1/health"),
            "no key": client.get("/v1/jobs"),
            "not found": client.get("/v1/nothing-here"),
            "a new key": client.post(
                "/v1/admin/keys", json={"account": "ops", "roles": ["submitter"]}, headers=auth
            ),
            "login page": client.get("/review/login"),
            "script": client.get("/review/static/review.js"),
        }
    assert responses["a new key"].status_code == 201, responses["a new key"].text
    for name, response in responses.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
    for name in ("health", "no key", "not found", "a new key", "login page"):
        assert responses[name].headers["cache-control"] == "no-store", name


def test_the_review_pages_run_no_inline_script(site: tuple[str, str]) -> None:
    url, key = site
    with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser:
        login = browser.get("/review/login")
        assert browser.post("/review/login", data={"key": key}).status_code == 200
        pages = [login, browser.get("/review"), browser.get("/review/ops")]
        scripts = {src for page in pages for src in re.findall(r'src="([^"]+)"', page.text)}
        for page in pages:
            assert page.status_code == 200, page.url
            policy = page.headers["content-security-policy"]
            script_policy = re.search(r"script-src ([^;]*)", policy)
            assert script_policy is not None and script_policy.group(1).strip() == "'self'"
            for attributes in SCRIPT.findall(page.text):
                assert "src=" in attributes, f"an inline script on {page.url}"
        assert "/review/static/review.js" in scripts
        for src in scripts:
            served = browser.get(src)
            assert served.status_code == 200, src
            assert served.headers["content-type"].startswith("text/javascript")
        assert browser.get("/review/static/../app.py").status_code == 404
        assert browser.get("/review/static/nothing.js").status_code == 404


def test_swagger_ui_is_off_unless_asked_for(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path: Path,
) -> None:
    for docs, expected in ((False, 404), (True, 200)):
        folder = tmp_path / str(docs)
        settings = settings_for(folder, api_docs=docs)
        with (
            embedded_app(
                repo_config,
                folder,
                handbook_store,
                embedder,
                engine=sqlite_engine,
                settings=settings,
            ) as app,
            serving(create_app(app.api)) as url,
        ):
            assert httpx.get(f"{url}/docs", timeout=30).status_code == expected
            assert httpx.get(f"{url}/redoc", timeout=30).status_code == expected
            assert httpx.get(f"{url}/openapi.json", timeout=30).status_code == 200


def test_a_link_cannot_make_a_page_say_its_text(site: tuple[str, str]) -> None:
    url, _ = site
    phish = "Your key leaked: paste it at https://evil.example to rotate it"
    page = httpx.get(f"{url}/review/login", params={"msg": phish}, timeout=30)
    assert page.status_code == 200 and "evil.example" not in page.text
