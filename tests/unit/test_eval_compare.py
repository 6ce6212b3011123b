"""`eval compare`: paired bootstrap deltas and the regression gate, on runs built from
synthetic item results made by `score_item` (the dicts production stores). Also the run
summary and the tolerance keys the config accepts. No database."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from ragline.config import DEFAULT_TOLERANCES, Evaluation, parse_config
from ragline.errors import ConfigError, InvalidInput
from ragline.evaluation.compare import REGRESSED, Comparison, Delta, compare_runs, format_table
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.metrics import percentile
from ragline.evaluation.run import score_item
from ragline.evaluation.summary import BY_NAME, METRICS, by_tag, summarise
from ragline.models import EvalRun

GOLD = "hr/annual-leave"
SAMPLES = 1000
ALWAYS = {"escalation_rate", "latency_p50_ms", "latency_p95_ms", "cost_per_job"}


def judged(number: int, **fields: Any) -> EvalItem:
    """A dataset question with one relevant document (so nDCG, recall and MRR apply)."""
    return EvalItem(
        id=f"q{number:03}", question=f"question {number}?", gold_documents=[GOLD], **fields
    )


def scored(
    item: EvalItem,
    *,
    found: bool = True,
    status: str = "answered",
    answer: str | None = "twenty five days",
    latency_ms: float = 100.0,
    cost: float = 0.001,
) -> dict[str, Any]:
    """The item's result as `run_evaluation` stores it; `found`: the gold document ranks first."""
    return score_item(
        item,
        question=item.question,
        status=status,
        reason=None if status == "answered" else "low_confidence",
        answer=answer,
        documents=[GOLD, "it/vpn"] if found else ["it/vpn", "hr/expenses"],
        latency_ms=latency_ms,
        cost=cost,
    )


def make_run(
    items: list[dict[str, Any]],
    run_id: str = "ev_a",
    *,
    dataset_hash: str = "h1",
    complete: bool = True,
    note: str | None = None,
) -> EvalRun:
    return EvalRun(
        id=run_id,
        name=run_id.removeprefix("ev_"),
        dataset="eval/guardrails.jsonl",
        dataset_hash=dataset_hash,
        complete=complete,
        subject={"prompt_version": "v1", "model": "m", "index_version": "i1", "top_k": 5},
        summary=summarise(items),
        items=items,
        note=note,
    )


def retrieval_run(run_id: str, n: int, lost: set[int]) -> EvalRun:
    """n judged questions; the gold document is missing from the results on `lost`."""
    return make_run([scored(judged(k), found=k not in lost) for k in range(n)], run_id)


def varied_items() -> list[dict[str, Any]]:
    """Every metric present, with spread in all of them."""
    items = []
    for k in range(40):
        item = judged(
            k,
            gold_answer="employees get twenty five days",
            must_include=["twenty five"],
            expected="answered",
        )
        items.append(
            scored(
                item,
                found=k % 3 != 0,
                status="escalated" if k % 5 == 0 else "answered",
                answer="twenty five days" if k % 2 else "ten days",
                latency_ms=100 + 37 * k % 900,
                cost=0.0005 * (1 + k % 4),
            )
        )
    return items


def by_metric(comparison: Comparison) -> dict[str, Delta]:
    return {d.metric.name: d for d in comparison.deltas}


# -- the run summary -----------------------------------------------------------------------


def test_summarise_averages_each_score_over_the_items_that_have_it() -> None:
    plain = EvalItem(id="p", question="hello?", tags=["chit-chat"])
    items = [
        scored(judged(1), found=True, latency_ms=100, cost=0.002),
        scored(judged(2), found=False, status="escalated", latency_ms=200, cost=0.004),
        scored(judged(3, gold_answer="twenty five days"), latency_ms=300, cost=0.0),
        scored(plain, status="rejected", answer=None, latency_ms=400, cost=0.0),
    ]
    summary = summarise(items)
    metrics = summary["metrics"]
    assert summary["items"] == 4
    assert summary["outcomes"] == {"answered": 2, "escalated": 1, "rejected": 1}
    assert summary["total_cost"] == pytest.approx(0.006)
    assert metrics["ndcg@10"] == {"value": pytest.approx(2 / 3), "n": 3}
    assert metrics["recall@10"]["value"] == pytest.approx(2 / 3)
    assert metrics["token_f1"] == {"value": 1.0, "n": 1}  # only item 3 has a gold answer
    assert metrics["escalation_rate"] == {"value": 0.25, "n": 4}
    assert metrics["latency_p50_ms"]["value"] == 250.0
    assert metrics["latency_p95_ms"]["value"] == pytest.approx(385.0)  # 300 + 0.85 * 100
    assert metrics["latency_p95_ms"]["value"] == percentile([100, 200, 300, 400], 95)
    assert metrics["cost_per_job"]["value"] == pytest.approx(0.0015)
    # no item has must-include phrases or an expected outcome: absent, not zero
    assert "must_include" not in metrics and "outcome_accuracy" not in metrics


