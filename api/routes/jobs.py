"""Submitting and reading jobs."""

from typing import TYPE_CHECKING, Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import needs
from api.params import OptionalText, UtcTime
from api.problems import AUTHENTICATED, WITH_BODY, responses
from api.schemas import JobAccepted, JobList, JobView, TraceSpan, TraceView, Versions
from ragline.accounts import Principal
from ragline.jobs import MAX_PAGE, JobFilter, Position, parse_statuses
from ragline.models import JobStatus, Role
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
    Submitter = Annotated[Principal, Depends(needs(services, Role.SUBMITTER))]

    @routes.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobAccepted,
        responses=responses(*WITH_BODY, 409),
    )
    async def submit_job(
        body: JobRequest,
        caller: Caller,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
        ] = None,
    ) -> JobAccepted:
        # async, with admission's blocking work in one worker thread: a sync route is run
        # in one, and then the response is validated in another.
        job, created = await run_in_threadpool(
            services.admission.submit,
            caller,
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
            created_at=job.created_at,
            links={"self": f"/v1/jobs/{job.id}"},
        )

    @routes.get("/v1/jobs", response_model=JobList)
    def list_jobs(
        caller: Reader,
        status: Annotated[
            list[str] | None,
            Query(description=f"{', '.join(JobStatus)}: repeat it or separate with commas"),
        ] = None,
        feature: OptionalText = None,
        user_id: OptionalText = None,
        created_after: Annotated[UtcTime | None, Query(description="inclusive")] = None,
        created_before: Annotated[UtcTime | None, Query(description="exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: OptionalText = None,
    ) -> JobList:
        """The caller's account's jobs it may read (every account's for an admin), newest
        first. Follow next_cursor until it is null; jobs submitted meanwhile come ahead of
        the first page, never into the pages still to read."""
        filters = JobFilter(
            statuses=parse_statuses(status or []),
            feature=feature,
            user_id=user_id,
            created_after=created_after,
            created_before=created_before,
        )
        after = Position.decode(cursor) if cursor is not None else None
        page = services.core.jobs.page(caller.visible_account, filters, limit, after, reader=caller)
        return JobList(
            items=[JobView.of(job) for job in page.jobs],
            next_cursor=page.next.encode() if page.next else None,
            limit=limit,
        )

    @routes.get("/v1/jobs/{job_id}", response_model=JobView, responses=responses(404))
    def get_job(job_id: str, caller: Reader) -> JobView:
        return JobView.of(
            services.core.jobs.get(job_id, account_id=caller.visible_account, reader=caller)
        )

    @routes.post("/v1/jobs/{job_id}/cancel", response_model=JobView, responses=responses(404, 409))
    def cancel_job(job_id: str, caller: Submitter) -> JobView:
        """A queued job becomes `cancelled` (final, never run, no webhook); 409 naming the
        status once a worker has it or it is final."""
        job = services.core.jobs.cancel(
            job_id, caller.visible_account, reader=caller, budgets=services.core.budgets
        )
        return JobView.of(job)

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
