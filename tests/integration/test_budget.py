"""Cost controls on real components: the cost arithmetic, limit resolution, reservations
and the usage ledger on SQLite and PostgreSQL, the pipeline's over-budget behaviours with a
priced model on a real HTTP server, and the proof that concurrent jobs never overshoot a cap."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.budget import (
    FRAMING_TOKENS_PER_MESSAGE,
    BudgetBook,
    BudgetRef,
    Estimate,
    Reservation,
    budgets_for,
    cost_micros,
    estimate,
    from_micros,
    to_micros,
)
from ragline.config import (
    Budgets,
    ModelSpec,
    PerRequest,
    Price,
    RaglineConfig,
    Windows,
    parse_config,
)
from ragline.errors import InvalidInput, OverBudget
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import BudgetCounter, BudgetLimit, Job, JobStatus, UsageRecord
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from tests.conftest import REPO, make_tenant
from tests.support.fake_model import FakeModelServer
from tests.support.pipelines import pipeline_for
from tests.support.reviews import escalations

LEAVE = "How many days of annual leave do employees get?"
FEATURE = "hr-bot"
DEADLINE = timedelta(minutes=10)
# The fake model server reports this usage for every call.
REPORTED_IN, REPORTED_OUT = 120, 12
FAKE_PRICE = Price(input_per_1k=0.5, output_per_1k=1.0)


# -- helpers ----------------------------------------------------------------------------------


def _config(
    *,
    on_exceeded: str = "reject",
    accounts: dict[str, Any] | None = None,
    features: dict[str, Any] | None = None,
    per_request: dict[str, Any] | None = None,
    price: Price = FAKE_PRICE,
    max_tokens: int = 64,
    top_k: int = 2,
) -> RaglineConfig:
    """The repo's ragline.yaml with a priced `fake` model and the given budgets."""
    data = yaml.safe_load((REPO / "ragline.yaml").read_text(encoding="utf-8"))
    data["models"]["fake"] = {
        "provider": "openai_compatible",
        "model_id": "fake-1",
        "price": price.model_dump(),
        "max_tokens": max_tokens,
    }
    data["assistant_pipeline"]["generation"]["model"] = "fake"
    data["assistant_pipeline"]["retrieval"]["top_k"] = top_k
    data["budgets"] = {
        "on_exceeded": on_exceeded,
        "downgrade_model": "extractive",
        "per_request": per_request or {},
        "accounts": accounts if accounts is not None else {"default": {"daily": 20.0}},
        "features": features or {},
    }
    return parse_config(data)


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    client = httpx.Client(limits=httpx.Limits(max_connections=64))
    yield client
    client.close()


def _fake(config: RaglineConfig, fake_model: FakeModelServer, client: httpx.Client) -> ChosenModel:
    spec = config.models["fake"]
    return ChosenModel(
        "fake", spec, OpenAICompatibleGenerator(spec, fake_model.base_url, client=client)
    )


def _submit(
    jobs: JobRepository, account_id: str, question: str = LEAVE, feature: str | None = FEATURE
) -> Job:
    job, created = jobs.submit(
        JobRequest(question=question, user_id="u-1", feature=feature),
        account_id=account_id,
        deadline=DEADLINE,
    )
    assert created
    return job


def _counters(engine: Engine) -> dict[str, tuple[int, int]]:
    """Every budget counter: id -> (spent, reserved)."""
    with Session(engine) as session:
        return {
            c.id: (c.spent_micros, c.reserved_micros) for c in session.exec(select(BudgetCounter))
        }


def _ledger(engine: Engine) -> list[UsageRecord]:
    with Session(engine) as session:
        return list(session.exec(select(UsageRecord).order_by(col(UsageRecord.id))))


def _by_scope(book: BudgetBook, account: str, feature: str | None) -> dict[str, tuple[int, int]]:
    """(spent, reserved) of each budget that applies, keyed `scope:window`."""
    return {
        f"{s.ref.scope}:{s.ref.window}": (s.spent_micros, s.reserved_micros)
        for s in book.status(account, feature)
    }


def _review_reasons(jobs: JobRepository) -> dict[str, str]:
    return escalations(jobs.engine)


