"""The answer cache: earlier final answers offered to equivalent questions.

An entry is a job's final answer with the question's vector, under a key that digests the
versions which produced it (feature, prompt, model, index, decision scorer). A lookup
compares a new question with the newest entries under the active key in its account
(cosine first, then the constraints: ragline/cache/equivalence.py) and re-reads the
matching entries and their jobs from the database, which decides:

- a reviewer's decision beats the model's answer: the newest decided entry (approved or
  edited: served as canonical; rejected: never served, the job escalates with the note);
- otherwise the newest model answer;
- only where the asking key could have retrieved every passage of the source job, and
  the source job's key could read every document group the asking key can;
- a source job that was deleted or erased (or cannot be read) is a miss.

The vectors live in each process (a bucket per account and key, refreshed with the rows
added since); the database stays the system of record. Any failure of the lookup is a miss:
the job goes on without the cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import structlog
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline import metrics
from ragline.cache.equivalence import Parsed, compare, parse
from ragline.config import AnswerCache as CacheConfig
from ragline.knowledge.embedder import Embedder
from ragline.models import CacheEntry, CacheState, Job, JobStatus, UsageRecord, utcnow
from ragline.visibility import groups_may_read

log = structlog.get_logger("ragline.cache")

MAX_BUCKETS = 256  # (account, key) pairs kept in memory; the least recently asked go first
MAX_EQUIVALENTS = 16  # closest equivalents re-read from the database per lookup


def cache_key(
    feature: str | None,
    prompt_version: str | None,
    model_id: str | None,
    index_version: str | None,
    scorer_version: str | None,
) -> str | None:
    """The versions an answer was produced under, as one digest; None when one is unknown
    (nothing is cached without knowing what produced it)."""
    parts = (prompt_version, model_id, index_version)
    if any(not part for part in parts):
        return None
    text = "\x1f".join((feature or "", *[p or "" for p in parts], scorer_version or ""))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Found:
    """An entry equivalent to the question, with its source job as stored now."""

    entry: CacheEntry
    job: Job
    similarity: float

    @property
    def answer(self) -> str | None:
        return self.entry.answer or self.job.answer


@dataclass(frozen=True)
class Lookup:
    hit: Found | None = None  # the answer to give
    rejected: Found | None = None  # a reviewer rejected this question's answer: escalate


@dataclass
class _Bucket:
    """One account's entries under one key, in this process: ids ascending."""

    ids: list[int] = field(default_factory=list)
    created: list[datetime] = field(default_factory=list)
    questions: list[Parsed] = field(default_factory=list)
    vectors: np.ndarray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0

    def add(self, rows: Sequence[tuple[int, datetime, str, bytes]], limit: int) -> None:
        if not rows:
            return
        added = np.stack([np.frombuffer(vector, dtype=np.float32) for *_, vector in rows])
        self.vectors = added if self.vectors is None else np.vstack([self.vectors, added])
        for entry_id, created, question, _ in rows:
            self.ids.append(entry_id)
            self.created.append(created)
            self.questions.append(parse(question))
        if len(self.ids) > limit:
            cut = len(self.ids) - limit
            del self.ids[:cut], self.created[:cut], self.questions[:cut]
            self.vectors = self.vectors[cut:]

    def drop(self, entry_ids: set[int]) -> None:
        keep = [i for i, entry_id in enumerate(self.ids) if entry_id not in entry_ids]
        self.ids = [self.ids[i] for i in keep]
        self.created = [self.created[i] for i in keep]
        self.questions = [self.questions[i] for i in keep]
        self.vectors = None if not keep or self.vectors is None else self.vectors[keep]


