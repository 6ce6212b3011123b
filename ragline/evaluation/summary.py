"""The run-level metrics: what each one aggregates, which way is better, and how its
tolerance is read. Shared by the run summary, `eval compare` and `eval report`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ragline.evaluation.metrics import percentile


@dataclass(frozen=True)
class Metric:
    name: str
    score: str  # the per-item score it aggregates
    percentile: float | None = None  # None: the mean over the items that have the score
    higher_is_better: bool = True
    relative: bool = False  # tolerance as a fraction of run A's value (latency, cost)
    label: str = ""

    def aggregate(self, values: list[float]) -> float:
        if not values:
            return float("nan")
        if self.percentile is not None:
            return percentile(values, self.percentile)
        return sum(values) / len(values)


METRICS: tuple[Metric, ...] = (
    Metric("ndcg@10", "ndcg@10", label="nDCG@10"),
    Metric("recall@10", "recall@10", label="Recall@10"),
    Metric("mrr", "mrr", label="MRR"),
    Metric("token_f1", "token_f1", label="answer token F1"),
    Metric("must_include", "must_include", label="must-include hits"),
    Metric("outcome_accuracy", "outcome_accuracy", label="outcome accuracy"),
    Metric("escalation_rate", "escalation_rate", higher_is_better=False, label="escalation rate"),
    Metric(
        "latency_p50_ms",
        "latency_ms",
        50,
        higher_is_better=False,
        relative=True,
        label="latency p50 (ms)",
    ),
    Metric(
        "latency_p95_ms",
        "latency_ms",
        95,
        higher_is_better=False,
        relative=True,
        label="latency p95 (ms)",
    ),
    Metric(
        "cost_per_job",
        "cost_per_job",
        higher_is_better=False,
        relative=True,
        label="cost per job",
    ),
)
BY_NAME = {m.name: m for m in METRICS}


def values(items: list[dict[str, Any]], metric: Metric) -> list[float]:
    return [i["scores"][metric.score] for i in items if metric.score in i["scores"]]


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    """{metrics: {name: {value, n}}, outcomes: {status: count}, items, total_cost}."""
    metrics: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        found = values(items, metric)
        if found:
            metrics[metric.name] = {"value": metric.aggregate(found), "n": len(found)}
    return {
        "items": len(items),
        "metrics": metrics,
        "outcomes": dict(Counter(i["status"] for i in items)),
        "total_cost": sum(i["scores"].get("cost_per_job", 0.0) for i in items),
    }


def by_tag(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for tag in item.get("tags") or ["(untagged)"]:
            groups.setdefault(tag, []).append(item)
    return dict(sorted(groups.items()))
