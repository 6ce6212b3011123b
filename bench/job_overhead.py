"""Per-job overhead: a job's worker time against its unavoidable work, measured in one run.

    .venv/bin/python bench/job_overhead.py [--jobs 200] [--index-dir data/scifact]
        [--database postgresql+psycopg://127.0.0.1:5432/ragline_bench]

The unavoidable work of a job is embedding its question and searching the index (as the
retriever does: same alias, top_k, mode and groups). For each question, alternately first
and second, this measures that alone and then `Pipeline.answer_job` on a stored job (claim,
every stage, finish with its review and delivery rows) with the extractive provider, on
PostgreSQL. Reports the median and p95 of
  worker time / unavoidable                (target <= 1.2)
  (worker time - model call) / unavoidable (what ragline adds around a real model)
where the model call is the provider's own time (`call_ms` on the trace's generate span):
the rest of the generate stage (prompt, budget reservation and settlement) is ragline's;
and where the rest goes: each stage's and the claim/finish bookkeeping's share.
The index is the handbook's (built in a temporary folder) unless --index-dir names a data
folder whose Qdrant holds a promoted index (e.g. data/scifact from `make eval-scifact`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from queue_throughput import bench_config, fresh_database  # bench/ is the script's path
from scifact_data import scifact_queries

from ragline.accounts import Accounts
from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.evaluation.metrics import percentile
from ragline.knowledge.lexical import LexicalEncoder
from ragline.observability import configure_logging
from ragline.pipeline.validate import JobRequest
from ragline.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def questions(index_dir: Path | None) -> list[str]:
    if index_dir is not None:
        return scifact_queries()
    rows = [json.loads(line) for line in (REPO / "eval" / "guardrails.jsonl").open()]
    return [r["question"] for r in rows if r["category"] in ("answerable", "pii")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--database", default="postgresql+psycopg://127.0.0.1:5432/ragline_bench")
    args = parser.parse_args()
    configure_logging("WARNING", "console")

    with tempfile.TemporaryDirectory() as folder:
        data_dir = args.index_dir or Path(folder)
        settings = Settings(
            data_dir=data_dir,
            database_url=fresh_database(args.database),
            prompts_dir=REPO / "prompts",
        )
        # Jobs are stored and answered here, never queued.
        core = bootstrap(settings, Mode.WORKER, Overrides(config=bench_config(), send=print))
        store, embedder, pipeline = core.need_store(), core.need_embedder(), core.need_pipeline()
        retrieval = core.config.assistant_pipeline.retrieval
        if args.index_dir is None and core.index is not None:
            core.index.promote(core.index.build(REPO / "examples" / "handbook").version)
        lexical = LexicalEncoder()
        account = Accounts(core.engine).create_account("bench")
        asked = questions(args.index_dir)

        def unavoidable(question: str) -> float:
            started = time.perf_counter()
            vector = embedder.embed_one(question)
            store.search(
                retrieval.source,
                vector.tolist(),
                retrieval.top_k,
                ("everyone",),
                lexical=lexical.query(question) if retrieval.mode != "dense" else None,
                mode=retrieval.mode,
            )
            return (time.perf_counter() - started) * 1000

        def job(question: str) -> tuple[float, dict[str, float]]:
            admitted = pipeline.guardrails.admit(question)
            stored, _ = core.jobs.submit(
                JobRequest(question=admitted.text, user_id="bench"),
                account_id=account.id,
                deadline=timedelta(minutes=5),
                guardrails={"input": admitted.record},
            )
            started = time.perf_counter()
            pipeline.answer_job(stored.id)
            total = (time.perf_counter() - started) * 1000
            done = core.jobs.get(stored.id)
            spans = {span["name"]: span for span in done.trace.get("spans", [])}
            call = spans.get("generate", {}).get("attributes", {}).get("call_ms", 0.0)
            return total, {**done.stage_timings, "model call": call}

        for question in asked[:5]:  # warm-up: lazy loads, caches, connections
            unavoidable(question)
            job(question)
        ratios, without_model, stage_ms, bookkeeping = [], [], {}, []
        for number in range(args.jobs):
            question = asked[number % len(asked)]
            if number % 2:
                base = unavoidable(question)
                total, stages = job(question)
            else:
                total, stages = job(question)
                base = unavoidable(question)
            call = stages.pop("model call")
            ratios.append(total / base)
            without_model.append((total - call) / base)
            if "generate" in stages:
                stages["generate"] -= call  # the rest of the stage: prompt, budget, ledger
                stages["model call"] = call
            for stage, ms in stages.items():
                stage_ms.setdefault(stage, []).append(ms)
            bookkeeping.append(total - sum(stages.values()))
        core.close()

    total_ms = sum(sum(v) for v in stage_ms.values()) + sum(bookkeeping)
    print(f"{args.jobs} jobs, {retrieval.mode} retrieval, top_k {retrieval.top_k}")
    print(
        f"worker time / unavoidable:                median {statistics.median(ratios):.2f}  "
        f"p95 {percentile(ratios, 95):.2f}  (target <= 1.2)"
    )
    print(
        f"(worker time - model call) / unavoidable: median "
        f"{statistics.median(without_model):.2f}  p95 {percentile(without_model, 95):.2f}"
    )
    print("share of worker time:")
    for stage, values in sorted(stage_ms.items(), key=lambda kv: -sum(kv[1])):
        share, median = sum(values) / total_ms, statistics.median(values)
        print(f"  {stage:<18} {share:6.1%}  median {median:7.2f} ms")
    print(
        f"  {'claim + finish':<18} {sum(bookkeeping) / total_ms:6.1%}  "
        f"median {statistics.median(bookkeeping):7.2f} ms"
    )


if __name__ == "__main__":
    main()
