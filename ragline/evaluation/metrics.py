"""Per-question metrics, as the usual tools compute them: nDCG@k and Recall@k as
pytrec_eval/BEIR/MTEB do (graded gains, log2 discount, ideal from the judgments), MRR of the
first relevant document, and SQuAD's token F1 for answers."""

from __future__ import annotations

import math
import re
import string
from collections import Counter


def ndcg_at_k(ranked: list[str], relevance: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevance.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], relevance: dict[str, int], k: int = 10) -> float:
    positives = {doc for doc, gain in relevance.items() if gain > 0}
    return len(positives & set(ranked[:k])) / len(positives) if positives else 0.0


def reciprocal_rank(ranked: list[str], relevance: dict[str, int]) -> float:
    for rank, doc in enumerate(ranked, start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\d{1,3}\]")


def _tokens(text: str) -> list[str]:
    text = _CITATIONS.sub(" ", text.lower())
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's F1 over normalised tokens (lower case, no punctuation or articles), with
    citation markers removed from the prediction."""
    predicted, expected = _tokens(prediction), _tokens(gold)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def must_include(answer: str, phrases: list[str]) -> float:
    """The share of required phrases the answer contains (case-insensitive)."""
    if not phrases:
        return 1.0
    lowered = answer.lower()
    return sum(phrase.lower() in lowered for phrase in phrases) / len(phrases)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
