"""Wires the API's services for one process: embedded (workers inside) or deployed."""

from __future__ import annotations

import dramatiq
import redis

from api.app import ApiServices, Background, HealthCheck
from api.session import SessionSigner
from ragline.accounts import Accounts
from ragline.admission import Admission
from ragline.budget import BudgetBook
from ragline.db import ping as ping_database
from ragline.delivery import Deliverer
from ragline.errors import IndexNotReady
from ragline.knowledge.store import KnowledgeStore
from ragline.pipeline.runner import Pipeline
from ragline.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from ragline.review import ReviewQueue
from ragline.runtime import Core, build_guardrails, build_index_manager, effective_spec
from workers import broker as brokers
from workers.process import AnsweringWorkers


def store_check(store: KnowledgeStore, alias: str) -> HealthCheck:
    def check() -> str:
        store.ping()
        collection = store.resolve_alias(alias)
        if collection is None:
            raise IndexNotReady(f"no index version is promoted behind '{alias}'")
        return f"{alias} -> {collection}"

    return check


def build_services(
    core: Core,
    broker: dramatiq.Broker,
    *,
    store: KnowledgeStore | None = None,
    pipeline: Pipeline | None = None,
    worker_threads: int = 4,
) -> ApiServices:
    """With a pipeline, the process also answers jobs (embedded mode)."""

    def database() -> str:
        ping_database(core.engine)
        return core.engine.dialect.name

    checks: dict[str, HealthCheck] = {
        "database": database,
        "broker": lambda: brokers.ping(broker),
    }
    alias = core.config.assistant_pipeline.retrieval.source
    if store is not None:
        checks["store"] = store_check(store, alias)
    background: list[Background] = []
    if pipeline is not None:
        background.append(AnsweringWorkers(core, broker, pipeline, threads=worker_threads))
    budgets = BudgetBook(core.engine, core.config.budgets)
    generation_model = core.config.assistant_pipeline.generation.model
    limiter: RateLimiter = (
        RedisRateLimiter(redis.Redis.from_url(core.settings.redis_url), core.config.rate_limits)
        if core.settings.redis_url
        else LocalRateLimiter(core.config.rate_limits)
    )
    index = None
    if pipeline is not None and store is not None:
        # The process that owns the store (embedded mode) also builds into it, with the
        # embedder it already has: `ragline index … --via-server`.
        index = build_index_manager(core, store, pipeline.retriever.embedder)
    return ApiServices(
        index=index,
        admission=Admission(
            core.config,
            core.jobs,
            brokers.sender(broker),
            budgets,
            effective_spec(core, generation_model),
            # Admission only redacts; the embedded pipeline's layer does that as well.
            pipeline.guardrails if pipeline is not None else build_guardrails(core, None),
        ),
        jobs=core.jobs,
        accounts=Accounts(core.engine),
        budgets=budgets,
        limiter=limiter,
        mode="embedded" if pipeline is not None else "deployed",
        health_checks=checks,
        review=ReviewQueue(core.engine, core.config.review),
        deliveries=Deliverer(core.engine, core.config.deliveries),
        sessions=SessionSigner.for_settings(core.settings),
        max_body_bytes=core.config.api.max_body_bytes,
        background=background,
    )