def test_summarise_of_no_items_has_no_metrics() -> None:
    assert summarise([]) == {"items": 0, "metrics": {}, "outcomes": {}, "total_cost": 0}


def test_by_tag_groups_items_under_each_of_their_tags_in_order() -> None:
    items = [
        scored(judged(1, tags=["it", "hr"])),
        scored(judged(2, tags=["hr"])),
        scored(judged(3)),
    ]
    groups = by_tag(items)
    assert list(groups) == ["(untagged)", "hr", "it"]
    assert [i["id"] for i in groups["hr"]] == ["q001", "q002"]
    assert [i["id"] for i in groups["it"]] == ["q001"]
    assert [i["id"] for i in groups["(untagged)"]] == ["q003"]


def test_metric_directions_and_relative_tolerances() -> None:
    lower = {m.name for m in METRICS if not m.higher_is_better}
    relative = {m.name for m in METRICS if m.relative}
    assert lower == {"escalation_rate", "latency_p50_ms", "latency_p95_ms", "cost_per_job"}
    assert relative == {"latency_p50_ms", "latency_p95_ms", "cost_per_job"}
    assert BY_NAME["latency_p95_ms"].percentile == 95
    assert BY_NAME["latency_p50_ms"].percentile == 50
    assert all(m.percentile is None for m in METRICS if m.score != "latency_ms")


# -- the verdicts ----------------------------------------------------------------------------


def test_identical_runs_change_nothing() -> None:
    items = varied_items()
    comparison = compare_runs(
        make_run(items), make_run(items, "ev_b"), DEFAULT_TOLERANCES, samples=SAMPLES
    )
    assert {d.metric.name for d in comparison.deltas} == {m.name for m in METRICS}
    for d in comparison.deltas:
        assert d.verdict == "no significant change", d.metric.name
        assert (d.low, d.high) == (0.0, 0.0)
        assert d.delta == 0.0 and d.n == 40
    assert comparison.regressions == [] and comparison.warnings == []
    assert comparison.as_dict()["regressed"] == []
    assert format_table(comparison).endswith("no metric regressed beyond its tolerance")


def test_losing_the_gold_document_on_a_third_of_the_items_regresses() -> None:
    a = retrieval_run("ev_a", 60, lost=set())
    b = retrieval_run("ev_b", 60, lost=set(range(0, 60, 3)))
    comparison = compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)
    ndcg = by_metric(comparison)["ndcg@10"]
    assert (ndcg.a, ndcg.b) == (1.0, pytest.approx(2 / 3))
    assert ndcg.delta == pytest.approx(-1 / 3)
    assert ndcg.verdict == REGRESSED
    assert ndcg.low <= ndcg.delta <= ndcg.high < 0
    assert ndcg.tolerance == DEFAULT_TOLERANCES["ndcg@10"]
    assert {d.metric.name for d in comparison.regressions} == {"ndcg@10", "recall@10", "mrr"}
    assert comparison.as_dict()["regressed"] == ["ndcg@10", "recall@10", "mrr"]
    for name in ALWAYS:
        assert by_metric(comparison)[name].verdict == "no significant change"


