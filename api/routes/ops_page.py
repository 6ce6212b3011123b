"""The operator page at /review/ops (admin): how the system is doing over the last `days`
UTC days, for every account or one. The numbers come from ragline/operations.py; this
module formats them and draws the charts (api/charts.py). The page reloads itself every
minute (a Refresh header: the shared page head has no place for a meta tag)."""

from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from api import charts
from api.web import Web
from ragline import operations
from ragline.accounts import Accounts, Principal
from ragline.budget import MICROS
from ragline.cache.stats import cache_stats
from ragline.errors import InvalidInput, NotFound
from ragline.models import Role, utcnow
from ragline.operations import (
    DAYS_RANGE,
    DEFAULT_DAYS,
    LATENCY_SAMPLE,
    MAX_DAYS,
    OUTCOMES,
    Report,
    Window,
)
from ragline.page_sessions import SignedIn

if TYPE_CHECKING:
    from api.app import ApiServices

log = structlog.get_logger("ragline.api")

REFRESH_S = 60


def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/review", include_in_schema=False)
    web = Web(services)
    core = services.core

    def shown(
        request: Request,
        session: SignedIn,
        principal: Principal,
        status_code: int = 200,
        **context: object,
    ) -> Response:
        response = web.page(
            request,
            "review/ops.html",
            session,
            principal,
            status_code,
            refresh_s=REFRESH_S,
            max_days=MAX_DAYS,
            **context,
        )
        response.headers["Refresh"] = str(REFRESH_S)
        return response

    def active_version() -> tuple[int | None, str]:
        """The index version that answers, and where that was read."""
        if core.index is None:
            return operations.recorded_active(core.engine), "the last recorded promotion"
        try:
            return core.index.active_version(), "the vector store's alias"
        except Exception as error:  # the page still shows what the database records
            log.warning("ops_store_unreadable", error=type(error).__name__)
            return (
                operations.recorded_active(core.engine),
                "the last recorded promotion (the vector store did not answer)",
            )

    @routes.get("/ops", response_class=HTMLResponse)
    def ops(request: Request, days: str = str(DEFAULT_DAYS), account: str = "") -> Response:
        who = web.signed_in(request, Role.ADMIN)
        if who is None:
            return web.to_login()
        session, principal = who
        every_account = [a.name for a in core.accounts.accounts()]
        chosen = {"days": days.strip()[:8], "account": account.strip()[:64]}
        now = utcnow()
        try:
            window = _window(core.accounts, days, account.strip(), now)
        except (InvalidInput, NotFound) as error:
            status = 404 if isinstance(error, NotFound) else 422
            return shown(
                request,
                session,
                principal,
                status,
                report=None,
                chosen=chosen,
                account_names=every_account,
                error=str(error),
            )
        version, read_from = active_version()
        report = operations.report(
            core.engine,
            core.budgets,
            window,
            now,
            accounts=[window.account_name] if window.account_name else every_account,
            active_version=version,
        )
        return shown(
            request,
            session,
            principal,
            report=report,
            chosen=chosen,
            account_names=every_account,
            charts=_charts(report),
            cache=cache_stats(core.engine, window.midnights[0], window.account_id),
            index_read_from=read_from,
            max_depth=core.config.jobs.max_queue_depth,
            sample_limit=LATENCY_SAMPLE,
            outcomes=OUTCOMES,
            reasons=sorted({r for day in report.days for r in day.escalations}),
            features=sorted({f for day in report.days for f in day.escalated_features}),
            money=money,
            percent=percent,
            millis=millis,
            age=lambda since: age(since, now),
            when=when,
        )

    return routes


def _window(accounts: Accounts, days: str, account: str, now: datetime) -> Window:
    try:
        count = int(days.strip())
    except ValueError:
        raise InvalidInput(DAYS_RANGE, field="days") from None
    if not account:
        return Window.ending(now, count)
    found = accounts.account(account)  # NotFound names the account
    return Window.ending(now, count, found.id, found.name)


# -- what the numbers look like -------------------------------------------------------------


def money(micros: int) -> str:
    """Exact: 20.00, 0.012792 (micro-units of the price table's currency)."""
    whole, fraction = divmod(micros, MICROS)
    return f"{whole:,}.{f'{fraction:06d}'.rstrip('0').ljust(2, '0')}"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def millis(ms: float) -> str:
    return f"{ms:,.1f} ms"


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "—"
    minutes = max(0, int((now - since).total_seconds() // 60))
    hours, days = minutes // 60, minutes // (24 * 60)
    if days:
        return f"{days}d {hours % 24}h"
    return f"{hours}h {minutes % 60:02d}m" if hours else f"{minutes}m"


def when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _charts(report: Report) -> dict[str, Markup]:
    days = report.days
    labels = [f"{day.day:%m-%d}" for day in days]
    reasons = sorted({r for day in days for r in day.escalations})
    spend = report.spend
    features = sorted({f for day in days for f in day.features})
    stages = report.latency.stages
    return {
        "outcomes": charts.stacked_bars(
            {o: [day.outcomes[o] for day in days] for o in OUTCOMES},
            labels,
            title="Final jobs per day by outcome",
        ),
        "escalations": charts.line(
            {
                "all reasons": [day.share(day.escalated) for day in days],
                **{r: [day.share(day.escalations[r]) for day in days] for r in reasons},
            },
            labels,
            title="Escalation rate per day, by reason",
            fmt=percent,
            top=1.0,
        ),
        "model_errors": charts.line(
            {
                cause: [day.share(day.causes[cause]) for day in days]
                for cause in operations.MODEL_CAUSES
            },
            labels,
            title="Model error and timeout rates per day",
            fmt=percent,
        ),
        "breaches": charts.bars(
            [day.sla_breaches for day in days], labels, title="SLA breaches per day"
        ),
        "feature_escalations": charts.line(
            {f: [day.feature_rate(f) for day in days] for f in features},
            labels,
            title="Escalation rate per day, by feature (of the feature's final jobs)",
            fmt=percent,
            top=1.0,
        ),
        "spend_accounts": _spend_chart(report, spend.by_account, labels, "account"),
        "spend_features": _spend_chart(report, spend.by_feature, labels, "feature"),
        "latency": charts.hbars(
            [stage.p95_ms for stage in stages],
            [stage.stage for stage in stages],
            title="p95 latency by stage (ms)",
            fmt=millis,
        ),
    }


def _spend_chart(
    report: Report, rows: list[operations.SpendRow], labels: list[str], by: str
) -> Markup:
    spend = report.spend
    return charts.stacked_bars(
        {key: spend.per_day(rows, report.window, key) for key in spend.keys(rows)},
        labels,
        title=f"Spend per day by {by}",
        fmt=lambda micros: money(round(micros)),
    )
