"""The pipeline's over-budget behaviours with a priced model on a real HTTP server, and the
proof that concurrent jobs never overshoot a cap (make test-slow)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.budget import (
    Usage,
    cost_micros,
    estimate,
    from_micros,
    to_micros,
)
from ragline.config import (
    Price,
    RaglineConfig,
    parse_config,
)
from ragline.errors import OverBudget
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, JobStatus, UsageRecord
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.runner import Pipeline
from tests.support.budgets import (
    FAKE_PRICE,
    FEATURE,
    LEAVE,
    REPORTED_IN,
    REPORTED_OUT,
    budget_counters,
    budget_status,
    ledger_rows,
    submit_job,
)
from tests.support.environment import REPO
from tests.support.fake_model import FakeModelServer
from tests.support.pipelines import pipeline_for
from tests.support.reviews import escalations
from tests.support.tenants import make_tenant

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


def _review_reasons(jobs: JobRepository) -> dict[str, str]:
    return escalations(jobs.engine)


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
    job = submit_job(pipeline.jobs, principal.account_id)

    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED

    stored = pipeline.jobs.get(job.id)
    assert stored.model_id == "fake-1"
    assert stored.reservation is None
    assert len(fake_model.behaviour.requests) == 1
    [record] = ledger_rows(engine)
    assert (record.job_id, record.account_id, record.feature, record.model_id) == (
        job.id,
        principal.account_id,
        FEATURE,
        "fake-1",
    )
    assert (record.input_tokens, record.output_tokens) == (REPORTED_IN, REPORTED_OUT)
    assert record.cost_micros == cost_micros(FAKE_PRICE, REPORTED_IN, REPORTED_OUT) == 72_000
    assert budget_status(pipeline.budgets, "acme", FEATURE) == {
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
    return submit_job(pipeline.jobs, principal.account_id)


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
    assert ledger_rows(engine) == []
    assert all(reserved == 0 for _, reserved in budget_counters(engine).values())
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
    assert ledger_rows(engine) == []


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
    job = submit_job(pipeline.jobs, principal.account_id)

    assert pipeline.answer_job(job.id) == JobStatus.REJECTED

    stored = pipeline.jobs.get(job.id)
    assert stored.reason == "over_budget"
    assert stored.error is not None and "per-request cap is 100" in stored.error
    assert fake_model.behaviour.requests == []
    assert budget_counters(engine) == {}  # refused before any reservation


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
    assert [(r.model_id, r.cost_micros) for r in ledger_rows(engine)] == [("extractive", 0)]
    assert set(budget_status(pipeline.budgets, "acme", FEATURE).values()) == {(0, 0)}


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
    job = submit_job(pipeline.jobs, principal.account_id)

    assert pipeline.answer_job(job.id) == JobStatus.ESCALATED

    stored = pipeline.jobs.get(job.id)
    assert stored.reason == "model_error"
    assert stored.reservation is None
    assert len(fake_model.behaviour.requests) == 1
    counters = budget_counters(engine)
    assert len(counters) == 4  # the reservation was made ...
    assert set(counters.values()) == {(0, 0)}  # ... and given back in full
    assert ledger_rows(engine) == []


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
    job = submit_job(pipeline.jobs, principal.account_id)
    # Attempt 1 reserves and dies before settling: its lease is already over.
    pipeline.budgets.reserve(job.id, "acme", FEATURE, 500_000)
    assert pipeline.jobs.claim(job.id, timedelta(seconds=-1)) is not None
    assert set(budget_counters(engine).values()) == {(0, 500_000)}

    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED

    stored = pipeline.jobs.get(job.id)
    assert stored.attempts == 2
    assert stored.reservation is None
    assert set(budget_counters(engine).values()) == {(72_000, 0)}
    assert [r.cost_micros for r in ledger_rows(engine)] == [72_000]


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
    job = submit_job(pipeline.jobs, principal.account_id)
    # Attempt 1 reserves, then outlives its lease inside the model call (a stall, a GC pause).
    slow = pipeline.budgets.reserve(job.id, "acme", FEATURE, 500_000)
    assert pipeline.jobs.claim(job.id, timedelta(seconds=-1)) is not None
    # Attempt 2 takes over: it releases attempt 1's reservation and answers.
    assert pipeline.answer_job(job.id) == JobStatus.ANSWERED
    # Attempt 1's call returns; it settles the reservation it holds, as Pipeline._call does.
    pipeline.budgets.settle(
        slow,
        Usage(
            job_id=job.id,
            account_id=principal.account_id,
            feature=FEATURE,
            model_id="fake-1",
            input_tokens=REPORTED_IN,
            output_tokens=REPORTED_OUT,
            cost_micros=72_000,
        ),
    )

    reserved = {counter: r for counter, (_, r) in budget_counters(engine).items()}
    assert set(reserved.values()) == {0}, reserved
    # Both calls happened, so both are spent and in the ledger: honest, not double-freed.
    assert {spent for spent, _ in budget_counters(engine).values()} == {144_000}
    assert [r.cost_micros for r in ledger_rows(engine)] == [72_000, 72_000]
    # A negative reservation raises the cap: this would overshoot it by 444,000 micros.
    other = submit_job(pipeline.jobs, principal.account_id)
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
        # Declared: each has a cap of its own (undeclared names would share one).
        features={feature: {"daily": FEATURE_DAILY} for feature in PROOF_FEATURES},
        price=price,
        max_tokens=16,
        top_k=1,
    )
    pipeline = pipeline_for(
        engine, config, _fake(config, fake_model, http_client), handbook_store, embedder
    )
    principal, _ = make_tenant(engine, "acme")
    ids = [
        submit_job(pipeline.jobs, principal.account_id, feature=PROOF_FEATURES[i % 3 == 0]).id
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
