"""The FastAPI application factory. Everything it uses is passed in, built once per process
by the `serve` command (or by a test)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Protocol

import structlog
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from api import problems
from api.schemas import Health, JobAccepted, JobView, ReviewList, ReviewView
from ragline.admission import Admission
from ragline.jobs import JobRepository
from ragline.pipeline.validate import JobRequest

log = structlog.get_logger("ragline.api")

HealthCheck = Callable[[], str]


class Background(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class ApiServices:
    admission: Admission
    jobs: JobRepository
    mode: str
    health_checks: dict[str, HealthCheck]
    background: list[Background] = field(default_factory=list)


def create_app(services: ApiServices) -> FastAPI:
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
    )
    problems.install(app)

    @app.middleware("http")
    async def bind_request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if 0 < len(incoming) <= 64 else uuid.uuid4().hex
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
            log.info(
                "request_finished",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        response.headers["X-Request-ID"] = request_id
        return response

    @app.post("/v1/jobs", status_code=202, response_model=JobAccepted)
    def submit_job(
        body: JobRequest,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
        ] = None,
    ) -> JobAccepted:
        job, created = services.admission.submit(
            body,
            idempotency_key=idempotency_key,
            request_id=_request_id(request),
        )
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return JobAccepted(
            id=job.id,
            status=job.status,
            created_at=JobView.of(job).created_at,
            links={"self": f"/v1/jobs/{job.id}"},
        )

    @app.get("/v1/jobs/{job_id}", response_model=JobView)
    def get_job(job_id: str) -> JobView:
        return JobView.of(services.jobs.get(job_id))

    @app.get("/v1/reviews", response_model=ReviewList)
    def list_reviews(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> ReviewList:
        rows = services.jobs.review_queue(limit=limit, offset=offset)
        return ReviewList(
            items=[ReviewView.of(item, job) for item, job in rows], limit=limit, offset=offset
        )

    @app.get("/v1/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> JSONResponse:
        components: dict[str, dict[str, str]] = {}
        for name, check in services.health_checks.items():
            try:
                components[name] = {"status": "ok", "detail": check()}
            except Exception as error:
                components[name] = {"status": "down", "detail": _describe(error)}
        healthy = all(c["status"] == "ok" for c in components.values())
        body = Health(status="ok" if healthy else "down", mode=services.mode, components=components)
        return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)

    return app


def _request_id(request: Request) -> str | None:
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return str(bound) if bound else request.headers.get("x-request-id")


def _describe(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:200]