def test_a_significant_drop_within_tolerance_does_not_regress() -> None:
    # 6 of 200 items rank the gold document second: nDCG -0.011, MRR -0.015 (tolerance 0.02)
    a = make_run([scored(judged(k)) for k in range(200)])
    b = make_run(
        [
            score_item(
                judged(k),
                question="q",
                status="answered",
                reason=None,
                answer="x",
                documents=["it/vpn", GOLD] if k < 6 else [GOLD],
                latency_ms=100.0,
                cost=0.001,
            )
            for k in range(200)
        ],
        "ev_b",
    )
    deltas = by_metric(compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES))
    assert deltas["ndcg@10"].delta == pytest.approx(6 * (1 / math.log2(3) - 1) / 200)
    assert deltas["mrr"].delta == pytest.approx(-0.015)
    for name in ("ndcg@10", "mrr"):
        assert deltas[name].high < 0  # a real move, only a small one
        assert deltas[name].verdict == "worse, within tolerance"
    assert deltas["recall@10"].verdict == "no significant change"


def test_a_drop_beyond_tolerance_on_a_tiny_noisy_set_is_not_significant() -> None:
    a = retrieval_run("ev_a", 6, lost={2, 3, 5})  # found on 0, 1, 4
    b = retrieval_run("ev_b", 6, lost={1, 3, 4, 5})  # found on 0, 2
    comparison = compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)
    ndcg = by_metric(comparison)["ndcg@10"]
    assert ndcg.delta == pytest.approx(-1 / 6)  # far beyond 0.02
    assert ndcg.low < 0 < ndcg.high
    assert ndcg.verdict == "worse, not significant"
    assert comparison.regressions == []


def test_more_escalations_regress_and_fewer_improve() -> None:
    calm = make_run([scored(judged(k)) for k in range(60)])
    escalating = make_run(
        [scored(judged(k), status="escalated" if k % 3 == 0 else "answered") for k in range(60)],
        "ev_b",
    )
    worse = by_metric(compare_runs(calm, escalating, DEFAULT_TOLERANCES, samples=SAMPLES))
    assert worse["escalation_rate"].delta == pytest.approx(1 / 3)
    assert 0 < worse["escalation_rate"].low <= worse["escalation_rate"].delta
    assert worse["escalation_rate"].verdict == REGRESSED
    better = by_metric(compare_runs(escalating, calm, DEFAULT_TOLERANCES, samples=SAMPLES))
    assert better["escalation_rate"].high < 0
    assert better["escalation_rate"].verdict == "improved"


def test_finding_the_gold_document_more_often_is_an_improvement() -> None:
    a = retrieval_run("ev_a", 60, lost=set(range(0, 60, 3)))
    b = retrieval_run("ev_b", 60, lost=set())
    comparison = compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)
    for name in ("ndcg@10", "recall@10", "mrr"):
        d = by_metric(comparison)[name]
        assert d.verdict == "improved" and 0 < d.low <= d.delta <= d.high
    assert comparison.regressions == []


def test_latency_tolerance_is_a_fraction_of_run_a() -> None:
    a = make_run([scored(judged(k), latency_ms=100 + k) for k in range(60)])
    b = make_run([scored(judged(k), latency_ms=3 * (100 + k)) for k in range(60)], "ev_b")
    p95 = by_metric(compare_runs(a, b, {"latency_p95_ms": 1.0}, samples=SAMPLES))["latency_p95_ms"]
    assert p95.a == pytest.approx(percentile([100 + k for k in range(60)], 95))
    assert p95.b == pytest.approx(3 * p95.a)
    assert p95.tolerance == pytest.approx(p95.a)  # 100% of A's p95, in ms
    assert p95.verdict == REGRESSED and p95.low > 0
    # tripled is within a tolerance of +250%
    allowed = by_metric(compare_runs(a, b, {"latency_p95_ms": 2.5}, samples=SAMPLES))
    assert allowed["latency_p95_ms"].tolerance == pytest.approx(2.5 * p95.a)
    assert allowed["latency_p95_ms"].verdict == "worse, within tolerance"
    # p50 has no tolerance here: reported, never gated
    assert allowed["latency_p50_ms"].tolerance is None
    assert allowed["latency_p50_ms"].verdict == "worse (not gated)"


@pytest.mark.parametrize(
    ("cost_b", "verdict"), [(0.012, REGRESSED), (0.0105, "worse, within tolerance")]
)
def test_cost_per_job_tolerance_is_relative(cost_b: float, verdict: str) -> None:
    a = make_run([scored(judged(k), cost=0.01) for k in range(30)])
    b = make_run([scored(judged(k), cost=cost_b) for k in range(30)], "ev_b")
    cost = by_metric(compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES))["cost_per_job"]
    assert cost.tolerance == pytest.approx(0.10 * 0.01)
    assert cost.delta == pytest.approx(cost_b - 0.01)
    assert cost.verdict == verdict


