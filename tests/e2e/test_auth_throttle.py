"""Guessing keys (issue 20, findings 4, 5 and 9). Wrong keys are throttled per client
address before the database is asked; only failures drain the bucket, and a key accepted a
moment ago keeps working from the same address. The address is the connection's own:
rotating X-Forwarded-For escapes neither the API's throttle nor the review log-in's (no
proxy is trusted unless RAGLINE_TRUSTED_PROXIES names it). Pages spend from the key's rate
limit like API requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from api.app import create_app
from cli.serve import forwarded_allow_ips
from ragline.config import RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from tests.support.server import serving
from tests.support.services import embedded_app, settings_for
from tests.support.tenants import make_tenant

BURST = 5
KEY_BURST = 20  # requests per key, API and pages alike


@dataclass(frozen=True)
class Site:
    url: str
    key: str  # a submitter and reviewer
    key_reads: list[str]  # every query that read api_keys


@pytest.fixture
def site(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    tmp_path: Path,
) -> Iterator[Site]:
    data = repo_config.model_dump()
    data["api"]["failed_auth"] = {"requests_per_second": 0.01, "burst": BURST}
    data["rate_limits"] = {"requests_per_second": 0.01, "burst": KEY_BURST}
    reads: list[str] = []

    def counted(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_keys" in statement:
            reads.append(statement)

    event.listen(sqlite_engine, "before_cursor_execute", counted)
    try:
        with embedded_app(
            parse_config(data),
            tmp_path,
            handbook_store,
            embedder,
            engine=sqlite_engine,
            settings=settings_for(tmp_path, key_cache_ms=60_000),
        ) as app:
            _, key = make_tenant(sqlite_engine, roles=("submitter", "reviewer"))
            with serving(create_app(app.api)) as url:
                yield Site(url, key, reads)
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", counted)


def test_wrong_keys_are_throttled_before_the_database(site: Site) -> None:
    good = {"Authorization": f"Bearer {site.key}"}
    with httpx.Client(base_url=site.url, timeout=30) as guesser:
        assert guesser.get("/v1/jobs", headers=good).status_code == 200
        for n in range(BURST):
            wrong = {"Authorization": f"Bearer rl_000000000000_guess{n}"}
            assert guesser.get("/v1/jobs", headers=wrong).status_code == 401
        read = len(site.key_reads)
        for n in range(20):
            spoofed = {
                "Authorization": f"Bearer rl_000000000000_more{n}",
                "X-Forwarded-For": f"203.0.113.{n}",  # not believed: no proxy is trusted
            }
            refused = guesser.get("/v1/jobs", headers=spoofed)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
        assert len(site.key_reads) == read  # refused before any key was looked up
        # A key this process accepted a moment ago still works from the same address, and
        # a request with no key at all is a plain 401 (nothing to look up).
        assert guesser.get("/v1/jobs", headers=good).status_code == 200
        assert guesser.get("/v1/jobs").status_code == 401


def test_the_review_log_in_keys_on_the_connection_not_a_header(site: Site) -> None:
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as guesser:
        codes = [
            guesser.post(
                "/review/login",
                data={"key": f"rl_000000000000_guess{n}"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(11)
        ]
        assert codes == [401] * 10 + [429]


def test_a_reviewer_who_logs_in_drains_nothing(site: Site) -> None:
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as reviewer:
        for _ in range(15):  # past the 10 failures the log-in allows
            assert reviewer.post("/review/login", data={"key": site.key}).status_code == 303


def test_proxy_headers_are_believed_only_from_the_proxies_named() -> None:
    assert forwarded_allow_ips(settings_for(Path("/tmp"))) is None
    named = settings_for(Path("/tmp"), trusted_proxies=("10.0.0.2", "10.1.0.0/16"))
    assert forwarded_allow_ips(named) == "10.0.0.2,10.1.0.0/16"


def test_the_review_pages_spend_from_the_keys_rate_limit(site: Site) -> None:
    """Finding 9: the pages had no request limit. A signed-in page request spends from its
    key's bucket like an API request does."""
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as reviewer:
        assert reviewer.post("/review/login", data={"key": site.key}).status_code == 303
        codes = [reviewer.get("/review").status_code for _ in range(KEY_BURST + 1)]
    assert codes[:KEY_BURST] == [200] * KEY_BURST
    assert codes[-1] == 429
