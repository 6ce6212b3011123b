"""The operator page (/review/ops) on the embedded server: an admin logs in and reads the
seeded day and the day before (tests/integration/test_operations.py seeds them) in its
tables; other keys are sent to log in; bad parameters get a message, not a 500; names a
client chose render as text in tables and in the SVG charts; and in a real browser
(Debian's chromium) the charts draw without a console error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from api.routes.ops_page import percent, when
from ragline.config import RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Account, Job, JobStatus, ReviewItem, UsageRecord, utcnow
from tests.support.operations import Seeded, at, seed
from tests.support.server import serving
from tests.support.services import embedded_app
from tests.support.tenants import make_tenant

EVIL_ACCOUNT = '<script>alert("account")</script>'
EVIL_FEATURE = "<script>alert('feature')</script><b>"


@dataclass
class Site:
    url: str
    engine: Engine
    admin_key: str
    reviewer_key: str
    seeded: Seeded


def _config(repo_config: RaglineConfig) -> RaglineConfig:
    """The seeded queued jobs stay queued (not sent again while the test runs) and the
    review items keep their state (a breach only flags)."""
    data = repo_config.model_dump()
    data["jobs"].update(requeue_after_ms=3_600_000)
    data["review"].update(on_sla_breach="flag_only")
    return parse_config(data)


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
        own_index=False,
    ) as app:
        engine = app.services.engine
        seeded = seed(engine, utcnow())
        _, admin = make_tenant(engine, name="ops", roles=("admin",))
        _, reviewer = make_tenant(engine, name="acme", roles=("reviewer",))
        with serving(create_app(app.api)) as url:
            yield Site(url, engine, admin, reviewer, seeded)


@contextmanager
def _signed_in(site: Site, key: str) -> Iterator[httpx.Client]:
    """A client holding the session cookie of a log-in with `key`."""
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as client:
        response = client.post("/review/login", data={"key": key})
        assert response.status_code == 303, response.text
        yield client


class _Tables(HTMLParser):
    """The text of every cell of every table with an id: id -> rows -> cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id"):
            self._table = str(dict(attrs)["id"])
            self.tables[self._table] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    reader = _Tables()
    reader.feed(html)
    return {name: rows[1:] for name, rows in reader.tables.items()}  # without the header


def by_text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert match, element_id
    return match.group(1).strip()