def test_a_metric_without_a_tolerance_never_regresses() -> None:
    a = retrieval_run("ev_a", 60, lost=set())
    b = retrieval_run("ev_b", 60, lost=set(range(30)))
    comparison = compare_runs(a, b, {"recall@10": 0.02}, samples=SAMPLES)
    ndcg = by_metric(comparison)["ndcg@10"]
    assert ndcg.delta == pytest.approx(-0.5) and ndcg.high < 0
    assert ndcg.tolerance is None
    assert ndcg.verdict == "worse (not gated)"
    assert [d.metric.name for d in comparison.regressions] == ["recall@10"]
    assert compare_runs(a, b, {}, samples=SAMPLES).regressions == []


def test_a_drop_of_exactly_the_tolerance_does_not_regress() -> None:
    a = retrieval_run("ev_a", 500, lost=set())
    b = retrieval_run("ev_b", 500, lost=set(range(10)))  # nDCG 1.0 -> 0.98
    ndcg = by_metric(compare_runs(a, b, {"ndcg@10": 0.02}, samples=SAMPLES))["ndcg@10"]
    assert ndcg.high < 0  # significant
    assert ndcg.verdict == "worse, within tolerance"


# -- pairing and refusals --------------------------------------------------------------------


def test_items_are_paired_by_id_not_by_position() -> None:
    a_items = [scored(judged(k), found=k % 4 != 0, latency_ms=100 + k) for k in range(60)]
    b_items = [scored(judged(k), found=k % 3 != 0, latency_ms=120 + k) for k in range(60)]
    expected = compare_runs(make_run(a_items), make_run(b_items, "ev_b"), DEFAULT_TOLERANCES)
    shuffled = b_items[:]
    random.Random(7).shuffle(shuffled)
    same = compare_runs(make_run(a_items), make_run(shuffled, "ev_b"), DEFAULT_TOLERANCES)
    assert same.as_dict() == expected.as_dict()
    # A's order decides which items a resample draws, so only the interval may move
    reordered = compare_runs(
        make_run(a_items[::-1]), make_run(shuffled, "ev_b"), DEFAULT_TOLERANCES
    )
    for x, y in zip(expected.deltas, reordered.deltas, strict=True):
        assert (x.metric, x.a, x.b, x.verdict) == (y.metric, y.a, y.b, y.verdict)


def test_items_in_one_run_only_are_left_out_with_a_warning() -> None:
    a_items = [scored(judged(k), latency_ms=100) for k in range(60)]
    a_items[0] = scored(judged(0), found=False, latency_ms=90_000, cost=5.0)
    a_items[1] = scored(judged(1), found=False, latency_ms=90_000, cost=5.0)
    extra = [
        scored(EvalItem(id=f"new{k}", question="new?", gold_documents=[GOLD]), found=False)
        for k in range(3)
    ]
    b = make_run([scored(judged(k), latency_ms=100) for k in range(2, 60)] + extra, "ev_b")
    comparison = compare_runs(make_run(a_items), b, DEFAULT_TOLERANCES, samples=SAMPLES)
    assert comparison.warnings == ["5 items appear in one run only and are left out"]
    for d in comparison.deltas:
        assert d.n == 58
        assert d.verdict == "no significant change", d.metric.name
    assert by_metric(comparison)["latency_p95_ms"].a == 100.0  # the slow items are not paired
    assert by_metric(comparison)["ndcg@10"].a == 1.0


def test_runs_on_different_datasets_warn() -> None:
    items = [scored(judged(k)) for k in range(10)]
    a = make_run(items, dataset_hash="aaaa1111")
    b = make_run(items, "ev_b", dataset_hash="bbbb2222")
    comparison = compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)
    [warning] = comparison.warnings
    assert "different datasets" in warning
    assert "aaaa1111" in warning and "bbbb2222" in warning
    assert all(d.n == 10 for d in comparison.deltas)
    assert f"warning: {warning}" in format_table(comparison)


