"""A known day and the day before, seeded row by row for the operator page's tests
(tests/integration/test_operations.py, tests/e2e/test_ops_page.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ragline.accounts import Accounts
from ragline.config import Budgets, Windows
from ragline.models import (
    BudgetCounter,
    BudgetLimit,
    IndexPromotion,
    IndexVersion,
    Job,
    ReviewItem,
    UsageRecord,
)

NOW = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
TODAY, YESTERDAY = date(2026, 11, 20), date(2026, 11, 19)
BUDGETS = Budgets(
    accounts={"acme": Windows(daily=1.0, monthly=10.0), "default": Windows(daily=0.5)},
    total=Windows(daily=5.0),
)
FAST = {"validate": 1, "embed": 10, "retrieve": 20, "generate": 100, "score": 2}
SLOW = {"validate": 3, "embed": 30, "retrieve": 40, "generate": 300, "score": 4}
MIDDLE = {"validate": 2, "embed": 20, "retrieve": 30, "generate": 200, "score": 3}
ODD = {"validate": 5, "embed": 50, "retrieve": 60, "generate": 400, "custom_stage": 7}


@dataclass(frozen=True)
class Seeded:
    now: datetime
    today: date
    yesterday: date
    acme: str  # account ids
    globex: str
    oldest_queued_at: datetime
    oldest_pending_at: datetime


def at(now: datetime, day: int, fraction: float) -> datetime:
    """A time on today (day 0) or an earlier day (-1, -2): today's times are that fraction
    of the way from midnight to `now`, so they are today and in the past whenever a test
    runs; an earlier day's are that fraction of its 24 hours."""
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
    if day == 0:
        return midnight + (now - midnight) * fraction
    return midnight + timedelta(days=day) + timedelta(days=1) * fraction


def seed(engine: Engine, now: datetime) -> Seeded:
    """Two accounts; ten final jobs today, three yesterday, one the day before (outside a
    two-day window), three not final; review items (escalations, a sampled one, breaches);
    the usage ledger with evaluation and replay calls; caps and counters; three index moves.
    """
    accounts = Accounts(engine)
    acme, globex = accounts.create_account("acme").id, accounts.create_account("globex").id

    def t(day: int, fraction: float) -> datetime:
        return at(now, day, fraction)

    far = now + timedelta(days=1)
    jobs = [
        # today: answered 3, escalated 4 (one decided answered, one decided rejected),
        # rejected 1, failed 1, cancelled 1
        _job("j1", acme, "answered", t(0, 0.50), feature="support", timings=FAST),
        _job("j2", acme, "answered", t(0, 0.95), feature="support", timings=SLOW),
        _job("j3", acme, "escalated", t(0, 0.30), "low_confidence", "support", timings=ODD),
        _job("j4", acme, "answered", t(0, 0.55), "low_confidence", "sales", by="reviewer:ann"),
        _job("j5", globex, "rejected", t(0, 0.60), "policy", "sales"),
        _job("j6", globex, "escalated", t(0, 0.65), "model_error", "sales"),
        _job("j7", acme, "rejected", t(0, 0.25), "off_topic", "support", by="reviewer:ann"),
        _job("j8", acme, "failed", t(0, 0.70)),
        _job("j9", acme, "cancelled", t(0, 0.75), feature="support"),
        _job("j10", acme, "answered", t(0, 0.80), feature="support"),
        # yesterday: answered 1, escalated 1 (pending), failed 1
        _job("j11", acme, "answered", t(-1, 0.40), feature="support", timings=MIDDLE),
        _job("j12", acme, "escalated", t(-1, 0.50), "no_answer", "support"),
        _job("j13", globex, "failed", t(-1, 0.60)),
        # the day before: outside a two-day window
        _job("j14", acme, "answered", t(-2, 0.50), feature="support", timings=SLOW),
        # not final
        _job("q1", acme, "queued", None, created=t(0, 0.10), dispatched=now, deadline=far),
        _job("q2", globex, "queued", None, created=t(0, 0.20), dispatched=now, deadline=far),
        _job("r1", acme, "running", None, created=t(0, 0.15), dispatched=now, deadline=far),
    ]
    items = [
        _item("j3", acme, "low_confidence", "open", t(0, 0.29), due=t(0, 0.40), breached=True),
        _item("j4", acme, "low_confidence", "decided", t(0, 0.30), due=t(0, 0.60)),
        _item("j6", globex, "model_error", "open", t(0, 0.65), due=far),
        _item("j7", acme, "timeout", "decided", t(0, 0.10), due=t(0, 0.20), breached=True),
        _item("j10", acme, "sampled", "decided", t(0, 0.80), due=far),
        _item("j12", acme, "no_answer", "open", t(-1, 0.50), due=t(-1, 0.60), breached=True),
    ]
    usage = [
        _usage(acme, "support", 120_000, t(0, 0.50)),
        _usage(acme, "support", 30_000, t(0, 0.90)),
        _usage(acme, "sales", 50_000, t(0, 0.55)),
        _usage(globex, "sales", 7_000, t(0, 0.60)),
        _usage(None, "eval", 400_000, t(0, 0.40), kind="eval"),
        _usage(None, "", 1_000, t(0, 0.45), kind="replay"),
        _usage(acme, "support", 200_000, t(-1, 0.40)),
        _usage(None, "eval", 100_000, t(-1, 0.30), kind="eval"),
        _usage(acme, "support", 999, t(-2, 0.50)),
    ]
    today, month = f"{now:%Y-%m-%d}", f"{now:%Y-%m}"
    budgets = [
        BudgetLimit(id="account:globex:daily", limit_micros=250_000),
        BudgetCounter(
            id=f"account:acme:daily:{today}", spent_micros=200_000, reserved_micros=10_000
        ),
        BudgetCounter(id=f"account:acme:monthly:{month}", spent_micros=400_000),
        BudgetCounter(id=f"total:all accounts:daily:{today}", spent_micros=207_000),
    ]
    versions = [
        _version(1, passed=True, built=t(-1, 0.10), by="ann"),
        _version(2, passed=False, built=t(-1, 0.20), by="bob"),
    ]
    moves = [
        IndexPromotion(version=1, action="promote", by="ann", at=t(-1, 0.15)),
        IndexPromotion(
            version=2, previous_version=1, action="promote", by="bob", reason="hotfix",
            forced=True, at=t(-1, 0.25),
        ),
        IndexPromotion(
            version=1, previous_version=2, action="rollback", by="bob", reason="bad answers",
            at=t(0, 0.05),
        ),
    ]  # fmt: skip
    with Session(engine) as session:
        session.add_all(jobs)
        session.flush()
        session.add_all([*items, *usage, *budgets, *versions, *moves])
        session.commit()
    return Seeded(
        now, now.date(), now.date() - timedelta(days=1), acme, globex, t(0, 0.10), t(-1, 0.50)
    )


