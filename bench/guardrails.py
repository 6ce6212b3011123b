"""Guardrail latency per job as a share of the whole job, measured in one run.

    .venv/bin/python bench/guardrails.py [--jobs 300]

The handbook questions of eval/guardrails.jsonl (answerable and PII-bearing), cycled, go
through admission and the pipeline in a sandbox (ragline.sandbox) with the extractive
provider, in two sandboxes side by side, alternating per question: guardrails on (as
ragline.yaml) and off (pii_redaction and policy_check false). Reports:
1. guardrail time per job: admission's redaction (timed around Admission.submit's
   redaction step, i.e. GuardrailLayer.admit) + the input_guardrails and output_guardrails
   stages, against the job's whole time (admit + every stage): target < 10%;
2. the whole job's time with guardrails on against off (the ratio is the real overhead).
Absolute times are printed for context only; the shares and the ratio are the result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from ragline.config import RaglineConfig, load_config, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.sandbox import Sandbox, sandbox

REPO = Path(__file__).resolve().parent.parent


def questions() -> list[str]:
    rows = [json.loads(line) for line in (REPO / "eval" / "guardrails.jsonl").open()]
    return [r["question"] for r in rows if r["category"] in ("answerable", "pii")]


@dataclass
class Samples:
    guard_ms: list[float] = field(default_factory=list)
    job_ms: list[float] = field(default_factory=list)

    def add(self, box: Sandbox, question: str) -> None:
        started = time.perf_counter()
        box.pipeline.guardrails.admit(question)
        admit_ms = (time.perf_counter() - started) * 1000
        timings = box.ask(question).stage_timings
        guarded = sum(v for k, v in timings.items() if k.endswith("_guardrails"))
        self.guard_ms.append(admit_ms + guarded)
        self.job_ms.append(admit_ms + sum(timings.values()))

    def summary(self) -> dict[str, float]:
        shares = [g / j for g, j in zip(self.guard_ms, self.job_ms, strict=True)]
        return {
            "jobs": len(self.job_ms),
            "guardrail_ms_mean": round(statistics.fmean(self.guard_ms), 2),
            "job_ms_mean": round(statistics.fmean(self.job_ms), 2),
            "share_of_total": round(sum(self.guard_ms) / sum(self.job_ms), 4),
            "share_p50": round(statistics.median(shares), 4),
            "share_p95": round(statistics.quantiles(shares, n=20)[-1], 4),
        }


def measure(
    on: RaglineConfig, off: RaglineConfig, embedder: Embedder, asked: list[str]
) -> tuple[Samples, Samples]:
    """Both configurations side by side, alternating per question, so that caches and
    machine noise treat them alike."""
    documents, prompts = REPO / "examples" / "handbook", REPO / "prompts"
    with (
        sandbox(on, documents, prompts, embedder) as box_on,
        sandbox(off, documents, prompts, embedder) as box_off,
    ):
        for question in asked[:20]:  # warm caches and code paths
            box_on.ask(question)
            box_off.ask(question)
        samples_on, samples_off = Samples(), Samples()
        for question in asked:
            samples_on.add(box_on, question)
            samples_off.add(box_off, question)
    return samples_on, samples_off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    config = load_config(REPO / "ragline.yaml")
    data = config.model_dump()
    data["assistant_pipeline"]["guardrails"].update(pii_redaction=False, policy_check=False)
    off = parse_config(data)
    embedder = Embedder(config.knowledge.embedding_model)
    pool = questions()
    asked = [pool[i % len(pool)] for i in range(args.jobs)]
    samples_on, samples_off = measure(config, off, embedder, asked)
    on_result, off_result = samples_on.summary(), samples_off.summary()
    print(json.dumps({"guardrails_on": on_result, "guardrails_off": off_result}, indent=2))
    print(
        f"guardrails: {on_result['share_of_total']:.1%} of job time (target < 10%); "
        f"job time on/off: {on_result['job_ms_mean'] / off_result['job_ms_mean']:.3f}"
    )


if __name__ == "__main__":
    main()
