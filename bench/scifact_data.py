"""Where the benchmarks find BEIR SciFact, and what they say when it is not there.

SciFact (CC BY-NC 2.0) is not in the repository: BEIR's scifact.zip unpacked into
../shared/eval/scifact beside the clone, or any folder named by SCIFACT=path (the README's
"Retrieval quality" section). A benchmark that needs it and finds none exits with SKIPPED,
which `make bench` reports as skipped rather than failed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCIFACT = REPO.parent / "shared" / "eval" / "scifact"
SKIPPED = 77  # what automake's test harness (and `make bench`) reads as "skipped"


def scifact(folder: Path | None = None) -> Path:
    """The SciFact folder (the argument, else $SCIFACT, else ../shared/eval/scifact), or
    exit SKIPPED saying how to get it."""
    folder = folder or Path(os.environ.get("SCIFACT") or DEFAULT_SCIFACT)
    missing = [f for f in ("corpus.jsonl", "queries.jsonl") if not (folder / f).is_file()]
    if missing:
        print(
            f"skipped: BEIR SciFact is not in {folder} (no {', '.join(missing)}). Download "
            "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip, "
            f"unpack it into {DEFAULT_SCIFACT} or pass SCIFACT=path (README: Retrieval quality).",
            file=sys.stderr,
        )
        raise SystemExit(SKIPPED)
    return folder


def scifact_queries(folder: Path | None = None) -> list[str]:
    import json

    with (scifact(folder) / "queries.jsonl").open() as lines:
        return [json.loads(line)["text"] for line in lines]
