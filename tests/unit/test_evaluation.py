"""Evaluation metrics against hand-computed values, and dataset loading."""

import math
from pathlib import Path

import pytest

from ragline.errors import InvalidInput, NotFound
from ragline.evaluation.dataset import EvalItem, import_beir, load_dataset
from ragline.evaluation.metrics import (
    must_include,
    ndcg_at_k,
    percentile,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)
from tests.support.environment import REPO


def test_ndcg_discounts_by_log2_of_the_rank_against_the_ideal_order() -> None:
    relevance = {"a": 2, "b": 1, "z": 1}  # z is never retrieved
    ranked = ["x", "a", "b"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevance, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b", "z"], relevance, 10) == pytest.approx(1.0)
    assert ndcg_at_k(ranked, relevance, 1) == 0.0
    assert ndcg_at_k(ranked, {}, 10) == 0.0


def test_recall_and_reciprocal_rank_count_only_positive_judgments() -> None:
    relevance = {"a": 1, "b": 1, "n": 0}
    assert recall_at_k(["n", "a", "c"], relevance, 10) == 0.5
    assert recall_at_k(["n", "a", "b"], relevance, 2) == 0.5
    assert reciprocal_rank(["n", "c", "b"], relevance) == pytest.approx(1 / 3)
    assert reciprocal_rank(["n", "c"], relevance) == 0.0


def test_token_f1_is_squads_with_citations_punctuation_and_articles_ignored() -> None:
    assert token_f1("The employees get 25 days [1].", "employees get 25 days") == 1.0
    # prediction 4 tokens, gold 3, 2 in common: P 0.5, R 2/3
    assert token_f1("staff get twenty days", "staff get 25") == pytest.approx(
        2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)
    )
    assert token_f1("nothing alike", "25 days") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "25") == 0.0


def test_must_include_and_percentile() -> None:
    assert must_include("You get 25 Days of leave", ["25 days", "carry over"]) == 0.5
    assert must_include("anything", []) == 1.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10.0], 95) == 10.0 and percentile([], 50) == 0.0
    assert percentile(list(range(101)), 95) == 95


def test_the_labelled_guardrails_set_loads_with_graded_relevance() -> None:
    items = load_dataset(REPO / "eval" / "guardrails.jsonl")
    assert len(items) >= 60
    answerable = next(i for i in items if i.gold_documents)
    assert answerable.relevance == dict.fromkeys(answerable.gold_documents, 1)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"question": ""}', "question"),
        ('{"question": "ok?", "expected": "maybe"}', "expected"),
        ("not json", "not JSON"),
    ],
)
def test_a_bad_line_is_an_error_naming_it(tmp_path: Path, line: str, says: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "fine?"}\n' + line + "\n")
    with pytest.raises(InvalidInput, match=rf"set\.jsonl:2: .*{says}"):
        load_dataset(path)


def test_an_empty_or_missing_dataset_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InvalidInput, match="no questions"):
        load_dataset(tmp_path / "empty.jsonl")
    with pytest.raises(NotFound):
        load_dataset(tmp_path / "missing.jsonl")


def test_a_beir_split_imports_judged_queries_with_their_grades(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "1", "text": "first?"}\n{"_id": "2", "text": "unjudged?"}\n'
        '{"_id": "3", "text": "third?"}\n'
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t2\n1\td2\t0\n3\td3\t1\n"
    )
    items = import_beir(tmp_path, "test")
    assert [(i.id, i.question) for i in items] == [("1", "first?"), ("3", "third?")]
    assert items[0].relevance == {"d1": 2, "d2": 0} and items[0].gold_documents == ["d1"]
    assert isinstance(items[0], EvalItem)
    with pytest.raises(NotFound):
        import_beir(tmp_path, "train")
