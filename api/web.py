"""What every server-rendered page under /review shares: the templates, the session
(api/session.py) and the key behind it checked again on every request, the role a page
needs, CSRF-checked forms, and the headers that keep the pages in their own frame.

Pages: the review queue and items (reviewer), index operations (indexer), the operator
page (admin). One log-in serves them all; each page checks its own role.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api import messages
from api.session import forget_cookie, token_of
from ragline.accounts import Principal
from ragline.errors import Forbidden, InvalidInput, RateLimited, Unauthenticated
from ragline.models import Role
from ragline.page_sessions import SignedIn
from ragline.pipeline.validate import NOT_STORABLE, storable

if TYPE_CHECKING:
    from api.app import ApiServices

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
MAX_FORM_BYTES = 64_000
# A key may log in to the pages if it holds one of these; each page asks for its own.
PAGE_ROLES = (Role.REVIEWER, Role.INDEXER, Role.ADMIN)


class Web:
    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self.sessions = services.sessions

    def principal_of(self, session: SignedIn | None, role: Role) -> Principal | None:
        """The session's key, checked again (revoked, expired, still holding `role`)."""
        if session is None:
            return None
        try:
            principal = self.services.core.accounts.principal_for_key(session.key_id)
            principal.require(role)
            if role is Role.INDEXER:  # the knowledge base is the platform's (README Security)
                principal.require_platform(self.services.core.settings.platform_account)
        except (Unauthenticated, Forbidden):
            return None
        return principal

    def signed_in(self, request: Request, role: Role) -> tuple[SignedIn, Principal] | None:
        """The session and its key, or None (log in). A page request spends from the key's
        rate limit like an API request (RateLimited: 429 with Retry-After)."""
        session = self.sessions.read(token_of(request))
        principal = self.principal_of(session, role)
        if not (session and principal):
            return None
        wait = self.services.limiter.take(principal.key_id)
        if wait > 0:
            raise RateLimited("too many requests for this API key", retry_after_s=wait)
        return session, principal

    def page(
        self,
        request: Request,
        template: str,
        session: SignedIn | None,
        principal: Principal | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        context.setdefault("message", messages.shown(request.query_params))
        context.setdefault("error", None)
        review = self.services.core.review
        response = TEMPLATES.TemplateResponse(
            request,
            template,
            {
                "principal": principal,
                "reviewer_name": review.reviewer_name(principal) if principal else "",
                "csrf": session.csrf if session else "",
                "roles": _roles(principal),
                **context,
            },
            status_code=status_code,
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        )
        return response

    @staticmethod
    async def form(request: Request) -> dict[str, str]:
        """The posted form's fields (the last value of each); InvalidInput past 64 KB."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput("the form is too large", field="form")
        return {name: values[-1] for name, values in _fields(body).items()}

    @staticmethod
    async def form_lists(request: Request) -> dict[str, list[str]]:
        """The posted form's fields with every value (checkbox lists)."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput("the form is too large", field="form")
        return _fields(body)

    @staticmethod
    def to_login(back_to: str = "") -> RedirectResponse:
        """To the log-in form; after it, back to `back_to` (a page under /review)."""
        target = "/review/login"
        if safe_next(back_to) and back_to != "/review":  # the queue is where log-in lands
            target += "?next=" + quote(back_to, safe="")
        response = RedirectResponse(target, status_code=303)
        forget_cookie(response)
        return response

    @staticmethod
    def here(request: Request) -> str:
        """The page asked for (path and query), to come back to after log-in."""
        query = request.url.query
        return request.url.path + (f"?{query}" if query else "")

    @staticmethod
    def csrf_ok(session: SignedIn, fields: dict[str, str]) -> bool:
        return hmac.compare_digest(fields.get("csrf", ""), session.csrf)


def _fields(body: bytes) -> dict[str, list[str]]:
    """A urlencoded form's fields, held to what the JSON API accepts (api/schemas.py Text):
    UTF-8 and storable (no NUL, no unpaired surrogate), or InvalidInput naming the field.
    Replacing bad bytes instead would store an answer the reviewer never wrote."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8 text", field="form") from None
    for name, values in fields.items():
        if not storable(name) or not all(storable(value) for value in values):
            field = name if storable(name) else "form"
            raise InvalidInput(f"{field}: {NOT_STORABLE}", field=field)
    return fields


def _roles(principal: Principal | None) -> set[str]:
    """The page roles the key holds (an admin holds them all): which links to show."""
    if principal is None:
        return set()
    if principal.is_admin:
        return {role.value for role in PAGE_ROLES}
    return {role.value for role in PAGE_ROLES if role in principal.roles}


def safe_next(path: str) -> str:
    """path if it is one of our pages (/review/…), else "": never another site."""
    page = r"/review(/[A-Za-z0-9_./-]*)?(\?[A-Za-z0-9_.=&%+-]*)?"
    if re.fullmatch(page, path) and "//" not in path and ".." not in path:
        return path
    return ""


def home_of(principal: Principal) -> str:
    """Where a key lands after log-in: the queue if it reviews, else its own page."""
    if principal.is_admin or Role.REVIEWER in principal.roles:
        return "/review"
    return "/review/index"
