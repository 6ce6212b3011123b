"""Cost estimates, budget reservations and the usage ledger.

Money is integer micro-units (1e-6 of the price table's currency). Before a model call the
worst-case cost is reserved against every budget that applies (account and feature, daily
and monthly) in one transaction, each with a single conditional UPDATE

    reserved += cost  WHERE spent + reserved + cost <= limit

so concurrent jobs cannot overshoot a cap: a reservation that does not fit changes nothing.
After the call the actual cost is settled (reserved -= estimate, spent += actual) and the
ledger row is written in the same transaction, so the ledger and the counters agree.

The worst case: prompt tokens are at most the prompt's UTF-8 bytes plus a few tokens of
chat framing per message (true of byte-level BPE tokenizers such as GPT's and Llama 3's),
completion tokens at most max_tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy import bindparam, func, insert, update
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from ragline import audit
from ragline.audit import SYSTEM, Actor
from ragline.config import Budgets, ModelSpec, PerRequest, Price, Windows
from ragline.errors import InvalidInput, OverBudget
from ragline.models import Account, BudgetCounter, BudgetLimit, Job, UsageRecord, utcnow
from ragline.rows import table

log = structlog.get_logger("ragline.budget")

MICROS = 1_000_000
FRAMING_TOKENS_PER_MESSAGE = 8
Window = Literal["daily", "monthly"]
Scope = Literal["account", "feature", "total"]
UNDECLARED = "*"  # the feature every undeclared name of an account is budgeted under
WINDOWS: tuple[Window, ...] = ("daily", "monthly")


def to_micros(amount: float) -> int:
    return math.ceil(round(amount * MICROS, 6))


def from_micros(micros: int) -> float:
    return micros / MICROS


def cost_micros(price: Price, input_tokens: int, output_tokens: int) -> int:
    """Cost of a call, rounded up to the micro-unit."""
    exact = (input_tokens * price.input_per_1k + output_tokens * price.output_per_1k) / 1000
    return to_micros(exact)


def worst_case_input_tokens(messages: Iterable[str]) -> int:
    return sum(len(m.encode("utf-8")) + FRAMING_TOKENS_PER_MESSAGE for m in messages)


@dataclass(frozen=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    cost_micros: int


def estimate(spec: ModelSpec, messages: Iterable[str]) -> Estimate:
    """The worst case of one call; the extractive provider uses no model tokens."""
    if spec.provider == "extractive":
        return Estimate(0, 0, 0)
    input_tokens = worst_case_input_tokens(messages)
    output_tokens = spec.max_tokens
    return Estimate(
        input_tokens, output_tokens, cost_micros(spec.price, input_tokens, output_tokens)
    )


@dataclass(frozen=True)
class BudgetRef:
    """One budget in one window, e.g. feature `acme/support` monthly for 2026-11."""

    scope: Scope
    subject: str
    window: Window
    period: str

    @property
    def limit_id(self) -> str:
        return f"{self.scope}:{self.subject}:{self.window}"

    @property
    def counter_id(self) -> str:
        return f"{self.limit_id}:{self.period}"


def budgets_for(
    account: str, feature: str | None, now: datetime, *, total: bool = False
) -> list[BudgetRef]:
    periods: dict[Window, str] = {"daily": f"{now:%Y-%m-%d}", "monthly": f"{now:%Y-%m}"}
    refs = [BudgetRef("account", account, w, periods[w]) for w in WINDOWS]
    if feature:
        refs += [BudgetRef("feature", f"{account}/{feature}", w, periods[w]) for w in WINDOWS]
    if total:
        refs += [BudgetRef("total", "all accounts", w, periods[w]) for w in WINDOWS]
    # One global order, so two transactions never wait on each other's rows (no deadlock).
    return sorted(refs, key=lambda r: r.counter_id)


@dataclass(frozen=True)
class Usage:
    """One model call's tokens and cost, as the usage ledger records it."""

    job_id: str
    account_id: str
    feature: str | None
    model_id: str
    input_tokens: int
    output_tokens: int
    cost_micros: int


@dataclass(frozen=True)
class Reservation:
    counter_ids: tuple[str, ...]
    cost_micros: int

    def as_dict(self) -> dict[str, Any]:
        return {"counters": list(self.counter_ids), "cost_micros": self.cost_micros}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Reservation:
        return cls(tuple(data["counters"]), int(data["cost_micros"]))


