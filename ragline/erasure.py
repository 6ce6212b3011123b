"""Erasing a person: everything ragline holds about an end user (`user_id` on their jobs)
goes in one transaction, recorded in the audit trail.

- jobs: deleted with their review items, webhook deliveries and answer-cache entries
  (question, answer, passages, trace, metadata, reviewers' drafts and notes, callback URLs;
  the answer is never given to an equivalent question again);
- evaluation runs: items made from those jobs (a review export turned into a dataset, by
  its `review-<id>` item id or the same question) keep their scores and lose their text;
- the usage ledger keeps its rows (job id, feature, tokens, cost: no personal data), so
  spend still adds up;
- the audit trail names the person by a digest only (ragline.audit.user_ref).

All or nothing: while one of the person's jobs is running, nothing is erased (Conflict);
a job finishes or escalates within its deadline, then the erasure can be run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from ragline import audit
from ragline.audit import Actor
from ragline.errors import Conflict, InvalidInput, NotFound
from ragline.models import Account, EvalRun, Job, JobStatus, ReviewItem
from ragline.retention import delete_jobs

log = structlog.get_logger("ragline.erasure")

ERASED = "[erased]"
ERASED_FIELDS = ("question", "answer", "gold_answer", "draft", "final_answer", "passages")


@dataclass
class Erasure:
    """What was erased, per account."""

    user_ref: str  # the digest the audit trail names the person by (first account's)
    accounts: list[str] = field(default_factory=list)
    jobs: int = 0
    review_items: int = 0
    deliveries: int = 0
    eval_items: int = 0
    audit_seqs: list[int] = field(default_factory=list)


def erase_user(
    engine: Engine, user_id: str, actor: Actor, account_name: str | None = None
) -> Erasure:
    """Erase user_id's data in one account, or in every account (account_name None).
    NotFound when ragline holds nothing about them; Conflict while one of their jobs runs."""
    if not user_id or len(user_id) > 255:
        raise InvalidInput("user_id must be 1-255 characters", field="user_id")
    with Session(engine) as session:
        accounts = _accounts(session, account_name)
        jobs = list(
            session.exec(
                select(Job).where(
                    col(Job.user_id) == user_id, col(Job.account_id).in_(list(accounts))
                )
            )
        )
        if not jobs:
            scope = f"account '{account_name}'" if account_name else "any account"
            raise NotFound(f"no data is held for user '{user_id}' in {scope}")
        running = sum(1 for job in jobs if job.status == JobStatus.RUNNING)
        if running:
            raise Conflict(
                f"{running} of this user's jobs are running; nothing was erased. Erase again "
                "when they end (within the jobs' deadline)"
            )
        ids = [job.id for job in jobs]
        questions = {job.question for job in jobs}
        review_ids = {
            f"review-{item_id}"
            for item_id in session.exec(
                select(ReviewItem.id).where(col(ReviewItem.job_id).in_(ids))
            )
        }
        eval_items = _scrub_eval_runs(session, questions, review_ids)
        deleted = delete_jobs(session, ids)
        erasure = Erasure(user_ref="", eval_items=eval_items)
        erasure.jobs = deleted.get("jobs", 0)
        erasure.review_items = deleted.get("review_items", 0)
        erasure.deliveries = deleted.get("deliveries", 0)
        per_account: dict[str, int] = {}
        for job in jobs:
            per_account[job.account_id] = per_account.get(job.account_id, 0) + 1
        for account_id, count in sorted(per_account.items()):
            ref = audit.user_ref(account_id, user_id)
            erasure.user_ref = erasure.user_ref or ref
            erasure.accounts.append(accounts[account_id])
            entry = audit.append(
                session,
                actor,
                "user.erase",
                ref,
                account_id=account_id,
                after={"jobs": count, "eval_items": eval_items, **deleted},
            )
            erasure.audit_seqs.append(entry.seq)
        session.commit()
    log.info("user_erased", user=erasure.user_ref, jobs=erasure.jobs, eval_items=eval_items)
    return erasure


def _accounts(session: Session, name: str | None) -> dict[str, str]:
    """Account id -> name: the one named (NotFound if unknown) or all."""
    query = select(Account)
    if name is not None:
        query = query.where(col(Account.name) == name)
    found = {account.id: account.name for account in session.exec(query)}
    if name is not None and not found:
        raise NotFound(f"account '{name}' does not exist")
    return found


def _scrub_eval_runs(session: Session, questions: set[str], review_ids: set[str]) -> int:
    """Blank the text of evaluation items made from the person's jobs; their scores stay.
    Runs are scanned whole: there are few, and an item names no user."""
    scrubbed = 0
    for run in session.exec(select(EvalRun)):
        changed = False
        items: list[dict[str, Any]] = []
        for item in run.items:
            if item.get("id") in review_ids or item.get("question") in questions:
                item = {key: _erased(key, value) for key, value in item.items()}
                changed = True
                scrubbed += 1
            items.append(item)
        if changed:
            run.items = items
            flag_modified(run, "items")
            session.add(run)
    return scrubbed


def _erased(key: str, value: Any) -> Any:
    if key not in ERASED_FIELDS or not value:
        return value
    return [] if isinstance(value, list) else ERASED
