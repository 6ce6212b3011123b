"""The user's path, as real processes: `ragline index build` then `ragline serve`, in a
fresh data folder, then questions over HTTP (what `make run` does)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.environment import HANDBOOK, REPO
from tests.support.processes import (
    ragline_env,
    run_ragline,
    start_ragline,
    stop,
    wait_healthy,
)
from tests.support.server import free_port
from tests.support.waiting import wait_for

# The console script as a process is the subject here: `make test-slow`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("data")
    built = run_ragline("index", "build", str(HANDBOOK), "--promote", env=ragline_env(data_dir))
    assert built.returncode == 0, built.stderr
    assert "built v1 (kb_v1): 30 documents" in built.stdout
    assert "promoted v1" in built.stdout
    return data_dir


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = free_port()
    log_path = data_dir / "server.log"
    env = ragline_env(
        data_dir,
        RAGLINE_PORT=str(port),
        RAGLINE_LOG_LEVEL="INFO",
        RAGLINE_SOURCE_ROOTS=json.dumps([str(data_dir / "sources")]),
    )
    process = start_ragline(["serve"], env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, {log_path: process})
        yield base, process, log_path
    finally:
        stop(process)


def test_rebuild_is_skipped_when_nothing_changed(data_dir: Path) -> None:
    again = run_ragline(
        "index", "build", str(HANDBOOK), "--promote", "--if-changed", env=ragline_env(data_dir)
    )
    assert again.returncode == 0, again.stderr
    assert "v1 is active and up to date" in again.stdout
    listing = run_ragline("index", "list", env=ragline_env(data_dir))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.lstrip().startswith("* v1")


def test_serve_answers_escalates_and_refuses(
    server: tuple[str, subprocess.Popen[str], Path],
) -> None:
    base, _, log_path = server
    # The embedded server prints a ready-made demo key and keeps it in the data folder.
    key = (log_path.parent / "demo-key").read_text().strip()
    assert key.startswith("rl_") and f"export RAGLINE_KEY={key}" in log_path.read_text()
    unauthenticated = httpx.post(f"{base}/v1/jobs", json={"question": "Hi?", "user_id": "u"})
    assert unauthenticated.status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:

        def ask(question: str) -> dict:
            response = client.post("/v1/jobs", json={"question": question, "user_id": "demo"})
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]

            def done() -> dict | None:
                body = client.get(f"/v1/jobs/{job_id}").json()
                return body if body["status"] not in ("queued", "running") else None

            return wait_for(done, timeout_s=60)

        answered = ask("How long is a free trial, and can it be extended?")
        assert answered["status"] == "answered"
        assert any(c["document_id"] == "product/free-trials" for c in answered["citations"])
        escalated = ask("What is the capital of France?")
        assert escalated["status"] == "escalated" and escalated["reason"] == "low_confidence"
        too_long = client.post("/v1/jobs", json={"question": "x" * 7000, "user_id": "demo"})
        assert too_long.status_code == 422
        assert "6000" in too_long.json()["detail"]


def test_the_indexer_opens_the_store_beside_the_running_server(
    server: tuple[str, subprocess.Popen[str], Path], data_dir: Path
) -> None:
    # Sealed shards take no lock: every process opens them (local mode's one owner is
    # tested in test_index_cli.py).
    listed = run_ragline("index", "list", env=ragline_env(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\* v1 +ready +checks=pass", listed.stdout, flags=re.M), listed.stdout
    assert listed.stderr == ""
    gc = run_ragline("index", "gc", env=ragline_env(data_dir))
    assert gc.returncode == 0, gc.stderr


def test_versions_are_built_promoted_and_rolled_back_through_the_running_server(
    server: tuple[str, subprocess.Popen[str], Path], data_dir: Path, tmp_path: Path
) -> None:
    base, _, log_path = server
    key = (log_path.parent / "demo-key").read_text().strip()
    env = ragline_env(data_dir, RAGLINE_KEY=key)
    via = ["--via-server", "--server", base]
    outside = tmp_path / "handbook"
    shutil.copytree(HANDBOOK, outside)
    refused = run_ragline("index", "build", str(outside), *via, env=env)
    assert refused.returncode != 0 and "source roots" in refused.stderr
    assert str(outside) not in refused.stderr
    source = data_dir / "sources" / "handbook"  # inside RAGLINE_SOURCE_ROOTS
    shutil.copytree(HANDBOOK, source)

    same = run_ragline("index", "build", str(source), *via, env=env)
    assert same.returncode == 0, same.stderr
    assert "(249 reused, 0 embedded)" in same.stdout
    leave = source / "hr" / "annual-leave.md"
    leave.write_text(leave.read_text().replace("25 days of paid", "28 days of paid"))
    edited = run_ragline("index", "build", str(source), *via, env=env)
    assert edited.returncode == 0, edited.stderr
    assert "1 embedded" in edited.stdout
    versions = run_ragline("index", "list", *via, env=env).stdout.splitlines()
    old, new = (int(re.search(r"\bv(\d+)\b", line).group(1)) for line in versions[-2:])  # type: ignore[union-attr]
    changes = run_ragline("index", "diff", str(old), str(new), *via, env=env)
    assert changes.stdout.strip() == "~ hr/annual-leave"

    def leave_days() -> str:
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            job_id = client.post(
                "/v1/jobs",
                json={
                    "question": "How many days of annual leave do employees get?",
                    "user_id": "u",
                },
            ).json()["id"]

            def done() -> dict | None:
                body = client.get(f"/v1/jobs/{job_id}").json()
                return body if body["status"] not in ("queued", "running") else None

            job = wait_for(done, timeout_s=60)
        assert job["status"] == "answered", job
        return str(job["answer"])

    assert run_ragline("index", "promote", str(new), *via, env=env).returncode == 0
    assert "28 days" in leave_days()
    rolled = run_ragline("index", "rollback", *via, env=env)
    assert rolled.returncode == 0, rolled.stderr
    assert "25 days" in leave_days()
    # The indexer beside the server: the server reads the alias from the database and
    # follows within a second, without a restart.
    assert run_ragline("index", "promote", str(new), env=env).returncode == 0
    wait_for(lambda: "28 days" in leave_days() or None, timeout_s=10)
    assert run_ragline("index", "rollback", env=env).returncode == 0
    wait_for(lambda: "25 days" in leave_days() or None, timeout_s=10)
    no_key = run_ragline("index", "list", *via, env=ragline_env(data_dir))
    assert no_key.returncode == 77 and "RAGLINE_KEY" in no_key.stderr


def test_sigterm_stops_the_server_cleanly(server: tuple[str, subprocess.Popen[str], Path]) -> None:
    _, process, log_path = server
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it.
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    log = log_path.read_text()
    assert '"event": "workers_stopped"' in log
    assert "Traceback" not in log
    assert "What is the capital of France" not in log  # never the raw question


def test_a_bad_config_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "ragline.yaml"
    config.write_text(
        (REPO / "ragline.yaml").read_text().replace("timeout_ms: 9000", "timeout_ms: -1")
    )
    result = run_ragline("serve", env=ragline_env(tmp_path, RAGLINE_CONFIG=str(config)))
    assert result.returncode == 78
    assert "assistant_pipeline.generation.timeout_ms" in result.stderr
    assert "Traceback" not in result.stderr