@dataclass(frozen=True)
class BudgetStatus:
    ref: BudgetRef
    limit_micros: int | None
    spent_micros: int
    reserved_micros: int


def check_per_request(per_request: PerRequest, estimate_: Estimate) -> None:
    """The per-request caps: max tokens and max cost of one job."""
    tokens = estimate_.input_tokens + estimate_.output_tokens
    if per_request.max_tokens is not None and tokens > per_request.max_tokens:
        raise OverBudget(
            f"the job may use {tokens} tokens; the per-request cap is {per_request.max_tokens}"
        )
    if per_request.max_cost is not None and estimate_.cost_micros > to_micros(per_request.max_cost):
        raise OverBudget(
            f"the job may cost {from_micros(estimate_.cost_micros):.6f}; "
            f"the per-request cap is {per_request.max_cost}"
        )


class Spending(Protocol):
    """What the pipeline needs of a budget: the production BudgetBook, or an evaluation's
    own capped budget (ragline/evaluation/budget.py) that never touches the accounts'."""

    def check_request(self, estimate_: Estimate) -> None: ...

    def reserve(self, job_id: str, account: str, feature: str | None, cost: int) -> Reservation: ...

    def settle(
        self,
        reservation: Reservation,
        usage: Usage,
    ) -> None: ...

    def release(self, reservation: Reservation, job_id: str) -> None: ...


