"""The FastAPI application factory. Everything it uses is passed in, built once per process
by the `serve` command (or by a test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from api import problems
from api.limits import BodyLimit, JsonShape, NoNulInUrl
from api.request_log import RequestLog
from api.security_headers import SecurityHeaders
from ragline.admission import Admission
from ragline.bootstrap import Mode, Services
from ragline.knowledge.versions import IndexManager
from ragline.page_sessions import PageSessions
from ragline.ratelimit import LocalRateLimiter, RateLimiter

HealthCheck = Callable[[], str]


class Background(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class ApiServices:
    """What the HTTP layer serves: the process's services (ragline.bootstrap) and what only
    the API has: the admission it fronts and its rate limiter, sessions, health checks and
    the components that run beside the server (the workers, in embedded mode)."""

    core: Services
    admission: Admission
    limiter: RateLimiter
    failed_auth: LocalRateLimiter  # failed authentications per client address (api/auth.py)
    sessions: PageSessions  # the web pages' (api/session.py)
    health_checks: dict[str, HealthCheck]
    background: list[Background] = field(default_factory=list)
    index: IndexManager | None = None  # only where this process owns the store

    @property
    def mode(self) -> str:
        return "embedded" if self.core.mode is Mode.EMBEDDED else "deployed"


def create_app(services: ApiServices) -> FastAPI:
    from api.routes import (
        admin,
        audit,
        deliveries,
        health,
        index,
        index_page,
        jobs,
        metrics,
        ops_page,
        review_page,
        reviews,
        static_assets,
        usage,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for component in services.background:
            component.start()
        try:
            yield
        finally:
            for component in reversed(services.background):
                component.stop()

    app = FastAPI(
        title="ragline",
        version="0.1.0",
        summary="Submit questions as jobs; get cited answers or a human review.",
        lifespan=lifespan,
        docs_url="/docs" if services.core.settings.api_docs else None,
        redoc_url="/redoc" if services.core.settings.api_docs else None,
    )
    problems.install(app)
    # Before any route, inside RequestLog (registered later, so outer): a refusal still gets
    # its X-Request-ID and log line.
    app.add_middleware(JsonShape)  # inside BodyLimit: it reads the body BodyLimit bounds
    app.add_middleware(BodyLimit, max_bytes=services.core.config.api.max_body_bytes)
    app.add_middleware(NoNulInUrl)

    app.add_middleware(RequestLog)
    app.add_middleware(SecurityHeaders)  # outermost: every response, refusals included

    for module in (
        jobs,
        reviews,
        deliveries,
        usage,
        admin,
        audit,
        index,
        health,
        review_page,
        index_page,
        ops_page,
        static_assets,
        metrics,
    ):
        app.include_router(module.router(services))
    return app
