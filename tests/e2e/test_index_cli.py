"""The operator's path through `ragline index …`, the console script run in-process with
its own environment (tests/support/console.py): a fresh data folder, a copy of a few handbook
files and a config whose smoke set fits them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ragline.knowledge.qdrant_store import QdrantStore
from tests.support.console import run_cli
from tests.support.environment import HANDBOOK, REPO
from tests.support.processes import ragline_env
from tests.support.server import free_port

FILES = [
    "hr/annual-leave.md",
    "hr/training-budget.md",
    "product/free-trials.md",
    "security/passwords-and-mfa.md",
]
SMOKE = [
    {
        "question": "How many days of annual leave do employees get?",
        "expected_documents": ["hr/annual-leave"],
    },
    {
        "question": "How much is the yearly training budget?",
        "expected_documents": ["hr/training-budget"],
    },
    {
        "question": "Is multi-factor authentication mandatory?",
        "expected_documents": ["security/passwords-and-mfa"],
    },
]
# A corpus of the user's own: no document shares an id with the handbook.
OWN = {
    "shop/returns.md": "# Returns\n\nUnworn shoes may be returned within 60 days of delivery.\n",
    "shop/shipping.md": "# Shipping\n\nOrders above 80 EUR ship free within the EU.\n",
}
OWN_SMOKE = [
    {"question": "How long do I have to return shoes?", "expected_documents": ["shop/returns"]},
    {"question": "When is shipping free?", "expected_documents": ["shop/shipping"]},
]
BUILT = re.compile(
    r"built v(?P<version>\d+) \(kb_v\d+\): (?P<documents>\d+) documents, (?P<chunks>\d+) chunks "
    r"\((?P<reused>\d+) reused, (?P<embedded>\d+) embedded\)"
)


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    docs = tmp_path / "docs"
    for name in FILES:
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HANDBOOK / name, docs / name)
    config = yaml.safe_load((REPO / "ragline.yaml").read_text())
    config["knowledge"]["gate"]["smoke_queries"] = SMOKE
    config_path = tmp_path / "ragline.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return docs, ragline_env(tmp_path / "data", RAGLINE_CONFIG=str(config_path))


def ragline(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, env=env)
    assert result.returncode == code, (
        f"ragline {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def built(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = BUILT.search(result.stdout)
    assert match, result.stdout
    print(result.stdout.splitlines()[0])  # the build's duration is on this line
    assert "checks passed" in result.stdout, result.stdout
    return {k: int(v) for k, v in match.groupdict().items()}


def listing(env: dict[str, str]) -> list[str]:
    return ragline("index", "list", env=env).stdout.splitlines()


def test_build_reuse_diff_promote_rollback_and_gc(workspace: tuple[Path, dict[str, str]]) -> None:
    docs, env = workspace

    first = ragline("index", "build", str(docs), "--promote", env=env)
    v1 = built(first)
    assert (v1["version"], v1["documents"], v1["reused"]) == (1, len(FILES), 0)
    assert v1["embedded"] == v1["chunks"] > 0
    assert "promoted v1 to 'approved-knowledge-base'" in first.stdout

    second = built(ragline("index", "build", str(docs), env=env))
    assert second == {**v1, "version": 2, "reused": v1["chunks"], "embedded": 0}

    leave = docs / "hr" / "annual-leave.md"
    leave.write_text(
        leave.read_text() + "\n## Leave for volunteering\n\nEmployees get 2 extra days "
        "of paid leave each year for volunteering with a registered charity.\n"
    )
    third = built(ragline("index", "build", str(docs), env=env))
    assert third["version"] == 3
    assert third["chunks"] > v1["chunks"]
    assert 0 < third["embedded"] < third["chunks"]
    assert third["reused"] + third["embedded"] == third["chunks"]

    diff = ragline("index", "diff", "1", "3", env=env)
    assert diff.stdout.splitlines() == ["~ hr/annual-leave"]
    assert "0 added, 0 removed, 1 changed" in diff.stderr
    assert ragline("index", "diff", "1", "2", env=env).stdout == ""

    assert "promoted v3" in ragline("index", "promote", "3", env=env).stdout
    rolled = ragline("index", "rollback", "--reason", "volunteering text not approved", env=env)
    assert "now points at v1" in rolled.stdout

    lines = listing(env)
    assert [line[:4] for line in lines] == ["* v1", "  v2", "  v3"]
    assert all(" ready " in line and "checks=pass" in line for line in lines)

    missing = ragline("index", "promote", "99", env=env, code=66)
    assert "index version 99 does not exist" in missing.stderr

    empty = docs.parent / "empty"
    empty.mkdir()
    refused = ragline("index", "build", str(empty), env=env, code=65)
    assert f"ragline: error: {empty} holds no documents ragline can read" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert listing(env) == lines

    # Kept: v1 (active) and v3 (the previous one, and the newest ready); v2 goes.
    gc = ragline("index", "gc", "--keep", "1", env=env)
    assert gc.stdout.strip() == "dropped v2"
    after = listing(env)
    assert after[0] == lines[0] and after[2] == lines[2]
    assert after[1].startswith("  v2") and " deleted " in after[1]
    assert ragline("index", "gc", "--keep", "1", env=env).stdout.strip() == "nothing to drop"
    assert "now points at v3" in ragline("index", "rollback", env=env).stdout


def test_your_own_documents_replace_the_handbook_without_forcing(tmp_path: Path) -> None:
    """The README's "Use your own documents" path with the shipped ragline.yaml: the
    handbook brings its own smoke set; a first build of another folder is not a drop, has no
    smoke set (said so) and passes; `make run`'s build then keeps it; its own smoke.yaml
    checks every later build."""
    env = ragline_env(tmp_path / "data")
    handbook = ragline("index", "build", str(HANDBOOK), "--promote", env=env)
    assert "checks passed, smoke hit rate 100%" in handbook.stdout

    docs = tmp_path / "docs"
    for name, text in OWN.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    own = ragline("index", "build", str(docs), "--promote", env=env)
    assert built(own)["documents"] == 2
    assert "checks passed, no smoke set" in own.stdout and "promoted v2" in own.stdout
    assert "note: new corpus: 0 of its 2 documents are in the active v1" in own.stderr
    assert "note: no smoke set: add smoke.yaml beside the documents" in own.stderr

    # `make run` afterwards: the handbook is not indexed over the user's promoted version.
    kept = ragline(
        "index", "build", str(HANDBOOK), "--promote", "--if-changed", "--keep-other", env=env
    )
    assert kept.stdout.startswith(f"v2 is active, built from {docs.resolve()}: kept.")
    assert listing(env)[-1].startswith("* v2")

    (docs / "smoke.yaml").write_text(yaml.safe_dump(OWN_SMOKE))
    again = ragline("index", "build", str(docs), env=env)
    assert "checks passed, smoke hit rate 100%" in again.stdout
    assert "note:" not in again.stderr

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- {question: 'Where is the car park?'}\n")
    refused = ragline("index", "build", str(docs), "--smoke", str(wrong), env=env, code=65)
    assert f"smoke file {wrong}, item 1: expected_documents: Field required" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_server_that_is_not_there_is_named_with_how_to_point_at_it(tmp_path: Path) -> None:
    env = ragline_env(tmp_path / "data", RAGLINE_KEY="rl_x_y")
    address = f"http://127.0.0.1:{free_port()}"
    refused = ragline("index", "list", "--via-server", "--server", address, env=env, code=75)
    assert f"cannot reach the server at {address}" in refused.stderr
    assert "--server URL, or RAGLINE_HOST and RAGLINE_PORT" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_qdrant_local_mode_has_one_owner_and_the_indexer_says_what_to_do(
    workspace: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """RAGLINE_INDEX_ENGINE=qdrant-local: while a server holds the folder, listing reads
    the database, writing commands say to go through the server, gc to stop it."""
    docs, env = workspace
    env = {**env, "RAGLINE_INDEX_ENGINE": "qdrant-local"}
    ragline("index", "build", str(docs), "--promote", env=env)
    server = QdrantStore.open(path=tmp_path / "data" / "qdrant")  # what `ragline serve` holds
    try:
        listed = ragline("index", "list", env=env)
        assert re.search(r"^\* v1 +ready +checks=pass", listed.stdout, flags=re.M), listed.stdout
        assert "open in another process" in listed.stderr
        rollback = ragline("index", "rollback", "--reason", "try", env=env, code=75)
        assert "open in another process" in rollback.stderr
        assert "add --via-server" in rollback.stderr
        build = ragline("index", "build", str(docs), env=env, code=75)
        assert "--via-server" in build.stderr
        gc = ragline("index", "gc", env=env, code=75)  # no server route: stop the server
        assert "Stop the server first" in gc.stderr and "--via-server" not in gc.stderr
    finally:
        server.close()
    assert not (tmp_path / "data" / "index").exists()  # the edge engine was never used