@pytest.mark.parametrize("incomplete", ["a", "b"])
def test_an_incomplete_run_cannot_be_gated(incomplete: str) -> None:
    items = [scored(judged(k)) for k in range(10)]
    stopped = make_run(items[:4], "ev_stopped", complete=False, note="stopped after 4 of 10")
    whole = make_run(items, "ev_whole")
    a, b = (stopped, whole) if incomplete == "a" else (whole, stopped)
    with pytest.raises(InvalidInput, match=r"ev_stopped is incomplete .*stopped after 4") as raised:
        compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)
    assert raised.value.field == "run"


def test_runs_sharing_no_items_cannot_be_compared() -> None:
    a = make_run([scored(judged(k)) for k in range(5)])
    b = make_run([scored(judged(k)) for k in range(5, 10)], "ev_b")
    with pytest.raises(InvalidInput, match="ev_a and ev_b share no items"):
        compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)


def test_metrics_without_gold_data_are_left_out() -> None:
    plain = [EvalItem(id=f"p{k}", question="hello?") for k in range(20)]
    a = make_run([scored(item) for item in plain])
    b = make_run([scored(item, status="escalated") for item in plain], "ev_b")
    comparison = compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES)
    assert {d.metric.name for d in comparison.deltas} == ALWAYS


def test_a_metric_is_compared_over_the_items_both_runs_can_score() -> None:
    def item(k: int) -> EvalItem:
        return judged(k, gold_answer="twenty five days" if k < 10 else None)

    a = make_run([scored(item(k), answer="twenty five days") for k in range(30)])
    b = make_run([scored(item(k), answer="ten days") for k in range(30)], "ev_b")
    deltas = by_metric(compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES))
    assert deltas["token_f1"].n == 10 and deltas["ndcg@10"].n == 30
    assert deltas["token_f1"].a == 1.0
    assert deltas["token_f1"].verdict == REGRESSED


# -- the interval ------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_comparison() -> None:
    a = retrieval_run("ev_a", 12, lost={1, 5, 8})
    b = retrieval_run("ev_b", 12, lost={2, 5, 9, 10})
    first = compare_runs(a, b, DEFAULT_TOLERANCES, samples=500, seed=3)
    assert compare_runs(a, b, DEFAULT_TOLERANCES, samples=500, seed=3).as_dict() == (
        first.as_dict()
    )
    other = compare_runs(a, b, DEFAULT_TOLERANCES, samples=500, seed=4)
    assert [d.as_dict()["ci"] for d in other.deltas] != [d.as_dict()["ci"] for d in first.deltas]


def test_a_higher_confidence_level_widens_the_interval() -> None:
    a = retrieval_run("ev_a", 30, lost={1, 5, 8, 13, 21})
    b = retrieval_run("ev_b", 30, lost={2, 5, 9, 10, 14, 17, 22, 29})
    narrow = by_metric(compare_runs(a, b, {}, samples=SAMPLES, level=0.5))["ndcg@10"]
    wide = by_metric(compare_runs(a, b, {}, samples=SAMPLES, level=0.99))["ndcg@10"]
    assert wide.low < narrow.low < narrow.delta < narrow.high < wide.high
    assert "50% CI" in format_table(compare_runs(a, b, {}, samples=SAMPLES, level=0.5))


def test_pairing_cancels_the_spread_between_items() -> None:
    # Costs and latencies vary 100-fold between items, but B adds the same to each one:
    # the paired interval is the shift itself, however noisy the items are.
    spread = np.random.default_rng(1).lognormal(0, 1.5, size=50)
    a = make_run(
        [scored(judged(k), cost=float(c), latency_ms=round(100 * c)) for k, c in enumerate(spread)]
    )
    b = make_run(
        [
            scored(judged(k), cost=float(c) + 0.25, latency_ms=round(100 * c) + 40)
            for k, c in enumerate(spread)
        ],
        "ev_b",
    )
    deltas = by_metric(compare_runs(a, b, {}, samples=SAMPLES))
    assert (deltas["cost_per_job"].low, deltas["cost_per_job"].high) == (
        pytest.approx(0.25),
        pytest.approx(0.25),
    )
    for name in ("latency_p50_ms", "latency_p95_ms"):
        assert (deltas[name].low, deltas[name].high) == (pytest.approx(40), pytest.approx(40))


