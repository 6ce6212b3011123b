"""The reviewer web page at /review: server-rendered HTML, a session cookie from a login
form, CSRF-checked forms, keyboard shortcuts (j/k, c, a, e, r, u)."""

from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import messages
from api.auth import client_address
from api.evidence import evidence, placeholders
from api.schemas import ReviewView
from api.session import forget_cookie, from_this_site, set_cookie, token_of
from api.trace_view import timeline
from api.web import PAGE_ROLES, Web, home_of, safe_next
from ragline.accounts import Principal
from ragline.config import RateLimits
from ragline.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from ragline.jobs import JobFilter
from ragline.models import Decision, Job, Role, utcnow
from ragline.page_sessions import SignedIn
from ragline.ratelimit import LocalRateLimiter
from ragline.reasons import ReviewReason
from ragline.review import QueueFilter
from ragline.tracing import job_trace

if TYPE_CHECKING:
    from api.app import ApiServices

REASONS = tuple(ReviewReason)
EARLIER_DAYS = 30
EARLIER_JOBS = 10
BULK_MAX = 200


def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/review", include_in_schema=False)
    queue = services.core.review
    web = Web(services)
    page, form, to_login, csrf_ok = web.page, web.form, web.to_login, web.csrf_ok
    # Guessing keys at the form: 10 tries, then one every 10 s per client address.
    login_attempts = LocalRateLimiter(RateLimits(requests_per_second=0.1, burst=10))

    def signed_in(request: Request) -> tuple[SignedIn, Principal] | None:
        return web.signed_in(request, Role.REVIEWER)

    def not_found(
        request: Request, session: SignedIn, principal: Principal, message: str
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

    @routes.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "") -> Response:
        return page(request, "review/login.html", None, None, next=safe_next(next))

    @routes.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        client = client_address(request)
        wait = login_attempts.wait(client)  # only failures drain it: see below
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
        if not from_this_site(request):
            # Log-in CSRF: a form on another site would sign this browser in as its author.
            return page(
                request,
                "review/login.html",
                None,
                None,
                403,
                error="this log-in form was sent from another site; log in from this page",
            )
        try:
            fields = await form(request)
        except InvalidInput as refused_form:
            return page(request, "review/login.html", None, None, 422, error=str(refused_form))
        try:
            principal = services.core.accounts.authenticate(fields.get("key", "").strip())
            principal.require_any(*PAGE_ROLES)
        except (Unauthenticated, Forbidden) as error:
            login_attempts.take(client)
            return page(
                request,
                "review/login.html",
                None,
                None,
                401,
                error=str(error),
                next=safe_next(fields.get("next", "")),
            )
        services.sessions.end(token_of(request))  # a browser logging in again: one session
        token, session = services.sessions.start(principal.key_id)
        response = RedirectResponse(
            safe_next(fields.get("next", "")) or home_of(principal), status_code=303
        )
        set_cookie(response, request, token, session)
        return response

    @routes.post("/logout")
    async def logout(request: Request) -> Response:
        """Ends the session for every copy of its cookie. The form's CSRF token must match:
        another site cannot log a reviewer out."""
        session = services.sessions.read(token_of(request))
        if session is None:
            return to_login()  # nothing to end
        try:
            fields = await form(request)
        except InvalidInput:
            fields = {}
        if not csrf_ok(session, fields):
            return RedirectResponse(messages.redirect_to("/review", "expired"), status_code=303)
        services.sessions.end(token_of(request))
        response = RedirectResponse(
            messages.redirect_to("/review/login", "logged_out"), status_code=303
        )
        forget_cookie(response)
        return response

    @routes.get("", response_class=HTMLResponse)
    def queue_page(
        request: Request,
        reason: str | None = None,
        status: str = "pending",
        overdue: bool | None = None,
        q: str = "",
        document: str = "",
    ) -> Response:
        who = signed_in(request)
        if who is None:
            return to_login(web.here(request))
        session, principal = who
        filters = QueueFilter(
            reason=reason or None,
            overdue=True if overdue else None,
            status=status if status in ("pending", "open", "claimed", "decided") else "pending",
            text=q.strip()[:200] or None,
            document=document.strip()[:500] or None,
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
        session: SignedIn,
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
        config = services.core.review.config
        reject = config.reject_codes
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
            reject_codes=reject,
            note_templates={
                code: config.note_templates.get(code, "") for code in config.reject_codes
            },
            trace=job_trace(services.core.jobs.engine, job),
            evidence=evidence(view.passages, view.confidence_inputs.get("sentences", [])),
            earlier=earlier_jobs(principal, job),
            compared=compared_job(principal, job),
            placeholders=placeholders,
            error=error,
        )

    def compared_job(principal: Principal, job: Job) -> Job | None:
        """The answer this job's draft is to be read beside (the answer cache): the one it
        contradicts, or the rejected one of an equivalent question; if this key may read it."""
        inputs = job.confidence_inputs
        other = inputs.get("consistency", {}).get("conflicts_with") or inputs.get("cache", {}).get(
            "rejected_job"
        )
        if not other:
            return None
        try:
            return services.core.jobs.get(str(other), job.account_id, reader=principal)
        except NotFound:  # erased or deleted since, or not this key's to read
            return None

    def earlier_jobs(principal: Principal, job: Job) -> list[Job]:
        """The same user's other jobs of the last EARLIER_DAYS that this key may read:
        users compare answers across sessions and expect them to agree."""
        if not job.user_id:
            return []
        since = utcnow() - timedelta(days=EARLIER_DAYS)
        found = services.core.jobs.page(
            job.account_id,
            JobFilter(user_id=job.user_id, created_after=since),
            limit=EARLIER_JOBS + 1,
            reader=principal,
        )
        return [j for j in found.jobs if j.id != job.id][:EARLIER_JOBS]

    @routes.get("/jobs", response_class=HTMLResponse)
    def find_job(request: Request, id: str = "") -> Response:
        if signed_in(request) is None:
            return to_login(web.here(request))
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
            return to_login(web.here(request))
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
            return to_login(f"/review/items/{item_id}")
        return item_page(request, *who, item_id)

    async def act(request: Request, item_id: int, action: str) -> Response:
        who = signed_in(request)
        if who is None:  # the page kept the typed answer; log-in brings the reviewer back
            return to_login(f"/review/items/{item_id}")
        session, principal = who
        try:
            fields = await form(request)
        except InvalidInput as refused_form:  # nothing is claimed or decided
            return item_page(request, session, principal, item_id, 422, str(refused_form))
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
                message = "claimed"  # a code of api/messages.py
            elif action == "release":
                queue.release(item_id, principal)
                message = "released"
            else:
                try:
                    decision = Decision(fields.get("decision", ""))
                except ValueError:
                    raise InvalidInput("choose approve, edit or reject", field="decision") from None
                if fields.get("claim") == "1":  # one key: claim and decide together
                    queue.claim(item_id, principal)
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
                    messages.redirect_to(
                        "/review", "decided", item=item_id, decision=decision.value
                    ),
                    status_code=303,
                )
        except Conflict as error:
            return item_page(request, session, principal, item_id, 409, str(error))
        except InvalidInput as error:
            return item_page(request, session, principal, item_id, 422, str(error))
        return RedirectResponse(
            messages.redirect_to(f"/review/items/{item_id}", message), status_code=303
        )

    @routes.post("/bulk")
    async def bulk(request: Request) -> Response:
        """Mark several sampled answers good at once (each claimed and decided in turn);
        an item someone else holds, or that is not a sampled one, is skipped and named."""
        who = signed_in(request)
        if who is None:
            return to_login("/review")
        session, principal = who
        try:
            fields = await web.form_lists(request)
        except InvalidInput:
            fields = {}  # no token: refused below as an expired form, nothing marked
        if not csrf_ok(session, {"csrf": fields.get("csrf", [""])[-1]}):
            return RedirectResponse(messages.redirect_to("/review", "expired"), status_code=303)
        done, skipped = 0, []  # skipped: the items' numbers (anything else is not one)
        for raw in fields.get("item", [])[:BULK_MAX]:
            try:
                item_id = int(raw)
                item, _ = queue.get(item_id, principal.visible_account, reader=principal)
                if item.reason != ReviewReason.SAMPLED:
                    raise InvalidInput("only sampled answers are marked in bulk", field="item")
                queue.claim(item_id, principal)
                queue.decide(item_id, principal, Decision.GOOD)
                done += 1
            except (ValueError, NotFound, Conflict, InvalidInput):
                if messages.is_number(raw):
                    skipped.append(raw)
        if skipped:
            to = messages.redirect_to(
                "/review?reason=sampled",
                "bulk_skipped",
                done=done,
                skipped=",".join(skipped[: messages.MAX_LISTED]),
            )
        else:
            to = messages.redirect_to("/review?reason=sampled", "bulk", done=done)
        return RedirectResponse(to, status_code=303)

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
