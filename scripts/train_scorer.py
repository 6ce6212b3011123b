"""Train the shipped decision scorer (scorers/answerability.json) and report it on held-out sets.

    .venv/bin/python scripts/train_scorer.py [--scifact ../shared/eval/scifact] [--kind logistic]

Every labelled question is asked through the real pipeline (admission, retrieval, the
extractive provider, guardrails, grounding, the answerability probe) in a sandbox whose
index holds that set's corpus; the signals the probe measured are the scorer's inputs.

Splits (never mixed): the scorer is fitted on the TRAIN sets only and reported on the
HELD-OUT sets, which share no passage, question or writer's batch with them.
  train:    handbook near misses A (hr/, product/) with their answerable twins; wiki-a and
            wiki-b (encyclopedic paragraphs, SQuAD-2.0-style questions written for ragline);
            "evidence withheld": A's answerable questions asked again with their gold
            documents out of the index.
  held out: handbook near misses B (security/, support/) and B withheld; wiki-c;
            eval/guardrails.jsonl (answerable vs unanswerable); SciFact *train* claims, half
            asked with their gold abstracts out of the index (when ../shared has SciFact).
SciFact's claims were first fitted on too; a leave-one-set-out validation on the training
sets alone (printed by this script) preferred the fit without them: they are claims, not
questions, and a kept claim is "answerable" only as far as SciFact's relevance goes. The
SciFact test split is never read.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragline.config import load_config  # noqa: E402
from ragline.decision.scorer import DecisionScorer  # noqa: E402
from ragline.decision.training import (  # noqa: E402
    auroc,
    expected_calibration_error,
    fit,
    tradeoff,
)
from ragline.evaluation.metrics import token_f1  # noqa: E402
from ragline.knowledge.embedder import Embedder  # noqa: E402
from ragline.pipeline.answerability import SIGNALS  # noqa: E402
from ragline.sandbox import sandbox  # noqa: E402

DATA = ROOT / "eval" / "answerability"
HANDBOOK = ROOT / "examples" / "handbook"
WITHHELD_FOLDS = 5
# Every document group of the handbook: a question's evidence must be readable to count as
# answerable (two documents are restricted to sales and support-staff).
GROUPS = ("everyone", "sales", "support-staff")
TRAIN_WIKI = ("wiki-a", "wiki-b")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def label(item: dict[str, Any]) -> int | None:
    expected = item.get("expected") or item.get("category")
    if expected in ("answered", "answerable"):
        return 1
    if expected in ("escalated", "unanswerable"):
        return 0
    return None


def ask_all(
    config: Any, corpus: Path, items: Iterable[dict[str, Any]], embedder: Embedder, scorer: Any
) -> list[dict[str, Any]]:
    """Each item through the sandboxed pipeline: its signals, outcome and label."""
    rows = []
    with sandbox(config, corpus, ROOT / "prompts", embedder, scorer=scorer, groups=GROUPS) as box:
        for item in items:
            y = label(item)
            if y is None:
                continue
            job = box.ask(item["question"])
            inputs = job.confidence_inputs.get("answerability")
            if not inputs:  # rejected or escalated before scoring: no signals
                continue
            rows.append(
                {
                    "id": item["id"],
                    "question": job.question,
                    "evidence": (inputs.get("evidence") or {}).get("text", ""),
                    "label": y,
                    "signals": inputs["signals"],
                    "legacy": job.confidence_inputs.get("value", 0.0),
                    "status": job.status,
                    "reason": job.reason,
                    "answer": job.answer or "",
                    "gold_answer": item.get("gold_answer"),
                    "tags": item.get("tags", []),
                }
            )
    return rows


def corpus_folder(
    jsonl: Path, scratch: Path, exclude: frozenset[str] | set[str] = frozenset()
) -> Path:
    folder = scratch / f"corpus-{jsonl.parent.name}-{len(exclude)}-{time.monotonic_ns()}"
    folder.mkdir()
    lines = [
        line
        for line in jsonl.read_text().splitlines()
        if line.strip() and json.loads(line)["_id"] not in exclude
    ]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def handbook_without(documents: set[str], scratch: Path) -> Path:
    folder = scratch / f"handbook-{time.monotonic_ns()}"
    shutil.copytree(HANDBOOK, folder)
    for document in documents:
        (folder / f"{document}.md").unlink()
    return folder


def withheld(
    config: Any,
    items: list[dict[str, Any]],
    embedder: Embedder,
    scorer: Any,
    scratch: Path,
) -> list[dict[str, Any]]:
    """Answerable handbook questions asked with their gold documents out of the index."""
    documents = sorted(
        {p.relative_to(HANDBOOK).with_suffix("").as_posix() for p in HANDBOOK.rglob("*.md")}
    )
    rows: list[dict[str, Any]] = []
    for fold in range(WITHHELD_FOLDS):
        out = set(documents[fold::WITHHELD_FOLDS])
        asked = [
            {
                **i,
                "id": i["id"] + "-withheld",
                "expected": "escalated",
                "tags": [*i.get("tags", []), "evidence_withheld"],
            }
            for i in items
            if label(i) == 1
            and set(i.get("gold_documents", []))
            and set(i["gold_documents"]) <= out
        ]
        if asked:
            rows += ask_all(config, handbook_without(out, scratch), asked, embedder, scorer)
    return rows


def scifact_withheld(
    folder: Path, config: Any, embedder: Embedder, scorer: Any, scratch: Path, limit: int
) -> list[dict[str, Any]]:
    """SciFact *train* claims: half asked with their gold abstracts, half without."""
    from ragline.evaluation.dataset import import_beir

    items = import_beir(folder, split="train")[:limit]
    withhold = items[::2]
    out = {d for i in withhold for d in i.gold_documents}
    keep = [i for i in items[1::2] if not set(i.gold_documents) & out]
    # The kept claims' abstracts and as many others as it takes to make retrieval work for
    # its place (a sample keeps the build to a couple of minutes on 2 cores).
    gold = {d for i in keep for d in i.gold_documents}
    corpus_ids = [json.loads(line)["_id"] for line in (folder / "corpus.jsonl").open()]
    others = [d for d in corpus_ids if d not in out and d not in gold][
        :: max(1, len(corpus_ids) // 1500)
    ]
    exclude = set(corpus_ids) - gold - set(others)
    asked = [
        {
            "id": i.id + "-withheld",
            "question": i.question,
            "expected": "escalated",
            "tags": ["scifact", "evidence_withheld"],
        }
        for i in withhold
    ]
    asked += [
        {
            "id": i.id,
            "question": i.question,
            "expected": "answered",
            "tags": ["scifact", "answerable"],
        }
        for i in keep
    ]
    corpus = corpus_folder(folder / "corpus.jsonl", scratch, exclude=exclude)
    return ask_all(config, corpus, asked, embedder, scorer)


def report(name: str, rows: list[dict[str, Any]], scorer: DecisionScorer | None) -> dict[str, Any]:
    y = np.array([r["label"] for r in rows])
    legacy = np.array([r["legacy"] for r in rows])
    figures: dict[str, Any] = {
        "items": len(rows),
        "answerable": int(y.sum()),
        "unanswerable": int(len(y) - y.sum()),
    }
    figures["before"] = _figures(legacy, y, 0.5)
    if scorer is not None:
        probabilities = np.array([scorer.probability(r["signals"]) for r in rows])
        figures["after"] = _figures(probabilities, y, scorer.threshold("extractive"))
        figures["after"]["ece"] = round(expected_calibration_error(probabilities, y), 4)
    f1 = [
        token_f1(r["answer"], r["gold_answer"])
        for r in rows
        if r["label"] == 1 and r["gold_answer"]
    ]
    if f1:
        figures["token_f1"] = round(float(np.mean(f1)), 4)
    print(f"{name:28s} {json.dumps(figures)}")
    return figures


def _figures(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    answered = scores >= threshold
    return {
        "answered": round(float((answered & (y == 1)).sum() / max(1, (y == 1).sum())), 4),
        "escalated": round(float((~answered & (y == 0)).sum() / max(1, (y == 0).sum())), 4),
        "auroc": round(auroc(scores, y), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "scorers" / "answerability.json")
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared/eval/scifact")
    parser.add_argument("--scifact-limit", type=int, default=400)
    parser.add_argument("--kind", choices=["logistic", "trees"], default="logistic")
    parser.add_argument(
        "--cache",
        type=Path,
        default=ROOT / "data" / "scorer-signals.json",
        help="signals measured by an earlier run (delete to measure again)",
    )
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument(
        "--remeasure", nargs="*", default=[], help="measure again the sets whose name has this"
    )
    args = parser.parse_args()
    from ragline.observability import configure_logging

    configure_logging("WARNING", "console")

    config = load_config(ROOT / "ragline.yaml")
    embedder = Embedder(config.knowledge.embedding_model)
    # Signals do not depend on the scorer; a neutral one lets the pipeline run.
    neutral = DecisionScorer(
        name="neutral",
        embedding_model=config.knowledge.embedding_model,
        signals=SIGNALS,
        model={
            "kind": "logistic",
            "mean": [0.0] * len(SIGNALS),
            "scale": [1.0] * len(SIGNALS),
            "coef": [0.0] * len(SIGNALS),
            "intercept": 0.0,
        },
    )
    sets = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    for name in args.remeasure:
        sets = {k: v for k, v in sets.items() if name not in k}
    measure(args, config, embedder, neutral, sets)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    args.cache.write_text(json.dumps(sets))
    if args.measure_only:
        return

    train_names = [n for n in sets if n.startswith("train:")]
    validate(sets, train_names, config.knowledge.embedding_model)
    train = [r for n in train_names for r in sets[n]]
    x = [[r["signals"][s] for s in SIGNALS] for r in train]
    y = [r["label"] for r in train]
    scorer, _ = fit(
        x,
        y,
        signals=SIGNALS,
        embedding_model=config.knowledge.embedding_model,
        kind=args.kind,
        target_answered=config.decision.target_answered,
        training={"datasets": {n: len(sets[n]) for n in train_names}},
    )
    held = {}
    for name, rows in sets.items():
        held[name] = report(name, rows, scorer)
    everything = [r for n in sets if n.startswith("held-out:") for r in sets[n]]
    held["held-out:all"] = report("held-out:all", everything, scorer)
    held_out = {n: v for n, v in held.items() if n.startswith("held-out")}
    scorer = replace(scorer, training={**scorer.training, "held_out": held_out})
    curve = tradeoff(
        [scorer.probability(r["signals"]) for r in everything], [r["label"] for r in everything]
    )
    print("held-out trade-off (threshold: answered / escalated):")
    for point in curve[::5]:
        print(f"  {point.threshold:.2f}: {point.answered:.3f} / {point.escalated:.3f}")
    scorer.save(args.out)
    print(f"wrote {args.out} ({scorer.version}); threshold {scorer.thresholds['default']}")


def validate(sets: dict[str, Any], train_names: list[str], model: str) -> None:
    """Leave one training set out (with its withheld twin), fit on the rest, AUROC on it:
    how well the recipe carries to data it was not fitted on, without touching held-out."""
    groups = sorted({n.removesuffix("-withheld") for n in train_names})
    figures = {}
    for group in groups:
        left_out = [n for n in train_names if n.removesuffix("-withheld") == group]
        rows = [r for n in train_names if n not in left_out for r in sets[n]]
        scorer, _ = fit(
            [[r["signals"][s] for s in SIGNALS] for r in rows],
            [r["label"] for r in rows],
            signals=SIGNALS,
            embedding_model=model,
        )
        held = [r for n in left_out for r in sets[n]]
        probabilities = [scorer.probability(r["signals"]) for r in held]
        figures[group] = round(auroc(probabilities, [r["label"] for r in held]), 4)
    print(f"leave-one-set-out AUROC on the training sets: {json.dumps(figures)}")


def measure(
    args: Any, config: Any, embedder: Embedder, neutral: DecisionScorer, sets: dict[str, Any]
) -> None:
    """Measure every set not in sets yet (a set whose files are missing is skipped)."""
    with tempfile.TemporaryDirectory(prefix="ragline-train-") as folder:
        scratch = Path(folder)

        def handbook(name: str, questions: Path, split: str) -> None:
            if questions.exists() and f"{split}:{name}" not in sets:
                items = read_jsonl(questions)
                sets[f"{split}:{name}"] = ask_all(config, HANDBOOK, items, embedder, neutral)
                sets[f"{split}:{name}-withheld"] = withheld(
                    config, items, embedder, neutral, scratch
                )

        def wiki(name: str, split: str) -> None:
            if (DATA / name / "questions.jsonl").exists() and f"{split}:{name}" not in sets:
                corpus = corpus_folder(DATA / name / "corpus.jsonl", scratch)
                items = read_jsonl(DATA / name / "questions.jsonl")
                if split == "held-out":
                    # A subject written about in a training set too (by another writer) is
                    # not held out: its questions are left out of the report.
                    trained = {
                        p["title"]
                        for n in TRAIN_WIKI
                        for p in read_jsonl(DATA / n / "corpus.jsonl")
                    }
                    titles = {
                        p["_id"]: p["title"] for p in read_jsonl(DATA / name / "corpus.jsonl")
                    }
                    items = [i for i in items if titles[i["gold_documents"][0]] not in trained]
                sets[f"{split}:{name}"] = ask_all(config, corpus, items, embedder, neutral)

        handbook("handbook-a", DATA / "handbook-nearmiss-a.jsonl", "train")
        for name in TRAIN_WIKI:
            wiki(name, "train")
        if (args.scifact / "qrels" / "train.tsv").exists():
            if "held-out:scifact-withheld" not in sets:
                sets["held-out:scifact-withheld"] = scifact_withheld(
                    args.scifact, config, embedder, neutral, scratch, args.scifact_limit
                )
        else:
            print(f"SciFact train not found at {args.scifact}: reported without it")
        handbook("handbook-b", DATA / "handbook-nearmiss-b.jsonl", "held-out")
        wiki("wiki-c", "held-out")
        if "held-out:guardrails" not in sets:
            sets["held-out:guardrails"] = ask_all(
                config, HANDBOOK, read_jsonl(ROOT / "eval" / "guardrails.jsonl"), embedder, neutral
            )


if __name__ == "__main__":
    main()
