"""Train the prompt-injection classifier, the backstop behind the rules of
ragline/guardrails/injection.py, and write its weights to ragline/guardrails/injection_model.py.

    .venv/bin/python scripts/train_injection_detector.py [--check]

Fitted on the TRAIN split of tests/data/injection only; the held-out split is never read.
Logistic regression (scikit-learn, lbfgs, balanced classes) over binary features of the
normalised text (character 3- to 5-grams of each word, word pairs), each row scaled to unit
length. Chosen by 5-fold stratified cross-validation on the train split:
  - the regularisation C, for the highest out-of-fold recall at the threshold below;
  - the threshold: just above the highest out-of-fold score of a benign row, so that the
    classifier flags no benign train question it was not fitted on.
Only the WEIGHTS_KEPT largest weights are written, so the module stays small; the
cross-validation prunes the same way. The run is deterministic: the same data give the same
file (--check fails when the committed file differs, e.g. after editing the data).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragline.guardrails.injection import features, linear_score, normalise  # noqa: E402

TRAIN = ROOT / "tests" / "data" / "injection" / "train.jsonl"
MODEL = ROOT / "ragline" / "guardrails" / "injection_model.py"
C_GRID = (1.0, 3.0, 10.0, 30.0)
FOLDS = 5
WEIGHTS_KEPT = 3000
DECIMALS = 4

Weights = dict[str, float]


def fit(grams: list[set[str]], labels: np.ndarray, c: float) -> tuple[Weights, float]:
    rows = [{g: 1.0 / math.sqrt(len(f)) for g in f} for f in grams]
    vectorizer = DictVectorizer()
    matrix = vectorizer.fit_transform(rows)
    model = LogisticRegression(C=c, class_weight="balanced", solver="lbfgs", max_iter=10_000)
    model.fit(matrix, labels)
    coef, names = model.coef_[0], vectorizer.get_feature_names_out()
    # Largest first; ties by name so that the cut is the same on every run.
    order = sorted(range(len(coef)), key=lambda i: (-abs(coef[i]), names[i]))[:WEIGHTS_KEPT]
    weights = {str(names[i]): round(float(coef[i]), DECIMALS) for i in order}
    return weights, round(float(model.intercept_[0]), DECIMALS)


def out_of_fold(grams: list[set[str]], labels: np.ndarray, c: float) -> np.ndarray:
    scores = np.zeros(len(grams))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    for train, test in folds.split(np.zeros(len(labels)), labels):
        weights, intercept = fit([grams[i] for i in train], labels[train], c)
        for i in test:
            scores[i] = linear_score(grams[i], weights, intercept)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the model file differs")
    args = parser.parse_args()

    rows = [json.loads(line) for line in TRAIN.open(encoding="utf-8") if line.strip()]
    assert all(row["split"] == "train" for row in rows), "train.jsonl holds another split"
    labels = np.array([row["label"] == "attack" for row in rows], dtype=int)
    grams = [features(normalise(row["text"]).text) for row in rows]
    print(f"train: {labels.sum()} attacks, {len(labels) - labels.sum()} benign")

    best: tuple[float, float, float] | None = None  # recall, c, threshold
    for c in C_GRID:
        scores = out_of_fold(grams, labels, c)
        threshold = round(float(scores[labels == 0].max()) + 10**-DECIMALS, DECIMALS)
        recall = float((scores[labels == 1] >= threshold).mean())
        print(f"C={c:g}: out-of-fold recall {recall:.3f} at threshold {threshold:+.4f} (0 FP)")
        if best is None or recall > best[0]:
            best = (recall, c, threshold)
    assert best is not None
    recall, c, threshold = best
    weights, intercept = fit(grams, labels, c)
    source = render(weights, intercept, threshold, c, recall, len(rows))
    if args.check:
        if MODEL.read_text(encoding="utf-8") != source:
            sys.exit(f"{MODEL.relative_to(ROOT)} differs from a fresh training run")
        print(f"{MODEL.relative_to(ROOT)} is up to date")
        return
    MODEL.write_text(source, encoding="utf-8")
    print(f"C={c:g}, threshold {threshold:+.4f}: wrote {MODEL.relative_to(ROOT)}")


def render(
    weights: Weights, intercept: float, threshold: float, c: float, recall: float, rows: int
) -> str:
    lines = [
        '"""The prompt-injection classifier of ragline.guardrails.injection: written by',
        "scripts/train_injection_detector.py from tests/data/injection/train.jsonl (do not edit).",
        "",
        f"Logistic regression, C={c:g}, over {rows} train rows; the {len(weights)} largest",
        "weights. Cross-validated on the train split: the threshold flags no benign row out of",
        f'fold and {recall:.1%} of the attacks on its own (the rules come first)."""',
        "",
        f"INTERCEPT = {intercept!r}",
        f"THRESHOLD = {threshold!r}  # on the decision value",
        "WEIGHTS: dict[str, float] = {",
        *(f"    {json.dumps(g, ensure_ascii=False)}: {w!r}," for g, w in sorted(weights.items())),
        "}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
