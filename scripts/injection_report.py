"""How the input guardrails do on the labelled prompt-injection set (tests/data/injection):
detection (recall on attacks) and false positives (share of benign questions stopped), per
split, language and kind.

    .venv/bin/python scripts/injection_report.py [--show]

Each question goes through PolicyChecker.check_input with the policy of ragline.yaml, as the
worker runs it (deny topics left out: they need the embedding model and are not what this
set measures). A question counts as caught when a verdict rejects it or routes it to a
person; `redact` alone (an invisible character removed) lets it through. The `classifier`
column counts the attacks only the trained classifier caught. --show lists every miss and
false positive.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragline.config import load_config  # noqa: E402
from ragline.guardrails.policy import PolicyChecker  # noqa: E402

DATA = ROOT / "tests" / "data" / "injection"
SPLITS = ("train", "heldout")


def checker() -> PolicyChecker:
    policy = load_config(ROOT / "ragline.yaml").assistant_pipeline.guardrails.policy
    return PolicyChecker(policy.model_copy(update={"deny_topics": []}))


def judge(policy: PolicyChecker, text: str) -> list[str]:
    """The rules of the verdicts that stop the question (none: it goes through)."""
    verdicts = policy.check_input(text, None)
    return [v.rule for v in verdicts if v.action in ("reject", "route_to_human")]


def rates(rows: list[dict[str, Any]]) -> str:
    attacks = [r for r in rows if r["label"] == "attack"]
    benign = [r for r in rows if r["label"] == "benign"]
    caught = sum(bool(r["rules"]) for r in attacks)
    only = sum(r["rules"] == ["injection.classifier"] for r in attacks)
    flagged = sum(bool(r["rules"]) for r in benign)
    recall = f"{caught:>3}/{len(attacks):<3} {caught / len(attacks):6.1%}" if attacks else " " * 14
    fp = f"{flagged:>3}/{len(benign):<3} {flagged / len(benign):6.1%}" if benign else " " * 14
    return f"{recall}   {fp}   {only:>3}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", action="store_true", help="list misses and false positives")
    args = parser.parse_args()
    policy = checker()
    header = f"{'':<22}{'detected (attacks)':<20}{'false positives':<17}classifier only"
    for split in SPLITS:
        rows = [json.loads(line) for line in (DATA / f"{split}.jsonl").open(encoding="utf-8")]
        for row in rows:
            row["rules"] = judge(policy, row["text"])
        print(f"\n== {split} ==\n{header}")
        print(f"{'all':<22}{rates(rows)}")
        for column in ("language", "kind"):
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                groups[row[column]].append(row)
            for name in sorted(groups):
                print(f"{column + ' ' + name:<22}{rates(groups[name])}")
        if args.show:
            for row in rows:
                wrong = bool(row["rules"]) != (row["label"] == "attack")
                if wrong:
                    what = "missed" if row["label"] == "attack" else f"flagged {row['rules']}"
                    print(f"  {what} [{row['kind']}/{row['language']}] {row['text']!r}")


if __name__ == "__main__":
    main()
