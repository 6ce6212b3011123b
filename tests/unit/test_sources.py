from pathlib import Path

import pytest

from ragline.errors import InvalidInput
from ragline.knowledge.sources import read_folder, source_checksum


def test_reads_markdown_and_text_recursively_with_front_matter(tmp_path: Path) -> None:
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "leave.md").write_text(
        "---\ntitle: Annual leave\ntags: [hr]\nallowed_groups: [staff]\nowner: hr-team\n---\n"
        "# Ignored heading\n\nEmployees get 25 days.\n"
    )
    (tmp_path / "notes.txt").write_text("Plain text notes about refunds.")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "empty.md").write_text("   \n")
    documents = read_folder(tmp_path)
    assert [d.id for d in documents] == ["hr/leave", "notes"]
    leave = documents[0]
    assert leave.title == "Annual leave"
    assert leave.allowed_groups == ("staff",)
    assert leave.tags == ("hr",)
    assert leave.metadata == {"owner": "hr-team"}
    assert leave.text.startswith("# Ignored heading")
    assert documents[1].title == "notes"
    assert documents[1].allowed_groups == ("everyone",)


def test_checksum_changes_with_content_only(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nOne.")
    first = source_checksum(read_folder(tmp_path))
    assert source_checksum(read_folder(tmp_path)) == first
    (tmp_path / "a.md").write_text("# A\n\nTwo.")
    assert source_checksum(read_folder(tmp_path)) != first


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a folder"):
        read_folder(tmp_path / "missing")
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe not utf8")
    with pytest.raises(InvalidInput, match=r"bad\.md: not UTF-8"):
        read_folder(tmp_path)
    (tmp_path / "bad.md").write_text("---\ntitle: [unclosed\n---\nbody")
    with pytest.raises(InvalidInput, match="front matter"):
        read_folder(tmp_path)
