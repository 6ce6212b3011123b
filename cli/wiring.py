"""The HTTP layer's share of a process: the API's view of the bootstrapped services, its
health checks and, in embedded mode, the workers that run inside the server."""

from __future__ import annotations

from datetime import timedelta

import dramatiq

from api.app import ApiServices, Background, HealthCheck
from ragline.bootstrap import Mode, Services
from ragline.db import ping as ping_database
from ragline.errors import IndexNotReady
from ragline.knowledge.store import KnowledgeStore
from ragline.page_sessions import PageSessions
from ragline.ratelimit import LocalRateLimiter
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


def http_services(
    services: Services, broker: dramatiq.Broker, *, worker_threads: int = 4
) -> ApiServices:
    """services: bootstrapped in Mode.SERVER or Mode.EMBEDDED with this broker's send. In
    embedded mode the API also answers jobs and builds indexes (`--via-server`)."""
    if services.admission is None or services.limiter is None:
        raise ValueError(f"{services.mode} mode admits no jobs: bootstrap SERVER or EMBEDDED")
    engine = services.engine

    def database() -> str:
        ping_database(engine)
        return engine.dialect.name

    checks: dict[str, HealthCheck] = {
        "database": database,
        "broker": lambda: brokers.ping(broker),
    }
    if services.store is not None:
        checks["store"] = store_check(
            services.store, services.config.assistant_pipeline.retrieval.source
        )
    else:  # deployed on Qdrant local mode: the folder belongs to the worker process
        checks["store"] = lambda: "local mode: opened by the worker process, not checked here"
    background: list[Background] = []
    if services.mode is Mode.EMBEDDED:
        background.append(AnsweringWorkers(services, broker, threads=worker_threads))
    return ApiServices(
        core=services,
        admission=services.admission,
        limiter=services.limiter,
        failed_auth=LocalRateLimiter(services.config.api.failed_auth),
        sessions=PageSessions(
            engine,
            idle=timedelta(minutes=services.config.review.session_idle_minutes),
            lifetime=timedelta(hours=services.config.review.session_hours),
        ),
        health_checks=checks,
        background=background,
        index=services.index,
    )
