"""How the system is doing, for the operator page (/review/ops): the job queue and the
review backlog now, and per UTC day over a window of days: outcomes, escalations by reason
and by feature, model errors and timeouts, SLA breaches, spend against its caps, stage
latencies, and the index that answers.

Read only. Every count is one grouped query whose day is a CASE over the window's
midnights, the same SQL on SQLite and PostgreSQL; latencies are computed here over the
newest final jobs of the window (at most LATENCY_SAMPLE).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, literal_column, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col
from sqlmodel import select as sql_select

from ragline.budget import WINDOWS, BudgetBook, BudgetRef, Scope
from ragline.errors import InvalidInput
from ragline.knowledge.catalog import recorded_versions
from ragline.models import (
    Account,
    BudgetCounter,
    IndexPromotion,
    IndexVersion,
    Job,
    JobStatus,
    ReviewItem,
    ReviewStatus,
    UsageRecord,
)
from ragline.reasons import ReviewReason
from ragline.tracing import PIPELINE_STAGES

S = TypeVar("S", bound=Select[Any])

DEFAULT_DAYS = 7
MAX_DAYS = 90
DAYS_RANGE = f"days must be a whole number from 1 to {MAX_DAYS}"
LATENCY_SAMPLE = 5000  # the newest final jobs of the window whose stage timings are read
PROMOTIONS_SHOWN = 10
OUTCOMES = ("answered", "escalated", "rejected", "failed", "cancelled")
FINAL = tuple(status.value for status in JobStatus if status.final)
STAGES = PIPELINE_STAGES  # in the order they run; others follow
ALL_STAGES = "all stages"  # a job's stages added up
NO_FEATURE = "(none)"
MODEL_CAUSES = (ReviewReason.MODEL_ERROR.value, ReviewReason.TIMEOUT.value)
TOTAL_SUBJECT = "all accounts"  # the subject of the `total` budget (ragline/budget.py)


# -- the window ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Whole UTC days, oldest first, ending with today; one account or (None) every one."""

    days: tuple[date, ...]
    account_id: str | None = None
    account_name: str | None = None

    @classmethod
    def ending(
        cls,
        now: datetime,
        days: int = DEFAULT_DAYS,
        account_id: str | None = None,
        account_name: str | None = None,
    ) -> Window:
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(DAYS_RANGE, field="days")
        today = now.astimezone(UTC).date()
        return cls(
            tuple(today - timedelta(days=n) for n in range(days - 1, -1, -1)),
            account_id,
            account_name,
        )

    @property
    def midnights(self) -> list[datetime]:
        """Where each day starts, and where the last one ends."""
        first = datetime.combine(self.days[0], time(), tzinfo=UTC)
        return [first + timedelta(days=n) for n in range(len(self.days) + 1)]

    @property
    def start(self) -> datetime:
        return self.midnights[0]

    @property
    def end(self) -> datetime:
        return self.midnights[-1]

    def within(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def scoped(self, query: S, account_column: Any) -> S:
        """The query limited to the window's account, if it has one."""
        if self.account_id is None:
            return query
        return query.where(account_column == self.account_id)

    def day_of(self, column: Any) -> ColumnElement[Any]:
        """The index in `days` of the day a time (within the window) falls on."""
        inner = self.midnights[1:-1]
        if not inner:
            return literal_column("0")
        return case(
            *[(column < midnight, literal_column(str(n))) for n, midnight in enumerate(inner)],
            else_=literal_column(str(len(inner))),
        )


def _grouped(inner: Select[Any], *, total: str | None = None) -> Select[Any]:
    """Rows of `inner` (its first column the day) counted per distinct row, with the sum of
    `total` (a column of inner) when given. Grouping on the subquery's columns, not on the
    CASE itself: PostgreSQL does not see two CASEs with their own parameters as one."""
    rows = inner.subquery()
    keys = [c for c in rows.c if total is None or c.name != total]
    aggregates: list[Any] = [func.count()]
    if total is not None:
        aggregates.append(func.sum(rows.c[total]))
    return select(*keys, *aggregates).group_by(*keys)


# -- now: the job queue and the review backlog ------------------------------------------------


@dataclass(frozen=True)
class JobQueue:
    queued: int
    running: int
    oldest_queued_at: datetime | None


@dataclass(frozen=True)
class ReviewBacklog:
    pending: int  # open or claimed
    oldest_pending_at: datetime | None
    overdue: int  # pending and past its due time
    breached: int  # pending and flagged by the sweeper as having missed its SLA


def job_queue(engine: Engine, account_id: str | None) -> JobQueue:
    query = (
        select(col(Job.status), func.count(), func.min(col(Job.created_at)))
        .where(col(Job.status).in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
        .group_by(col(Job.status))
    )
    if account_id is not None:
        query = query.where(col(Job.account_id) == account_id)
    with engine.connect() as connection:
        rows = {status: (int(n), oldest) for status, n, oldest in connection.execute(query)}
    queued, oldest = rows.get(JobStatus.QUEUED.value, (0, None))
    return JobQueue(queued, rows.get(JobStatus.RUNNING.value, (0, None))[0], oldest)


def review_backlog(engine: Engine, account_id: str | None, now: datetime) -> ReviewBacklog:
    breached = col(ReviewItem.sla_breached) == True  # noqa: E712 (SQL)
    query = select(
        func.count(),
        func.min(col(ReviewItem.created_at)),
        func.coalesce(func.sum(case((col(ReviewItem.due_at) < now, 1), else_=0)), 0),
        func.coalesce(func.sum(case((breached, 1), else_=0)), 0),
    ).where(col(ReviewItem.status) != ReviewStatus.DECIDED.value)
    if account_id is not None:
        query = query.where(col(ReviewItem.account_id) == account_id)
    with engine.connect() as connection:
        pending, oldest, overdue, flagged = connection.execute(query).one()
    return ReviewBacklog(int(pending), oldest, int(overdue), int(flagged))


# -- per day: outcomes, escalations, model errors, SLA breaches -------------------------------


@dataclass
class Day:
    """One UTC day's final jobs (by when they finished). `escalated` counts every job sent
    to a person, whether still waiting or since decided (a decision turns an escalated job
    answered or rejected; its review item keeps the reason)."""

    day: date
    submitted: int = 0  # jobs created that day
    outcomes: Counter[str] = field(default_factory=Counter)  # OUTCOMES -> jobs
    escalations: Counter[str] = field(default_factory=Counter)  # reason -> escalated jobs
    features: Counter[str] = field(default_factory=Counter)  # feature -> final jobs
    escalated_features: Counter[str] = field(default_factory=Counter)  # feature -> escalated
    causes: Counter[str] = field(default_factory=Counter)  # model_error | timeout -> jobs
    sla_breaches: int = 0  # review items that missed their due time that day

    @property
    def final(self) -> int:
        return sum(self.outcomes.values())

    @property
    def escalated(self) -> int:
        return self.outcomes["escalated"]

    def share(self, count: int) -> float | None:
        """count over the day's final jobs; None on a day without any."""
        return count / self.final if self.final else None

    def feature_rate(self, feature: str) -> float | None:
        """The share of the feature's own final jobs that were escalated."""
        jobs = self.features[feature]
        return self.escalated_features[feature] / jobs if jobs else None


def outcome_of(status: str, escalation: str | None) -> str:
    """Escalated when a person was asked (an escalation review item, not a sampled one)."""
    return "escalated" if escalation is not None or status == JobStatus.ESCALATED else status


def days(engine: Engine, window: Window) -> list[Day]:
    result = [Day(day) for day in window.days]
    with engine.connect() as connection:
        for index, status, reason, escalation, feature, count in connection.execute(
            _finished(window)
        ):
            _count_finished(result[index], status, reason, escalation, feature, int(count))
        for index, count in connection.execute(_submitted(window)):
            result[index].submitted = int(count)
        for index, count in connection.execute(_breaches(window)):
            result[index].sla_breaches = int(count)
    return result


def _count_finished(
    day: Day, status: str, reason: str | None, escalation: str | None, feature: str | None, n: int
) -> None:
    if status == JobStatus.ESCALATED and escalation is None:
        escalation = reason  # its review item is gone (retention) or was never written
    outcome = outcome_of(status, escalation)
    name = feature or NO_FEATURE
    day.outcomes[outcome] += n
    day.features[name] += n
    if outcome == "escalated":
        day.escalations[escalation or "unknown"] += n
        day.escalated_features[name] += n
    cause = escalation or reason
    if cause in MODEL_CAUSES:
        day.causes[cause] += n


def _finished(window: Window) -> Select[Any]:
    escalation = and_(
        col(ReviewItem.job_id) == col(Job.id),
        col(ReviewItem.reason) != ReviewReason.SAMPLED.value,
    )
    inner = (
        select(
            window.day_of(col(Job.finished_at)).label("day_index"),
            col(Job.status).label("status"),
            col(Job.reason).label("reason"),
            col(ReviewItem.reason).label("escalation"),
            col(Job.feature).label("feature"),
        )
        .select_from(Job)
        .outerjoin(ReviewItem, escalation)
        .where(col(Job.status).in_(FINAL), window.within(col(Job.finished_at)))
    )
    inner = window.scoped(inner, col(Job.account_id))
    return _grouped(inner)


def _submitted(window: Window) -> Select[Any]:
    inner = select(window.day_of(col(Job.created_at)).label("day_index")).where(
        window.within(col(Job.created_at))
    )
    inner = window.scoped(inner, col(Job.account_id))
    return _grouped(inner)


def _breaches(window: Window) -> Select[Any]:
    """Flagged items by the day their due time passed (when the SLA was missed)."""
    inner = select(window.day_of(col(ReviewItem.due_at)).label("day_index")).where(
        col(ReviewItem.sla_breached) == True,  # noqa: E712 (SQL)
        window.within(col(ReviewItem.due_at)),
    )
    inner = window.scoped(inner, col(ReviewItem.account_id))
    return _grouped(inner)


# -- spend --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendRow:
    day: date
    key: str  # a feature or an account's name; "(eval)" and "(replay)" for those calls
    calls: int
    cost_micros: int


@dataclass(frozen=True)
class Spend:
    by_feature: list[SpendRow]
    by_account: list[SpendRow]

    @staticmethod
    def keys(rows: Sequence[SpendRow]) -> list[str]:
        """Biggest spender first."""
        totals: Counter[str] = Counter()
        for row in rows:
            totals[row.key] += row.cost_micros
        return sorted(totals, key=lambda key: (-totals[key], key))

    @staticmethod
    def per_day(rows: Sequence[SpendRow], window: Window, key: str) -> list[int]:
        by_day = {row.day: row.cost_micros for row in rows if row.key == key}
        return [by_day.get(day, 0) for day in window.days]


def spend(engine: Engine, window: Window) -> Spend:
    """The usage ledger per day: account jobs by feature and by account; evaluation runs and
    replays (no account) as rows of their own, left out when one account is asked for."""
    inner = (
        select(
            window.day_of(col(UsageRecord.created_at)).label("day_index"),
            col(UsageRecord.kind).label("kind"),
            col(UsageRecord.feature).label("feature"),
            col(Account.name).label("account"),
            col(UsageRecord.cost_micros).label("cost"),
        )
        .select_from(UsageRecord)
        .outerjoin(Account, col(Account.id) == col(UsageRecord.account_id))
        .where(window.within(col(UsageRecord.created_at)))
    )
    inner = window.scoped(inner, col(UsageRecord.account_id))
    by_feature: dict[tuple[date, str], list[int]] = {}
    by_account: dict[tuple[date, str], list[int]] = {}
    with engine.connect() as connection:
        for index, kind, feature, account, calls, cost in connection.execute(
            _grouped(inner, total="cost")
        ):
            day = window.days[index]
            own = kind == "job"
            for table, key in (
                (by_feature, (feature or NO_FEATURE) if own else f"({kind})"),
                (by_account, (account or "(no account)") if own else f"({kind})"),
            ):
                sums = table.setdefault((day, key), [0, 0])
                sums[0] += int(calls)
                sums[1] += int(cost or 0)
    return Spend(_rows(by_feature), _rows(by_account))


def _rows(sums: dict[tuple[date, str], list[int]]) -> list[SpendRow]:
    return [SpendRow(day, key, calls, cost) for (day, key), (calls, cost) in sorted(sums.items())]


@dataclass(frozen=True)
class Cap:
    """An account's caps (or the total cap across accounts) and its spend in the current
    windows, as the budget counters hold them (what reservations are checked against)."""

    subject: str
    daily_limit_micros: int | None
    spent_today_micros: int
    reserved_today_micros: int
    monthly_limit_micros: int | None
    spent_month_micros: int

    @property
    def used_today(self) -> float | None:
        """Spent and reserved today over the daily cap; None without one."""
        if not self.daily_limit_micros:
            return None
        return (self.spent_today_micros + self.reserved_today_micros) / self.daily_limit_micros


def caps(
    budgets: BudgetBook, accounts: Sequence[str], now: datetime, *, total: bool = True
) -> list[Cap]:
    """The caps as BudgetBook resolves them (an admin's limit, else the config's): each
    account's and, with `total` and when one is configured, the cap across accounts."""
    subjects: list[tuple[Scope, str]] = [("account", name) for name in accounts]
    configured = budgets.config.total
    if total and (configured.daily is not None or configured.monthly is not None):
        subjects.append(("total", TOTAL_SUBJECT))
    utc = now.astimezone(UTC)  # the budgets' windows are UTC days and months
    periods = {"daily": f"{utc:%Y-%m-%d}", "monthly": f"{utc:%Y-%m}"}
    refs = [
        BudgetRef(scope, subject, window, periods[window])
        for scope, subject in subjects
        for window in WINDOWS
    ]
    limits = budgets.limits(refs) if refs else {}
    query = select(
        col(BudgetCounter.id), col(BudgetCounter.spent_micros), col(BudgetCounter.reserved_micros)
    ).where(col(BudgetCounter.id).in_([ref.counter_id for ref in refs]))
    with budgets.engine.connect() as connection:
        counters = {row[0]: (int(row[1]), int(row[2])) for row in connection.execute(query)}
    result = []
    for scope, subject in subjects:
        daily, monthly = (BudgetRef(scope, subject, w, periods[w]) for w in WINDOWS)
        spent_today, reserved_today = counters.get(daily.counter_id, (0, 0))
        result.append(
            Cap(
                subject,
                limits[daily],
                spent_today,
                reserved_today,
                limits[monthly],
                counters.get(monthly.counter_id, (0, 0))[0],
            )
        )
    return result


# -- latency ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageLatency:
    stage: str
    jobs: int  # how many of the sampled jobs ran it
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Latency:
    stages: list[StageLatency]
    jobs: int  # final jobs read (the newest of the window)
    sample_limit: int

    @property
    def capped(self) -> bool:
        return self.jobs >= self.sample_limit


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: a value that occurred, p% of values at or below it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def latency(engine: Engine, window: Window, sample: int = LATENCY_SAMPLE) -> Latency:
    query = (
        select(col(Job.stage_timings))
        .where(col(Job.status).in_(FINAL), window.within(col(Job.finished_at)))
        .order_by(col(Job.finished_at).desc())
        .limit(sample)
    )
    query = window.scoped(query, col(Job.account_id))
    with engine.connect() as connection:
        timings = [row[0] or {} for row in connection.execute(query)]
    by_stage: dict[str, list[float]] = {}
    for stages in timings:
        for stage, ms in stages.items():
            by_stage.setdefault(stage, []).append(float(ms))
        if stages:
            by_stage.setdefault(ALL_STAGES, []).append(sum(float(ms) for ms in stages.values()))
    order = [*STAGES, *sorted(set(by_stage) - {*STAGES, ALL_STAGES}), ALL_STAGES]
    return Latency(
        [
            StageLatency(stage, len(v), percentile(v, 50), percentile(v, 95))
            for stage in order
            if (v := by_stage.get(stage))
        ],
        len(timings),
        sample,
    )


# -- the index ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    version: int
    collection: str
    status: str
    documents: int
    chunks: int
    checks_passed: bool | None  # None: never checked
    embedding_model: str
    built_at: datetime | None
    built_by: str
    promoted_at: datetime | None


@dataclass(frozen=True)
class Promotion:
    version: int
    previous_version: int | None
    action: str
    by: str
    reason: str
    forced: bool
    at: datetime


@dataclass(frozen=True)
class IndexState:
    active_version: int | None
    active: Manifest | None  # None: no version active, or its manifest row is gone
    promotions: list[Promotion]  # newest first


def recorded_active(engine: Engine) -> int | None:
    """The active version as the database records it (the last promotion's target): for a
    process that does not hold the vector store."""
    return next((v.manifest.version for v in recorded_versions(engine) if v.active), None)


def index_state(
    engine: Engine, active_version: int | None, shown: int = PROMOTIONS_SHOWN
) -> IndexState:
    with Session(engine) as session:
        manifest = session.get(IndexVersion, active_version) if active_version is not None else None
        moves = session.exec(
            sql_select(IndexPromotion).order_by(col(IndexPromotion.id).desc()).limit(shown)
        ).all()
        return IndexState(
            active_version,
            _manifest(manifest) if manifest else None,
            [_promotion(move) for move in moves],
        )


def _manifest(row: IndexVersion) -> Manifest:
    passed = row.checks.get("passed")
    return Manifest(
        version=row.version,
        collection=row.collection,
        status=row.status,
        documents=row.document_count,
        chunks=row.chunk_count,
        checks_passed=None if passed is None else bool(passed),
        embedding_model=row.embedding_model,
        built_at=row.finished_at or row.created_at,
        built_by=row.built_by,
        promoted_at=row.promoted_at,
    )


def _promotion(row: IndexPromotion) -> Promotion:
    return Promotion(
        row.version, row.previous_version, row.action, row.by, row.reason, row.forced, row.at
    )


# -- everything at once -------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    window: Window
    now: datetime
    queue: JobQueue
    reviews: ReviewBacklog
    days: list[Day]
    spend: Spend
    caps: list[Cap]
    latency: Latency
    index: IndexState


def report(
    engine: Engine,
    budgets: BudgetBook,
    window: Window,
    now: datetime,
    *,
    accounts: Sequence[str],
    active_version: int | None,
) -> Report:
    """The whole page; `accounts`: whose caps to show (the window's one, or all)."""
    return Report(
        window=window,
        now=now,
        queue=job_queue(engine, window.account_id),
        reviews=review_backlog(engine, window.account_id, now),
        days=days(engine, window),
        spend=spend(engine, window),
        caps=caps(budgets, accounts, now, total=window.account_id is None),
        latency=latency(engine, window),
        index=index_state(engine, active_version),
    )
