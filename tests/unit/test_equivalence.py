"""The answer cache's equivalence test (ragline/cache/equivalence.py) and its contradiction
test (consistency.py), on questions written here: each constraint class refuses a pair
that differs only in it, and each allowance (number words, contractions, synonyms, typos,
case, fillers) accepts a pair that differs only in it. Cosine is given as 1.0 so only the
constraints decide; bench/answer_cache.py measures the whole test on labelled pairs."""

from __future__ import annotations

import pytest

from ragline.cache.consistency import contradiction
from ragline.cache.equivalence import compare, parse


def _judge(a: str, b: str, cosine: float = 1.0, threshold: float = 0.75) -> tuple[bool, str]:
    verdict = compare(parse(a), parse(b), cosine, threshold)
    return verdict.equivalent, verdict.why.split(":")[0]


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ("Are refunds possible within 30 days?", "Are refunds possible within 90 days?", "number"),
        ("What changed in 2023?", "What changed in 2024?", "number"),
        ("Is the office closed in May?", "Is the office closed in June?", "date"),
        ("Is the office closed on Friday?", "Is the office closed on Monday?", "date"),
        ("How many days of notice?", "How many weeks of notice?", "unit"),
        ("Is unused leave carried over?", "Is unused leave not carried over?", "negation"),
        ("Can I expense a taxi?", "Can't I expense a taxi?", "negation"),
        ("Which trips need approval?", "Which trips don't need approval?", "negation"),
        (
            "Who approves leave before it starts?",
            "Who approves leave after it starts?",
            "qualifier",
        ),
        ("What leave do full-time staff get?", "What leave do part-time staff get?", "qualifier"),
        ("Which expenses are paid?", "Which expenses are unpaid?", "qualifier"),
        ("What is the maximum refund?", "What is the minimum refund?", "qualifier"),
        ("Who founded the port of Lübeck?", "Who founded the port of Hamburg?", "entity"),
        ("Does the Pro plan include SSO?", "Does the Team plan include SSO?", "entity"),
        ("How much leave do employees get?", "How much leave do contractors get?", "wording"),
        ("How long is sick leave?", "How long is parental leave?", "wording"),
        ("Who handles a refund request?", "Who handles a chargeback request?", "wording"),
        ("What must an employee report?", "What must an employer report?", "wording"),
    ],
)
def test_one_changed_constraint_is_not_equivalent(a: str, b: str, why: str) -> None:
    assert _judge(a, b) == (False, why)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Are refunds possible within 30 days?", "Are refunds possible within thirty days?"),
        ("What can't I expense?", "What cannot I expense?"),
        ("How many days of annual leave do I get?", "how many days of annual leave do i receive"),
        ("Who founded Lübeck?", "who founded lübeck?"),
        ("How do I request annual leave?", "Quick question: how do I request annual leave?"),
        ("How do I request annual leave?", "How do I reqeust annual leave?"),
        ("Who has to approve a discount?", "Who needs to approve a discount?"),
        ("When does the trial start?", "When does the trial begin?"),
        ("What is the employee's notice period?", "What is the employees notice period?"),
    ],
)
def test_rewordings_that_keep_every_constraint_are_equivalent(a: str, b: str) -> None:
    assert _judge(a, b) == (True, "equivalent")


def test_below_the_similarity_threshold_nothing_else_is_asked() -> None:
    same = "How do I request annual leave?"
    assert _judge(same, same, cosine=0.74, threshold=0.75) == (False, "similarity")
    assert _judge(same, same, cosine=0.75, threshold=0.75) == (True, "equivalent")


def test_a_question_reworded_throughout_is_judged_by_cosine_and_constraints() -> None:
    a, b = "How much time off do I get each year?", "What's my yearly holiday allowance?"
    assert _judge(a, b) == (True, "equivalent")
    assert _judge(a, b.replace("yearly", "monthly")) == (False, "unit")


def test_answers_that_share_none_of_their_numbers_contradict() -> None:
    assert (
        contradiction(
            "Full-time employees get 25 days of annual leave [1].",
            "Full-time employees get 30 days of annual leave [2].",
        )
        == "numbers: 25 / 30"
    )
    # One says more than the other: not a contradiction. Citation markers are not numbers.
    assert (
        contradiction(
            "Employees get 25 days [1].", "Employees get 25 days and may carry over 5 [1][2]."
        )
        is None
    )
    assert contradiction("Refunds go through Stripe.", "Refunds go through Adyen.") == (
        "names: stripe / adyen"
    )
    assert contradiction("It closes in March.", "It closes in June.").startswith("dates")
    assert contradiction("Ask your manager.", "Ask HR.") is None  # nothing to compare


@pytest.mark.parametrize(
    ("a", "b", "equivalent"),
    [
        ("Who handles a billing dispute?", "How is a billing dispute handled?", False),
        ("Is laptop encryption required?", "What encryption is required on laptops?", False),
        ("When did the siege begin?", "Where did the siege begin?", False),
        ("When did the siege begin?", "On what date did the siege begin?", True),
        ("Who approves refunds?", "Which person approves refunds?", True),
        ("Is laptop encryption required?", "Laptop encryption required?", True),
    ],
)
def test_what_is_asked_must_agree(a: str, b: str, equivalent: bool) -> None:
    assert _judge(a, b)[0] is equivalent


@pytest.mark.parametrize(
    ("a", "b", "equivalent"),
    [
        # A clause before the question carries constraints, though not the topic.
        (
            "My free trial started on 3 May. On what date does it end?",
            "My free trial started on 13 May. On what date does it end?",
            False,
        ),
        (
            "For a pub quiz: which country hosted the first World Cup?",
            "Which country hosted the first World Cup?",
            True,
        ),
        # Kind: a question opening with an auxiliary is yes/no whatever clause follows; a
        # clause before the question does not decide what is asked.
        ("Are meals reimbursed when I travel?", "When are meals reimbursed?", False),
        (
            "Who opens the offboarding case when someone resigns?",
            "When someone resigns, who opens the offboarding case?",
            True,
        ),
        ("Can you tell me when the office opens?", "When does the office open?", True),
        # "in what year" asks when, in no unit
        (
            "In what year did Mendeleev publish his table?",
            "When did Mendeleev publish his table?",
            True,
        ),
    ],
)
def test_the_clauses_around_the_question(a: str, b: str, equivalent: bool) -> None:
    assert _judge(a, b)[0] is equivalent


@pytest.mark.parametrize(
    ("a", "b", "equivalent"),
    [
        ("When was the opera house opened?", "When was the opera house opned?", True),
        ("How many visitors come each year?", "How many visiters come each year?", True),
        # A changed last letter, or a changed consonant, is another word.
        ("Does the employer sign the form?", "Does the employee sign the form?", False),
        ("Which farmer owned the land?", "Which former owned the land?", False),
    ],
)
def test_typos_are_read_on_the_words_as_written(a: str, b: str, equivalent: bool) -> None:
    assert _judge(a, b)[0] is equivalent
