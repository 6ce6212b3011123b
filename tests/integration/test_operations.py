"""The operator page's numbers (ragline/operations.py) on SQLite and PostgreSQL, from a known
day and the day before seeded row by row: every count, rate, sum, cap, percentile and
index row the page shows. The seeding is tests/support/operations.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from ragline.budget import BudgetBook
from ragline.config import Budgets
from ragline.errors import InvalidInput
from ragline.operations import (
    ALL_STAGES,
    Cap,
    Manifest,
    Promotion,
    SpendRow,
    StageLatency,
    Window,
    caps,
    days,
    index_state,
    job_queue,
    latency,
    percentile,
    recorded_active,
    report,
    review_backlog,
    spend,
)
from tests.support.operations import BUDGETS, NOW, TODAY, YESTERDAY, Seeded, at, seed

# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed(engine, NOW)


def two_days(seeded: Seeded, account_id: str | None = None) -> Window:
    return Window.ending(NOW, 2, account_id)


def test_the_window_is_whole_utc_days_ending_today() -> None:
    window = Window.ending(NOW, 3)
    assert window.days == (date(2026, 11, 18), YESTERDAY, TODAY)
    assert window.start == datetime(2026, 11, 18, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 21, tzinfo=UTC)
    for wrong in (0, -1, 91):
        with pytest.raises(InvalidInput, match="days"):
            Window.ending(NOW, wrong)
    assert len(Window.ending(NOW, 90).days) == 90


def test_the_job_queue_and_review_backlog_now(engine: Engine, seeded: Seeded) -> None:
    queue = job_queue(engine, None)
    assert (queue.queued, queue.running) == (2, 1)
    assert queue.oldest_queued_at == seeded.oldest_queued_at
    assert job_queue(engine, seeded.globex).queued == 1
    assert job_queue(engine, seeded.globex).oldest_queued_at == at(NOW, 0, 0.20)

    backlog = review_backlog(engine, None, NOW)
    # j3, j6, j12 pending; j3 and j12 past due and flagged; j6 due tomorrow.
    assert (backlog.pending, backlog.overdue, backlog.breached) == (3, 2, 2)
    assert backlog.oldest_pending_at == seeded.oldest_pending_at
    globex = review_backlog(engine, seeded.globex, NOW)
    assert (globex.pending, globex.overdue, globex.breached) == (1, 0, 0)


def test_outcomes_escalations_and_model_errors_per_day(engine: Engine, seeded: Seeded) -> None:
    yesterday, today = days(engine, two_days(seeded))
    assert (yesterday.day, today.day) == (YESTERDAY, TODAY)

    assert today.submitted == 13  # ten final jobs, two queued, one running
    assert today.final == 10
    assert dict(today.outcomes) == {
        "answered": 3,  # j1, j2, j10 (j10 sampled for review is not an escalation)
        "escalated": 4,  # j3, j6 waiting; j4 approved, j7 rejected by a reviewer
        "rejected": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert dict(today.escalations) == {"low_confidence": 2, "model_error": 1, "timeout": 1}
    assert today.share(today.escalated) == 0.4
    assert today.share(today.escalations["low_confidence"]) == 0.2
    assert dict(today.features) == {"support": 6, "sales": 3, "(none)": 1}
    assert dict(today.escalated_features) == {"support": 2, "sales": 2}
    assert today.feature_rate("support") == 2 / 6
    assert today.feature_rate("sales") == 2 / 3
    assert today.feature_rate("(none)") == 0
    assert dict(today.causes) == {"model_error": 1, "timeout": 1}
    assert today.share(today.causes["model_error"]) == 0.1
    assert today.sla_breaches == 2  # j3 and j7 (decided since) missed their due time today

    assert yesterday.submitted == 3
    assert dict(yesterday.outcomes) == {"answered": 1, "escalated": 1, "failed": 1}
    assert dict(yesterday.escalations) == {"no_answer": 1}
    assert dict(yesterday.features) == {"support": 2, "(none)": 1}
    assert yesterday.share(yesterday.escalated) == 1 / 3
    assert yesterday.causes == {}
    assert yesterday.sla_breaches == 1

    earlier, *_ = days(engine, Window.ending(NOW, 3))
    assert (earlier.final, earlier.submitted) == (1, 1)  # j14, outside two days


def test_one_account_and_a_day_without_jobs(engine: Engine, seeded: Seeded) -> None:
    yesterday, today = days(engine, two_days(seeded, seeded.globex))
    assert dict(today.outcomes) == {"rejected": 1, "escalated": 1}
    assert dict(today.escalations) == {"model_error": 1}
    assert today.submitted == 3  # j5, j6 and q2
    assert dict(yesterday.outcomes) == {"failed": 1}
    assert (today.sla_breaches, yesterday.sla_breaches) == (0, 0)

    (only,) = days(engine, Window.ending(NOW + timedelta(days=1), 1))
    assert (only.final, only.submitted, only.share(0)) == (0, 0, None)


def test_spend_by_feature_and_by_account_with_eval_and_replay_apart(
    engine: Engine, seeded: Seeded
) -> None:
    ledger = spend(engine, two_days(seeded))
    assert ledger.by_feature == [
        SpendRow(YESTERDAY, "(eval)", 1, 100_000),
        SpendRow(YESTERDAY, "support", 1, 200_000),
        SpendRow(TODAY, "(eval)", 1, 400_000),
        SpendRow(TODAY, "(replay)", 1, 1_000),
        SpendRow(TODAY, "sales", 2, 57_000),
        SpendRow(TODAY, "support", 2, 150_000),
    ]
    assert ledger.by_account == [
        SpendRow(YESTERDAY, "(eval)", 1, 100_000),
        SpendRow(YESTERDAY, "acme", 1, 200_000),
        SpendRow(TODAY, "(eval)", 1, 400_000),
        SpendRow(TODAY, "(replay)", 1, 1_000),
        SpendRow(TODAY, "acme", 3, 200_000),
        SpendRow(TODAY, "globex", 1, 7_000),
    ]
    assert ledger.keys(ledger.by_account) == ["(eval)", "acme", "globex", "(replay)"]
    assert ledger.per_day(ledger.by_account, two_days(seeded), "acme") == [200_000, 200_000]

    acme = spend(engine, two_days(seeded, seeded.acme))
    assert acme.by_account == [
        SpendRow(YESTERDAY, "acme", 1, 200_000),
        SpendRow(TODAY, "acme", 3, 200_000),
    ]
    assert acme.by_feature == [
        SpendRow(YESTERDAY, "support", 1, 200_000),
        SpendRow(TODAY, "sales", 1, 50_000),
        SpendRow(TODAY, "support", 2, 150_000),
    ]


def test_caps_as_the_budget_book_resolves_them(engine: Engine, seeded: Seeded) -> None:
    book = BudgetBook(engine, BUDGETS)
    acme, globex, total = caps(book, ["acme", "globex"], NOW)
    assert acme == Cap("acme", 1_000_000, 200_000, 10_000, 10_000_000, 400_000)
    assert acme.used_today == 0.21
    # The admin's 0.25 overrides the config's default 0.5; no monthly cap.
    assert globex == Cap("globex", 250_000, 0, 0, None, 0)
    assert globex.used_today == 0
    assert total == Cap("all accounts", 5_000_000, 207_000, 0, None, 0)
    assert caps(book, ["acme"], NOW, total=False) == [acme]
    assert caps(BudgetBook(engine, Budgets()), ["acme"], NOW)[0].used_today is None


def test_stage_latency_percentiles_over_the_newest_final_jobs(
    engine: Engine, seeded: Seeded
) -> None:
    measured = latency(engine, two_days(seeded))
    assert measured.jobs == 13 and not measured.capped
    assert measured.stages == [
        StageLatency("validate", 4, 2, 5),
        StageLatency("embed", 4, 20, 50),
        StageLatency("retrieve", 4, 30, 60),
        StageLatency("generate", 4, 200, 400),
        StageLatency("score", 3, 3, 4),
        StageLatency("custom_stage", 1, 7, 7),
        StageLatency(ALL_STAGES, 4, 255, 522),
    ]
    newest = latency(engine, two_days(seeded), sample=1)  # j2, finished last
    assert newest.jobs == 1 and newest.capped
    assert newest.stages[3] == StageLatency("generate", 1, 300, 300)
    assert latency(engine, two_days(seeded, seeded.globex)).stages == []


def test_percentile_is_the_nearest_rank() -> None:
    values = [5, 1, 4, 2, 3, 6, 8, 7, 10, 9]
    assert (percentile(values, 50), percentile(values, 95)) == (5, 10)
    assert percentile([42], 95) == 42


def test_the_active_index_and_the_last_promotions(engine: Engine, seeded: Seeded) -> None:
    assert recorded_active(engine) == 1  # the rollback's target
    state = index_state(engine, 1)
    assert state.active == Manifest(
        version=1,
        collection="kb_v1",
        status="ready",
        documents=3,
        chunks=10,
        checks_passed=True,
        embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        built_at=at(NOW, -1, 0.10),
        built_by="ann",
        promoted_at=None,
    )
    assert state.promotions == [
        Promotion(1, 2, "rollback", "bob", "bad answers", False, at(NOW, 0, 0.05)),
        Promotion(2, 1, "promote", "bob", "hotfix", True, at(NOW, -1, 0.25)),
        Promotion(1, None, "promote", "ann", "", False, at(NOW, -1, 0.15)),
    ]
    assert len(index_state(engine, 1, shown=2).promotions) == 2
    missing = index_state(engine, 7)
    assert (missing.active_version, missing.active) == (7, None)
    assert index_state(engine, None).active is None


def test_an_empty_database(engine: Engine) -> None:
    everything = report(
        engine, BudgetBook(engine, Budgets()), Window.ending(NOW, 7), NOW,
        accounts=[], active_version=recorded_active(engine),
    )  # fmt: skip
    assert everything.queue.queued == 0 and everything.queue.oldest_queued_at is None
    assert everything.reviews.pending == 0 and everything.reviews.oldest_pending_at is None
    assert [d.final for d in everything.days] == [0] * 7
    assert everything.spend.by_account == [] and everything.caps == []
    assert everything.latency.stages == [] and everything.index.promotions == []
    assert everything.index.active_version is None


def test_the_report_for_one_account(engine: Engine, seeded: Seeded) -> None:
    book = BudgetBook(engine, BUDGETS)
    window = Window.ending(NOW, 2, seeded.acme, "acme")
    one = report(engine, book, window, NOW, accounts=["acme"], active_version=1)
    assert [cap.subject for cap in one.caps] == ["acme"]  # no total for one account
    assert one.queue.queued == 1 and one.reviews.pending == 2
    assert [d.final for d in one.days] == [2, 8]
