"""The generative path on realistic model errors: eval/answerability/generative.jsonl replayed
by the loopback model server as the model's answers to handbook questions.

    .venv/bin/python scripts/generative_eval.py [--scorer scorers/answerability.json]

Each question is admitted and answered through the real pipeline (openai_compatible
provider, guardrails, grounding, the decision scorer) against the handbook. Printed:
precision and recall of "unsupported" (a sentence the grounding check does not find in the
passages) against the corpus's labels, of the final routing (escalated or not) against
`expected`, and per kind of answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragline.config import load_config  # noqa: E402
from ragline.decision.scorer import DecisionScorer  # noqa: E402
from ragline.knowledge.embedder import Embedder  # noqa: E402
from ragline.observability import configure_logging  # noqa: E402
from ragline.sandbox import sandbox  # noqa: E402
from tests.support.fake_model import FakeModelServer  # noqa: E402

CORPUS = ROOT / "eval" / "answerability" / "generative.jsonl"


def precision_recall(predicted: list[bool], actual: list[bool]) -> tuple[float, float]:
    hits = sum(p and a for p, a in zip(predicted, actual, strict=True))
    return hits / max(1, sum(predicted)), hits / max(1, sum(actual))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--scorer", type=Path, default=ROOT / "scorers" / "answerability.json")
    parser.add_argument("--out", type=Path, help="write every item's outcome here (JSONL)")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    items = [json.loads(line) for line in args.corpus.read_text().splitlines() if line.strip()]
    config = load_config(ROOT / "ragline.yaml")
    embedder = Embedder(config.knowledge.embedding_model)
    scorer = DecisionScorer.load(args.scorer, config.knowledge.embedding_model)
    server = FakeModelServer().start()
    server.behaviour.mode = "script"
    server.behaviour.script = {i["question"]: i["answer"] for i in items}
    os.environ["RAGLINE_MODEL_BASE_URL"] = server.base_url
    rows: list[dict[str, Any]] = []
    try:
        handbook = ROOT / "examples" / "handbook"
        groups = ("everyone", "sales", "support-staff")  # the evidence must be readable
        with sandbox(config, handbook, ROOT / "prompts", embedder, scorer, groups) as box:
            for item in items:
                job = box.ask(item["question"])
                sentences = job.confidence_inputs.get("sentences", [])
                rows.append(
                    {
                        "id": item["id"],
                        "kind": item["kind"],
                        "label": item["label"],
                        "expected": item["expected"],
                        "status": job.status,
                        "reason": job.reason,
                        "detail": job.error,
                        "confidence": job.confidence,
                        "flagged": any(not s["supported"] for s in sentences),
                    }
                )
    finally:
        server.stop()
        os.environ.pop("RAGLINE_MODEL_BASE_URL", None)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))

    checked = [r for r in rows if r["label"] != "declined"]
    p, r = precision_recall(
        [row["flagged"] for row in checked], [row["label"] == "unsupported" for row in checked]
    )
    print(f"{len(rows)} answers; grounding flags 'unsupported': precision {p:.3f} recall {r:.3f}")
    p, r = precision_recall(
        [row["status"] != "answered" for row in rows],
        [row["expected"] == "escalated" for row in rows],
    )
    print(f"routing (not answered vs expected escalated): precision {p:.3f} recall {r:.3f}")
    wrong = sum(row["status"] == "answered" and row["expected"] == "escalated" for row in rows)
    print(f"answers that should not have gone out but did: {wrong} of {len(rows)}")
    print("\nkind                answers  sent   escalated (reasons)")
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    for kind, group in sorted(by_kind.items()):
        sent = sum(g["status"] == "answered" for g in group)
        reasons = Counter(g["reason"] for g in group if g["status"] != "answered")
        expected = group[0]["expected"]
        print(
            f"{kind:20s} {len(group):5d}  {sent:5d}   {len(group) - sent:5d} "
            f"({', '.join(f'{k} {v}' for k, v in reasons.most_common())})  expected {expected}"
        )


if __name__ == "__main__":
    main()
