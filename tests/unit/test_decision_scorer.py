"""The decision scorer artifact: it scores exactly as the model it was exported from, its
version names its content, and anything wrong with the file stops the process."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ragline.config import RaglineConfig
from ragline.decision.scorer import DecisionScorer
from ragline.decision.training import (
    auroc,
    check_counts,
    choose_threshold,
    expected_calibration_error,
    fit,
    tradeoff,
)
from ragline.errors import ConfigError, InvalidInput
from ragline.pipeline.answerability import SIGNALS
from tests.support.environment import REPO

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SHIPPED = REPO / "scorers" / "answerability.json"


def synthetic(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Signals where the first two carry the label, non-linearly, and the rest are noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(SIGNALS)))
    y = ((x[:, 0] + 0.8 * np.abs(x[:, 1]) + 0.3 * rng.normal(size=n)) > 0.5).astype(int)
    return x, y


def test_the_shipped_scorer_loads_and_names_its_training() -> None:
    config = RaglineConfig()
    scorer = DecisionScorer.load(SHIPPED, config.knowledge.embedding_model)
    assert scorer.version.startswith("answerability@")
    assert scorer.signals == SIGNALS
    assert 0.0 < scorer.threshold() < 1.0
    assert scorer.training["held_out"], "the shipped artifact reports its held-out figures"


@pytest.mark.parametrize("kind", ["logistic", "trees"])
def test_a_fitted_scorer_ranks_like_the_model_it_was_exported_from(kind: str) -> None:
    x, y = synthetic()
    scorer, out_of_fold = fit(
        x.tolist(), y.tolist(), signals=SIGNALS, embedding_model=MODEL, kind=kind
    )
    raw = np.array([scorer.raw(dict(zip(SIGNALS, row, strict=True))) for row in x])
    if kind == "trees":
        reference = GradientBoostingClassifier(
            n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=13
        ).fit(x, y)
        np.testing.assert_allclose(raw, reference.decision_function(x), atol=1e-9)
    else:
        mean, scale = x.mean(axis=0), x.std(axis=0)
        reference = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y)
        np.testing.assert_allclose(raw, reference.decision_function((x - mean) / scale), atol=1e-5)
    assert auroc(out_of_fold, y) > 0.8  # out of fold, on signals that carry the label
    probabilities = [scorer.probability(dict(zip(SIGNALS, row, strict=True))) for row in x]
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_the_version_follows_the_content(tmp_path: Path) -> None:
    x, y = synthetic()
    scorer, _ = fit(x.tolist(), y.tolist(), signals=SIGNALS, embedding_model=MODEL)
    path = tmp_path / "s.json"
    scorer.save(path)
    again = DecisionScorer.load(path, MODEL)
    assert again.version == scorer.version
    moved = replace(scorer, thresholds={"default": 0.31})
    assert moved.version != scorer.version


def test_the_most_specific_threshold_wins() -> None:
    x, y = synthetic()
    scorer, _ = fit(x.tolist(), y.tolist(), signals=SIGNALS, embedding_model=MODEL)
    scorer = replace(
        scorer, thresholds={"default": 0.5, "models": {"m": 0.4}, "features": {"f": 0.7}}
    )
    assert scorer.threshold() == 0.5
    assert scorer.threshold("m") == 0.4
    assert scorer.threshold("m", "f") == 0.7
    assert scorer.threshold("other", "g") == 0.5


def _artifact(tmp_path: Path, **changes: object) -> Path:
    data = json.loads(SHIPPED.read_text())
    data.update(changes)
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p / "absent.json", "cannot be read"),
        (lambda p: (p / "bad.json").write_text("{not json") and p / "bad.json", "is corrupt"),
        (lambda p: _artifact(p, format=7), "format 7"),
        (lambda p: _artifact(p, embedding_model="other/model"), "trained for embedding model"),
        (lambda p: _artifact(p, signals=["top_score", "no_such_signal"]), "unknown signals"),
        (lambda p: _artifact(p, thresholds={"default": 1.5}), "thresholds must lie in"),
        (lambda p: _artifact(p, calibration={"a": 1.0}), "corrupt scorer artifact"),
    ],
)
def test_a_bad_artifact_stops_start_up_with_a_clear_message(
    tmp_path: Path, write: object, message: str
) -> None:
    path = write(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message):
        DecisionScorer.load(path, MODEL)


def test_a_logistic_weight_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    data = json.loads(SHIPPED.read_text())
    if data["model"]["kind"] != "logistic":
        pytest.skip("the shipped scorer is not logistic")
    data["model"]["coef"][0] = None
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not a finite number"):
        DecisionScorer.load(path, MODEL)


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(5)
    scores = np.round(rng.random(300), 1)  # many ties
    labels = (rng.random(300) < scores).astype(int)
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_expected_calibration_error_on_known_bins() -> None:
    # Two bins: 0.15 predicted where 1/2 happen, 0.95 predicted where 2/2 happen.
    assert expected_calibration_error([0.15, 0.15, 0.95, 0.95], [0, 1, 1, 1]) == pytest.approx(
        0.5 * 0.35 + 0.5 * 0.05
    )


def test_the_threshold_keeps_the_promised_share_answered() -> None:
    probabilities = [0.9, 0.8, 0.7, 0.6, 0.3, 0.55, 0.4, 0.2, 0.1, 0.65]
    labels = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    threshold = choose_threshold(probabilities, labels, target_answered=0.8)
    assert threshold == 0.6  # 4 of 5 answerable answered; one more step loses the 4th
    [point] = [p for p in tradeoff(probabilities, labels) if p.threshold == threshold]
    assert point.answered == 0.8
    assert point.escalated == 0.8  # 0.65 is the one unanswerable item still answered


def test_calibration_refuses_a_small_class_naming_the_counts() -> None:
    with pytest.raises(InvalidInput, match="has 60 answerable and 49 unanswerable"):
        check_counts([1] * 60 + [0] * 49)
