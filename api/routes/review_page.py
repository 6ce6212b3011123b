"""The reviewer web page at /review: server-rendered HTML, a session cookie from a login
form, CSRF-checked forms, keyboard shortcuts (j/k, c, a, e, r, u)."""

import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.schemas import ReviewView
from api.session import COOKIE, LIFETIME_S, Session
from api.trace_view import timeline
from ragline.accounts import Principal
from ragline.config import RateLimits
from ragline.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from ragline.models import Decision, Role, utcnow
from ragline.ratelimit import LocalRateLimiter
from ragline.reasons import ReviewReason
from ragline.review import QueueFilter
from ragline.tracing import job_trace

if TYPE_CHECKING:
    from api.app import ApiServices

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
REASONS = tuple(ReviewReason)
MAX_FORM_BYTES = 64_000


def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/review", include_in_schema=False)
    queue = services.core.review
    signer = services.sessions
    # Guessing keys at the form: 10 tries, then one every 10 s per client address.
    login_attempts = LocalRateLimiter(RateLimits(requests_per_second=0.1, burst=10))

    def principal_of(session: Session | None) -> Principal | None:
        if session is None:
            return None
        try:
            principal = services.core.accounts.principal_for_key(session.key_id)
            principal.require(Role.REVIEWER)
        except (Unauthenticated, Forbidden):
            return None
        return principal

    def page(
        request: Request,
        template: str,
        session: Session | None,
        principal: Principal | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        context.setdefault("message", request.query_params.get("msg"))
        context.setdefault("error", None)
        response = TEMPLATES.TemplateResponse(
            request,
            template,
            {
                "principal": principal,
                "reviewer_name": queue.reviewer_name(principal) if principal else "",
                "csrf": session.csrf if session else "",
                **context,
            },
            status_code=status_code,
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'"
        )
        return response

    def not_found(
        request: Request, session: Session, principal: Principal, message: str
    ) -> HTMLResponse:
        """The queue page, empty, with the message: where a missing item or job lands."""
        return page(
            request,
            "review/queue.html",
            session,
            principal,
            404,
            items=[],
            filters=QueueFilter(),
            reasons=REASONS,
            error=message,
        )

    async def form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput("the form is too large", field="form")
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}

    def signed_in(request: Request) -> tuple[Session, Principal] | None:
        session = signer.read(request.cookies.get(COOKIE))
        principal = principal_of(session)
        return (session, principal) if session and principal else None

    def to_login() -> RedirectResponse:
        response = RedirectResponse("/review/login", status_code=303)
        response.delete_cookie(COOKIE, path="/review")
        return response

    def csrf_ok(session: Session, fields: dict[str, str]) -> bool:
        return hmac.compare_digest(fields.get("csrf", ""), session.csrf)

    @routes.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return page(request, "review/login.html", None, None)

    @routes.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = login_attempts.take(client)
        if wait > 0:
            refused = page(
                request,
                "review/login.html",
                None,
                None,
                429,
                error=f"too many log-in attempts from here; try again in {wait:.0f} s",
            )
            refused.headers["Retry-After"] = str(max(1, round(wait)))
            return refused
        fields = await form(request)
        try:
            principal = services.core.accounts.authenticate(fields.get("key", "").strip())
            principal.require(Role.REVIEWER)
        except (Unauthenticated, Forbidden) as error:
            return page(request, "review/login.html", None, None, 401, error=str(error))
        cookie, _ = signer.issue(principal.key_id)
        response = RedirectResponse("/review", status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=LIFETIME_S,
            path="/review",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @routes.post("/logout")
    async def logout(request: Request) -> Response:
        return to_login()

    @routes.get("", response_class=HTMLResponse)
    def queue_page(
        request: Request,
        reason: str | None = None,
        status: str = "pending",
        overdue: bool | None = None,
    ) -> Response:
        who = signed_in(request)
        if who is None:
            return to_login()
        session, principal = who
        filters = QueueFilter(
            reason=reason or None,
            overdue=True if overdue else None,
            status=status if status in ("pending", "open", "claimed", "decided") else "pending",
        )
        rows = queue.list(principal.visible_account, filters, limit=200, reader=principal)
        items = [ReviewView.of(item, job) for item, job in rows]
        return page(
            request,
            "review/queue.html",
            session,
            principal,
            items=items,
            filters=filters,
            reasons=REASONS,
        )

    def item_page(
        request: Request,
        session: Session,
        principal: Principal,
        item_id: int,
        status_code: int = 200,
        error: str | None = None,
    ) -> Response:
        try:
            item, job = queue.get(item_id, principal.visible_account, reader=principal)
            view = ReviewView.of(item, job)
        except NotFound:
            return not_found(request, session, principal, f"review item {item_id} not found")
        neighbours = [
            i.id
            for i, _ in queue.list(
                principal.visible_account, QueueFilter(), limit=500, reader=principal
            )
        ]
        position = neighbours.index(item_id) if item_id in neighbours else None
        previous_id = neighbours[position - 1] if position else None
        next_id = (
            neighbours[position + 1]
            if position is not None and position + 1 < len(neighbours)
            else None
        )
        # By key, not by display name: two keys may share a name.
        mine = item.claim_live(utcnow()) and item.claimed_by == principal.key_id
        return page(
            request,
            "review/item.html",
            session,
            principal,
            status_code,
            item=view,
            mine=mine,
            previous_id=previous_id,
            next_id=next_id,
            reject_codes=services.core.review.config.reject_codes,
            trace=job_trace(services.core.jobs.engine, job),
            error=error,
        )

    @routes.get("/jobs", response_class=HTMLResponse)
    def find_job(request: Request, id: str = "") -> Response:
        if signed_in(request) is None:
            return to_login()
        job_id = id.strip()
        if not job_id:
            return RedirectResponse("/review", status_code=303)
        return RedirectResponse(f"/review/jobs/{quote(job_id, safe='')}", status_code=303)

    @routes.get("/jobs/{job_id}", response_class=HTMLResponse)
    def trace_page(request: Request, job_id: str) -> Response:
        """The operator's view of one job: its trace as a timeline, any job of the
        account (not only those in review)."""
        who = signed_in(request)
        if who is None:
            return to_login()
        session, principal = who
        try:
            job = services.core.jobs.get(job_id, principal.visible_account, reader=principal)
        except NotFound:
            return not_found(request, session, principal, f"job {job_id} not found")
        rows, total = timeline(job_trace(services.core.jobs.engine, job))
        return page(
            request, "review/trace.html", session, principal, job=job, rows=rows, total_ms=total
        )

    @routes.get("/items/{item_id}", response_class=HTMLResponse)
    def item(request: Request, item_id: int) -> Response:
        who = signed_in(request)
        if who is None:
            return to_login()
        return item_page(request, *who, item_id)

    async def act(request: Request, item_id: int, action: str) -> Response:
        who = signed_in(request)
        if who is None:
            return to_login()
        session, principal = who
        fields = await form(request)
        if not csrf_ok(session, fields):
            return item_page(
                request,
                session,
                principal,
                item_id,
                403,
                "the form expired or came from elsewhere: reload and try again",
            )
        try:
            if action == "claim":
                queue.claim(item_id, principal)
                message = "claimed"
            elif action == "release":
                queue.release(item_id, principal)
                message = "released"
            else:
                try:
                    decision = Decision(fields.get("decision", ""))
                except ValueError:
                    raise InvalidInput("choose approve, edit or reject", field="decision") from None
                edited = decision in (Decision.EDIT, Decision.GOOD, Decision.BAD)
                answer = fields.get("answer") if edited else None
                if decision in (Decision.GOOD, Decision.BAD) and not (answer or "").strip():
                    answer = None  # no correction given
                queue.decide(
                    item_id,
                    principal,
                    decision,
                    answer=answer,
                    reason_code=fields.get("reason_code") if decision == Decision.REJECT else None,
                    note=fields.get("note") or None,
                )
                return RedirectResponse(
                    f"/review?msg={quote(f'item {item_id}: {decision.value}')}", status_code=303
                )
        except Conflict as error:
            return item_page(request, session, principal, item_id, 409, str(error))
        except InvalidInput as error:
            return item_page(request, session, principal, item_id, 422, str(error))
        return RedirectResponse(f"/review/items/{item_id}?msg={message}", status_code=303)

    @routes.post("/items/{item_id}/claim")
    async def claim(request: Request, item_id: int) -> Response:
        return await act(request, item_id, "claim")

    @routes.post("/items/{item_id}/release")
    async def release(request: Request, item_id: int) -> Response:
        return await act(request, item_id, "release")

    @routes.post("/items/{item_id}/decision")
    async def decide(request: Request, item_id: int) -> Response:
        return await act(request, item_id, "decision")

    return routes
