"""Index versions in the browser at /review/index (indexer role): every version with its
checks, the last moves of the alias, the documents two versions differ in, promote (a
version that failed its checks only when forced, with a reason) and roll back.

The same IndexManager as the JSON index API (api/routes/index.py): only the process that
owns the knowledge store can act on it; elsewhere the page shows what the database records
and offers no actions."""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import messages
from api.routes.index import require_force
from api.routes.ops_page import percent, when
from api.web import Web
from ragline import operations
from ragline.accounts import Principal
from ragline.db import BIGINT_MAX
from ragline.errors import Forbidden, InvalidInput, NotFound
from ragline.evaluation.gate import last_gate
from ragline.knowledge.catalog import recorded_versions
from ragline.knowledge.versions import IndexManager, VersionDiff, VersionListing
from ragline.models import Role
from ragline.page_sessions import SignedIn

if TYPE_CHECKING:
    from api.app import ApiServices

NOT_OWNER = (
    "this server does not own the knowledge store, so versions cannot be promoted or rolled "
    "back here: run `ragline index …` directly (with RAGLINE_QDRANT_URL, any process can)"
)
EXPIRED = "the form expired or came from elsewhere: reload and try again"
REASON_MAX = 2000
PROMOTIONS_SHOWN = 20


@dataclass(frozen=True)
class VersionRow:
    """One version as the page shows it: its manifest and the gate's verdict."""

    version: int
    status: str
    active: bool
    documents: int
    chunks: int
    reused: int
    embedded: int
    passed: bool | None  # None: never checked (a build that did not finish)
    failures: list[str]
    smoke: str  # the smoke evaluation in words: hit rate, or why it was skipped
    corpus: str
    embedding_model: str
    built_by: str
    built_at: datetime | None
    promoted_at: datetime | None
    error: str | None

    @property
    def promotable(self) -> bool:
        return self.status == "ready" and not self.active

    @classmethod
    def of(cls, listing: VersionListing) -> "VersionRow":
        manifest, checks = listing.manifest, listing.manifest.checks
        return cls(
            version=manifest.version,
            status=manifest.status,
            active=listing.active,
            documents=manifest.document_count,
            chunks=manifest.chunk_count,
            reused=manifest.reused_chunks,
            embedded=manifest.embedded_chunks,
            passed=None if "passed" not in checks else bool(checks["passed"]),
            failures=[str(f) for f in checks.get("failures", [])],
            smoke=_smoke(checks.get("smoke")),
            corpus=str(checks.get("corpus", "")),
            embedding_model=manifest.embedding_model,
            built_by=manifest.built_by,
            built_at=manifest.finished_at or manifest.created_at,
            promoted_at=manifest.promoted_at,
            error=manifest.error,
        )


@dataclass(frozen=True)
class GateView:
    """The eval gate's verdict on a candidate: the metrics that regressed (none: passed)."""

    regressed: list[str]
    summary: str


def _smoke(smoke: Any) -> str:
    if not isinstance(smoke, dict):
        return ""
    if "hit_rate" in smoke:
        return f"smoke hit rate {percent(smoke['hit_rate'])} of {smoke.get('queries', 0)} questions"
    skipped = str(smoke.get("skipped", ""))
    return f"smoke check skipped: {skipped.split(':')[0]}" if skipped else ""