class BudgetBook:
    """Caps, reservations and the ledger, on the database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, config: Budgets) -> None:
        self.engine = engine
        self.config = config
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    # -- limits -----------------------------------------------------------------------------

    def limit(self, ref: BudgetRef, connection: Connection | None = None) -> int | None:
        """The cap in micros: an admin-set limit, else the config, else none."""
        return self.limits([ref], connection)[ref]

    def limits(
        self, refs: list[BudgetRef], connection: Connection | None = None
    ) -> dict[BudgetRef, int | None]:
        """Each budget's cap (see limit), the admin-set ones read in one query."""
        query = select(BudgetLimit.id, BudgetLimit.limit_micros).where(
            col(BudgetLimit.id).in_([ref.limit_id for ref in refs])
        )
        if connection is not None:
            rows = connection.execute(query).all()
        else:
            with Session(self.engine) as session:
                rows = session.execute(query).all()
        set_by_admin = {limit_id: int(micros) for limit_id, micros in rows}
        return {
            ref: set_by_admin[ref.limit_id]
            if ref.limit_id in set_by_admin
            else self._configured(ref)
            for ref in refs
        }

    def _configured(self, ref: BudgetRef) -> int | None:
        if ref.scope == "total":
            windows: Windows | None = self.config.total
        else:
            table = self.config.accounts if ref.scope == "account" else self.config.features
            name = ref.subject if ref.scope == "account" else ref.subject.split("/", 1)[1]
            windows = table.get(name) or table.get("default")
        value = getattr(windows, ref.window) if windows is not None else None
        return None if value is None else to_micros(value)

    def applicable(
        self,
        account: str,
        feature: str | None,
        now: datetime,
        connection: Connection | None = None,
    ) -> dict[BudgetRef, int | None]:
        """The budgets a job of (account, feature) is charged to, with their caps. A
        feature neither declared in budgets.features nor given a cap of its own by an
        admin is charged to the account's shared `*` feature: inventing names does not
        multiply a budget."""
        total = self.config.total.daily is not None or self.config.total.monthly is not None
        own = budgets_for(account, feature, now, total=total)
        if not feature or feature in self.config.declared_features:
            return self.limits(own, connection)
        capped_by_admin = self._set_by_admin([r for r in own if r.scope == "feature"], connection)
        chosen = own if capped_by_admin else budgets_for(account, UNDECLARED, now, total=total)
        return self.limits(chosen, connection)

    def _set_by_admin(self, refs: list[BudgetRef], connection: Connection | None) -> bool:
        query = select(BudgetLimit.id).where(
            col(BudgetLimit.id).in_([ref.limit_id for ref in refs])
        )
        if connection is not None:
            return connection.execute(query).first() is not None
        with Session(self.engine) as session:
            return session.execute(query).first() is not None

    def set_limit(
        self,
        scope: Scope,
        subject: str,
        window: Window,
        limit: float | None,
        by: str,
        actor: Actor = SYSTEM,
        account_id: str | None = None,
    ) -> None:
        """Set (or with None remove) a cap; account_id is the capped account, for the
        audit trail."""
        limit_id = f"{scope}:{subject}:{window}"
        with Session(self.engine) as session:
            existing = session.get(BudgetLimit, limit_id)
            audit.append(
                session,
                actor,
                "budget.set",
                f"budget:{limit_id}",
                account_id=account_id,
                before={"limit": from_micros(existing.limit_micros) if existing else None},
                after={"limit": limit},
            )
            if limit is None:
                if existing is not None:
                    session.delete(existing)
            elif existing is None:
                session.add(BudgetLimit(id=limit_id, limit_micros=to_micros(limit), updated_by=by))
            else:
                existing.limit_micros = to_micros(limit)
                existing.updated_at = utcnow()
                existing.updated_by = by
                session.add(existing)
            session.commit()

    def status(
        self, account: str, feature: str | None, now: datetime | None = None
    ) -> list[BudgetStatus]:
        limits = self.applicable(account, feature, now or utcnow())
        refs = list(limits)
        with Session(self.engine) as session:
            counters = {
                c.id: c
                for c in session.exec(
                    select(BudgetCounter).where(
                        col(BudgetCounter.id).in_([r.counter_id for r in refs])
                    )
                )
            }
        result = []
        for ref in refs:
            counter = counters.get(ref.counter_id)
            result.append(
                BudgetStatus(
                    ref,
                    limits[ref],
                    counter.spent_micros if counter else 0,
                    counter.reserved_micros if counter else 0,
                )
            )
        return result

    # -- checks, reservations, settlement ---------------------------------------------------------

    def check_request(self, estimate_: Estimate) -> None:
        check_per_request(self.config.per_request, estimate_)

    def precheck(self, account: str, feature: str | None, cost: int) -> None:
        """At admission: refuse a job that cannot fit now (a cap already spent)."""
        for status in self.status(account, feature):
            if status.limit_micros is None:
                continue
            if status.spent_micros + status.reserved_micros + cost > status.limit_micros:
                raise OverBudget(f"the {_describe(status.ref)} budget is spent")

    def reserve(self, job_id: str, account: str, feature: str | None, cost: int) -> Reservation:
        if cost == 0:
            # Nothing to hold (the extractive provider): no cap can refuse it and nothing
            # is owed back if the attempt dies, so the database is not asked.
            return Reservation((), 0)
        now = utcnow()
        with self.engine.begin() as connection:
            limits = self.applicable(account, feature, now, connection)
            refs = list(limits)
            ids = [r.counter_id for r in refs]
            created = False
            for ref in refs:
                limit = limits[ref]
                capped = limit is not None and cost > 0
                params = {"p_id": ref.counter_id, "p_cost": cost, "p_limit": limit, "p_now": now}
                statement = _RESERVE_CAPPED if capped else _RESERVE
                result = connection.execute(statement, params)
                if result.rowcount != 1 and not created:
                    # No counter yet for this window (its first job): create them, try again.
                    self._create_counters(connection, ids)
                    created = True
                    result = connection.execute(statement, params)
                if result.rowcount != 1:
                    raise OverBudget(f"the {_describe(ref)} budget cannot cover this job")
            reservation = Reservation(tuple(ids), cost)
            connection.execute(
                _MARK_RESERVED, {"p_job_id": job_id, "p_reservation": reservation.as_dict()}
            )
        return reservation

    def _create_counters(self, connection: Connection, ids: list[str]) -> None:
        rows = [
            {"id": i, "spent_micros": 0, "reserved_micros": 0, "updated_at": utcnow()} for i in ids
        ]
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(BudgetCounter).values(rows).on_conflict_do_nothing())

    def settle(
        self,
        reservation: Reservation,
        usage: Usage,
    ) -> None:
        spent = usage.cost_micros
        if spent > reservation.cost_micros:
            log.warning(
                "budget_estimate_exceeded",
                job_id=usage.job_id,
                reserved_micros=reservation.cost_micros,
                actual_micros=spent,
            )
        if not reservation.counter_ids and spent == 0:
            # A free call held nothing: only its ledger row, one statement.
            with self._autocommit.connect() as connection:
                connection.execute(_RECORD_USAGE, _ledger_row(usage))
            return
        with self.engine.begin() as connection:
            if self._take(connection, usage.job_id):
                self._unreserve(connection, reservation, spent=spent)
            else:
                # A newer attempt already released this reservation (our lease ran out while
                # the model answered). The money is spent all the same: count it.
                log.warning("budget_settled_after_release", job_id=usage.job_id)
                self._unreserve(connection, Reservation(reservation.counter_ids, 0), spent)
            connection.execute(_RECORD_USAGE, _ledger_row(usage))

    def release(self, reservation: Reservation, job_id: str) -> None:
        """Give back a reservation whose call did not happen or failed without usage; only
        once, whoever asks (the attempt itself or a newer attempt cleaning up after it)."""
        with self.engine.begin() as connection:
            if self._take(connection, job_id):
                self._unreserve(connection, reservation, spent=0)

    @staticmethod
    def _take(connection: Connection, job_id: str) -> bool:
        """Clear the job's reservation marker; True if this call is the one that did."""
        result = connection.execute(_TAKE, {"p_job_id": job_id})
        return bool(result.rowcount == 1)

    @staticmethod
    def _unreserve(connection: Connection, reservation: Reservation, spent: int) -> None:
        now = utcnow()
        cost = reservation.cost_micros
        for counter_id in sorted(reservation.counter_ids):  # one lock order: no deadlock
            connection.execute(
                _UNRESERVE, {"p_id": counter_id, "p_cost": cost, "p_spent": spent, "p_now": now}
            )

    # -- reporting --------------------------------------------------------------------------------

    def usage(
        self,
        group_by: Literal["feature", "account", "model", "kind"],
        *,
        account_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Calls, tokens and cost grouped. Without account_id, evaluation and replay calls
        (no account) are included: by account they show as `(eval)` and `(replay)`."""
        column: Any = {
            "feature": col(UsageRecord.feature),
            "account": func.coalesce(col(Account.name), "(" + col(UsageRecord.kind) + ")"),
            "model": col(UsageRecord.model_id),
            "kind": col(UsageRecord.kind),
        }[group_by]
        query = (
            sql_select(
                column,
                func.count(),
                func.sum(UsageRecord.input_tokens),
                func.sum(UsageRecord.output_tokens),
                func.sum(UsageRecord.cost_micros),
            )
            .outerjoin(Account, col(Account.id) == col(UsageRecord.account_id))
            .group_by(column)
            .order_by(column)
        )
        if account_id is not None:
            query = query.where(col(UsageRecord.account_id) == account_id)
        if start is not None:
            query = query.where(col(UsageRecord.created_at) >= start)
        if end is not None:
            if start is not None and end <= start:
                raise InvalidInput("'to' must be after 'from'", field="to")
            query = query.where(col(UsageRecord.created_at) < end)
        with Session(self.engine) as session:
            rows = session.execute(query).all()
        return [
            {
                group_by: key,
                "calls": int(calls),
                "input_tokens": int(tokens_in or 0),
                "output_tokens": int(tokens_out or 0),
                "cost": from_micros(int(cost or 0)),
                "cost_micros": int(cost or 0),
            }
            for key, calls, tokens_in, tokens_out, cost in rows
        ]


def _ledger_row(usage: Usage) -> dict[str, Any]:
    return {**asdict(usage), "feature": usage.feature or "", "created_at": utcnow()}


def _describe(ref: BudgetRef) -> str:
    return f"{ref.window} {ref.scope} '{ref.subject}'"


# The statements of every model call (reserve, settle, release), built once: SQLAlchemy
# caches their compiled form, where building them per call cost more than running them.
_COUNTERS = table(BudgetCounter)
_JOBS = table(Job)
_RESERVE = (
    update(_COUNTERS)
    .where(_COUNTERS.c.id == bindparam("p_id"))
    .values(
        reserved_micros=_COUNTERS.c.reserved_micros + bindparam("p_cost"),
        updated_at=bindparam("p_now"),
    )
)
_RESERVE_CAPPED = _RESERVE.where(
    _COUNTERS.c.spent_micros + _COUNTERS.c.reserved_micros + bindparam("p_cost")
    <= bindparam("p_limit")
)
_UNRESERVE = (
    update(_COUNTERS)
    .where(_COUNTERS.c.id == bindparam("p_id"))
    .values(
        reserved_micros=_COUNTERS.c.reserved_micros - bindparam("p_cost"),
        spent_micros=_COUNTERS.c.spent_micros + bindparam("p_spent"),
        updated_at=bindparam("p_now"),
    )
)
_MARK_RESERVED = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("p_job_id"))
    .values(reservation=bindparam("p_reservation"))
)
_TAKE = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("p_job_id"), _JOBS.c.reservation.is_not(None))
    .values(reservation=None)
)
_RECORD_USAGE = insert(table(UsageRecord))
