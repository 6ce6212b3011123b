import pytest

from ragline.guardrails.grounding import GroundingChecker, answer_sentences
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import Passage
from ragline.pipeline.confidence import score_confidence

QUESTION = "How many days of annual leave do employees get?"
COPIED = "Every full-time employee receives 25 days of paid annual leave per leave year."
WRONG_NUMBER = "Every full-time employee receives 30 days of paid annual leave per leave year."
INVENTED = "The cafeteria serves vegetarian lasagne every Friday at noon."
LEAVE = Passage(
    chunk_id="hr/annual-leave#1",
    document_id="hr/annual-leave",
    title="Annual Leave",
    source="hr/annual-leave.md",
    text=(
        "Annual Leave > Annual leave entitlement\n"
        f"{COPIED} The leave year runs from 1 January to 31 December."
    ),
    score=0.72,
)
SICKNESS = Passage(
    chunk_id="hr/sick-leave#1",
    document_id="hr/sick-leave",
    title="Sick Leave",
    source="hr/sick-leave.md",
    text="Sick Leave > Reporting\nReport sickness to your line manager before 10:00 on day one.",
    score=0.41,
)


@pytest.fixture(scope="module")
def checker(embedder: Embedder) -> GroundingChecker:
    return GroundingChecker(embedder)


def test_answer_sentences_drop_citation_markers_and_short_fragments() -> None:
    answer = (
        "Every employee receives 25 days [1]. See [2]. "
        "The leave year runs from 1 January to 31 December [1][2]."
    )
    assert answer_sentences(answer) == [
        "Every employee receives 25 days.",
        "The leave year runs from 1 January to 31 December.",
    ]


def test_a_sentence_copied_from_a_passage_is_supported(checker: GroundingChecker) -> None:
    grounding = checker.check(f"{COPIED[:-1]} [1].", [LEAVE])
    assert grounding is not None
    [sentence] = grounding.sentences
    assert sentence.text == COPIED
    assert sentence.similarity == pytest.approx(1.0, abs=1e-3)
    assert sentence.overlap == 1.0
    assert sentence.support >= 0.5
    assert sentence.supported
    assert grounding.unsupported == []


def test_an_invented_sentence_is_listed_as_unsupported(checker: GroundingChecker) -> None:
    grounding = checker.check(f"{COPIED} {INVENTED}", [LEAVE])
    assert grounding is not None
    assert [s.text for s in grounding.unsupported] == [INVENTED]
    assert grounding.unsupported[0].support < 0.5


def test_an_answer_with_an_invented_sentence_scores_lower(checker: GroundingChecker) -> None:
    grounded = checker.check(COPIED, [LEAVE])
    mixed = checker.check(f"{COPIED} {INVENTED}", [LEAVE])
    assert grounded is not None and mixed is not None
    assert grounded.score == 1.0
    assert mixed.score < grounded.score


def test_a_wrong_number_lowers_the_term_overlap(checker: GroundingChecker) -> None:
    right = checker.check(COPIED, [LEAVE])
    wrong = checker.check(WRONG_NUMBER, [LEAVE])
    assert right is not None and wrong is not None
    assert right.sentences[0].overlap == 1.0
    assert wrong.sentences[0].overlap < right.sentences[0].overlap
    assert wrong.sentences[0].support < right.sentences[0].support
    # A number no passage states caps the sentence below "supported".
    assert not wrong.sentences[0].supported and right.sentences[0].supported
    assert wrong.unsupported == [wrong.sentences[0]]


def test_there_is_no_grounding_without_passages(checker: GroundingChecker) -> None:
    assert checker.check(COPIED, []) is None


def test_there_is_no_grounding_without_a_sentence_to_check(checker: GroundingChecker) -> None:
    assert checker.check("See [1].", [LEAVE]) is None


def test_confidence_is_zero_when_the_answer_cites_nothing(
    checker: GroundingChecker, embedder: Embedder
) -> None:
    grounding = checker.check(COPIED, [LEAVE, SICKNESS])
    confidence = score_confidence(
        [LEAVE, SICKNESS], embedder.embed_one(QUESTION), grounding, False, embedder
    )
    assert confidence.value == 0.0
    assert confidence.cited is False
    assert confidence.grounding == 1.0


def test_confidence_is_zero_without_grounding(embedder: Embedder) -> None:
    confidence = score_confidence(
        [LEAVE, SICKNESS], embedder.embed_one(QUESTION), None, True, embedder
    )
    assert confidence.value == 0.0
    assert confidence.grounding is None


def test_confidence_reports_its_retrieval_inputs(
    checker: GroundingChecker, embedder: Embedder
) -> None:
    grounding = checker.check(COPIED, [LEAVE, SICKNESS])
    confidence = score_confidence(
        [SICKNESS, LEAVE], embedder.embed_one(QUESTION), grounding, True, embedder
    )
    assert confidence.top_score == 0.72
    assert confidence.margin == 0.31
    assert 0.0 <= confidence.value <= 1.0


def test_a_grounded_answer_is_more_confident_than_an_unsupported_one(
    checker: GroundingChecker, embedder: Embedder
) -> None:
    passages = [LEAVE, SICKNESS]
    question = embedder.embed_one(QUESTION)
    grounded = score_confidence(
        passages, question, checker.check(f"{COPIED} [1]", passages), True, embedder
    )
    unsupported = score_confidence(
        passages, question, checker.check(f"{INVENTED} [1]", passages), True, embedder
    )
    assert 0.0 <= unsupported.value < grounded.value <= 1.0
    assert grounded.value == 1.0