def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/review/index", include_in_schema=False)
    web = Web(services)
    engine = services.core.engine

    def versions_page(
        request: Request,
        session: SignedIn,
        principal: Principal,
        status_code: int = 200,
        error: str | None = None,
    ) -> Response:
        manager = services.index
        if manager is None:
            listings, previous = recorded_versions(engine), None
        else:
            listings, previous = manager.list_versions(), manager.previous_version()
        rows = [VersionRow.of(listing) for listing in reversed(listings)]  # newest first
        active = next((row.version for row in rows if row.active), None)
        gates = {row.version: gate_of(row.version, active) for row in rows if row.promotable}
        moves = operations.index_state(engine, active, shown=PROMOTIONS_SHOWN).promotions
        return web.page(
            request,
            "review/index_versions.html",
            session,
            principal,
            status_code,
            owner=manager is not None,
            not_owner=NOT_OWNER,
            versions=rows,
            active=active,
            previous=previous,
            promotions=moves,
            gates={version: gate for version, gate in gates.items() if gate is not None},
            when=when,
            error=error,
        )

    def gate_of(version: int, active: int | None) -> GateView | None:
        """The last eval gate run for promoting `version` over the active one, if any."""
        try:
            comparison = last_gate(engine, version, active, services.core.config.evaluation)
        except InvalidInput as error:  # e.g. the two runs share no item
            return GateView(regressed=[], summary=str(error))
        if comparison is None:
            return None
        return GateView(
            regressed=[delta.metric.name for delta in comparison.regressions],
            summary=f"{comparison.b.dataset}, {len(comparison.b.items)} items, "
            f"run {when(comparison.b.created_at)}",
        )

    @routes.get("", response_class=HTMLResponse)
    def index_versions(request: Request) -> Response:
        who = web.signed_in(request, Role.INDEXER)
        if who is None:
            return web.to_login(web.here(request))
        return versions_page(request, *who)

    @routes.get("/diff", response_class=HTMLResponse)
    def diff(request: Request, a: str = "", b: str = "") -> Response:
        who = web.signed_in(request, Role.INDEXER)
        if who is None:
            return web.to_login(web.here(request))
        session, principal = who
        manager = services.index
        listings = manager.list_versions() if manager else recorded_versions(engine)
        choices = [listing.manifest.version for listing in reversed(listings)]
        changes: VersionDiff | None = None
        status_code, error = 200, None
        try:
            old, new = _version(a, "a"), _version(b, "b")
            a, b = str(old), str(new)
            if manager is None:
                raise InvalidInput(NOT_OWNER)
            changes = manager.diff(old, new)
        except NotFound as missing:
            status_code, error = 404, str(missing)
        except InvalidInput as refused:
            status_code, error = 422, str(refused)
        return web.page(
            request,
            "review/index_diff.html",
            session,
            principal,
            status_code,
            choices=choices,
            a=a.strip()[:20],
            b=b.strip()[:20],
            changes=changes,
            error=error,
        )

    async def acting(
        request: Request,
    ) -> tuple[SignedIn, Principal, IndexManager, dict[str, str]] | Response:
        """The signed-in indexer, the store and the posted form, or the page to answer with:
        log-in, or the versions again (nothing changed) when the form is forged or expired,
        or when this server cannot act."""
        who = web.signed_in(request, Role.INDEXER)
        if who is None:
            return web.to_login("/review/index")
        session, principal = who
        try:
            fields = await web.form(request)
        except InvalidInput as refused:
            return versions_page(request, session, principal, 422, str(refused))
        if not web.csrf_ok(session, fields):
            return versions_page(request, session, principal, 403, EXPIRED)
        if services.index is None:
            return versions_page(request, session, principal, 503, NOT_OWNER)
        return session, principal, services.index, fields

    def refused(
        request: Request, session: SignedIn, principal: Principal, error: Exception
    ) -> Response:
        status_code = 404 if isinstance(error, NotFound) else 422
        return versions_page(request, session, principal, status_code, str(error))

    def done(code: str, version: int) -> RedirectResponse:
        return RedirectResponse(
            messages.redirect_to("/review/index", code, version=version), status_code=303
        )

    @routes.post("/rollback")
    async def rollback(request: Request) -> Response:
        acted = await acting(request)
        if isinstance(acted, Response):
            return acted
        session, principal, manager, fields = acted
        reason = fields.get("reason", "").strip()[:REASON_MAX]
        try:
            if not reason:
                raise InvalidInput("a rollback needs a reason: it is recorded with the move")
            manifest = await run_in_threadpool(
                manager.rollback, reason=reason, actor=principal.actor
            )
        except (InvalidInput, NotFound) as error:
            return refused(request, session, principal, error)
        return done("rolled_back", manifest.version)

    @routes.post("/{version}/promote")
    async def promote(request: Request, version: str) -> Response:
        acted = await acting(request)
        if isinstance(acted, Response):
            return acted
        session, principal, manager, fields = acted
        force = fields.get("force") == "1"
        if force:
            try:
                require_force(principal)
            except Forbidden as refused_force:
                return versions_page(request, session, principal, 403, str(refused_force))
        try:
            number = _version(version, "version")
            manifest = await run_in_threadpool(
                manager.promote,
                number,
                force=force,
                reason=fields.get("reason", "").strip()[:REASON_MAX],
                actor=principal.actor,
            )
        except (InvalidInput, NotFound) as error:
            return refused(request, session, principal, error)
        return done("promoted", manifest.version)

    return routes


def _version(raw: str, field: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not (
        1 <= int(text) <= BIGINT_MAX
    ):
        raise InvalidInput(f"{field}: choose a version number", field=field)
    return int(text)
