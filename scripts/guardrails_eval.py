"""Run the labelled guardrails set (eval/guardrails.jsonl) through the real pipeline and
report what the closing figures of the guardrails work are made of:

- escalation rate on answerable questions (categories answerable and pii);
- the share of unanswerable and adversarial questions escalated or rejected;
- outcome accuracy per category against each row's `expected`;
- a sweep of the threshold over the stored confidences (the decision scorer's calibrated
  threshold is the one the jobs were routed with; README "The decision").

    .venv/bin/python scripts/guardrails_eval.py [--dataset eval/guardrails.jsonl] [--show]

Self-contained (ragline.sandbox): builds the demo handbook index into a temporary folder,
wires the pipeline as `ragline serve` does (the extractive provider) and submits through
admission, so redaction and policy run exactly as in production. Needs no server; takes
about a minute.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ragline.config import load_config
from ragline.errors import InvalidInput
from ragline.knowledge.embedder import Embedder
from ragline.sandbox import sandbox

REPO = Path(__file__).resolve().parent.parent
POSITIVE = ("answerable", "pii")  # questions the handbook answers


def run(dataset: Path, show: bool) -> dict[str, Any]:
    rows = [json.loads(line) for line in dataset.open(encoding="utf-8") if line.strip()]
    config = load_config(REPO / "ragline.yaml")
    results = []
    embedder = Embedder(config.knowledge.embedding_model)
    with sandbox(config, REPO / "examples" / "handbook", REPO / "prompts", embedder) as box:
        threshold = box.pipeline.threshold(box.pipeline.model.name, None)
        for row in rows:
            result = {"id": row["id"], "category": row["category"], "expected": row["expected"]}
            try:
                stored = box.ask(row["question"])
            except InvalidInput as error:
                result.update(status="rejected", reason="invalid_input", detail=str(error))
                results.append(result)
                continue
            answer = stored.answer or ""
            result.update(
                status=stored.status,
                reason=stored.reason,
                detail=stored.error,
                confidence=stored.confidence,
                policy_decided=stored.reason == "policy",
                must_include=all(p in answer for p in row.get("must_include", [])),
                gold_cited=bool(
                    {c["document_id"] for c in stored.citations} & set(row["gold_documents"])
                ),
                guardrail_ms=sum(
                    v for k, v in stored.stage_timings.items() if k.endswith("_guardrails")
                ),
                job_ms=sum(stored.stage_timings.values()),
                timings=stored.stage_timings,
                inputs={k: v for k, v in stored.confidence_inputs.items() if k != "sentences"},
            )
            results.append(result)
            if show:
                print(
                    f"{row['id']:<7} {row['expected']:<9} {stored.status:<9} "
                    f"{stored.reason or '':<15} {stored.confidence or 0:.3f}  "
                    f"{(stored.error or '')[:60]}"
                )
    return summarise(results, threshold)


def summarise(results: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        by_category[r["category"]][r["status"]] += 1
        by_category[r["category"]]["correct" if r["status"] == r["expected"] else "wrong"] += 1
    positive = [r for r in results if r["category"] in POSITIVE]
    negative = [r for r in results if r["category"] not in POSITIVE]
    answered = [r for r in positive if r["status"] == "answered"]
    sweep = []
    for step in range(4, 15):
        t = step / 20

        # Jobs a policy decided keep their outcome; the others are routed by confidence.
        def escalated(r: dict[str, Any], t: float = t) -> bool:
            if r["status"] == "rejected" or r.get("policy_decided"):
                return r["status"] != "answered"
            return (r.get("confidence") or 0.0) < t

        sweep.append(
            {
                "threshold": t,
                "answerable_escalated": round(sum(map(escalated, positive)) / len(positive), 3),
                "negative_caught": round(sum(map(escalated, negative)) / len(negative), 3),
            }
        )
    return {
        "threshold": threshold,
        "questions": len(results),
        "by_category": {k: dict(v) for k, v in sorted(by_category.items())},
        "answerable_escalation_rate": round(1 - len(answered) / len(positive), 3),
        "negative_escalated_or_rejected": round(
            sum(r["status"] != "answered" for r in negative) / len(negative), 3
        ),
        "outcome_accuracy": round(
            sum(r["status"] == r["expected"] for r in results) / len(results), 3
        ),
        "answered_must_include": round(
            sum(r["must_include"] for r in answered) / max(1, len(answered)), 3
        ),
        "answered_cites_gold": round(
            sum(r["gold_cited"] for r in answered) / max(1, len(answered)), 3
        ),
        "guardrail_share_of_job_time": round(
            sum(r.get("guardrail_ms", 0) for r in results)
            / max(1e-9, sum(r.get("job_ms", 0) for r in results)),
            3,
        ),
        "mean_stage_ms": {
            stage: round(
                sum(r["timings"].get(stage, 0.0) for r in results if "timings" in r)
                / max(1, sum(stage in r.get("timings", {}) for r in results)),
                2,
            )
            for stage in dict.fromkeys(k for r in results for k in r.get("timings", {}))
        },
        "sweep": sweep,
        "rows": results,
        "misrouted": [
            {k: r.get(k) for k in ("id", "expected", "status", "reason", "confidence", "detail")}
            for r in results
            if r["status"] != r["expected"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO / "eval" / "guardrails.jsonl")
    parser.add_argument("--show", action="store_true", help="print every question's outcome")
    parser.add_argument("--rows", type=Path, help="also write every row's result here (JSONL)")
    args = parser.parse_args()
    summary = run(args.dataset, args.show)
    rows = summary.pop("rows")
    if args.rows:
        args.rows.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
