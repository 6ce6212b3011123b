"""`ragline calibrate` as an operator runs it, in-process (the subprocess is not the point):
a labelled set refits the scorer and its threshold, the new artifact is a new version that
`eval run --scorer` records and `eval compare` sets against the shipped one; a set with too
few items of a class is refused with the counts, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragline.decision.scorer import DecisionScorer
from tests.support.console import run_cli
from tests.support.environment import HANDBOOK, REPO
from tests.support.pipelines import shipped_scorer
from tests.support.processes import ragline_env

NEAR_MISSES = REPO / "eval" / "answerability" / "handbook-nearmiss-a.jsonl"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def ragline(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = run_cli(*args, env=env)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A data folder holding the promoted handbook; no model endpoint (extractive answers)."""
    env = ragline_env(tmp_path / "data")
    code, _, err = ragline("index", "build", str(HANDBOOK), "--promote", env=env)
    assert code == 0, err
    return env


def subset(path: Path, pairs: int, unanswerable: int | None = None) -> Path:
    """The first `pairs` answerable/near-miss pairs (fewer near misses if asked)."""
    items = [json.loads(line) for line in NEAR_MISSES.read_text().splitlines() if line.strip()]
    answerable = [i for i in items if i["expected"] == "answered"][:pairs]
    near = [i for i in items if i["expected"] == "escalated"][: unanswerable or pairs]
    path.write_text("".join(json.dumps(i) + "\n" for i in answerable + near))
    return path


@pytest.mark.slow  # calibration and two evaluation runs, ~40 s: `make test-slow`
def test_calibrate_writes_a_new_scorer_that_eval_run_and_compare_use(
    env: dict[str, str], tmp_path: Path
) -> None:
    dataset = subset(tmp_path / "labelled.jsonl", pairs=55)
    out = tmp_path / "calibrated.json"

    code, printed, err = ragline("calibrate", str(dataset), "--out", str(out), env=env)

    assert code == 0, err
    assert "items: 55 answerable, 55 unanswerable" in printed
    assert "AUROC" in printed and "expected calibration error" in printed
    assert "chosen threshold" in printed and f"before ({shipped_scorer().version}" in printed
    calibrated = DecisionScorer.load(out, MODEL)
    assert calibrated.version != shipped_scorer().version
    assert calibrated.version in printed
    assert calibrated.training["datasets"] == {str(dataset): 110}
    assert 0.0 < calibrated.threshold() < 1.0

    runs = []
    for scorer in (None, str(out)):
        extra = ["--scorer", scorer] if scorer else []
        code, printed, err = ragline(
            "eval",
            "run",
            str(dataset),
            "--limit",
            "20",
            *extra,
            "--out",
            str(tmp_path / "r.json"),
            env=env,
        )
        assert code == 0, err
        run = json.loads((tmp_path / "r.json").read_text())
        runs.append(run["id"])
        expected = calibrated.version if scorer else shipped_scorer().version
        assert run["subject"]["scorer_version"] == expected
        assert all(item["signals"] for item in run["items"])
    code, printed, err = ragline("eval", "compare", *runs, env=env)
    assert code in (0, 1), err  # 1: a metric regressed, which is the gate doing its job
    assert shipped_scorer().version in printed and calibrated.version in printed


def test_too_few_of_a_class_is_refused_with_the_counts(tmp_path: Path) -> None:
    # Refused before the model, the index or the database is opened: no data folder needed.
    env = ragline_env(tmp_path / "data")
    dataset = subset(tmp_path / "short.jsonl", pairs=60, unanswerable=49)
    out = tmp_path / "never.json"

    code, _, err = ragline("calibrate", str(dataset), "--out", str(out), env=env)

    assert code == 65, err
    assert "at least 50 items of each class" in err
    assert "has 60 answerable and 49 unanswerable" in err
    assert not out.exists()
