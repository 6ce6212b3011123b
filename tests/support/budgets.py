"""Budget helpers the budget tests share: a submitted job, the counters and the ledger."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.budget import BudgetBook
from ragline.config import Price
from ragline.jobs import JobRepository
from ragline.models import BudgetCounter, Job, UsageRecord
from ragline.pipeline.validate import JobRequest

LEAVE = "How many days of annual leave do employees get?"
FEATURE = "hr-bot"
DEADLINE = timedelta(minutes=10)
# The fake model server reports this usage for every call.
REPORTED_IN, REPORTED_OUT = 120, 12
FAKE_PRICE = Price(input_per_1k=0.5, output_per_1k=1.0)


def submit_job(
    jobs: JobRepository, account_id: str, question: str = LEAVE, feature: str | None = FEATURE
) -> Job:
    job, created = jobs.submit(
        JobRequest(question=question, user_id="u-1", feature=feature),
        account_id=account_id,
        deadline=DEADLINE,
    )
    assert created
    return job


def budget_counters(engine: Engine) -> dict[str, tuple[int, int]]:
    """Every budget counter: id -> (spent, reserved)."""
    with Session(engine) as session:
        return {
            c.id: (c.spent_micros, c.reserved_micros) for c in session.exec(select(BudgetCounter))
        }


def ledger_rows(engine: Engine) -> list[UsageRecord]:
    with Session(engine) as session:
        return list(session.exec(select(UsageRecord).order_by(col(UsageRecord.id))))


def budget_status(
    book: BudgetBook, account: str, feature: str | None
) -> dict[str, tuple[int, int]]:
    """(spent, reserved) of each budget that applies, keyed `scope:window`."""
    return {
        f"{s.ref.scope}:{s.ref.window}": (s.spent_micros, s.reserved_micros)
        for s in book.status(account, feature)
    }
