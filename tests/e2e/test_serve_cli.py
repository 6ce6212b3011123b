"""`ragline serve` refusing to start (in-process: tests/support/console.py); serving itself
is a process journey in test_cli.py."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.console import run_cli
from tests.support.processes import ragline_env


def test_a_taken_port_is_refused_before_the_banner_and_the_demo_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env=ragline_env(tmp_path))
    assert result.returncode == 78, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "RAGLINE_PORT" in result.stderr
    assert "demo key" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "demo-key").exists() and not (tmp_path / "ragline.db").exists()


def test_several_api_processes_are_refused_in_embedded_mode(tmp_path: Path) -> None:
    # The embedded queue, workers and local index live in the one process.
    result = run_cli("serve", "--workers", "2", env=ragline_env(tmp_path))
    assert result.returncode == 78, result.stderr
    assert "--workers needs the deployed mode" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "ragline.db").exists()