def _job(
    job_id: str,
    account_id: str,
    status: str,
    finished: datetime | None,
    reason: str | None = None,
    feature: str | None = None,
    *,
    timings: dict[str, float] | None = None,
    by: str | None = None,
    created: datetime | None = None,
    dispatched: datetime | None = None,
    deadline: datetime | None = None,
) -> Job:
    if created is None and finished is not None:
        # A minute before it finished, but on the same day: a test run just after midnight
        # must not find today's jobs submitted yesterday.
        since_midnight = finished - datetime.combine(finished.date(), time(), tzinfo=UTC)
        created = finished - min(timedelta(minutes=1), since_midnight / 2)
    assert created is not None
    return Job(
        id=job_id,
        account_id=account_id,
        request_hash="0" * 64,
        question=f"question of {job_id}",
        feature=feature,
        status=status,
        reason=reason,
        decided_by=by or ("model" if finished else None),
        stage_timings=timings or {},
        created_at=created,
        updated_at=finished or created,
        deadline_at=deadline or created + timedelta(minutes=1),
        dispatched_at=dispatched,
        lease_expires_at=deadline if status == "running" else None,
        finished_at=finished,
    )


def _item(
    job: str,
    account_id: str,
    reason: str,
    status: str,
    created: datetime,
    *,
    due: datetime,
    breached: bool = False,
) -> ReviewItem:
    return ReviewItem(
        job_id=job,
        account_id=account_id,
        reason=reason,
        status=status,
        due_at=due,
        sla_breached=breached,
        created_at=created,
        decision="approve" if status == "decided" else None,
    )


def _usage(
    account_id: str | None, feature: str, cost: int, created: datetime, kind: str = "job"
) -> UsageRecord:
    return UsageRecord(
        kind=kind,
        account_id=account_id,
        feature=feature,
        job_id=uuid.uuid4().hex,
        model_id="gpt-test",
        input_tokens=100,
        output_tokens=10,
        cost_micros=cost,
        created_at=created,
    )


def _version(version: int, *, passed: bool, built: datetime, by: str) -> IndexVersion:
    return IndexVersion(
        version=version,
        collection=f"kb_v{version}",
        status="ready",
        source="examples/handbook",
        document_count=3 * version,
        chunk_count=10 * version,
        embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        embedding_dim=384,
        checks={"passed": passed},
        built_by=by,
        created_at=built - timedelta(minutes=2),
        finished_at=built,
    )