# -- cost arithmetic ----------------------------------------------------------------------------


def test_to_and_from_micros() -> None:
    assert to_micros(0) == 0
    assert to_micros(1) == 1_000_000
    assert to_micros(0.05) == 50_000  # 0.05 * 1e6 is 50000.000000000007 in floats
    assert to_micros(0.1 + 0.2) == 300_000  # 0.30000000000000004
    assert to_micros(0.0000001) == 1  # a tenth of a micro rounds up, never down to free
    assert to_micros(0.0000011) == 2
    assert from_micros(1_500_000) == 1.5
    assert from_micros(1) == 0.000001
    for micros in (0, 1, 7, 999_999, 50_000, 123_456_789):
        assert to_micros(from_micros(micros)) == micros


def test_cost_micros_rounds_up_to_the_micro() -> None:
    price = Price(input_per_1k=0.0002, output_per_1k=0.0006)
    assert cost_micros(price, 0, 0) == 0
    assert cost_micros(price, 1, 0) == 1  # 0.2 micro
    assert cost_micros(price, 0, 1) == 1  # 0.6 micro
    assert cost_micros(price, 120, 12) == 32  # 24 + 7.2 = 31.2 micros
    assert cost_micros(price, 5000, 0) == 1000  # exact: no rounding up
    assert cost_micros(Price(input_per_1k=1.0, output_per_1k=2.0), 1000, 500) == 2_000_000
    assert cost_micros(FAKE_PRICE, REPORTED_IN, REPORTED_OUT) == 72_000
    assert cost_micros(Price(), 10_000, 10_000) == 0


def test_estimate_is_the_worst_case() -> None:
    spec = ModelSpec(provider="openai_compatible", model_id="m", price=FAKE_PRICE, max_tokens=100)
    messages = ["héllo", "abc", ""]  # é is 2 bytes in UTF-8
    result = estimate(spec, messages)
    assert FRAMING_TOKENS_PER_MESSAGE == 8
    assert result.input_tokens == 6 + 3 + 0 + 3 * 8
    assert result.output_tokens == 100
    assert result.cost_micros == cost_micros(FAKE_PRICE, 33, 100) == 116_500
    # Extractive uses no model tokens, whatever its price says.
    extractive = ModelSpec(provider="extractive", price=FAKE_PRICE)
    assert estimate(extractive, messages) == Estimate(0, 0, 0)


# -- limits -------------------------------------------------------------------------------------

LIMITS = Budgets(
    accounts={"acme": Windows(daily=1.0, monthly=10.0), "default": Windows(daily=0.5)},
    features={"support": Windows(daily=0.2), "default": Windows(monthly=3.0)},
)
NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


def _ref(scope: str, subject: str, window: str) -> BudgetRef:
    period = "2026-11-27" if window == "daily" else "2026-11"
    return BudgetRef(scope, subject, window, period)  # type: ignore[arg-type]


def test_budgets_for_lists_account_and_feature_windows_in_one_order() -> None:
    refs = budgets_for("acme", "support", NOW)
    assert [r.counter_id for r in refs] == [
        "account:acme:daily:2026-11-27",
        "account:acme:monthly:2026-11",
        "feature:acme/support:daily:2026-11-27",
        "feature:acme/support:monthly:2026-11",
    ]
    assert [r.counter_id for r in budgets_for("acme", None, NOW)] == [
        "account:acme:daily:2026-11-27",
        "account:acme:monthly:2026-11",
    ]


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
    job = _submit(JobRepository(engine), principal.account_id)
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
    job = _submit(jobs, principal.account_id)
    book = BudgetBook(engine, WIDE)

    reservation = book.reserve(job.id, "acme", FEATURE, 100_000)

    assert len(reservation.counter_ids) == 4
    assert reservation.cost_micros == 100_000
    assert Reservation.of(reservation.as_dict()) == reservation
    assert set(_by_scope(book, "acme", FEATURE).values()) == {(0, 100_000)}
    assert jobs.get(job.id).reservation == reservation.as_dict()
    assert _ledger(engine) == []

    book.settle(
        reservation,
        job_id=job.id,
        account_id=principal.account_id,
        feature=FEATURE,
        model_id="fake-1",
        input_tokens=120,
        output_tokens=12,
        actual_micros=40_000,
    )

    assert set(_by_scope(book, "acme", FEATURE).values()) == {(40_000, 0)}
    assert jobs.get(job.id).reservation is None
    [record] = _ledger(engine)
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
    first, second = _submit(jobs, principal.account_id), _submit(jobs, principal.account_id)
    book.settle(
        book.reserve(first.id, "acme", FEATURE, 30_000),
        job_id=first.id,
        account_id=principal.account_id,
        feature=FEATURE,
        model_id="fake-1",
        input_tokens=1,
        output_tokens=1,
        actual_micros=25_000,
    )

    reservation = book.reserve(second.id, "acme", FEATURE, 70_000)
    assert set(_by_scope(book, "acme", FEATURE).values()) == {(25_000, 70_000)}
    book.release(reservation, second.id)

    assert set(_by_scope(book, "acme", FEATURE).values()) == {(25_000, 0)}
    assert jobs.get(second.id).reservation is None
    assert len(_ledger(engine)) == 1


