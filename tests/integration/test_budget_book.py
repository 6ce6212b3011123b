"""The budget book on SQLite and PostgreSQL: limit resolution (config, then admin
overrides), per-request caps, reservations and settlement, and the usage report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ragline.budget import (
    BudgetBook,
    BudgetRef,
    Estimate,
    Reservation,
    Usage,
)
from ragline.config import (
    Budgets,
    PerRequest,
    Windows,
)
from ragline.errors import InvalidInput, OverBudget
from ragline.jobs import JobRepository
from ragline.models import BudgetLimit, UsageRecord
from tests.support.budgets import FEATURE, budget_counters, budget_status, ledger_rows, submit_job
from tests.support.tenants import make_tenant

# -- limits -------------------------------------------------------------------------------------

LIMITS = Budgets(
    accounts={"acme": Windows(daily=1.0, monthly=10.0), "default": Windows(daily=0.5)},
    features={"support": Windows(daily=0.2), "default": Windows(monthly=3.0)},
)
NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


def _ref(scope: str, subject: str, window: str) -> BudgetRef:
    period = "2026-11-27" if window == "daily" else "2026-11"
    return BudgetRef(scope, subject, window, period)  # type: ignore[arg-type]


def test_limits_come_from_config_by_name_then_default(engine: Engine) -> None:
    book = BudgetBook(engine, LIMITS)
    assert book.limit(_ref("account", "acme", "daily")) == 1_000_000
    assert book.limit(_ref("account", "acme", "monthly")) == 10_000_000
    # An unlisted account gets "default"; its null window means no cap.
    assert book.limit(_ref("account", "globex", "daily")) == 500_000
    assert book.limit(_ref("account", "globex", "monthly")) is None
    # Feature limits are configured by feature name and apply per account.
    assert book.limit(_ref("feature", "acme/support", "daily")) == 200_000
    assert book.limit(_ref("feature", "globex/support", "daily")) == 200_000
    assert book.limit(_ref("feature", "acme/support", "monthly")) is None
    assert book.limit(_ref("feature", "acme/sales", "daily")) is None
    assert book.limit(_ref("feature", "acme/sales", "monthly")) == 3_000_000
    # No config at all: no cap.
    empty = BudgetBook(engine, Budgets())
    assert empty.limit(_ref("account", "acme", "daily")) is None
    assert empty.limit(_ref("feature", "acme/support", "monthly")) is None


def test_admin_override_beats_config_and_is_scoped(engine: Engine) -> None:
    book = BudgetBook(engine, LIMITS)
    acme_support = _ref("feature", "acme/support", "daily")
    globex_support = _ref("feature", "globex/support", "daily")

    book.set_limit("feature", "acme/support", "daily", 0.05, by="ops")
    assert book.limit(acme_support) == 50_000
    assert book.limit(globex_support) == 200_000  # another account's feature: untouched
    assert book.limit(_ref("feature", "acme/support", "monthly")) is None

    book.set_limit("feature", "acme/support", "daily", 0.07, by="root")  # update in place
    assert book.limit(acme_support) == 70_000
    with Session(engine) as session:
        row = session.get(BudgetLimit, "feature:acme/support:daily")
        assert row is not None and row.updated_by == "root" and row.limit_micros == 70_000

    book.set_limit("account", "globex", "monthly", 0.0, by="ops")  # a zero cap is a cap
    assert book.limit(_ref("account", "globex", "monthly")) == 0
    with engine.connect() as connection:  # the same answer inside a transaction
        assert book.limit(acme_support, connection) == 70_000

    book.set_limit("feature", "acme/support", "daily", None, by="ops")
    assert book.limit(acme_support) == 200_000  # back to the config
    book.set_limit("feature", "acme/support", "daily", None, by="ops")  # removing twice: no-op
    assert book.limit(acme_support) == 200_000
    with Session(engine) as session:
        assert session.get(BudgetLimit, "feature:acme/support:daily") is None


# -- per-request caps and precheck -------------------------------------------------------------


def test_check_request_enforces_per_request_caps(sqlite_engine: Engine) -> None:
    caps = PerRequest(max_tokens=1000, max_cost=0.01)
    book = BudgetBook(sqlite_engine, Budgets(per_request=caps))
    book.check_request(Estimate(500, 500, 10_000))  # exactly at both caps
    with pytest.raises(OverBudget, match="1001 tokens"):
        book.check_request(Estimate(501, 500, 0))
    with pytest.raises(OverBudget, match=r"per-request cap is 0\.01"):
        book.check_request(Estimate(1, 1, 10_001))
    uncapped = BudgetBook(sqlite_engine, Budgets())
    uncapped.check_request(Estimate(10**9, 10**9, 10**12))


def test_precheck_refuses_a_job_that_cannot_fit_now(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    job = submit_job(JobRepository(engine), principal.account_id)
    book = BudgetBook(engine, Budgets(accounts={"default": Windows(daily=0.001)}))
    book.precheck("acme", FEATURE, 1000)
    book.reserve(job.id, "acme", FEATURE, 600)
    book.precheck("acme", FEATURE, 400)
    with pytest.raises(OverBudget, match="daily account 'acme'"):
        book.precheck("acme", FEATURE, 401)


# -- reservations -------------------------------------------------------------------------------

WIDE = Budgets(
    accounts={"default": Windows(daily=1.0, monthly=10.0)},
    features={"default": Windows(daily=0.5, monthly=5.0)},
)


def test_reserve_settle_moves_the_counters_and_writes_one_ledger_row(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    jobs = JobRepository(engine)
    job = submit_job(jobs, principal.account_id)
    book = BudgetBook(engine, WIDE)

    reservation = book.reserve(job.id, "acme", FEATURE, 100_000)

    assert len(reservation.counter_ids) == 4
    assert reservation.cost_micros == 100_000
    assert Reservation.of(reservation.as_dict()) == reservation
    assert set(budget_status(book, "acme", FEATURE).values()) == {(0, 100_000)}
    assert jobs.get(job.id).reservation == reservation.as_dict()
    assert ledger_rows(engine) == []

    book.settle(
        reservation,
        Usage(
            job_id=job.id,
            account_id=principal.account_id,
            feature=FEATURE,
            model_id="fake-1",
            input_tokens=120,
            output_tokens=12,
            cost_micros=40_000,
        ),
    )

    assert set(budget_status(book, "acme", FEATURE).values()) == {(40_000, 0)}
    assert jobs.get(job.id).reservation is None
    [record] = ledger_rows(engine)
    assert (record.account_id, record.feature, record.job_id, record.model_id) == (
        principal.account_id,
        FEATURE,
        job.id,
        "fake-1",
    )
    assert (record.input_tokens, record.output_tokens, record.cost_micros) == (120, 12, 40_000)


def test_release_gives_the_reservation_back(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    jobs = JobRepository(engine)
    book = BudgetBook(engine, WIDE)
    first, second = submit_job(jobs, principal.account_id), submit_job(jobs, principal.account_id)
    book.settle(
        book.reserve(first.id, "acme", FEATURE, 30_000),
        Usage(
            job_id=first.id,
            account_id=principal.account_id,
            feature=FEATURE,
            model_id="fake-1",
            input_tokens=1,
            output_tokens=1,
            cost_micros=25_000,
        ),
    )

    reservation = book.reserve(second.id, "acme", FEATURE, 70_000)
    assert set(budget_status(book, "acme", FEATURE).values()) == {(25_000, 70_000)}
    book.release(reservation, second.id)

    assert set(budget_status(book, "acme", FEATURE).values()) == {(25_000, 0)}
    assert jobs.get(second.id).reservation is None
    assert len(ledger_rows(engine)) == 1


def test_a_reservation_that_does_not_fit_changes_nothing(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    jobs = JobRepository(engine)
    book = BudgetBook(engine, WIDE)
    # The feature's monthly counter sorts last: the three before it are updated first.
    book.set_limit("feature", f"acme/{FEATURE}", "monthly", 0.15, by="ops")
    first, second = submit_job(jobs, principal.account_id), submit_job(jobs, principal.account_id)
    book.reserve(first.id, "acme", FEATURE, 100_000)
    before = budget_counters(engine)
    assert set(before.values()) == {(0, 100_000)} and len(before) == 4

    with pytest.raises(OverBudget, match=f"monthly feature 'acme/{FEATURE}'"):
        book.reserve(second.id, "acme", FEATURE, 50_001)

    assert budget_counters(engine) == before  # all four, not only the one that refused
    assert jobs.get(second.id).reservation is None
    assert jobs.get(first.id).reservation is not None
    book.reserve(second.id, "acme", FEATURE, 50_000)  # exactly up to the cap fits
    assert set(budget_counters(engine).values()) == {(0, 150_000)}


def test_a_refused_first_reservation_leaves_no_counters(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    job = submit_job(JobRepository(engine), principal.account_id)
    book = BudgetBook(engine, WIDE)
    book.set_limit("feature", f"acme/{FEATURE}", "monthly", 0.0, by="ops")
    with pytest.raises(OverBudget):
        book.reserve(job.id, "acme", FEATURE, 1)
    assert budget_counters(engine) == {}


def test_zero_cost_reservations_pass_even_over_budget(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    jobs = JobRepository(engine)
    book = BudgetBook(engine, Budgets(accounts={"default": Windows(daily=0.01)}))
    first, second = submit_job(jobs, principal.account_id), submit_job(jobs, principal.account_id)
    # The provider reported more than the estimate: spent goes past the cap.
    book.settle(
        book.reserve(first.id, "acme", FEATURE, 9_000),
        Usage(
            job_id=first.id,
            account_id=principal.account_id,
            feature=FEATURE,
            model_id="fake-1",
            input_tokens=1,
            output_tokens=1,
            cost_micros=12_000,
        ),
    )
    with pytest.raises(OverBudget):
        book.reserve(second.id, "acme", FEATURE, 1)

    free = book.reserve(second.id, "acme", FEATURE, 0)

    assert free.cost_micros == 0
    assert jobs.get(second.id).reservation is None  # nothing held, nothing to give back
    assert budget_status(book, "acme", FEATURE)["account:daily"] == (12_000, 0)
    book.set_limit("account", "acme", "daily", 0.0, by="ops")
    book.reserve(second.id, "acme", None, 0)


# -- the usage report ---------------------------------------------------------------------------


def test_usage_groups_and_filters(engine: Engine) -> None:
    acme, _ = make_tenant(engine, "acme")
    globex, _ = make_tenant(engine, "globex")
    jobs = JobRepository(engine)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        # account, feature, model, in, out, cost, day offset
        (acme, "support", "m-big", 100, 10, 1_000, 0),
        (acme, "support", "m-small", 50, 5, 200, 1),
        (acme, "sales", "m-big", 10, 1, 300, 2),
        (globex, "support", "m-big", 7, 3, 4_000, 1),
        (globex, "", "extractive", 0, 0, 0, 2),
    ]
    with Session(engine) as session:
        for principal, feature, model, tokens_in, tokens_out, cost, offset in rows:
            job = submit_job(jobs, principal.account_id)
            session.add(
                UsageRecord(
                    account_id=principal.account_id,
                    feature=feature,
                    job_id=job.id,
                    model_id=model,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_micros=cost,
                    created_at=day + timedelta(days=offset),
                )
            )
        session.commit()
    book = BudgetBook(engine, Budgets())

    def summary(report: list[dict[str, Any]], key: str) -> dict[str, tuple[int, int, int, int]]:
        return {
            r[key]: (r["calls"], r["input_tokens"], r["output_tokens"], r["cost_micros"])
            for r in report
        }

    assert summary(book.usage("account"), "account") == {
        "acme": (3, 160, 16, 1_500),
        "globex": (2, 7, 3, 4_000),
    }
    assert summary(book.usage("feature"), "feature") == {
        "": (1, 0, 0, 0),
        "sales": (1, 10, 1, 300),
        "support": (3, 157, 18, 5_200),
    }
    assert summary(book.usage("model"), "model") == {
        "extractive": (1, 0, 0, 0),
        "m-big": (3, 117, 14, 5_300),
        "m-small": (1, 50, 5, 200),
    }
    assert [r["cost"] for r in book.usage("account")] == [0.0015, 0.004]
    assert summary(book.usage("model", account_id=acme.account_id), "model") == {
        "m-big": (2, 110, 11, 1_300),
        "m-small": (1, 50, 5, 200),
    }
    # start inclusive, end exclusive.
    window = book.usage("account", start=day + timedelta(days=1), end=day + timedelta(days=2))
    assert summary(window, "account") == {"acme": (1, 50, 5, 200), "globex": (1, 7, 3, 4_000)}
    assert summary(book.usage("feature", start=day + timedelta(days=2)), "feature") == {
        "": (1, 0, 0, 0),
        "sales": (1, 10, 1, 300),
    }
    assert summary(book.usage("account", end=day), "account") == {}
    assert book.usage("account", account_id="0" * 32) == []
    with pytest.raises(InvalidInput):
        book.usage("account", start=day, end=day)


# -- budgets that cannot be dodged ---------------------------------------------------------


def test_undeclared_features_share_one_budget_and_an_admin_cap_gives_one_its_own(
    engine: Engine,
) -> None:
    book = BudgetBook(
        engine,
        Budgets(features={"support": Windows(daily=0.2), "default": Windows(daily=0.3)}),
    )
    principal, _ = make_tenant(engine)
    jobs = JobRepository(engine)

    def reserve(feature: str, amount: int) -> Reservation:
        return book.reserve(submit_job(jobs, principal.account_id).id, "acme", feature, amount)

    reserve("invented-1", 200_000)
    with pytest.raises(OverBudget, match="feature 'acme/\\*'"):
        reserve("invented-2", 200_000)  # a new name is not a new budget: 0.4 > 0.3 shared
    reserve("support", 200_000)  # a declared feature has its own
    assert budget_status(book, "acme", "invented-3")["feature:daily"] == (0, 200_000)
    book.set_limit("feature", "acme/priority", "daily", 1.0, by="ops")
    reserve("priority", 500_000)  # an admin's cap declares it
    assert budget_status(book, "acme", "priority")["feature:daily"] == (0, 500_000)


def test_a_total_cap_holds_across_accounts(engine: Engine) -> None:
    book = BudgetBook(engine, Budgets(total=Windows(daily=0.5)))
    jobs = JobRepository(engine)
    acme, _ = make_tenant(engine, "acme")
    globex, _ = make_tenant(engine, "globex")
    book.reserve(submit_job(jobs, acme.account_id).id, "acme", None, 300_000)
    with pytest.raises(OverBudget, match="daily total"):
        book.reserve(submit_job(jobs, globex.account_id).id, "globex", None, 300_000)
    assert budget_status(book, "globex", None)["total:daily"] == (0, 300_000)
