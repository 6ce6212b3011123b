"""The fault-injection suite's topology: started once per session (index build, API, two
workers), healed before each scenario, with each scenario's timings printed at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.environment import unavailable
from tests.support.topology import REDIS_SERVER, BatchReport, Submission, Topology

JOB_COUNT = 240  # per scenario: a few hundred, and under a minute each on two cores
SETTLE_S = 150.0
_RESULTS = pytest.StashKey[list[str]]()

Verify = Callable[..., BatchReport]


@pytest.fixture(scope="session")
def topology(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Topology]:
    if not Path(REDIS_SERVER).exists():
        unavailable("redis-server", FileNotFoundError(REDIS_SERVER))
    root = tmp_path_factory.mktemp("faults")
    request.config.stash.setdefault(_RESULTS, []).append(f"processes' logs: {root / 'logs'}")
    with Topology(root, workers=2, threads=2) as topology:
        yield topology


@pytest.fixture
def deployed(topology: Topology) -> Topology:
    """The topology with everything up and the receiver's record empty."""
    topology.heal()
    return topology


@pytest.fixture
def verify(deployed: Topology, request: pytest.FixtureRequest) -> Verify:
    """Wait for a batch to settle, then check every job; records the timings."""

    def check(
        submission: Submission, *, allow_redelivery: bool = False, note: str = ""
    ) -> BatchReport:
        submission.wait()
        assert not submission.errors, f"submissions refused: {submission.errors}"
        ids = submission.ids()
        settled = deployed.settle(ids, timeout_s=SETTLE_S)
        report = deployed.check(ids)
        line = _timings(request.node.name, submission, settled.final_at, settled.delivered_at)
        request.config.stash.setdefault(_RESULTS, []).append(
            f"{line}\n    {report.summary()}" + (f"\n    {note}" if note else "")
        )
        problems = report.problems(allow_redelivery=allow_redelivery)
        if settled.delivered_at is None:
            problems.insert(0, f"not settled within {SETTLE_S}s")
        assert not problems, "\n".join([*problems, report.summary()])
        return report

    return check


def _timings(
    name: str, submission: Submission, final_at: float | None, delivered_at: float | None
) -> str:
    n = len(submission.ids())
    assert submission.finished is not None
    submit_s = submission.finished - submission.started
    parts = [f"{name}: {n} jobs; submitted in {submit_s:.1f}s ({n / submit_s:.0f}/s)"]
    if final_at is not None:
        final_s = final_at - submission.started
        parts.append(f"all final after {final_s:.1f}s ({n / final_s:.1f} jobs/s)")
    if delivered_at is not None:
        parts.append(f"all delivered after {delivered_at - submission.started:.1f}s")
    return "; ".join(parts)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    results = config.stash.get(_RESULTS, [])
    if results:
        terminalreporter.section("fault scenarios")
        for line in results:
            terminalreporter.write_line(line)
