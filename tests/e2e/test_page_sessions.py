"""Web page sessions (issue 20, finding 2). The review found that a cookie kept after
log-out still read the queue and claimed items for 8 hours: the cookie was signed, not
stored. Sessions now live server-side and end at log-out, on key revocation, after the idle
timeout and at the absolute one; log-out checks its CSRF token; log-in refuses a form
posted from another site."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from api.app import create_app
from api.session import COOKIE
from ragline.accounts import Accounts
from ragline.models import PageSession, utcnow
from ragline.page_sessions import PageSessions
from ragline.rows import table
from tests.support.server import serving
from tests.support.services import EmbeddedApp
from tests.support.tenants import make_tenant

SESSIONS = table(PageSession)


@dataclass(frozen=True)
class Site:
    url: str
    key: str  # a reviewer's
    key_id: str
    engine: Engine
    sessions: PageSessions


@pytest.fixture
def site(embedded: EmbeddedApp) -> Iterator[Site]:
    engine = embedded.services.engine
    principal, key = make_tenant(engine, roles=("reviewer",))
    with serving(create_app(embedded.api)) as url:
        yield Site(url, key, principal.key_id, engine, embedded.api.sessions)


def log_in(site: Site, **headers: str) -> httpx.Client:
    browser = httpx.Client(base_url=site.url, timeout=30)
    answer = browser.post("/review/login", data={"key": site.key}, headers=headers)
    assert answer.status_code == 303, answer.text
    assert COOKIE in browser.cookies
    return browser


def csrf_of(browser: httpx.Client) -> str:
    page = browser.get("/review")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def signed_in_with(site: Site, cookie: str) -> bool:
    """What an attacker holding a copy of the cookie gets: the queue, or the log-in form."""
    with httpx.Client(base_url=site.url, timeout=30, cookies={COOKIE: cookie}) as copy:
        queue = copy.get("/review")
        claim = copy.post("/review/items/1/claim", data={"csrf": "x"})
    if queue.status_code == 303:
        assert queue.headers["location"].startswith("/review/login")
        assert claim.status_code == 303 and claim.headers["location"].startswith("/review/login")
        return False
    assert queue.status_code == 200
    return True


def test_a_cookie_kept_after_log_out_opens_nothing(site: Site) -> None:
    browser = log_in(site)
    kept = browser.cookies[COOKIE]
    assert signed_in_with(site, kept)

    out = browser.post("/review/logout", data={"csrf": csrf_of(browser)})
    assert out.status_code == 303
    assert out.headers["location"] == "/review/login?msg=logged_out"
    assert not signed_in_with(site, kept)
    assert site.sessions.live(site.key_id) == 0
    browser.close()


def test_log_out_needs_the_forms_token(site: Site) -> None:
    """Another site cannot log a reviewer out (nor can a form without its token)."""
    browser = log_in(site)
    for forged in ({}, {"csrf": "forged"}):
        refused = browser.post("/review/logout", data=forged)
        assert refused.status_code == 303
        assert refused.headers["location"] == "/review?msg=expired"
    assert signed_in_with(site, browser.cookies[COOKIE])
    browser.close()


def test_revoking_the_key_ends_its_sessions(site: Site) -> None:
    first, second = log_in(site), log_in(site)
    assert site.sessions.live(site.key_id) == 2
    Accounts(site.engine).revoke_key(site.key_id)
    assert site.sessions.live(site.key_id) == 0
    for browser in (first, second):
        assert not signed_in_with(site, browser.cookies[COOKIE])
        browser.close()


def test_a_session_ends_when_idle_and_at_its_absolute_limit(site: Site) -> None:
    idle = site.sessions.idle
    for column, moved in (
        ("last_seen_at", utcnow() - idle - timedelta(seconds=5)),  # idle too long
        ("expires_at", utcnow() - timedelta(seconds=1)),  # past the absolute limit
    ):
        browser = log_in(site)
        cookie = browser.cookies[COOKIE]
        with site.engine.begin() as connection:
            connection.execute(update(SESSIONS).values({column: moved}))
        assert not signed_in_with(site, cookie), column
        assert site.sessions.live(site.key_id) == 0
        browser.close()


def test_a_request_keeps_a_session_alive(site: Site) -> None:
    browser = log_in(site)
    almost_idle = utcnow() - site.sessions.idle + timedelta(minutes=1)
    with site.engine.begin() as connection:
        connection.execute(update(SESSIONS).values(last_seen_at=almost_idle))
    assert signed_in_with(site, browser.cookies[COOKIE])
    with site.engine.connect() as connection:
        seen = connection.execute(select(SESSIONS.c.last_seen_at)).scalar_one()
    assert seen > almost_idle + timedelta(seconds=30)
    browser.close()


def test_the_database_holds_no_cookie_and_the_cookie_no_key(site: Site) -> None:
    browser = log_in(site)
    cookie = browser.cookies[COOKIE]
    assert site.key_id not in cookie and site.key not in cookie
    with site.engine.connect() as connection:
        (stored,) = connection.execute(select(SESSIONS.c.id, SESSIONS.c.csrf)).all()
    assert cookie not in stored
    browser.close()


def test_logging_in_again_replaces_the_browsers_session(site: Site) -> None:
    browser = log_in(site)
    before = browser.cookies[COOKIE]
    assert browser.post("/review/login", data={"key": site.key}).status_code == 303
    assert browser.cookies[COOKIE] != before
    assert not signed_in_with(site, before)
    assert site.sessions.live(site.key_id) == 1
    browser.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_log_in_refuses_a_form_posted_from_another_site(
    site: Site, headers: dict[str, str]
) -> None:
    """Log-in CSRF: a page elsewhere posting the attacker's key would sign the victim's
    browser in to the attacker's account."""
    with httpx.Client(base_url=site.url, timeout=30) as browser:
        refused = browser.post("/review/login", data={"key": site.key}, headers=headers)
        assert refused.status_code == 403
        assert "another site" in refused.text
        assert COOKIE not in browser.cookies
    assert site.sessions.live(site.key_id) == 0


def test_log_in_from_its_own_page_is_let_through(site: Site) -> None:
    host = httpx.URL(site.url).netloc.decode()
    browser = log_in(site, Origin=f"http://{host}", **{"Sec-Fetch-Site": "same-origin"})
    assert signed_in_with(site, browser.cookies[COOKIE])
    browser.close()
