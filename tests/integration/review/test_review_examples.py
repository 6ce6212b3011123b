"""Reviewers' decisions kept as labelled examples (what `ragline calibrate` and evaluations
read)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.config import Review
from ragline.models import Decision, utcnow
from ragline.reasons import ReviewReason
from tests.support.reviews import (
    DRAFT,
    PASSAGES,
    answered,
    claimed_item,
    escalated,
    finished_job,
    reviewer,
)

# -- labelled examples --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampled", "decision", "fields", "final", "expected", "tags"),
    [
        (False, Decision.APPROVE, {}, DRAFT, "answered", ["low_confidence", "decision:approve"]),
        (
            False,
            Decision.EDIT,
            {"answer": "25 days."},
            "25 days.",
            "answered",
            ["low_confidence", "decision:edit"],
        ),
        (
            False,
            Decision.REJECT,
            {"reason_code": "out_of_scope"},
            Review().fallback_answer,
            "escalated",
            ["low_confidence", "decision:reject", "code:out_of_scope"],
        ),
        (True, Decision.GOOD, {}, None, "answered", [ReviewReason.SAMPLED, "decision:good"]),
        (
            True,
            Decision.BAD,
            {"answer": "30 days."},
            "30 days.",
            "escalated",
            [ReviewReason.SAMPLED, "decision:bad"],
        ),
    ],
)
def test_a_decision_becomes_one_labelled_example(
    engine: Engine,
    acme: str,
    alice: Principal,
    sampled: bool,
    decision: Decision,
    fields: dict[str, str],
    final: str | None,
    expected: str,
    tags: list[str],
) -> None:
    outcome = answered() if sampled else escalated()
    queue, item, _ = claimed_item(
        engine, acme, alice, outcome, sampled=sampled, question="Leave days?"
    )
    queue.decide(item, alice, decision, note="checked", **fields)
    examples = list(queue.examples(acme))
    assert len(examples) == 1
    example = examples[0]
    assert example["id"] == f"review-{item}"
    assert (example["question"], example["passages"], example["draft"]) == (
        "Leave days?",
        PASSAGES,
        DRAFT,
    )
    assert (example["final_answer"], example["verdict"], example["expected"]) == (
        final,
        decision.value,
        expected,
    )
    assert example["tags"] == tags
    assert (example["note"], example["decided_by"]) == ("checked", "reviewer:alice")
    assert example["versions"] == {
        "prompt_version": "answer@abc123",
        "model_id": "extractive",
        "index_version": "kb_v1",
        "scorer_version": None,  # this outcome was not routed by a scorer
    }


def test_only_decided_items_of_the_account_become_examples(
    engine: Engine, acme: str, alice: Principal
) -> None:
    outsider = reviewer(engine, "mallory", account="globex")
    finished_job(engine, acme, escalated())  # pending: no example
    queue, item, _ = claimed_item(engine, acme, alice)
    queue.decide(item, alice, Decision.APPROVE)
    _, theirs, _ = claimed_item(engine, outsider.account_id, outsider)
    queue.decide(theirs, outsider, Decision.APPROVE)
    assert [e["id"] for e in queue.examples(acme)] == [f"review-{item}"]
    assert [e["id"] for e in queue.examples(outsider.account_id)] == [f"review-{theirs}"]
    assert len(list(queue.examples(None))) == 2
    assert list(queue.examples(acme, since=utcnow() + timedelta(minutes=1))) == []
