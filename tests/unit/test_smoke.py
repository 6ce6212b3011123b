"""A corpus's smoke file: what it may hold, and every way it can be wrong, refused naming
the file, the item and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.config import SmokeQuery
from ragline.errors import InvalidInput
from ragline.knowledge.smoke import SMOKE_FILE, read_smoke, smoke_set
from tests.support.environment import HANDBOOK

CONFIGURED = [SmokeQuery(question="configured?", expected_documents=["a"])]


def test_the_handbook_ships_its_own_smoke_set() -> None:
    queries = read_smoke(HANDBOOK / SMOKE_FILE)
    assert len(queries) == 8
    for query in queries:
        assert query.groups == ["everyone"]
        for document in query.expected_documents:
            assert (HANDBOOK / f"{document}.md").is_file(), document


def test_yaml_and_jsonl_hold_the_same_items(tmp_path: Path) -> None:
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("- question: Q?\n  expected_documents: [d]\n  groups: [sales]\n")
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text('\n{"question": "Q?", "expected_documents": ["d"], "groups": ["sales"]}\n')
    assert read_smoke(yaml_file) == read_smoke(jsonl)


def test_the_named_file_wins_then_the_folders_then_the_configured(tmp_path: Path) -> None:
    named = tmp_path / "named.yaml"
    named.write_text("- {question: 'named?', expected_documents: [n]}\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    assert smoke_set(folder, None, []).queries == []
    assert smoke_set(folder, None, []).source is None
    assert smoke_set(folder, None, CONFIGURED).source == "config"
    (folder / SMOKE_FILE).write_text("- {question: 'beside?', expected_documents: [b]}\n")
    assert smoke_set(folder, None, CONFIGURED).queries[0].question == "beside?"
    assert smoke_set(folder, named, CONFIGURED).queries[0].question == "named?"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.yaml", "", "expected a list of {question, expected_documents} items"),
        ("s.yaml", "question: q", "expected a list"),
        ("s.yaml", "- [unclosed\n", "line 2: not valid YAML"),
        ("s.yaml", "- {question: 'q'}\n", "item 1: expected_documents: Field required"),
        ("s.yaml", "- {question: '', expected_documents: [d]}\n", "item 1: question: String"),
        ("s.yaml", "- {question: q, expected_documents: [d], colour: red}\n", "item 1: colour"),
        ("s.jsonl", '{"question": "q", "expected_documents": ["d"]}\n{oops\n', "line 2"),
    ],
)
def test_a_bad_smoke_file_is_refused_naming_where(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInput) as refused:
        read_smoke(path)
    assert str(path) in str(refused.value) and message in str(refused.value)


def test_a_missing_or_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        read_smoke(tmp_path / "nowhere.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInput, match="cannot be read"):
        read_smoke(binary)
