"""Document groups on every read path, not only at retrieval: a key reads a job's answer,
passages, trace, review item or export row only if it could have retrieved every passage
the job was answered from. Otherwise the job is NotFound to it, exactly like a missing one
(its existence is not disclosed either)."""

from __future__ import annotations

from collections.abc import Iterable

from ragline.accounts import Principal
from ragline.models import Job


def may_read(reader: Principal, job: Job) -> bool:
    """Admins read everything. Others read their account's jobs whose every passage allows
    one of the reader's groups (the test retrieval applies). A job stored before passages
    carried their groups needs every group of the key that submitted it."""
    if reader.is_admin:
        return True
    if job.account_id != reader.account_id:
        return False
    return groups_may_read(reader.groups, job)


def groups_may_read(groups: Iterable[str], job: Job) -> bool:
    """Could a key holding these groups have retrieved every passage of the job?"""
    held = set(groups)
    for passage in job.passages:
        allowed = passage.get("groups")
        if allowed is None:
            return set(job.groups) <= held
        if not held.intersection(allowed):
            return False
    return True
