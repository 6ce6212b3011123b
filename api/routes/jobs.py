"""Submitting and reading jobs."""

from typing import TYPE_CHECKING, Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Request, Response

from api.deps import needs
from api.problems import AUTHENTICATED, WITH_BODY, responses
from api.schemas import JobAccepted, JobView, TraceSpan, TraceView, Versions
from ragline.accounts import Principal
from ragline.models import Role
from ragline.pipeline.validate import JobRequest
from ragline.tracing import job_trace

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(tags=["jobs"], responses=responses(*AUTHENTICATED))
    Caller = Annotated[Principal, Depends(needs(services))]  # admission checks the role
    Reader = Annotated[Principal, Depends(needs(services, Role.SUBMITTER, Role.REVIEWER))]

    @routes.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobAccepted,
        responses=responses(*WITH_BODY, 409),
    )
    def submit_job(
        body: JobRequest,
        caller: Caller,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
        ] = None,
    ) -> JobAccepted:
        job, created = services.admission.submit(
            caller, body, idempotency_key=idempotency_key, request_id=_request_id(request)
        )
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return JobAccepted(
            id=job.id,
            status=job.status,
            created_at=job.created_at,
            links={"self": f"/v1/jobs/{job.id}"},
        )

    @routes.get("/v1/jobs/{job_id}", response_model=JobView, responses=responses(404))
    def get_job(job_id: str, caller: Reader) -> JobView:
        return JobView.of(
            services.core.jobs.get(job_id, account_id=caller.visible_account, reader=caller)
        )

    @routes.get("/v1/jobs/{job_id}/trace", response_model=TraceView, responses=responses(404))
    def get_trace(job_id: str, caller: Reader) -> TraceView:
        """Admission, queue, every pipeline stage (with its ids, versions, scores and
        verdicts), routing, review and deliveries, as timed spans."""
        job = services.core.jobs.get(job_id, account_id=caller.visible_account, reader=caller)
        return TraceView(
            job_id=job.id,
            status=job.status,
            versions=Versions.of(job),
            spans=[TraceSpan(**span) for span in job_trace(services.core.jobs.engine, job)],
        )

    return routes


def _request_id(request: Request) -> str | None:
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return str(bound) if bound else request.headers.get("x-request-id")
