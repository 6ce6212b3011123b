"""The README's examples, run as written: the quick start's shell lines against a live
embedded server, every endpoint it names against the app, every example request body
against the API's model, every `ragline` command it shows against the console script. A
README that drifts from the code fails here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from ragline.evaluation.dataset import EvalItem
from ragline.pipeline.validate import JobRequest
from tests.support.console import run_cli
from tests.support.environment import REPO
from tests.support.server import serving
from tests.support.services import EmbeddedApp
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCUMENTED_BASE = "http://127.0.0.1:8000"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.M | re.S)


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and output dropped."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def quick_start() -> str:
    return next(b for b in blocks("sh") if "export RAGLINE_KEY" in b)


@pytest.fixture
def app(embedded: EmbeddedApp) -> EmbeddedApp:
    return embedded


@pytest.fixture
def demo_key(app: EmbeddedApp, tmp_path: Path) -> str:
    """A key as `make run` prints it (every role), in data/demo-key under tmp_path."""
    _, key = make_tenant(
        app.services.engine, "demo", roles=("submitter", "reviewer", "admin", "indexer")
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo-key").write_text(key + "\n")
    return key


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_quick_start_shell_lines_answer_as_the_readme_shows(
    app: EmbeddedApp, demo_key: str, tmp_path: Path
) -> None:
    lines = commands(quick_start())
    export, submit, fetch = lines[0], lines[1], lines[2]
    assert export == "export RAGLINE_KEY=$(cat data/demo-key)"
    with serving(create_app(app.api)) as base:

        def shell(command: str) -> dict[str, object]:
            script = f"{export}\n{command.replace(DOCUMENTED_BASE, base)}"
            done = subprocess.run(
                ["bash", "-euc", script],
                cwd=tmp_path,
                env={"PATH": os.environ["PATH"]},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            body: dict[str, object] = json.loads(done.stdout)
            return body

        accepted = shell(submit)
        assert accepted["status"] == "queued" and accepted["links"] == {
            "self": f"/v1/jobs/{accepted['id']}"
        }
        placeholder = re.search(r"/v1/jobs/(\S+…)", fetch)
        assert placeholder is not None
        job_command = fetch.replace(placeholder.group(1), str(accepted["id"]))

        def answered() -> dict[str, object] | None:
            job = shell(job_command)
            return job if job["status"] == "answered" else None

        job = wait_for(answered, timeout_s=60)
    citations = job["citations"]
    assert isinstance(citations, list) and citations[0]["document_id"] == "hr/annual-leave"
    assert "25 days" in str(job["answer"])
    versions = job["versions"]
    assert isinstance(versions, dict) and versions["index_version"] == "kb_v1"


def documented_endpoints() -> set[tuple[str, str]]:
    """(method, path) of every endpoint the README names in backticks."""
    found = re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`\s]*)", README)
    return {(method, path) for method, path in found}


def test_every_endpoint_the_readme_names_exists(app: EmbeddedApp) -> None:
    paths = create_app(app.api).openapi()["paths"]
    routes = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in paths.items()
        for method in operations
    }
    missing = []
    for method, path in documented_endpoints():
        template = re.sub(r"\{[^}]+\}", "{}", path.split("?")[0])
        # The review pages and /metrics are outside the OpenAPI document: the query test
        # below requests them.
        outside = template.startswith("/review") or template == "/metrics"
        if (method, template) not in routes and not outside:
            missing.append(f"{method} {path}")
    assert missing == []


def test_every_query_the_readme_shows_is_accepted(app: EmbeddedApp, demo_key: str) -> None:
    """The documented query strings, copied as written (placeholders and alternatives
    left out): none is refused."""
    make_tenant(app.services.engine, "acme", roles=("submitter",))
    queries = [
        path
        for method, path in documented_endpoints()
        if method == "GET" and not re.search(r"[{…|]", path)
    ]
    assert "/v1/reviews?reason=&feature=&overdue=&status=pending&limit=50&offset=0" in queries
    with serving(create_app(app.api)) as base:
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {demo_key}"}, timeout=30
        )
        statuses = {path: client.get(path).status_code for path in sorted(queries)}
        refused = {path: status for path, status in statuses.items() if status >= 400}
    assert refused == {}


def test_the_example_job_requests_and_dataset_lines_are_valid() -> None:
    """A job request (POST /v1/jobs) or an evaluation dataset's line (it has an `id`)."""
    bodies = [json.loads(b) for b in blocks("json") if '"question"' in b]
    assert any("id" not in b for b in bodies) and any("id" in b for b in bodies)
    for body in bodies:
        (EvalItem if "id" in body else JobRequest).model_validate(body)


def test_every_ragline_command_the_readme_shows_exists() -> None:
    shown = {
        tuple(line.split()[1:3])
        for block in blocks("sh")
        for line in commands(block)
        if line.startswith("ragline ")
    }
    assert len(shown) >= 10
    unknown = {}
    for words in sorted(shown):
        command = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)]
        result = run_cli(*command, "--help", env={"PATH": os.environ["PATH"]})
        if result.returncode != 0:
            unknown[" ".join(command)] = result.stderr[-300:]
    assert unknown == {}