class AnswerCache:
    def __init__(self, engine: Engine, config: CacheConfig, embedder: Embedder) -> None:
        self.engine, self.config, self.embedder = engine, config, embedder
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def applies(self, job: Job) -> bool:
        return job.use_cache and self.config.applies(job.feature)

    # -- finding ---------------------------------------------------------------------------

    def lookup(self, job: Job, question: str, vector: np.ndarray, key: str) -> Lookup:
        """What the cache holds for this job's question under key. Never raises: a failure
        is a miss (logged and counted)."""
        try:
            found = self.equivalents(job, question, vector, key)
        except Exception as error:
            log.warning("cache_lookup_failed", error=type(error).__name__)
            metrics.CACHE_LOOKUPS.labels("error").inc()
            return Lookup()
        decided = sorted(
            (f for f in found if f.entry.state in (CacheState.REVIEWED, CacheState.REJECTED)),
            key=lambda f: f.entry.decided_at or f.entry.created_at,
            reverse=True,
        )
        if decided:
            newest = decided[0]
            if newest.entry.state == CacheState.REJECTED:
                metrics.CACHE_LOOKUPS.labels("rejected").inc()
                return Lookup(rejected=newest)
            metrics.CACHE_LOOKUPS.labels("hit").inc()
            return Lookup(hit=newest)
        answered = [f for f in found if f.entry.state == CacheState.ANSWERED]
        if answered:
            metrics.CACHE_LOOKUPS.labels("hit").inc()
            return Lookup(hit=max(answered, key=lambda f: f.entry.id or 0))
        metrics.CACHE_LOOKUPS.labels("miss").inc()
        return Lookup()

    def equivalents(self, job: Job, question: str, vector: np.ndarray, key: str) -> list[Found]:
        """Entries under key, in the job's account, equivalent to question, younger than
        max_age, whose source job the job's groups could have read, closest first."""
        bucket = self._refresh(job.account_id, key)
        with bucket.lock:
            if bucket.vectors is None or not bucket.ids:
                return []
            similarity = bucket.vectors @ np.asarray(vector, dtype=np.float32)
            cutoff = utcnow() - timedelta(hours=self.config.max_age_hours)
            order = np.argsort(-similarity)
            asked = parse(question)
            matches: dict[int, float] = {}
            for index in order:
                cosine = float(similarity[index])
                if cosine < self.config.similarity or len(matches) >= MAX_EQUIVALENTS:
                    break
                if bucket.created[index] < cutoff:
                    continue
                judged = compare(
                    asked, bucket.questions[index], cosine, self.config.similarity, self._words
                )
                if judged.equivalent:
                    matches[bucket.ids[index]] = cosine
        if not matches:
            return []
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(
                select(CacheEntry, Job)
                .join(Job, col(Job.id) == col(CacheEntry.job_id), isouter=True)
                .where(col(CacheEntry.id).in_(list(matches)))
            ).all()
        gone = set(matches) - {entry.id for entry, _ in rows if entry.id is not None}
        if gone:  # cleared, or the job deleted or erased since this process loaded it
            with bucket.lock:
                bucket.drop(gone)
        found = [
            Found(entry, source, matches[entry.id or 0])
            for entry, source in rows
            if source is not None
            and source.account_id == job.account_id
            and source.id != job.id
            and groups_may_read(job.groups, source)
            # and the source's asker could read all the asker can now: an answer made from
            # fewer documents is not given to a key that would retrieve more.
            and set(job.groups) <= set(source.groups)
            and (entry.state in (CacheState.REJECTED, CacheState.PENDING) or _servable(source))
        ]
        return sorted(found, key=lambda f: -f.similarity)

    def _refresh(self, account_id: str, key: str) -> _Bucket:
        with self._lock:
            bucket = self._buckets.pop((account_id, key), None) or _Bucket()
            self._buckets[(account_id, key)] = bucket
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        with bucket.lock:
            query = (
                select(CacheEntry.id, CacheEntry.created_at, CacheEntry.question, CacheEntry.vector)
                .where(
                    col(CacheEntry.account_id) == account_id,
                    col(CacheEntry.key) == key,
                    col(CacheEntry.id) > bucket.last_id,
                )
                .order_by(col(CacheEntry.id).desc())
                .limit(self.config.max_entries)
            )
            with Session(self.engine) as session:
                rows = list(reversed(session.exec(query).all()))
            bucket.add([(r[0] or 0, r[1], r[2], r[3]) for r in rows], self.config.max_entries)
        return bucket

    def _words(self, words: Sequence[str]) -> np.ndarray:
        return self.embedder.embed(list(words))

    # -- storing ---------------------------------------------------------------------------

    def remember(self, job: Job, vector: np.ndarray, key: str, state: CacheState) -> None:
        """Offer the finished job's answer to equivalent questions (state ANSWERED), or keep
        its question for a reviewer's decision (PENDING). Best effort: a failure is logged,
        the job is already finished."""
        try:
            with Session(self.engine) as session:
                cost = session.exec(
                    select(func.coalesce(func.sum(UsageRecord.cost_micros), 0)).where(
                        col(UsageRecord.job_id) == job.id
                    )
                ).one()
                session.add(
                    CacheEntry(
                        account_id=job.account_id,
                        key=key,
                        job_id=job.id,
                        question=job.question,
                        vector=np.asarray(vector, dtype=np.float32).tobytes(),
                        state=state,
                        cost_micros=int(cost),
                    )
                )
                session.commit()
        except Exception as error:
            log.warning("cache_store_failed", error=type(error).__name__)

    def served(self, found: Found) -> None:
        """Count a hit on its entry (the operator's views sum them)."""
        try:
            with Session(self.engine) as session:
                session.execute(
                    update(CacheEntry)
                    .where(col(CacheEntry.id) == found.entry.id)
                    .values(served=CacheEntry.served + 1)
                )
                session.commit()
        except Exception as error:
            log.warning("cache_count_failed", error=type(error).__name__)
        metrics.CACHE_SAVED.inc(found.entry.cost_micros / 1_000_000)


def _servable(job: Job) -> bool:
    return job.status == JobStatus.ANSWERED and bool(job.answer)


def record_decision(
    session: Session, job_id: str, decision: str, final: str | None, note: str | None
) -> None:
    """A reviewer decided job_id (in the review's transaction): approve, edit and good make
    its entry canonical (a sampled answer's correction is what is served); reject, and bad
    without a correction, make it never served, with the reviewer's note for equivalents."""
    rejected = decision == "reject" or (decision == "bad" and final is None)
    values: dict[str, object] = {"decided_at": utcnow()}
    if rejected:
        values.update(state=CacheState.REJECTED, note=note)
    else:
        values.update(state=CacheState.REVIEWED, answer=final if decision == "bad" else None)
    session.execute(update(CacheEntry).where(col(CacheEntry.job_id) == job_id).values(**values))
