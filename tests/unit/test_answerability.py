"""The answerability probe on passages built for the purpose: a near miss differs from its
answerable twin in the signal that names the trick (the missing constraint, the negation,
the opposite word, the absent answer type), and refusals are read in any wording."""

from __future__ import annotations

import pytest

from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import Passage
from ragline.pipeline.answerability import AnswerabilityProbe, asked_part, question_type
from ragline.pipeline.confidence import declined

LEAVE = (
    "Annual Leave > Entitlement\n"
    "Every full-time employee receives 25 days of paid annual leave per leave year. "
    "The leave year runs from 1 January to 31 December. "
    "Employees may carry over a maximum of 5 unused days into the next leave year."
)
TRAVEL = (
    "Travel > Booking\n"
    "Flights are booked through the travel desk at least two weeks before departure. "
    "Economy class is used for flights under six hours."
)


def passages(*texts: str) -> list[Passage]:
    return [
        Passage(f"c{i}", f"d{i}", f"doc {i}", "s", text, 0.6 - 0.1 * i)
        for i, text in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def probe(embedder: Embedder) -> AnswerabilityProbe:
    return AnswerabilityProbe(embedder)


def measure(probe: AnswerabilityProbe, question: str) -> dict[str, float]:
    vector = probe.embedder.embed_one(question)
    return probe.measure(question, vector, passages(LEAVE, TRAVEL)).values


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many days of leave do I get?", "quantity"),
        ("When does the leave year start?", "time"),
        ("In which year was the policy introduced?", "time"),
        ("Who approves leave requests?", "person"),
        ("Where are flights booked?", "place"),
        ("Is economy class used for long flights?", "polar"),
        ("What is the leave entitlement?", None),
    ],
)
def test_question_types(question: str, kind: str | None) -> None:
    assert question_type(question) == kind


@pytest.mark.parametrize(
    ("message", "asked"),
    [
        ("How many days of leave do I get?", "How many days of leave do I get?"),
        (
            "My salary goes to <IBAN_1>. For how many days of sickness do I get full pay?",
            "For how many days of sickness do I get full pay?",
        ),
        (
            "My card <CREDIT_CARD_1> was charged twice: how do I dispute a charge?",
            "how do I dispute a charge?",
        ),
        # A bare question keeps the sentence before it, which says what it is about.
        (
            "I pasted a private key into a team chat channel. What should I do?",
            "I pasted a private key into a team chat channel. What should I do?",
        ),
        ("Tell me about <EMAIL_1> and refunds", "Tell me about and refunds"),
    ],
)
def test_the_asked_part_leaves_out_preambles_and_placeholders(message: str, asked: str) -> None:
    assert asked_part(message) == asked


def test_a_constraint_the_passages_never_state_is_named(probe: AnswerabilityProbe) -> None:
    twin = measure(probe, "How many days of paid annual leave does a full-time employee get?")
    near = measure(probe, "How many days of paid annual leave does a Berlin contractor get?")
    assert twin["passages_specific_missing"] == 0 and twin["names_missing"] == 0
    assert near["passages_specific_missing"] >= 1 and near["names_missing"] == 1
    assert near["sentence_specific_coverage"] < twin["sentence_specific_coverage"]
    result = probe.measure(
        "How many days of annual leave do contractors in Berlin get?",
        probe.embedder.embed_one("How many days of annual leave do contractors in Berlin get?"),
        passages(LEAVE, TRAVEL),
    )
    assert "berlin" in result.missing
    assert result.evidence is not None and "25 days" in result.evidence.text


def test_the_answer_type_is_looked_for_in_the_best_sentence(probe: AnswerabilityProbe) -> None:
    asks_number = measure(probe, "How many unused days may employees carry over?")
    assert asks_number["answer_type_known"] == 1 and asks_number["answer_type_found"] == 1
    asks_person = measure(probe, "Who decides which unused days may be carried over?")
    assert asks_person["answer_type_known"] == 1 and asks_person["answer_type_found"] == 0


def test_negation_and_opposites_are_flagged(probe: AnswerabilityProbe) -> None:
    plain = measure(probe, "What is the maximum number of unused days employees can carry over?")
    opposite = measure(probe, "What is the minimum number of unused days employees can carry over?")
    negated = measure(probe, "How many days of paid leave does a full-time employee not receive?")
    assert plain["antonym_conflict"] == 0 and opposite["antonym_conflict"] == 1
    assert plain["negation_mismatch"] == 0 and negated["negation_mismatch"] == 1


def test_no_passages_gives_the_weakest_signals(probe: AnswerabilityProbe) -> None:
    question = "How many days of leave do I get?"
    result = probe.measure(question, probe.embedder.embed_one(question), [])
    assert result.evidence is None
    assert result.values["top_score"] == 0 and result.values["sentence_coverage"] == 0
    assert result.values["passage_missing"] == result.values["question_terms"]


@pytest.mark.parametrize(
    "answer",
    [
        "I cannot answer this from the knowledge base.",
        "The passages do not mention the French version.",
        "The context doesn't specify who approves it.",
        "There is no information about refunds in 2019.",
        "This is not stated in the provided passages.",
        "I don\u2019t know.",
        "Unable to determine this from the documents.",
        "No passage in the knowledge base answers this question.",
    ],
)
def test_a_refusal_is_recognised_in_any_wording(answer: str) -> None:
    assert declined(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "Do not include customer data in tickets [1].",
        "Employees receive 25 days of paid annual leave [1].",
        "Agents must not share passwords, and cannot approve their own access [2].",
        "If the customer does not answer within 7 days, the ticket is closed [3].",
    ],
)
def test_an_answer_that_quotes_a_rule_is_not_a_refusal(answer: str) -> None:
    assert not declined(answer)