def test_an_admin_reads_the_seeded_days_in_the_tables(site: Site) -> None:
    today, yesterday = str(site.seeded.today), str(site.seeded.yesterday)
    with _signed_in(site, site.admin_key) as browserless:
        response = browserless.get("/review/ops", params={"days": "2"})
    assert response.status_code == 200, response.text
    assert response.headers["Refresh"] == "60"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.text
    found = tables(page)

    assert by_text(page, "queued") == "2" and by_text(page, "running") == "1"
    assert by_text(page, "oldest-queued-at") == when(site.seeded.oldest_queued_at)
    assert by_text(page, "pending-reviews") == "3"
    assert (by_text(page, "overdue-reviews"), by_text(page, "breached-reviews")) == ("2", "2")
    assert by_text(page, "oldest-pending-at") == when(site.seeded.oldest_pending_at)

    with Session(site.engine) as session:  # the database's own count of today's final jobs
        final_today = session.exec(
            select(func.count())
            .select_from(Job)
            .where(
                col(Job.status).in_([s.value for s in JobStatus if s.final]),
                col(Job.finished_at) >= at(site.seeded.now, 0, 0),
            )
        ).one()
    assert final_today == 10
    # day, submitted, final, answered, escalated, rejected, failed, cancelled, rate
    assert found["outcomes"] == [
        [today, "13", str(final_today), "3", "4", "1", "1", "1", "40.0%"],
        [yesterday, "3", "3", "1", "1", "0", "1", "0", "33.3%"],
    ]
    assert found["escalations-by-reason"] == [
        [today, "low_confidence", "2", "10", "20.0%"],
        [today, "model_error", "1", "10", "10.0%"],
        [today, "timeout", "1", "10", "10.0%"],
        [yesterday, "no_answer", "1", "3", "33.3%"],
    ]
    assert found["escalations-by-feature"] == [
        [today, "sales", "2", "3", "66.7%"],
        [today, "support", "2", "6", "33.3%"],
        [yesterday, "support", "1", "2", "50.0%"],
    ]
    assert found["model-errors"] == [
        [today, "10", "1", "10.0%", "1", "10.0%"],
        [yesterday, "3", "0", "0.0%", "0", "0.0%"],
    ]
    assert found["sla-breaches"] == [[today, "2"], [yesterday, "1"]]

    assert found["spend-by-account"] == [
        [today, "(eval)", "1", "0.40"],
        [today, "(replay)", "1", "0.001"],
        [today, "acme", "3", "0.20"],
        [today, "globex", "1", "0.007"],
        [yesterday, "(eval)", "1", "0.10"],
        [yesterday, "acme", "1", "0.20"],
    ]
    assert found["spend-by-feature"] == [
        [today, "(eval)", "1", "0.40"],
        [today, "(replay)", "1", "0.001"],
        [today, "sales", "2", "0.057"],
        [today, "support", "2", "0.15"],
        [yesterday, "(eval)", "1", "0.10"],
        [yesterday, "support", "1", "0.20"],
    ]
    # ragline.yaml: every account 20.00 a day, 400.00 a month; globex's day cut by an admin.
    assert found["caps"] == [
        ["acme", "20.00", "0.20", "0.01", percent(210_000 / 20_000_000), "400.00", "0.40"],
        ["globex", "0.25", "0.00", "0.00", "0.0%", "400.00", "0.00"],
        ["ops", "20.00", "0.00", "0.00", "0.0%", "400.00", "0.00"],
    ]
    assert found["latency"] == [
        ["validate", "4", "2.0 ms", "5.0 ms"],
        ["embed", "4", "20.0 ms", "50.0 ms"],
        ["retrieve", "4", "30.0 ms", "60.0 ms"],
        ["generate", "4", "200.0 ms", "400.0 ms"],
        ["score", "3", "3.0 ms", "4.0 ms"],
        ["custom_stage", "1", "7.0 ms", "7.0 ms"],
        ["all stages", "4", "255.0 ms", "522.0 ms"],
    ]
    assert "newest 13 final jobs" in page and "at most 5000" in page

    # The handbook store's alias names kb_v1: its manifest here is the seeded one.
    assert found["index-active"] == [
        [
            "1",
            "kb_v1",
            "ready",
            "3",
            "10",
            "passed",
            "sentence-transformers/all-MiniLM-L6-v2",
            when(at(site.seeded.now, -1, 0.10)),
            "ann",
            "—",
        ]
    ]
    assert "the vector store&#39;s alias" in page
    assert [row[1:6] for row in found["promotions"]] == [
        ["rollback", "1", "2", "bob", ""],
        ["promote", "2", "1", "bob", "forced"],
        ["promote", "1", "—", "ann", ""],
    ]
    assert found["promotions"][1][6] == "hotfix"
    assert page.count('<svg class="chart"') == 8


def test_one_account(site: Site) -> None:
    today = str(site.seeded.today)
    with _signed_in(site, site.admin_key) as browserless:
        page = browserless.get("/review/ops", params={"days": "2", "account": "globex"}).text
    found = tables(page)
    assert '<option value="globex" selected>' in page
    assert found["outcomes"][0] == [today, "3", "2", "0", "1", "1", "0", "0", "50.0%"]
    assert found["spend-by-account"] == [[today, "globex", "1", "0.007"]]
    assert [row[0] for row in found["caps"]] == ["globex"]
    assert by_text(page, "queued") == "1" and by_text(page, "pending-reviews") == "1"


