"""The review workflow: a queue ordered by priority and due time, claims that are leases,
decisions that deliver, service levels that act by themselves, and every decision kept as
a labelled example.

Claims and decisions are single conditional UPDATEs, so two reviewers racing for one item
get exactly one winner on any database, and a decision only lands while its claim holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Text, and_, cast, func, insert, or_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from ragline import audit, metrics
from ragline.accounts import Principal
from ragline.audit import Actor
from ragline.cache.answers import record_decision
from ragline.config import Review
from ragline.db import BIGINT_MAX
from ragline.delivery import add_result_delivery
from ragline.errors import Conflict, InvalidInput, NotFound
from ragline.models import (
    PRIORITIES,
    ApiKey,
    Decision,
    Job,
    JobStatus,
    ReviewItem,
    ReviewStatus,
    utcnow,
)
from ragline.provenance import Versions
from ragline.reasons import ReviewReason
from ragline.rows import table, values
from ragline.visibility import may_read

log = structlog.get_logger("ragline.review")

SLA_EXPIRED = "sla_expired"


def sla(config: Review, reason: str) -> timedelta:
    by_reason: dict[str, float] = {str(k): v for k, v in config.sla_minutes.items()}
    return timedelta(minutes=by_reason.get(reason, config.default_sla_minutes))


def open_item(
    connection: Connection,
    job: Job,
    reason: str,
    draft: str | None,
    due_at: datetime | None,
    now: datetime,
) -> None:
    """A job's review item, written in the caller's transaction (the worker's outcome), so
    an escalated job is never missing from the queue."""
    item = ReviewItem(
        job_id=job.id,
        account_id=job.account_id,
        reason=reason,
        priority=PRIORITIES.get(job.priority, 1),
        due_at=due_at,
        draft_answer=draft,
        created_at=now,
    )
    connection.execute(insert(table(ReviewItem)), values(item))


@dataclass(frozen=True)
class QueueFilter:
    reason: str | None = None
    feature: str | None = None
    overdue: bool | None = None
    status: str = "pending"  # pending (open or claimed) | open | claimed | decided | all
    text: str | None = None  # in the question or the draft, any case
    document: str | None = None  # a document id among the job's passages


def _claim_is_live(now: datetime) -> Any:
    return and_(
        col(ReviewItem.status) == ReviewStatus.CLAIMED, col(ReviewItem.claim_expires_at) > now
    )


def _is_open(now: datetime) -> Any:
    """Open, or claimed with an expired claim (the item is back in the queue)."""
    return or_(
        col(ReviewItem.status) == ReviewStatus.OPEN,
        and_(
            col(ReviewItem.status) == ReviewStatus.CLAIMED,
            col(ReviewItem.claim_expires_at) <= now,
        ),
    )


class ReviewQueue:
    def __init__(self, engine: Engine, config: Review) -> None:
        self.engine = engine
        self.config = config

    # -- reading -------------------------------------------------------------------------

    def list(
        self,
        account_id: str | None,
        filters: QueueFilter = QueueFilter(),
        limit: int = 50,
        offset: int = 0,
        *,
        reader: Principal | None = None,
    ) -> list[tuple[ReviewItem, Job]]:
        """Most urgent first: priority, then the earliest due time, then the oldest. With a
        reader, items whose job it may not read are left out (a page may then hold fewer
        than `limit`)."""
        now = utcnow()
        query = select(ReviewItem, Job).join(Job, col(Job.id) == col(ReviewItem.job_id))
        if account_id is not None:
            query = query.where(col(ReviewItem.account_id) == account_id)
        if filters.status == "pending":
            query = query.where(col(ReviewItem.status) != ReviewStatus.DECIDED)
        elif filters.status == "open":
            query = query.where(_is_open(now))
        elif filters.status == "claimed":
            query = query.where(_claim_is_live(now))
        elif filters.status == "decided":
            query = query.where(col(ReviewItem.status) == ReviewStatus.DECIDED)
        elif filters.status != "all":
            raise InvalidInput(
                "status must be pending, open, claimed, decided or all", field="status"
            )
        if filters.reason:
            query = query.where(col(ReviewItem.reason) == filters.reason)
        if filters.feature:
            query = query.where(col(Job.feature) == filters.feature)
        if filters.text:
            wanted = filters.text.lower()
            query = query.where(
                or_(
                    func.lower(col(Job.question)).contains(wanted, autoescape=True),
                    func.lower(col(ReviewItem.draft_answer)).contains(wanted, autoescape=True),
                )
            )
        if filters.document:
            # The stored JSON holds the id (a superset of the jobs that cite it); the exact
            # match is checked on the rows.
            query = query.where(
                cast(col(Job.passages), Text).contains(filters.document, autoescape=True)
            )
        if filters.overdue is not None:
            late = col(ReviewItem.due_at) < now
            on_time = or_(col(ReviewItem.due_at) >= now, col(ReviewItem.due_at).is_(None))
            query = query.where(late if filters.overdue else on_time)
        query = query.order_by(
            col(ReviewItem.priority).desc(),
            col(ReviewItem.due_at).is_(None),  # items without a due time last, on any database
            col(ReviewItem.due_at),
            col(ReviewItem.created_at),
            col(ReviewItem.id),
        )
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(query.limit(limit).offset(offset))
            return [
                (i, j)
                for i, j in rows
                if (reader is None or may_read(reader, j)) and _cites(j, filters.document)
            ]

    def get(
        self, item_id: int, account_id: str | None, *, reader: Principal | None = None
    ) -> tuple[ReviewItem, Job]:
        """With a reader, an item whose job it may not read is NotFound like a missing one."""
        if not 0 < item_id <= BIGINT_MAX:  # no row has such an id; the database can't look
            raise NotFound(f"review item {item_id} not found")
        with Session(self.engine, expire_on_commit=False) as session:
            item = session.get(ReviewItem, item_id)
            if item is None or (account_id is not None and item.account_id != account_id):
                raise NotFound(f"review item {item_id} not found")
            job = session.get(Job, item.job_id)
            assert job is not None
        if reader is not None and not may_read(reader, job):
            raise NotFound(f"review item {item_id} not found")
        return item, job

    # -- claiming ------------------------------------------------------------------------

    def claim(self, item_id: int, reviewer: Principal) -> ReviewItem:
        """Take the item for claim_minutes (or extend one's own claim). Conflict when
        another reviewer holds it or it is decided."""
        self.get(item_id, reviewer.visible_account, reader=reviewer)  # 404 before 409
        now = utcnow()
        claimable = or_(
            _is_open(now),
            and_(_claim_is_live(now), col(ReviewItem.claimed_by) == reviewer.key_id),
        )
        claimed, item = self._move(
            item_id,
            reviewer,
            "review.claim",
            claimable,
            status=ReviewStatus.CLAIMED,
            claimed_by=reviewer.key_id,
            claimed_by_name=self.reviewer_name(reviewer),
            claim_expires_at=now + timedelta(minutes=self.config.claim_minutes),
        )
        if not claimed:
            raise self._conflict(item)
        log.info("review_claimed", item_id=item_id, key_id=reviewer.key_id)
        return item

    def release(self, item_id: int, reviewer: Principal) -> ReviewItem:
        """Give a claim back before it expires."""
        self.get(item_id, reviewer.visible_account, reader=reviewer)
        held = and_(_claim_is_live(utcnow()), col(ReviewItem.claimed_by) == reviewer.key_id)
        released, item = self._move(
            item_id,
            reviewer,
            "review.release",
            held,
            status=ReviewStatus.OPEN,
            claimed_by=None,
            claim_expires_at=None,
        )
        if not released:
            raise Conflict("you do not hold a claim on this item")
        return item

    def _move(
        self,
        item_id: int,
        reviewer: Principal,
        action: str,
        condition: ColumnElement[bool],
        **values: Any,
    ) -> tuple[bool, ReviewItem]:
        """Set `values` on the item only if `condition` still holds (one UPDATE, so two
        reviewers cannot both win), auditing the move in the same transaction; returns
        whether it moved and the item as it now is."""
        with Session(self.engine, expire_on_commit=False) as session:
            result = session.execute(
                update(ReviewItem).where(col(ReviewItem.id) == item_id, condition).values(**values)
            )
            moved = result.rowcount == 1  # type: ignore[attr-defined]
            item = session.get(ReviewItem, item_id)
            assert item is not None
            if moved:
                audit.append(
                    session, reviewer.actor, action, f"review:{item_id}", account_id=item.account_id
                )
            session.commit()
        return moved, item

    # -- deciding ------------------------------------------------------------------------

    def decide(
        self,
        item_id: int,
        reviewer: Principal,
        decision: Decision,
        *,
        answer: str | None = None,
        reason_code: str | None = None,
        note: str | None = None,
    ) -> tuple[ReviewItem, Job]:
        """Decide an item the reviewer holds a live claim on. Escalations: approve delivers
        the draft, edit the reviewer's answer, reject the fallback answer with a reason
        code. Sampled answers (already delivered): good or bad, with an optional
        correction. The job, the item and the webhook delivery change in one transaction."""
        item, job = self.get(item_id, reviewer.visible_account, reader=reviewer)
        now = utcnow()
        if not (
            item.claim_live(now) and item.claimed_by == reviewer.key_id
        ):  # the state is the first thing wrong (409), before the input (422)
            raise self._conflict(item, deciding=True)
        final = self._check(item, decision, answer, reason_code)
        by = f"reviewer:{self.reviewer_name(reviewer)}"
        with Session(self.engine, expire_on_commit=False) as session:
            result = session.execute(
                update(ReviewItem)
                .where(
                    col(ReviewItem.id) == item_id,
                    _claim_is_live(now),
                    col(ReviewItem.claimed_by) == reviewer.key_id,
                )
                .values(
                    status=ReviewStatus.DECIDED,
                    decision=decision.value,
                    final_answer=final,
                    reason_code=reason_code,
                    note=note,
                    decided_by=by,
                    decided_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                current = session.get(ReviewItem, item_id)
                assert current is not None
                raise self._conflict(current, deciding=True)
            job_status = job.status
            if item.reason != ReviewReason.SAMPLED:
                self._settle_job(session, job, decision, final, reason_code, by, now)
            # What equivalent questions get next (the answer cache): this decision.
            record_decision(session, job.id, decision.value, final, note)
            audit.append(
                session,
                reviewer.actor,
                "review.decide",
                f"review:{item_id}",
                account_id=item.account_id,
                before={"job_status": job_status},
                after={
                    "decision": decision.value,
                    "reason_code": reason_code,
                    "answer_edited": answer is not None,
                    "job": job.id,
                },
            )
            session.commit()
        log.info("review_decided", item_id=item_id, decision=decision.value, key_id=reviewer.key_id)
        metrics.REVIEW_DECISIONS.labels(decision.value).inc()
        return self.get(item_id, None)

    def _check(
        self, item: ReviewItem, decision: Decision, answer: str | None, reason_code: str | None
    ) -> str | None:
        """The final answer the decision delivers (None for a sampled verdict without
        correction); InvalidInput when the decision does not fit the item."""
        sampled = item.reason == ReviewReason.SAMPLED
        allowed = (
            (Decision.GOOD, Decision.BAD)
            if sampled
            else (
                Decision.APPROVE,
                Decision.EDIT,
                Decision.REJECT,
            )
        )
        if decision not in allowed:
            names = ", ".join(d.value for d in allowed)
            raise InvalidInput(
                f"{'a sampled' if sampled else 'an escalated'} item is decided with {names}",
                field="decision",
            )
        if answer is not None and not answer.strip():
            raise InvalidInput("the answer must not be empty", field="answer")
        if decision == Decision.EDIT and answer is None:
            raise InvalidInput("edit needs the answer to deliver", field="answer")
        if decision == Decision.REJECT:
            if reason_code not in self.config.reject_codes:
                codes = ", ".join(self.config.reject_codes)
                raise InvalidInput(
                    f"reject needs a reason_code: one of {codes}", field="reason_code"
                )
            return self.config.fallback_answer
        if decision == Decision.APPROVE:
            if not item.draft_answer:
                raise InvalidInput("there is no draft to approve; edit instead", field="decision")
            return item.draft_answer
        return answer.strip() if answer is not None else None

    @staticmethod
    def _settle_job(
        session: Session,
        job: Job,
        decision: Decision,
        final: str | None,
        reason_code: str | None,
        by: str,
        now: datetime,
    ) -> None:
        rejected = decision == Decision.REJECT
        status = JobStatus.REJECTED if rejected else JobStatus.ANSWERED
        result = session.execute(
            update(Job)
            .where(col(Job.id) == job.id, col(Job.status) == JobStatus.ESCALATED)
            .values(
                status=status,
                reason=reason_code if rejected else job.reason,
                answer=final,
                # An edited answer cites what the reviewer wrote, not the model's passages.
                citations=job.citations if decision == Decision.APPROVE else [],
                decided_by=by,
                updated_at=now,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"job {job.id} is no longer waiting for review ({job.status})")
        add_result_delivery(session, job, status)

    # -- service levels --------------------------------------------------------------------

    def enforce_sla(self) -> int:
        """Flag every pending item past its due time (once) and apply on_sla_breach;
        returns how many were newly flagged. Run by the sweeper. Under deliver_fallback a
        reviewer's live claim holds the fallback back (the item is flagged); it is
        delivered at the first sweep after the claim lapses."""
        now = utcnow()
        delivering = self.config.on_sla_breach == "deliver_fallback"
        pending = [
            col(ReviewItem.status) != ReviewStatus.DECIDED,
            col(ReviewItem.due_at) < now,
        ]
        not_flagged = col(ReviewItem.sla_breached) == False  # noqa: E712 (SQL)
        waiting = (
            or_(not_flagged, col(ReviewItem.reason) != ReviewReason.SAMPLED)
            if delivering
            else not_flagged
        )
        with Session(self.engine) as session:
            ids = list(session.exec(select(ReviewItem.id).where(*pending, waiting)))
        flagged = sum(self._breach(item_id, now) for item_id in ids if item_id is not None)
        if flagged:
            log.warning("review_sla_breached", count=flagged, action=self.config.on_sla_breach)
            metrics.SLA_BREACHES.inc(flagged)
        return flagged

    def _breach(self, item_id: int, now: datetime) -> bool:
        """Apply the breach action to one item; True when it was newly flagged."""
        action = self.config.on_sla_breach
        with Session(self.engine) as session:
            item = session.get(ReviewItem, item_id)
            if item is None or item.status == ReviewStatus.DECIDED:
                return False
            newly = not item.sla_breached
            deliver = (
                action == "deliver_fallback"
                and item.reason != ReviewReason.SAMPLED
                and not item.claim_live(now)
            )
            if not deliver and not newly:
                return False
            values: dict[str, Any] = {"sla_breached": True}
            condition = [
                col(ReviewItem.id) == item_id,
                col(ReviewItem.status) != ReviewStatus.DECIDED,
            ]
            if action == "raise_priority":
                values["priority"] = PRIORITIES["high"]
            if deliver:
                values.update(
                    status=ReviewStatus.DECIDED,
                    decision=Decision.REJECT.value,
                    final_answer=self.config.fallback_answer,
                    reason_code=SLA_EXPIRED,
                    decided_by="system:sla",
                    decided_at=now,
                )
                condition.append(~_claim_is_live(now))  # a reviewer may have just claimed it
            else:
                condition.append(col(ReviewItem.sla_breached) == False)  # noqa: E712 (SQL)
            result = session.execute(update(ReviewItem).where(*condition).values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return False
            if deliver:
                job = session.get(Job, item.job_id)
                assert job is not None
                self._settle_job(
                    session,
                    job,
                    Decision.REJECT,
                    self.config.fallback_answer,
                    SLA_EXPIRED,
                    "system:sla",
                    now,
                )
                audit.append(
                    session,
                    Actor.system("sla"),
                    "review.sla_fallback",
                    f"review:{item_id}",
                    account_id=item.account_id,
                    after={"decision": Decision.REJECT.value, "reason_code": SLA_EXPIRED},
                )
            session.commit()
        return newly

    # -- labelled examples -----------------------------------------------------------------

    def examples(
        self,
        account_id: str | None,
        since: datetime | None = None,
        *,
        reader: Principal | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every decision as an evaluation example (the eval dataset format): question,
        passages, draft, final answer, verdict; with a reader, only jobs it may read."""
        query = (
            select(ReviewItem, Job)
            .join(Job, col(Job.id) == col(ReviewItem.job_id))
            .where(col(ReviewItem.status) == ReviewStatus.DECIDED)
        )
        if account_id is not None:
            query = query.where(col(ReviewItem.account_id) == account_id)
        if since is not None:
            query = query.where(col(ReviewItem.decided_at) >= since)
        with Session(self.engine) as session:
            for item, job in session.exec(query.order_by(col(ReviewItem.decided_at))):
                if reader is not None and not may_read(reader, job):
                    continue
                good = item.decision in (Decision.APPROVE, Decision.GOOD)
                yield {
                    "id": f"review-{item.id}",
                    "question": job.question,
                    "gold_documents": sorted({p["document_id"] for p in job.citations})
                    if good
                    else [],
                    "gold_answer": item.final_answer or (job.answer if good else None),
                    "expected": "answered"
                    if item.decision in (Decision.APPROVE, Decision.EDIT, Decision.GOOD)
                    else "escalated",
                    "tags": [item.reason, f"decision:{item.decision}"]
                    + ([f"code:{item.reason_code}"] if item.reason_code else []),
                    "passages": job.passages,
                    "draft": item.draft_answer,
                    "final_answer": item.final_answer,
                    "verdict": item.decision,
                    "note": item.note,
                    "versions": Versions.of(job).as_dict(),
                    "decided_by": item.decided_by,
                    "decided_at": item.decided_at.isoformat() if item.decided_at else None,
                }

    # -- helpers -----------------------------------------------------------------------------

    def reviewer_name(self, reviewer: Principal) -> str:
        with Session(self.engine) as session:
            key = session.get(ApiKey, reviewer.key_id)
        return (key.name if key is not None and key.name else None) or f"key {reviewer.key_id}"

    @staticmethod
    def _conflict(item: ReviewItem, deciding: bool = False) -> Conflict:
        if item.status == ReviewStatus.DECIDED:
            return Conflict(f"review item {item.id} was already decided ({item.decision})")
        if item.claim_live(utcnow()) and item.claim_expires_at is not None:
            until = item.claim_expires_at.isoformat(timespec="seconds")
            return Conflict(
                f"review item {item.id} is claimed by {item.claimed_by_name} until {until}"
            )
        if deciding:
            return Conflict(f"claim review item {item.id} before deciding it")
        return Conflict(f"review item {item.id} cannot be claimed now")


def _cites(job: Job, document: str | None) -> bool:
    return not document or any(p.get("document_id") == document for p in job.passages)