def _noisy_costs(seed: int, n: int, shift: float) -> tuple[EvalRun, EvalRun]:
    """Paired costs: B = A + shift + noise, with A spread widely between items."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(0, 0.5, size=n)
    other = base + shift + rng.normal(0, 0.3, size=n)
    a = make_run([scored(judged(k), cost=float(c)) for k, c in enumerate(base)])
    b = make_run([scored(judged(k), cost=float(c)) for k, c in enumerate(other)], "ev_b")
    return a, b


def test_the_interval_of_a_mean_difference_matches_a_hand_computation() -> None:
    a, b = _noisy_costs(seed=11, n=200, shift=0.05)
    cost = by_metric(compare_runs(a, b, {}, samples=4000))["cost_per_job"]
    d = np.array(
        [
            y["scores"]["cost_per_job"] - x["scores"]["cost_per_job"]
            for x, y in zip(a.items, b.items, strict=True)
        ]
    )
    assert cost.delta == pytest.approx(d.mean())
    # a paired bootstrap of our own, with other draws
    index = np.random.default_rng(99).integers(0, d.size, size=(20_000, d.size))
    low, high = np.percentile(d[index].mean(axis=1), [2.5, 97.5])
    half = (high - low) / 2
    assert cost.low == pytest.approx(low, abs=0.1 * half)
    assert cost.high == pytest.approx(high, abs=0.1 * half)
    # and the normal approximation: mean +- 1.96 standard errors of the paired differences
    error = d.std() / math.sqrt(d.size)
    assert cost.low == pytest.approx(d.mean() - 1.96 * error, abs=0.1 * half)
    assert cost.high == pytest.approx(d.mean() + 1.96 * error, abs=0.1 * half)


def test_the_95_percent_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    shift, trials = 0.05, 200
    covered = 0
    for seed in range(trials):
        a, b = _noisy_costs(seed, n=40, shift=shift)
        cost = by_metric(compare_runs(a, b, {}, samples=500, seed=seed))["cost_per_job"]
        covered += cost.low <= shift <= cost.high
    # binomial sd at 95% over 200 trials is 1.5 points; percentile intervals run a bit narrow
    assert 0.88 <= covered / trials <= 0.99


def test_format_table_names_the_runs_and_the_regressed_metrics() -> None:
    a = retrieval_run("ev_a", 60, lost=set())
    b = retrieval_run("ev_b", 60, lost=set(range(20)))
    table = format_table(compare_runs(a, b, DEFAULT_TOLERANCES, samples=SAMPLES))
    lines = table.splitlines()
    assert lines[0].startswith(
        "A = ev_a a prompt v1 model m index i1 top_k 5 scorer None (60 items)"
    )
    assert lines[1].startswith("B = ev_b b")
    ndcg = next(line for line in lines if line.startswith("ndcg@10"))
    assert ndcg.split()[1:4] == ["1.0000", "0.6667", "-0.3333"]
    assert ndcg.endswith(REGRESSED)
    assert lines[-1] == "regressed: ndcg@10, recall@10, mrr"


# -- the tolerance keys the config accepts ---------------------------------------------------


def test_every_tolerance_key_names_a_metric() -> None:
    assert set(DEFAULT_TOLERANCES) <= set(BY_NAME)
    assert Evaluation(tolerances={"latency_p50_ms": 0.5}).tolerances == {"latency_p50_ms": 0.5}


def test_an_unknown_tolerance_key_is_refused_listing_the_known_metrics() -> None:
    with pytest.raises(ValidationError, match=r"unknown metric\(s\) bleu, rouge") as raised:
        Evaluation(tolerances={"rouge": 0.1, "bleu": 0.1, "ndcg@10": 0.02})
    known = str(raised.value).split("known: ", 1)[1]
    for name in DEFAULT_TOLERANCES:
        assert name in known
    with pytest.raises(ConfigError, match=r"ragline.yaml: evaluation: .*unknown metric\(s\) bleu"):
        parse_config({"evaluation": {"tolerances": {"bleu": 0.1}}}, origin="ragline.yaml")


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"evaluation\.tolerances\.ndcg@10"):
        parse_config({"evaluation": {"tolerances": {"ndcg@10": -0.01}}})


def test_the_refusal_lists_every_metric_it_would_accept() -> None:
    with pytest.raises(ValidationError) as raised:
        Evaluation(tolerances={"bleu": 0.1})
    known = str(raised.value).split("known: ", 1)[1]
    assert "latency_p50_ms" in known