def test_a_key_without_the_admin_role_is_sent_to_log_in(site: Site) -> None:
    with _signed_in(site, site.reviewer_key) as reviewer:
        response = reviewer.get("/review/ops")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/review/login")
    with httpx.Client(base_url=site.url, follow_redirects=False) as nobody:
        assert nobody.get("/review/ops").headers["location"].startswith("/review/login")


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"days": "0"}, 422, "days must be a whole number from 1 to 90"),
        ({"days": "91"}, 422, "days must be a whole number from 1 to 90"),
        ({"days": "abc"}, 422, "days must be a whole number from 1 to 90"),
        ({"days": "9" * 5000}, 422, "days must be a whole number from 1 to 90"),
        ({"account": "nope"}, 404, "account &#39;nope&#39; does not exist"),
    ],
)
def test_bad_parameters_get_a_message(
    site: Site, params: dict[str, str], status: int, message: str
) -> None:
    with _signed_in(site, site.admin_key) as browserless:
        response = browserless.get("/review/ops", params=params)
    assert response.status_code == status
    assert f'<p class="error" role="alert">{message}</p>' in response.text
    assert 'id="filters"' in response.text and 'id="outcomes"' not in response.text


def test_names_a_client_chose_render_as_text_in_tables_and_charts(site: Site) -> None:
    now = utcnow()
    with Session(site.engine) as session:
        session.add(Account(id="evil", name=EVIL_ACCOUNT))
        session.flush()
        session.add(
            Job(
                id="evil-job",
                account_id="evil",
                request_hash="0" * 64,
                question="?",
                feature=EVIL_FEATURE,
                status="escalated",
                reason="low_confidence",
                created_at=now - timedelta(seconds=2),
                deadline_at=now + timedelta(days=1),
                finished_at=now - timedelta(seconds=1),
            )
        )
        session.flush()
        session.add(ReviewItem(job_id="evil-job", account_id="evil", reason="low_confidence"))
        session.add(
            UsageRecord(
                account_id="evil", feature=EVIL_FEATURE, job_id="evil-job", model_id="m",
                cost_micros=5_000, created_at=now - timedelta(seconds=1),
            )
        )  # fmt: skip
        session.commit()
    with _signed_in(site, site.admin_key) as browserless:
        everyone = browserless.get("/review/ops").text
        one = browserless.get("/review/ops", params={"account": EVIL_ACCOUNT})
    assert one.status_code == 200
    for page in (everyone, one.text):
        assert "<script>alert" not in page and "<b>" not in page
        charts = re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)
        in_charts = "".join(charts)
        assert "&lt;script&gt;alert(&#39;feature&#39;)&lt;/script&gt;" in in_charts
    found = tables(everyone)
    assert [EVIL_ACCOUNT] in [row[:1] for row in found["caps"]]
    assert [str(site.seeded.today), EVIL_FEATURE, "1", "1", "100.0%"] in found[
        "escalations-by-feature"
    ]
    assert "&lt;script&gt;alert(&#34;account&#34;)&lt;/script&gt;" in "".join(
        re.findall(r'<svg class="chart".*?</svg>', everyone, flags=re.S)
    )


def test_the_charts_draw_in_a_browser_without_console_errors(site: Site, browser: Any) -> None:
    page = browser.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        # The browser asks for /favicon.ico by itself; the app has none (a 404, not ours).
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            problems.append(f"{message.text} at {message.location['url']}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{site.url}/review/login")
    page.fill("#key", site.admin_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/review")
    page.goto(f"{site.url}/review/ops?days=7")
    charts = page.locator("svg.chart")
    assert charts.count() == 8
    for n in range(charts.count()):
        box = charts.nth(n).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() > 10
    drawn = [bars.nth(n).bounding_box() for n in range(bars.count())]
    assert all(box is not None and box["height"] > 0 and box["width"] > 0 for box in drawn)
    assert page.locator("svg.chart polyline.series").count() > 0
    page.select_option("select[name=account]", "acme")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/review/ops\?.*account=acme"))
    assert page.locator("svg.chart rect.bar").count() > 0
    assert problems == []
    page.close()
