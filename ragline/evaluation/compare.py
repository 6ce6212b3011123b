"""`ragline eval compare RUN_A RUN_B`: per-metric deltas with paired bootstrap confidence
intervals, and the regression gate.

Items are paired by id, so both runs are judged on the same questions and the interval is
about the change, not about which questions happened to be easy. A metric regresses when
its observed change in the bad direction exceeds its tolerance (config
`evaluation.tolerances`) and the interval excludes zero: a real, material move. A move
beyond tolerance whose interval still straddles zero is reported as "worse, not
significant" and does not fail the gate; add items to the dataset to resolve it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragline.errors import InvalidInput
from ragline.evaluation.summary import METRICS, Metric, values
from ragline.models import EvalRun

REGRESSED = "REGRESSED"


@dataclass(frozen=True)
class Delta:
    metric: Metric
    a: float
    b: float
    low: float  # the interval of b - a
    high: float
    n: int
    tolerance: float | None  # absolute, in the metric's units; None: not gated
    verdict: str

    @property
    def delta(self) -> float:
        return self.b - self.a

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name,
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "ci": [self.low, self.high],
            "n": self.n,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
        }


@dataclass
class Comparison:
    a: EvalRun
    b: EvalRun
    level: float
    deltas: list[Delta] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.verdict == REGRESSED]

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.id,
            "b": self.b.id,
            "confidence_level": self.level,
            "deltas": [d.as_dict() for d in self.deltas],
            "warnings": self.warnings,
            "regressed": [d.metric.name for d in self.regressions],
        }


def compare_runs(
    a: EvalRun,
    b: EvalRun,
    tolerances: dict[str, float],
    *,
    samples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    for run in (a, b):
        if not run.complete:
            raise InvalidInput(
                f"run {run.id} is incomplete ({run.note}); a gate needs complete runs",
                field="run",
            )
    comparison = Comparison(a, b, level)
    if a.dataset_hash != b.dataset_hash:
        comparison.warnings.append(
            f"the runs used different datasets ({a.dataset} {a.dataset_hash}, "
            f"{b.dataset} {b.dataset_hash}): only items with the same id are compared"
        )
    b_items = {item["id"]: item for item in b.items}
    pairs = [(item, b_items[item["id"]]) for item in a.items if item["id"] in b_items]
    if not pairs:
        raise InvalidInput(f"runs {a.id} and {b.id} share no items", field="run")
    unpaired = len(a.items) + len(b.items) - 2 * len(pairs)
    if unpaired:
        comparison.warnings.append(f"{unpaired} items appear in one run only and are left out")
    rng = np.random.default_rng(seed)
    for metric in METRICS:
        both = [
            (x, y) for x, y in pairs if metric.score in x["scores"] and metric.score in y["scores"]
        ]
        if not both:
            continue
        left = np.array(values([x for x, _ in both], metric), dtype=float)
        right = np.array(values([y for _, y in both], metric), dtype=float)
        comparison.deltas.append(
            _delta(metric, left, right, tolerances.get(metric.name), rng, samples, level)
        )
    return comparison


def _delta(
    metric: Metric,
    left: np.ndarray,
    right: np.ndarray,
    tolerance: float | None,
    rng: np.random.Generator,
    samples: int,
    level: float,
) -> Delta:
    a, b = metric.aggregate(left.tolist()), metric.aggregate(right.tolist())
    # Resample the paired items (the same indices for both runs) and recompute the metric.
    index = rng.integers(0, len(left), size=(samples, len(left)))
    if metric.percentile is None:
        moves = right[index].mean(axis=1) - left[index].mean(axis=1)
    else:
        q = metric.percentile
        moves = np.percentile(right[index], q, axis=1) - np.percentile(left[index], q, axis=1)
    tail = (1 - level) / 2 * 100
    low, high = (float(v) for v in np.percentile(moves, [tail, 100 - tail]))
    limit = None
    if tolerance is not None:
        limit = tolerance * abs(a) if metric.relative else tolerance
    # Rounding must not turn a move of exactly the tolerance into one beyond it.
    worse = (a - b) if metric.higher_is_better else (b - a)
    beyond = limit is not None and worse - limit > 1e-9 * max(1.0, abs(a))
    worse_for_sure = high < 0 if metric.higher_is_better else low > 0
    better_for_sure = low > 0 if metric.higher_is_better else high < 0
    if beyond and worse_for_sure:
        verdict = REGRESSED
    elif beyond:
        verdict = "worse, not significant"
    elif worse_for_sure and worse > 0:
        verdict = "worse, within tolerance" if limit is not None else "worse (not gated)"
    elif better_for_sure:
        verdict = "improved"
    else:
        verdict = "no significant change"
    return Delta(metric, a, b, low, high, len(left), limit, verdict)


def format_table(comparison: Comparison) -> str:
    """The comparison as a fixed-width table for a terminal or a CI log."""
    level = round(comparison.level * 100)
    interval = f"{level}% CI"
    header = f"{'metric':<18} {'A':>10} {'B':>10} {'B - A':>10}  {interval:<23} {'tol':>8}  verdict"
    lines = [f"A = {_describe(comparison.a)}", f"B = {_describe(comparison.b)}", "", header]
    for d in comparison.deltas:
        interval = f"[{_num(d.low)}, {_num(d.high)}]"
        tolerance = "-" if d.tolerance is None else _num(d.tolerance)
        lines.append(
            f"{d.metric.name:<18} {_num(d.a):>10} {_num(d.b):>10} {_num(d.delta, sign=True):>10}"
            f"  {interval:<23} {tolerance:>8}  {d.verdict}"
        )
    lines += [f"warning: {w}" for w in comparison.warnings]
    regressed = comparison.regressions
    lines.append(
        f"\nregressed: {', '.join(d.metric.name for d in regressed)}"
        if regressed
        else "\nno metric regressed beyond its tolerance"
    )
    return "\n".join(lines)


def _describe(run: EvalRun) -> str:
    s = run.subject
    return (
        f"{run.id} {run.name or ''} prompt {s.get('prompt_version')} model {s.get('model')} "
        f"index {s.get('index_version')} top_k {s.get('top_k')} "
        f"scorer {s.get('scorer_version')} ({len(run.items)} items)"
    ).replace("  ", " ")


def _num(value: float, sign: bool = False) -> str:
    if value != value:  # NaN
        return "-"
    magnitude = abs(value)
    text = f"{value:+.4f}" if sign else f"{value:.4f}"
    if magnitude >= 100:
        text = f"{value:+.1f}" if sign else f"{value:.1f}"
    return text
