"""An evaluation's own budget: one cap for the whole run, kept in memory. The accounts'
budgets are never touched, so an evaluation cannot starve production traffic; its calls
are written to the usage ledger under their own kind (`eval`, `replay`) and no account, so
the money still shows in `/v1/usage` and `ragline usage` without being anyone's spend."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ragline.budget import Estimate, Reservation, Usage, check_per_request
from ragline.config import PerRequest
from ragline.models import UsageRecord, utcnow


class EvalBudgetSpent(RuntimeError):
    """The run's budget cannot cover the next call: the run stops (it is not a job outcome,
    so the pipeline does not turn it into an over_budget escalation)."""


class EvalBudget:
    def __init__(
        self,
        cap_micros: int | None,
        per_request: PerRequest,
        ledger: Engine | None = None,
        kind: Literal["eval", "replay"] = "eval",
    ) -> None:
        """ledger: the database whose usage ledger records the calls (None: nowhere)."""
        self.cap_micros = cap_micros
        self.per_request = per_request
        self.ledger = ledger
        self.kind = kind
        self.spent_micros = 0
        self.reserved_micros = 0
        self.by_job: dict[str, int] = {}

    def check_request(self, estimate_: Estimate) -> None:
        # The per-request caps are part of how the pipeline routes a job: keep them.
        check_per_request(self.per_request, estimate_)

    def reserve(self, job_id: str, account: str, feature: str | None, cost: int) -> Reservation:
        committed = self.spent_micros + self.reserved_micros
        if self.cap_micros is not None and cost > 0 and committed + cost > self.cap_micros:
            raise EvalBudgetSpent(
                f"the evaluation budget ({self.cap_micros / 1_000_000:g}) cannot cover the "
                f"next call (spent {self.spent_micros / 1_000_000:.6f})"
            )
        self.reserved_micros += cost
        return Reservation((), cost)

    def settle(
        self,
        reservation: Reservation,
        usage: Usage,
    ) -> None:
        self.reserved_micros -= reservation.cost_micros
        self.spent_micros += usage.cost_micros
        self.by_job[usage.job_id] = self.by_job.get(usage.job_id, 0) + usage.cost_micros
        if self.ledger is not None:
            with Session(self.ledger) as session:
                session.add(
                    UsageRecord(
                        kind=self.kind,
                        account_id=None,
                        feature=usage.feature or "",
                        job_id=usage.job_id,
                        model_id=usage.model_id,
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cost_micros=usage.cost_micros,
                        created_at=utcnow(),
                    )
                )
                session.commit()

    def release(self, reservation: Reservation, job_id: str) -> None:
        self.reserved_micros -= reservation.cost_micros
