"""`ragline calibrate`: fit the decision scorer and its threshold on labelled questions (an
evaluation dataset or the reviewers' export), so that reviewers' verdicts improve routing.

Each question is asked through the pipeline as `eval run` asks it (the run is stored, so
the figures can be traced), the answerability signals it measured become the inputs, and
`expected` (answered / escalated) the label. With --keep-weights only the threshold is
chosen again, for one model or feature, on the current scorer's probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ragline.bootstrap import Services, load_scorer
from ragline.decision.scorer import DecisionScorer
from ragline.decision.training import (
    Point,
    auroc,
    check_counts,
    choose_threshold,
    expected_calibration_error,
    fit,
    tradeoff,
)
from ragline.errors import InvalidInput
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.run import dataset_hash, run_evaluation
from ragline.variant import Variant


@dataclass(frozen=True)
class Calibration:
    scorer: DecisionScorer
    previous: DecisionScorer
    run_id: str
    answerable: int
    unanswerable: int
    threshold: float
    auroc: float
    ece: float
    curve: list[Point]
    before: dict[str, float]  # the previous scorer on the same items, at its threshold
    after: dict[str, float]  # the new one (out of fold when refitted)


def labelled(items: list[EvalItem]) -> tuple[list[EvalItem], list[int]]:
    """The items that say what should happen (answered: 1, escalated: 0); refused when
    either class has fewer than MIN_PER_CLASS."""
    chosen = [i for i in items if i.expected in ("answered", "escalated")]
    labels = [int(i.expected == "answered") for i in chosen]
    check_counts(labels)
    return chosen, labels


def calibrate(
    services: Services,
    items: list[EvalItem],
    *,
    dataset: str,
    model: str | None = None,
    feature: str | None = None,
    kind: str = "logistic",
    keep_weights: bool = False,
    on_item: Callable[[int, int], None] | None = None,
) -> Calibration:
    chosen, labels = labelled(items)
    previous = load_scorer(services.settings, services.config)
    model_name = model or services.config.assistant_pipeline.generation.model
    run = run_evaluation(
        services,
        chosen,
        dataset=dataset,
        variant=Variant(model=model),
        name="calibrate",
        on_item=on_item,
    )
    if not run.complete:
        raise InvalidInput(f"the calibration run stopped early: {run.note}", field="dataset")
    rows: list[list[float]] = []
    y: list[int] = []
    signals: list[dict[str, float]] = []
    for result, label in zip(run.items, labels, strict=True):
        if result.get("signals"):  # a question rejected at input has none
            signals.append(result["signals"])
            rows.append([result["signals"][s] for s in previous.signals])
            y.append(label)
    check_counts(y)
    target = services.config.decision.target_answered
    previous_p = [previous.probability(s) for s in signals]
    before = _rates(previous_p, y, previous.threshold(model_name, feature))
    if keep_weights:
        threshold = choose_threshold(previous_p, y, target)
        scorer = replace(previous, thresholds=_with(previous.thresholds, threshold, model, feature))
        probabilities = previous_p
    else:
        fitted, out_of_fold = fit(
            rows,
            y,
            signals=previous.signals,
            embedding_model=services.config.knowledge.embedding_model,
            kind=kind,
            name=previous.name,
            target_answered=target,
            training={"datasets": {dataset: len(y)}, "dataset_hash": dataset_hash(chosen)},
        )
        threshold = float(fitted.thresholds["default"])
        scorer = replace(fitted, thresholds=_with(fitted.thresholds, threshold, model, feature))
        probabilities = [float(p) for p in out_of_fold]
    return Calibration(
        scorer=scorer,
        previous=previous,
        run_id=run.id,
        answerable=sum(y),
        unanswerable=len(y) - sum(y),
        threshold=threshold,
        auroc=auroc(probabilities, y),
        ece=expected_calibration_error(probabilities, y),
        curve=tradeoff(probabilities, y),
        before=before,
        after=_rates(probabilities, y, threshold),
    )


def _with(
    thresholds: dict[str, Any], threshold: float, model: str | None, feature: str | None
) -> dict[str, Any]:
    updated = {
        "default": thresholds.get("default", threshold),
        "models": dict(thresholds.get("models", {})),
        "features": dict(thresholds.get("features", {})),
    }
    if feature:
        updated["features"][feature] = threshold
    elif model:
        updated["models"][model] = threshold
    else:
        updated["default"] = threshold
    return updated


def _rates(probabilities: list[float], labels: list[int], threshold: float) -> dict[str, float]:
    answerable = [p for p, y in zip(probabilities, labels, strict=True) if y == 1]
    other = [p for p, y in zip(probabilities, labels, strict=True) if y == 0]
    return {
        "threshold": threshold,
        "answered": sum(p >= threshold for p in answerable) / max(1, len(answerable)),
        "escalated": sum(p < threshold for p in other) / max(1, len(other)),
        "auroc": auroc(probabilities, labels),
    }
