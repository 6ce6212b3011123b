"""Fitting a decision scorer and measuring it: the trade-off curve (answerable questions
answered vs unanswerable ones escalated), AUROC and the expected calibration error.

The threshold rule is the product's promise, not a hand-picked number: answer at least
`target_answered` of the questions the knowledge base can answer (measured out of fold),
and among the thresholds that keep it, escalate as many of the others as possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ragline.decision.scorer import DecisionScorer
from ragline.errors import InvalidInput

MIN_PER_CLASS = 50
Array = npt.NDArray[np.float64]
Scores = Sequence[float] | npt.NDArray[Any]
Labels = Sequence[int] | npt.NDArray[Any]


@dataclass(frozen=True)
class Point:
    threshold: float
    answered: float  # share of answerable questions answered
    escalated: float  # share of unanswerable questions escalated
    precision: float  # share of answered questions that were answerable


def check_counts(labels: Labels) -> None:
    positives = sum(1 for y in labels if y == 1)
    negatives = sum(1 for y in labels if y == 0)
    if positives < MIN_PER_CLASS or negatives < MIN_PER_CLASS:
        raise InvalidInput(
            f"calibration needs at least {MIN_PER_CLASS} items of each class: this dataset "
            f"has {positives} answerable and {negatives} unanswerable",
            field="dataset",
        )


def auroc(scores: Scores, labels: Labels) -> float:
    """The probability that an answerable item scores above an unanswerable one (ties half)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    positive, negative = s[y == 1], s[y == 0]
    if not len(positive) or not len(negative):
        return float("nan")
    order = np.argsort(np.concatenate([positive, negative]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([positive, negative])[order]
    # Average ranks over ties.
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = ranks[: len(positive)].sum()
    return float(
        (rank_sum - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative))
    )


def expected_calibration_error(probabilities: Scores, labels: Labels, bins: int = 10) -> float:
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    total = 0.0
    for low in np.linspace(0, 1, bins, endpoint=False):
        inside = (p >= low) & ((p < low + 1 / bins) | (low + 1 / bins >= 1.0))
        if inside.any():
            total += inside.sum() / len(p) * abs(p[inside].mean() - y[inside].mean())
    return float(total)


def reliability(probabilities: Scores, labels: Labels, bins: int = 10) -> list[dict[str, float]]:
    """Per bin: mean predicted probability, observed share answerable, item count."""
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    rows = []
    for low in np.linspace(0, 1, bins, endpoint=False):
        inside = (p >= low) & ((p < low + 1 / bins) | (low + 1 / bins >= 1.0))
        if inside.any():
            rows.append(
                {
                    "low": round(float(low), 2),
                    "predicted": round(float(p[inside].mean()), 4),
                    "observed": round(float(y[inside].mean()), 4),
                    "count": int(inside.sum()),
                }
            )
    return rows


def tradeoff(probabilities: Scores, labels: Labels) -> list[Point]:
    """One point per threshold from 0 to 1 in steps of 0.01."""
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels)
    points = []
    for threshold in np.round(np.linspace(0, 1, 101), 2):
        answered = p >= threshold
        positives, negatives = max(1, int((y == 1).sum())), max(1, int((y == 0).sum()))
        points.append(
            Point(
                threshold=float(threshold),
                answered=float((answered & (y == 1)).sum() / positives),
                escalated=float((~answered & (y == 0)).sum() / negatives),
                precision=float((answered & (y == 1)).sum() / max(1, int(answered.sum()))),
            )
        )
    return points


def choose_threshold(probabilities: Scores, labels: Labels, target_answered: float) -> float:
    """The highest threshold that still answers target_answered of the answerable items."""
    best = 0.0
    for point in tradeoff(probabilities, labels):
        if point.answered >= target_answered:
            best = point.threshold
    return best


def fit(
    rows: Sequence[Sequence[float]],
    labels: Labels,
    *,
    signals: Sequence[str],
    embedding_model: str,
    kind: str = "logistic",
    name: str = "answerability",
    target_answered: float = 0.85,
    training: dict[str, Any] | None = None,
    seed: int = 13,
) -> tuple[DecisionScorer, Array]:
    """Fit the model, calibrate it (Platt, on 5-fold out-of-fold scores) and choose the
    threshold on those same out-of-fold probabilities. Returns the scorer and the
    out-of-fold probabilities (what the training figures are computed from)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    check_counts(labels)
    x, y = np.asarray(rows, dtype=float), np.asarray(labels, dtype=int)
    out_of_fold = np.zeros(len(y))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for train, held in folds.split(x, y):
        model = _fit_model(x[train], y[train], kind, seed)
        out_of_fold[held] = [_raw(model, row, signals) for row in x[held]]
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(out_of_fold.reshape(-1, 1), y)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    probabilities = 1 / (1 + np.exp(-(a * out_of_fold + b)))
    threshold = choose_threshold(probabilities, y, target_answered)
    model = _fit_model(x, y, kind, seed)
    scorer = DecisionScorer(
        name=name,
        embedding_model=embedding_model,
        signals=tuple(signals),
        model=model,
        calibration={"a": round(a, 6), "b": round(b, 6)},
        thresholds={"default": threshold, "models": {}, "features": {}},
        training={
            **(training or {}),
            "kind": kind,
            "target_answered": target_answered,
            "items": len(y),
            "answerable": int(y.sum()),
            "unanswerable": int(len(y) - y.sum()),
            "out_of_fold": {
                "auroc": round(auroc(probabilities, y), 4),
                "ece": round(expected_calibration_error(probabilities, y), 4),
            },
        },
    )
    return scorer, probabilities


def _fit_model(x: Array, y: npt.NDArray[np.int_], kind: str, seed: int) -> dict[str, Any]:
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y)
        return {
            "kind": "logistic",
            "mean": [round(float(v), 8) for v in mean],
            "scale": [round(float(v), 8) for v in scale],
            "coef": [round(float(v), 8) for v in model.coef_[0]],
            "intercept": round(float(model.intercept_[0]), 8),
        }
    if kind == "trees":
        from sklearn.ensemble import GradientBoostingClassifier

        boosted = GradientBoostingClassifier(
            n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
        ).fit(x, y)
        trees = []
        for estimator in boosted.estimators_[:, 0]:
            tree = estimator.tree_
            trees.append(
                {
                    "feature": [int(f) for f in tree.feature],
                    "threshold": [float(t) for t in tree.threshold],
                    "left": [int(c) for c in tree.children_left],
                    "right": [int(c) for c in tree.children_right],
                    "value": [float(v) for v in tree.value[:, 0, 0]],
                }
            )
        staged = sum(e.predict(x[:1])[0] for e in boosted.estimators_[:, 0])
        init = float(boosted.decision_function(x[:1])[0] - boosted.learning_rate * staged)
        return {
            "kind": "trees",
            "init": init,
            "learning_rate": boosted.learning_rate,
            "trees": trees,
        }
    raise InvalidInput(f"unknown scorer kind {kind!r} (logistic or trees)", field="kind")


def _raw(model: dict[str, Any], row: Sequence[float], signals: Sequence[str]) -> float:
    probe = DecisionScorer(name="probe", embedding_model="-", signals=tuple(signals), model=model)
    return probe.raw(dict(zip(signals, row, strict=True)))
