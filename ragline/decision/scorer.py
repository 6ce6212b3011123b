"""The decision scorer: a trained, versioned artifact that turns answerability signals into
the probability that the passages answer the question, and says where to draw the line.

An artifact is one JSON file (never a pickle: loading it runs no code):

    {"format": 1, "name": "answerability", "embedding_model": "...", "signals": [...],
     "model": {"kind": "logistic", "mean": [...], "scale": [...], "coef": [...],
               "intercept": 0.0}
            | {"kind": "trees", "init": 0.0, "learning_rate": 0.1, "trees": [...]},
     "calibration": {"a": 1.0, "b": 0.0},        # Platt: p = sigmoid(a * raw + b)
     "thresholds": {"default": 0.5, "models": {"extractive": 0.42}, "features": {}},
     "training": {...}}                           # datasets, counts, held-out figures

Its version is `name@` + the first 12 hex digits of the SHA-256 of its canonical JSON, so
the version recorded on a job names exactly the weights and thresholds that routed it.
A missing, corrupt or foreign artifact stops the process (fail closed): a scorer that
cannot be read must never turn into "answer everything".
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragline.errors import ConfigError
from ragline.pipeline.answerability import SIGNALS

FORMAT = 1


@dataclass(frozen=True)
class Tree:
    """A regression tree as parallel arrays (sklearn's layout); a leaf has left == -1."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]

    def predict(self, row: Sequence[float]) -> float:
        node = 0
        while self.left[node] != -1:
            node = (
                self.left[node]
                if row[self.feature[node]] <= self.threshold[node]
                else (self.right[node])
            )
        return self.value[node]


@dataclass(frozen=True)
class DecisionScorer:
    name: str
    embedding_model: str
    signals: tuple[str, ...]
    model: dict[str, Any]
    calibration: dict[str, float] = field(default_factory=lambda: {"a": 1.0, "b": 0.0})
    thresholds: dict[str, Any] = field(default_factory=lambda: {"default": 0.5})
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)
        trees = [Tree(**t) for t in self.model.get("trees", [])]
        object.__setattr__(self, "_trees", trees)  # built once: raw() runs on every job

    # -- identity ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "embedding_model": self.embedding_model,
            "signals": list(self.signals),
            "model": self.model,
            "calibration": self.calibration,
            "thresholds": self.thresholds,
            "training": self.training,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"

    @property
    def version(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"

    # -- scoring -----------------------------------------------------------------------------

    def raw(self, values: Mapping[str, float]) -> float:
        """The model's log-odds before calibration."""
        row = [float(values[name]) for name in self.signals]
        model = self.model
        if model["kind"] == "logistic":
            terms = zip(model["coef"], row, model["mean"], model["scale"], strict=True)
            return float(model["intercept"]) + float(sum(c * (x - m) / s for c, x, m, s in terms))
        trees: list[Tree] = getattr(self, "_trees")  # noqa: B009 (set in __post_init__)
        rate = float(model["learning_rate"])
        return float(model["init"]) + rate * sum(t.predict(row) for t in trees)

    def probability(self, values: Mapping[str, float]) -> float:
        """The calibrated probability that the passages answer the question."""
        z = self.calibration["a"] * self.raw(values) + self.calibration["b"]
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def threshold(self, model: str | None = None, feature: str | None = None) -> float:
        """Where to draw the line for jobs answered by this model (and feature): the most
        specific calibrated threshold, else the default."""
        thresholds = self.thresholds
        if feature and feature in thresholds.get("features", {}):
            return float(thresholds["features"][feature])
        if model and model in thresholds.get("models", {}):
            return float(thresholds["models"][model])
        return float(thresholds["default"])

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Any, source: str = "scorer") -> DecisionScorer:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: not a scorer artifact (expected a JSON object)")
        if data.get("format") != FORMAT:
            raise ConfigError(
                f"{source}: scorer format {data.get('format')!r} is not {FORMAT}; "
                "retrain it with `ragline calibrate`"
            )
        try:
            return cls(
                name=str(data["name"]),
                embedding_model=str(data["embedding_model"]),
                signals=tuple(data["signals"]),
                model=dict(data["model"]),
                calibration=dict(data["calibration"]),
                thresholds=dict(data["thresholds"]),
                training=dict(data.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"{source}: corrupt scorer artifact ({error})") from None

    @classmethod
    def load(cls, path: Path, embedding_model: str) -> DecisionScorer:
        """The artifact at path, checked against the embedding model this process uses."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                f"decision scorer {path} cannot be read ({error.strerror}); "
                "train one with `ragline calibrate` or restore the shipped file"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"decision scorer {path} is corrupt: {error.msg}") from None
        scorer = cls.from_json(data, source=f"decision scorer {path}")
        if scorer.embedding_model != embedding_model:
            raise ConfigError(
                f"decision scorer {path} was trained for embedding model "
                f"'{scorer.embedding_model}', but knowledge.embedding_model is "
                f"'{embedding_model}': retrain it with `ragline calibrate`"
            )
        return scorer

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(self.dumps(), encoding="utf-8")
        temporary.replace(path)


def _validate(scorer: DecisionScorer) -> None:
    unknown = [s for s in scorer.signals if s not in SIGNALS]
    if unknown:
        raise ValueError(f"unknown signals {unknown}")
    model = scorer.model
    width = len(scorer.signals)
    if model.get("kind") == "logistic":
        for key in ("mean", "scale", "coef"):
            values = model.get(key)
            if not isinstance(values, list) or len(values) != width:
                raise ValueError(f"model.{key} must hold {width} numbers")
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                raise ValueError(f"model.{key} holds a value that is not a finite number")
        if any(s == 0 for s in model["scale"]):
            raise ValueError("model.scale holds a zero")
        float(model["intercept"])
    elif model.get("kind") == "trees":
        float(model["init"])
        float(model["learning_rate"])
        for tree in model["trees"]:
            nodes = len(tree["value"])
            if any(len(tree[k]) != nodes for k in ("feature", "threshold", "left", "right")):
                raise ValueError("a tree's arrays differ in length")
            if any(
                f >= width
                for f, left in zip(tree["feature"], tree["left"], strict=True)
                if left != -1
            ):
                raise ValueError("a tree splits on a signal the artifact does not list")
    else:
        raise ValueError(f"model.kind {model.get('kind')!r} is not logistic or trees")
    for key in ("a", "b"):
        if not math.isfinite(float(scorer.calibration[key])):
            raise ValueError(f"calibration.{key} is not a finite number")
    thresholds = [scorer.thresholds["default"]]
    thresholds += list(scorer.thresholds.get("models", {}).values())
    thresholds += list(scorer.thresholds.get("features", {}).values())
    if not all(isinstance(t, int | float) and 0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError("thresholds must lie in [0, 1]")
