"""Running the real `ragline` command as a user would: subprocesses with their own env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.environment import REPO, TEST_SECRET_KEY
from tests.support.waiting import wait_for

RAGLINE = str(Path(sys.executable).parent / "ragline")


def ragline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any RAGLINE_* of its own, plus these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGLINE_")}
    env.update(
        RAGLINE_DATA_DIR=str(data_dir),
        RAGLINE_LOG_LEVEL="WARNING",
        RAGLINE_SECRET_KEY=TEST_SECRET_KEY,
    )
    env.update(extra)
    return env


def run_ragline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAGLINE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def start_ragline(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[str]:
    # Output goes to a file, not a pipe: a full pipe nobody reads would block the process.
    with log_path.open("w") as log:
        return subprocess.Popen(
            [RAGLINE, *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def wait_healthy(base_url: str, processes: dict[Path, subprocess.Popen[str]]) -> None:
    """Wait for /v1/health to answer 200; fail with the log of any process that died."""

    def up() -> bool:
        for log_path, process in processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{log_path.name}: exited: {log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{base_url}/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout_s=120, every_s=0.3)
