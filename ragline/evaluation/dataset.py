"""Evaluation datasets: JSON lines of questions with what is known about their right answer.

    {"id": "ans-01", "question": "…", "gold_documents": ["hr/annual-leave"],
     "gold_answer": "…", "must_include": ["25"], "expected": "answered", "tags": ["hr"]}

Only `question` is required. `relevance` (document id -> graded gain) may replace
gold_documents; review decisions export in this format, and BEIR benchmarks import into it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragline.errors import InvalidInput, NotFound


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = ""
    question: str = Field(min_length=1)
    gold_documents: list[str] = Field(default_factory=list)
    relevance: dict[str, int] = Field(default_factory=dict)
    gold_answer: str | None = None
    must_include: list[str] = Field(default_factory=list)
    expected: Literal["answered", "escalated", "rejected"] | None = None
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _graded(self) -> EvalItem:
        if self.gold_documents and not self.relevance:
            object.__setattr__(self, "relevance", dict.fromkeys(self.gold_documents, 1))
        return self


def load_dataset(path: Path) -> list[EvalItem]:
    """Every line parsed and validated; the first bad line is an error naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise NotFound(f"dataset {path} cannot be read: {error.strerror}") from None
    items: list[EvalItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = EvalItem.model_validate(json.loads(line))
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"{path}:{number}: not JSON ({error.msg})", field="dataset"
            ) from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(line)'}: {e['msg']}"
                for e in error.errors()
            )
            raise InvalidInput(f"{path}:{number}: {problems}", field="dataset") from None
        items.append(item if item.id else item.model_copy(update={"id": f"line-{number}"}))
    if not items:
        raise InvalidInput(f"{path} holds no questions", field="dataset")
    return items


def import_beir(folder: Path, split: str = "test") -> list[EvalItem]:
    """A BEIR benchmark (queries.jsonl + qrels/<split>.tsv) as evaluation items with graded
    relevance; queries without judgments in the split are left out."""
    qrels_path = folder / "qrels" / f"{split}.tsv"
    try:
        relevance: dict[str, dict[str, int]] = {}
        with qrels_path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                relevance.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
        items = []
        with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                query = json.loads(line)
                judged = relevance.get(str(query["_id"]))
                if judged:
                    items.append(
                        EvalItem(
                            id=str(query["_id"]),
                            question=query["text"],
                            relevance=judged,
                            gold_documents=[d for d, g in judged.items() if g > 0],
                            tags=[f"beir:{folder.name}"],
                        )
                    )
    except OSError as error:
        raise NotFound(f"BEIR folder {folder}: {error.strerror}: {error.filename}") from None
    except (KeyError, ValueError) as error:
        raise InvalidInput(f"BEIR folder {folder}: malformed ({error})", field="dataset") from None
    return items
