"""What the answerability stage costs a job, measured in one run.

    .venv/bin/python bench/decision.py [--jobs 300]

Handbook questions (eval/answerability/handbook-nearmiss-b.jsonl: answerable and near
misses), cycled, go through admission and the pipeline in a sandbox (ragline.sandbox) with
the extractive provider and the shipped scorer. Reports the `answerability` stage's time
(the probe's signals and the scorer) against the job's whole worker time, p50 and p95: the
target is at most 15 ms p50 added per job. The first pass over the questions warms the
caches (sentence embeddings, word vectors) as a running worker's would be, and is not
counted. Absolute times are printed for context; the share is the result.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from ragline.config import load_config
from ragline.knowledge.embedder import Embedder
from ragline.observability import configure_logging
from ragline.sandbox import sandbox

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = REPO / "eval" / "answerability" / "handbook-nearmiss-b.jsonl"
GROUPS = ("everyone", "sales", "support-staff")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    config = load_config(REPO / "ragline.yaml")
    embedder = Embedder(config.knowledge.embedding_model)
    questions = [json.loads(line)["question"] for line in QUESTIONS.open() if line.strip()]
    stage_ms: list[float] = []
    job_ms: list[float] = []
    with sandbox(
        config, REPO / "examples" / "handbook", REPO / "prompts", embedder, groups=GROUPS
    ) as box:
        for question in questions:  # warm-up pass
            box.ask(question)
        for number in range(args.jobs):
            timings = box.ask(questions[number % len(questions)]).stage_timings
            if "answerability" in timings:
                stage_ms.append(timings["answerability"])
                job_ms.append(sum(timings.values()))
    shares = [s / j for s, j in zip(stage_ms, job_ms, strict=True)]
    print(
        json.dumps(
            {
                "jobs": len(stage_ms),
                "answerability_ms_p50": round(statistics.median(stage_ms), 2),
                "answerability_ms_p95": round(statistics.quantiles(stage_ms, n=20)[-1], 2),
                "job_ms_p50": round(statistics.median(job_ms), 2),
                "share_of_job_p50": round(statistics.median(shares), 4),
                "share_of_job_p95": round(statistics.quantiles(shares, n=20)[-1], 4),
                "target_ms_p50": 15,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
