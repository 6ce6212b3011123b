"""A new index version is promoted, then rolled back, while both workers run: each worker
answers from the promoted version within moments, without a restart, and never goes back to
the old one on its own (the workers share the indexer's sealed shards and read the alias
from the database)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.faults.conftest import Verify
from tests.support.environment import HANDBOOK
from tests.support.processes import run_ragline
from tests.support.topology import Topology

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

JOBS = 80


def _answered_from(deployed: Topology, verify: Verify, tag: str, version: str) -> None:
    """Submit a batch; each worker answers some of it from `version`, and once it has, no
    job it starts later is answered from another. (Jobs run four at a time per worker, so a
    job started before the switch may finish after one started later: finishing order
    proves nothing.)"""
    starts = [worker.starts for worker in deployed.workers]
    submission = deployed.submit(JOBS, tag)
    verify(submission, note=f"answered from {version} after the alias moved")
    ids = set(submission.ids())
    for worker in deployed.workers:
        finished = {
            event["job_id"]: event
            for event in worker.events("job_finished")
            if event.get("job_id") in ids and event.get("index_version")
        }
        started = {
            event["job_id"]: event["timestamp"]
            for event in worker.events("job_started")
            if event.get("job_id") in finished
        }
        used = [event["index_version"] for event in finished.values()]
        assert used, f"{worker.name} answered none of the batch"
        assert version in used, (worker.name, used)
        switched = min(e["timestamp"] for e in finished.values() if e["index_version"] == version)
        went_back = [
            (job_id, event["index_version"])
            for job_id, event in finished.items()
            if event["index_version"] != version and started[job_id] > switched
        ]
        assert went_back == [], (worker.name, switched, went_back)
    assert [worker.starts for worker in deployed.workers] == starts  # nobody restarted


def test_a_promotion_and_a_rollback_reach_both_running_workers(
    deployed: Topology, verify: Verify, tmp_path: Path
) -> None:
    env = deployed.env(deployed.root / "index")  # the indexer's folder the workers read
    corpus = tmp_path / "handbook"
    shutil.copytree(HANDBOOK, corpus)
    leave = corpus / "hr" / "annual-leave.md"
    leave.write_text(leave.read_text().replace("25 days of paid", "28 days of paid"))
    built = run_ragline("index", "build", str(corpus), "--promote", env=env)
    assert built.returncode == 0, built.stderr
    promoted = re.search(r"built v\d+ \((kb_v\d+)\)", built.stdout)
    assert promoted, built.stdout
    try:
        _answered_from(deployed, verify, "promoted", promoted.group(1))
    finally:
        rolled = run_ragline("index", "rollback", "--reason", "faults: back", env=env)
        assert rolled.returncode == 0, rolled.stderr
    previous = re.search(r"now points at v(\d+)", rolled.stdout)
    assert previous, rolled.stdout
    _answered_from(deployed, verify, "rolled-back", f"kb_v{previous.group(1)}")