def test_a_reservation_that_does_not_fit_changes_nothing(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    jobs = JobRepository(engine)
    book = BudgetBook(engine, WIDE)
    # The feature's monthly counter sorts last: the three before it are updated first.
    book.set_limit("feature", f"acme/{FEATURE}", "monthly", 0.15, by="ops")
    first, second = _submit(jobs, principal.account_id), _submit(jobs, principal.account_id)
    book.reserve(first.id, "acme", FEATURE, 100_000)
    before = _counters(engine)
    assert set(before.values()) == {(0, 100_000)} and len(before) == 4

    with pytest.raises(OverBudget, match=f"monthly feature 'acme/{FEATURE}'"):
        book.reserve(second.id, "acme", FEATURE, 50_001)

    assert _counters(engine) == before  # all four, not only the one that refused
    assert jobs.get(second.id).reservation is None
    assert jobs.get(first.id).reservation is not None
    book.reserve(second.id, "acme", FEATURE, 50_000)  # exactly up to the cap fits
    assert set(_counters(engine).values()) == {(0, 150_000)}


def test_a_refused_first_reservation_leaves_no_counters(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    job = _submit(JobRepository(engine), principal.account_id)
    book = BudgetBook(engine, WIDE)
    book.set_limit("feature", f"acme/{FEATURE}", "monthly", 0.0, by="ops")
    with pytest.raises(OverBudget):
        book.reserve(job.id, "acme", FEATURE, 1)
    assert _counters(engine) == {}


def test_zero_cost_reservations_pass_even_over_budget(engine: Engine) -> None:
    principal, _ = make_tenant(engine, "acme")
    jobs = JobRepository(engine)
    book = BudgetBook(engine, Budgets(accounts={"default": Windows(daily=0.01)}))
    first, second = _submit(jobs, principal.account_id), _submit(jobs, principal.account_id)
    # The provider reported more than the estimate: spent goes past the cap.
    book.settle(
        book.reserve(first.id, "acme", FEATURE, 9_000),
        job_id=first.id,
        account_id=principal.account_id,
        feature=FEATURE,
        model_id="fake-1",
        input_tokens=1,
        output_tokens=1,
        actual_micros=12_000,
    )
    with pytest.raises(OverBudget):
        book.reserve(second.id, "acme", FEATURE, 1)

    free = book.reserve(second.id, "acme", FEATURE, 0)

    assert free.cost_micros == 0
    assert jobs.get(second.id).reservation == free.as_dict()
    assert _by_scope(book, "acme", FEATURE)["account:daily"] == (12_000, 0)
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
            job = _submit(jobs, principal.account_id)
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


# -- the pipeline with a priced model ------------------------------------------------------------


def test_answered_job_settles_its_reported_usage(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(features={"default": {"monthly": 100.0}})
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    job = _submit(pipeline.jobs, principal.account_id)

    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED

    stored = pipeline.jobs.get(job.id)
    assert stored.model_id == "fake-1"
    assert stored.reservation is None
    assert len(fake_model.behaviour.requests) == 1
    [record] = _ledger(engine)
    assert (record.job_id, record.account_id, record.feature, record.model_id) == (
        job.id,
        principal.account_id,
        FEATURE,
        "fake-1",
    )
    assert (record.input_tokens, record.output_tokens) == (REPORTED_IN, REPORTED_OUT)
    assert record.cost_micros == cost_micros(FAKE_PRICE, REPORTED_IN, REPORTED_OUT) == 72_000
    assert _by_scope(pipeline.budgets, "acme", FEATURE) == {
        "account:daily": (72_000, 0),
        "account:monthly": (72_000, 0),
        "feature:daily": (72_000, 0),
        "feature:monthly": (72_000, 0),
    }
    [report] = pipeline.budgets.usage("model")
    assert (report["model"], report["calls"], report["cost_micros"]) == ("fake-1", 1, 72_000)


def _exhausted(engine: Engine, pipeline: Pipeline) -> Job:
    """A job of account acme, whose daily cap is below one call's worst case."""
    principal, _ = make_tenant(engine, "acme")
    pipeline.budgets.set_limit("account", "acme", "daily", 0.01, by="ops")
    return _submit(pipeline.jobs, principal.account_id)


def test_over_budget_with_reject_rejects_without_calling_the_model(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(on_exceeded="reject")
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    job = _exhausted(engine, pipeline)

    assert pipeline.answer_job(job.id) == JobStatus.REJECTED

    stored = pipeline.jobs.get(job.id)
    assert (stored.status, stored.reason) == (JobStatus.REJECTED, "over_budget")
    assert stored.error is not None and "daily account 'acme'" in stored.error
    assert stored.answer is None
    assert stored.reservation is None
    assert fake_model.behaviour.requests == []
    assert _ledger(engine) == []
    assert all(reserved == 0 for _, reserved in _counters(engine).values())
    assert job.id not in _review_reasons(pipeline.jobs)


def test_over_budget_with_route_to_human_escalates(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(on_exceeded="route_to_human")
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    job = _exhausted(engine, pipeline)

    assert pipeline.answer_job(job.id) == JobStatus.ESCALATED

    stored = pipeline.jobs.get(job.id)
    assert (stored.status, stored.reason) == (JobStatus.ESCALATED, "over_budget")
    assert stored.answer is None
    assert stored.passages  # the reviewer sees what was retrieved
    assert _review_reasons(pipeline.jobs) == {job.id: "over_budget"}
    assert fake_model.behaviour.requests == []
    assert _ledger(engine) == []


def test_per_request_cap_also_rejects(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(per_request={"max_tokens": 100})  # the prompt alone is larger
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    job = _submit(pipeline.jobs, principal.account_id)

    assert pipeline.answer_job(job.id) == JobStatus.REJECTED

    stored = pipeline.jobs.get(job.id)
    assert stored.reason == "over_budget"
    assert stored.error is not None and "per-request cap is 100" in stored.error
    assert fake_model.behaviour.requests == []
    assert _counters(engine) == {}  # refused before any reservation


def test_over_budget_with_downgrade_answers_with_the_cheaper_model(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(on_exceeded="downgrade")
    extractive = ChosenModel(
        "extractive", config.models["extractive"], ExtractiveGenerator(embedder)
    )
    pipeline = pipeline_for(
        engine,
        config,
        _fake(config, fake_model, http_client),
        handbook_store,
        embedder,
        downgrade=extractive,
    )
    job = _exhausted(engine, pipeline)

    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED

    stored = pipeline.jobs.get(job.id)
    assert stored.model_id == "extractive"
    assert stored.answer is not None and "25 days" in stored.answer
    assert stored.error is not None and "downgraded to extractive" in stored.error
    assert stored.reservation is None
    assert fake_model.behaviour.requests == []
    assert [(r.model_id, r.cost_micros) for r in _ledger(engine)] == [("extractive", 0)]
    assert set(_by_scope(pipeline.budgets, "acme", FEATURE).values()) == {(0, 0)}


def test_model_error_releases_the_reservation(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    fake_model.behaviour.mode = "error"
    config = _config(features={"default": {"daily": 50.0}})
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    job = _submit(pipeline.jobs, principal.account_id)

    assert pipeline.answer_job(job.id) == JobStatus.ESCALATED

    stored = pipeline.jobs.get(job.id)
    assert stored.reason == "model_error"
    assert stored.reservation is None
    assert len(fake_model.behaviour.requests) == 1
    counters = _counters(engine)
    assert len(counters) == 4  # the reservation was made ...
    assert set(counters.values()) == {(0, 0)}  # ... and given back in full
    assert _ledger(engine) == []


def test_a_dead_attempts_reservation_is_released(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(features={"default": {"daily": 50.0}})
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    job = _submit(pipeline.jobs, principal.account_id)
    # Attempt 1 reserves and dies before settling: its lease is already over.
    pipeline.budgets.reserve(job.id, "acme", FEATURE, 500_000)
    assert pipeline.jobs.claim(job.id, timedelta(seconds=-1)) is not None
    assert set(_counters(engine).values()) == {(0, 500_000)}

    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED

    stored = pipeline.jobs.get(job.id)
    assert stored.attempts == 2
    assert stored.reservation is None
    assert set(_counters(engine).values()) == {(72_000, 0)}
    assert [r.cost_micros for r in _ledger(engine)] == [72_000]


def test_a_slow_attempt_settling_after_its_lease_does_not_free_budget_twice(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    config = _config(accounts={"default": {"daily": 1.0}})
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    job = _submit(pipeline.jobs, principal.account_id)
    # Attempt 1 reserves, then outlives its lease inside the model call (a stall, a GC pause).
    slow = pipeline.budgets.reserve(job.id, "acme", FEATURE, 500_000)
    assert pipeline.jobs.claim(job.id, timedelta(seconds=-1)) is not None
    # Attempt 2 takes over: it releases attempt 1's reservation and answers.
    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED
    # Attempt 1's call returns; it settles the reservation it holds, as Pipeline._call does.
    pipeline.budgets.settle(
        slow,
        job_id=job.id,
        account_id=principal.account_id,
        feature=FEATURE,
        model_id="fake-1",
        input_tokens=REPORTED_IN,
        output_tokens=REPORTED_OUT,
        actual_micros=72_000,
    )

    reserved = {counter: r for counter, (_, r) in _counters(engine).items()}
    assert set(reserved.values()) == {0}, reserved
    # Both calls happened, so both are spent and in the ledger: honest, not double-freed.
    assert {spent for spent, _ in _counters(engine).values()} == {144_000}
    assert [r.cost_micros for r in _ledger(engine)] == [72_000, 72_000]
    # A negative reservation raises the cap: this would overshoot it by 444,000 micros.
    other = _submit(pipeline.jobs, principal.account_id)
    with pytest.raises(OverBudget):
        pipeline.budgets.reserve(other.id, "acme", FEATURE, 1_300_000)


# -- the proof: concurrent jobs never overshoot a cap ---------------------------------------------

PROOF_JOBS = 500
PROOF_THREADS = 32
ACCOUNT_DAILY = 0.05
FEATURE_DAILY = 0.03
PROOF_FEATURES = ("support", "sales")


@pytest.mark.slow  # 500 jobs on 32 threads per backend: `make test-slow`
def test_concurrent_jobs_never_overshoot_the_caps(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    http_client: httpx.Client,
) -> None:
    # Output tokens dominate the price: the worst case (max_tokens 16) is ~1/50 of the
    # account cap and a call's actual cost (12 tokens) most of it, so spend, not only
    # reservations, exhausts the caps. Two jobs in three are "support", whose 0.03 feature
    # cap runs out first; "sales" then fills the account's 0.05.
    price = Price(input_per_1k=0.0001, output_per_1k=0.05)
    config = _config(
        on_exceeded="reject",
        accounts={"default": {"daily": ACCOUNT_DAILY}},
        features={"default": {"daily": FEATURE_DAILY}},
        price=price,
        max_tokens=16,
        top_k=1,
    )
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    ids = [
        _submit(pipeline.jobs, principal.account_id, feature=PROOF_FEATURES[i % 3 == 0]).id
        for i in range(PROOF_JOBS)
    ]
    retrieval = pipeline.retriever.retrieve(LEAVE, config.assistant_pipeline.retrieval.source, 1)
    rendered = pipeline.prompt.render(LEAVE, retrieval.passages)
    worst = estimate(config.models["fake"], [rendered.system, rendered.user]).cost_micros
    actual = cost_micros(price, REPORTED_IN, REPORTED_OUT)
    cap = to_micros(ACCOUNT_DAILY)
    assert cap / 80 < worst < cap / 30, worst  # the premise: each job reserves ~1/50 of it
    assert PROOF_JOBS * actual > 2 * cap  # ... and all of them could spend twice the cap

    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(job_id: str) -> JobStatus | None:
        try:
            return pipeline.answer_job(job_id)
        except BaseException as error:
            with lock:
                errors.append(error)
            raise

    with ThreadPoolExecutor(max_workers=PROOF_THREADS) as pool:
        results = list(pool.map(run, ids))

    assert errors == []
    with Session(engine) as session:
        jobs = {j.id: j for j in session.exec(select(Job).where(col(Job.id).in_(ids)))}
        ledger_total = session.exec(select(func.sum(UsageRecord.cost_micros))).one() or 0
        ledger_by_feature = dict(
            session.exec(
                select(UsageRecord.feature, func.sum(UsageRecord.cost_micros)).group_by(
                    col(UsageRecord.feature)
                )
            ).all()
        )
        ledger_rows = session.exec(select(func.count()).select_from(UsageRecord)).one()
    outcomes = Counter((j.status, j.reason) for j in jobs.values())
    refused_by = Counter(
        (j.error or "").split(" budget")[0].removeprefix("the ")
        for j in jobs.values()
        if j.status == JobStatus.REJECTED
    )
    answered = outcomes[(JobStatus.ANSWERED, None)]
    rejected = outcomes[(JobStatus.REJECTED, "over_budget")]
    counters = {
        f"{s.ref.scope}:{s.ref.subject}:{s.ref.window}": s
        for feature in PROOF_FEATURES
        for s in pipeline.budgets.status("acme", feature)
    }
    account_spent = counters["account:acme:daily"].spent_micros
    print(
        f"\n[{engine.dialect.name}] {PROOF_JOBS} jobs on {PROOF_THREADS} threads: "
        f"answered {answered}, rejected over_budget {rejected}; "
        f"spent {from_micros(account_spent):.6f} of the account cap {ACCOUNT_DAILY} "
        f"(ledger {from_micros(int(ledger_total)):.6f}); per feature "
        + ", ".join(
            f"{f} {from_micros(int(ledger_by_feature.get(f, 0))):.6f}/{FEATURE_DAILY}"
            for f in PROOF_FEATURES
        )
        + f"; worst case {from_micros(worst):.6f}, actual {from_micros(actual):.6f} per job"
        + f"; refused by {dict(refused_by)}"
    )

    # Every job reached a final state: answered, or rejected because of the budget.
    assert len(jobs) == PROOF_JOBS
    assert answered + rejected == PROOF_JOBS, outcomes
    assert all(r in (JobStatus.ANSWERED, JobStatus.REJECTED) for r in results)
    assert all(j.reservation is None for j in jobs.values())
    # The caps bit, and were never overshot, by the ledger or by the counters.
    assert 0 < answered < PROOF_JOBS
    assert ledger_rows == answered == len(fake_model.behaviour.requests)
    assert ledger_total == answered * actual
    assert ledger_total <= cap
    assert account_spent == ledger_total
    assert counters["account:acme:monthly"].spent_micros == ledger_total
    for feature in PROOF_FEATURES:
        daily = counters[f"feature:acme/{feature}:daily"]
        assert daily.limit_micros == to_micros(FEATURE_DAILY)
        assert daily.spent_micros == ledger_by_feature.get(feature, 0) <= daily.limit_micros
    assert all(s.reserved_micros == 0 for s in counters.values())
    assert all(
        s.limit_micros is None or s.spent_micros <= s.limit_micros for s in counters.values()
    )
