"""`ragline prompts`: a template edit is a new version; old versions stay showable and
comparable after the file has changed."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.console import run_cli
from tests.support.environment import REPO
from tests.support.processes import ragline_env


def test_an_edited_template_is_a_new_version_that_can_be_compared(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    env = ragline_env(tmp_path, RAGLINE_PROMPTS_DIR=str(prompts))

    first = run_cli("prompts", "list", env=env)
    assert first.returncode == 0, first.stderr
    [line] = first.stdout.splitlines()
    assert line.startswith("* answer@")
    old = line.split()[1]

    template = prompts / "answer.j2"
    template.write_text(template.read_text() + "{# Reply in the customer's language. #}\n")
    second = run_cli("prompts", "list", "answer", env=env)
    lines = second.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"  {old}") and lines[1].startswith("* answer@")
    new = lines[1].split()[1]
    assert new != old

    shown = run_cli("prompts", "show", old, env=env)
    assert (
        shown.returncode == 0
        and "Reply" not in shown.stdout
        and "{% block system %}" in shown.stdout
    )
    compared = run_cli("prompts", "diff", old, "answer", env=env)
    assert compared.returncode == 0, compared.stderr
    assert f"--- {old}" in compared.stdout and f"+++ {new}" in compared.stdout
    added = [line for line in compared.stdout.splitlines() if line.startswith("+")]
    assert any("Reply" in line for line in added)
    same = run_cli("prompts", "diff", new, "answer", env=env)
    assert same.stdout.strip() == f"no difference: {new} and {new} are the same text"

    unknown = run_cli("prompts", "show", "answer@000000000000", env=env)
    assert unknown.returncode == 66 and "not known" in unknown.stderr
