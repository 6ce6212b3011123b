import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from pypdf import PdfWriter

from ragline.errors import InvalidInput
from ragline.knowledge.sources import read_corpus, read_document, read_folder, source_checksum


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


# -- formats ---------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "eval" / "scifact" / "corpus.jsonl"

PAGE = """<!doctype html>
<html><head><title>Refund policy | ACME</title>
<style>body { color: red }</style><script>var tracking = "secret";</script></head>
<body>
<header><h1>ACME header</h1><p>Welcome banner</p></header>
<nav><ul><li>Home</li><li>Products</li></ul></nav>
<main>
<h2>Refunds</h2>
<p>Refunds are paid
   within <b>14 days</b>.</p>
<p>Ask &amp; we answer.<br>Second line.</p>
<h3>Exceptions</h3>
<ul><li>Gift cards</li><li><p>Sale items</p></li></ul>
<table><tr><th>Plan</th><th>Days</th></tr><tr><td>Basic</td><td>14</td></tr></table>
<form><label>Email</label><input name="email"></form>
<aside>Related posts</aside><noscript>Enable JS</noscript>
</main>
<footer>Copyright ACME</footer>
</body></html>
"""


def test_html_drops_boilerplate_and_keeps_headings(tmp_path: Path) -> None:
    (tmp_path / "policy.html").write_text(PAGE)
    [doc] = read_folder(tmp_path)
    assert doc.id == "policy"
    assert doc.source == "policy.html"
    assert doc.title == "Refund policy | ACME"
    assert doc.text.split("\n\n") == [
        "## Refunds",
        "Refunds are paid within 14 days.",
        "Ask & we answer.",
        "Second line.",
        "### Exceptions",
        "- Gift cards",
        "- Sale items",
        "Plan | Days",
        "Basic | 14",
    ]
    for dropped in ("secret", "color", "ACME header", "Welcome", "Home", "Email", "Related"):
        assert dropped not in doc.text
    assert "Copyright" not in doc.text
    assert "Enable JS" not in doc.text


def test_html_title_falls_back_to_first_h1_then_file_name(tmp_path: Path) -> None:
    (tmp_path / "a.htm").write_text("<h1> Main  topic </h1><p>Body.</p><h1>Other</h1>")
    (tmp_path / "b-page.HTML").write_text("<p>No headings here.</p>")
    a, b = read_folder(tmp_path)
    assert (a.id, a.title, a.text) == ("a", "Main topic", "# Main topic\n\nBody.\n\n# Other")
    assert (b.id, b.title, b.text) == ("b-page", "b page", "No headings here.")


def test_html_headings_feed_the_structure_aware_chunker(tmp_path: Path) -> None:
    from ragline.knowledge.chunking import _sections

    (tmp_path / "policy.html").write_text(PAGE)
    [doc] = read_folder(tmp_path)
    paths = [section.path for section in _sections(doc.text)]
    assert paths == [("Refunds",), ("Refunds", "Exceptions")]


def test_pdf_text_and_title_from_metadata(tmp_path: Path) -> None:
    (tmp_path / "policy.pdf").write_bytes((FIXTURES / "tiny.pdf").read_bytes())
    [doc] = read_folder(tmp_path)
    assert (doc.id, doc.source) == ("policy", "policy.pdf")
    assert doc.title == "Tiny Refund Policy"
    assert doc.text == "Refunds are paid within 14 days."
    raw = (FIXTURES / "tiny.pdf").read_bytes()
    assert doc.content_hash == hashlib.sha256(b"policy.pdf\0" + raw).hexdigest()


def test_pdf_pages_joined_and_title_from_file_name(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.append(str(FIXTURES / "tiny.pdf"))
    writer.add_blank_page()  # no text: left out of the join
    writer.append(str(FIXTURES / "tiny.pdf"))
    with (tmp_path / "two-pages.pdf").open("wb") as out:
        writer.write(out)
    [doc] = read_folder(tmp_path)
    assert doc.title == "two pages"
    assert doc.text == "Refunds are paid within 14 days.\n\nRefunds are paid within 14 days."


def test_pdf_without_text_is_skipped_like_an_empty_file(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with (tmp_path / "scan.pdf").open("wb") as out:
        writer.write(out)
    (tmp_path / "notes.txt").write_text("Some text.")
    assert [d.id for d in read_folder(tmp_path)] == ["notes"]


def _encrypted(path: Path, user_password: str) -> None:
    writer = PdfWriter()
    writer.append(str(FIXTURES / "tiny.pdf"))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    with path.open("wb") as out:
        writer.write(out)


def test_encrypted_pdf_is_a_clear_error_unless_the_password_is_empty(tmp_path: Path) -> None:
    _encrypted(tmp_path / "open.pdf", "")
    [doc] = read_folder(tmp_path)
    assert doc.text == "Refunds are paid within 14 days."
    _encrypted(tmp_path / "locked.pdf", "secret")
    with pytest.raises(InvalidInput, match=r"locked\.pdf: encrypted PDF"):
        read_folder(tmp_path)


def test_damaged_pdf_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"this is not a PDF at all")
    with pytest.raises(InvalidInput, match=r"broken\.pdf: not a readable PDF"):
        read_folder(tmp_path)


def test_jsonl_corpus_in_the_root_keeps_bare_ids(tmp_path: Path) -> None:
    lines = [
        {"_id": "d1", "title": "First", "text": "Alpha text."},
        {"_id": 7, "text": "No title.", "source_url": "https://x", "metadata": {"tags": "t"}},
        {
            "_id": "d3",
            "title": "",
            "text": "Private.",
            "metadata": {"allowed_groups": ["staff"], "tags": ["hr", "eu"], "year": 2020},
        },
        {"_id": "d4", "title": "Empty", "text": "  "},
    ]
    body = "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n"
    body += "\n".join(json.dumps(line) for line in lines[2:]) + "\n"
    (tmp_path / "corpus.jsonl").write_text(body)
    docs = read_folder(tmp_path)
    assert [d.id for d in docs] == ["d1", "7", "d3"]  # d4 has no text: skipped
    first, second, third = docs
    assert (first.title, first.text, first.source) == ("First", "Alpha text.", "corpus.jsonl")
    assert first.allowed_groups == ("everyone",)
    expected = hashlib.sha256(b"corpus.jsonl\0" + json.dumps(lines[0]).encode()).hexdigest()
    assert first.content_hash == expected
    assert second.title == "7"
    assert second.tags == ("t",)
    assert second.metadata == {"source_url": "https://x"}
    assert third.title == "d3"
    assert third.allowed_groups == ("staff",)
    assert third.tags == ("hr", "eu")
    assert third.metadata == {"year": 2020}


def test_other_jsonl_files_prefix_ids_with_their_path(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "more.jsonl").write_text('{"_id": "x", "text": "X."}\n')
    (tmp_path / "extra" / "corpus.jsonl").write_text('{"_id": "x", "text": "Y."}\n')
    (tmp_path / "corpus.jsonl").write_text('{"_id": "x", "text": "Z."}\n')
    docs = read_folder(tmp_path)
    assert {d.id: d.text for d in docs} == {"x": "Z.", "extra/corpus/x": "Y.", "extra/more/x": "X."}
    assert read_corpus(tmp_path / "extra" / "more.jsonl", tmp_path)[0].id == "extra/more/x"
    with pytest.raises(InvalidInput, match="read_corpus"):
        read_document(tmp_path / "corpus.jsonl", tmp_path)


def test_the_scifact_corpus_reads_whole(tmp_path: Path) -> None:
    """A real BEIR corpus, when it is beside the repository (its speed: bench/indexing.py)."""
    if not SCIFACT.is_file():
        pytest.skip(
            "BEIR SciFact is not in ../shared/eval/scifact: unpack BEIR's scifact.zip there "
            "(README, Retrieval quality)"
        )
    (tmp_path / "corpus.jsonl").symlink_to(SCIFACT)
    docs = read_folder(tmp_path)
    assert len(docs) == 5183
    with SCIFACT.open(encoding="utf-8") as corpus:
        first_lines = [json.loads(next(corpus)) for _ in range(3)]
    for doc, line in zip(docs[:3], first_lines, strict=True):
        assert (doc.id, doc.title, doc.text) == (line["_id"], line["title"], line["text"].strip())
        assert doc.source == "corpus.jsonl"
    assert docs[0].id == "4983"
    assert docs[0].title.startswith("Microstructural development of human newborn")
    assert len({d.id for d in docs}) == 5183


# -- sidecar metadata ----------------------------------------------------------------------


def test_sidecar_metadata_for_any_file_type_and_its_effect_on_the_hash(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(
        "---\ntitle: From front matter\ntags: [a]\nowner: me\n---\n# Guide\n\nText."
    )
    (tmp_path / "page.html").write_text("<title>Page</title><p>Body.</p>")
    (tmp_path / "policy.pdf").write_bytes((FIXTURES / "tiny.pdf").read_bytes())
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "c1", "text": "One.", "metadata": {"tags": ["line"]}}\n'
    )
    before = {d.id: d for d in read_folder(tmp_path)}
    assert before["guide"].tags == ("a",)
    assert before["guide"].allowed_groups == ("everyone",)

    (tmp_path / "guide.md.meta.yaml").write_text("allowed_groups: [staff]\ntags: b\n")
    (tmp_path / "page.html.meta.yaml").write_text("title: Sidecar title\nowner: web\n")
    (tmp_path / "policy.pdf.meta.yaml").write_text("allowed_groups: finance\ntags: [pdf]\n")
    (tmp_path / "corpus.jsonl.meta.yaml").write_text("allowed_groups: [eval]\n")
    (tmp_path / "orphan.md.meta.yaml").write_text("tags: [nothing]\n")
    after = {d.id: d for d in read_folder(tmp_path)}
    assert sorted(after) == ["c1", "guide", "page", "policy"]  # sidecars are not documents
    guide, page, pdf, line = after["guide"], after["page"], after["policy"], after["c1"]
    assert guide.title == "From front matter"
    assert (guide.allowed_groups, guide.tags) == (("staff",), ("b",))  # the sidecar wins
    assert guide.metadata == {"owner": "me"}
    assert (page.title, page.metadata) == ("Sidecar title", {"owner": "web"})
    assert (pdf.allowed_groups, pdf.tags, pdf.title) == (
        ("finance",),
        ("pdf",),
        before["policy"].title,
    )
    assert (line.allowed_groups, line.tags) == (("eval",), ("line",))
    for doc_id in after:
        assert after[doc_id].content_hash != before[doc_id].content_hash
        assert after[doc_id].text == before[doc_id].text

    checksum = source_checksum(list(after.values()))
    (tmp_path / "guide.md.meta.yaml").write_text("allowed_groups: [staff, hr]\ntags: b\n")
    again = read_folder(tmp_path)
    assert source_checksum(again) != checksum
    assert {d.id: d.allowed_groups for d in again}["guide"] == ("staff", "hr")


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("hidden")
    (tmp_path / ".draft.md").write_text("hidden")
    (tmp_path / "visible.md").write_text("shown")
    assert [d.id for d in read_folder(tmp_path)] == ["visible"]


def test_read_document_reads_one_file_with_its_sidecar(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "page.htm"
    path.write_text("<h1>Hi</h1><p>There.</p>")
    (tmp_path / "sub" / "page.htm.meta.yaml").write_text("tags: [x]\n")
    doc = read_document(path, tmp_path)
    assert (doc.id, doc.source, doc.title, doc.tags) == ("sub/page", "sub/page.htm", "Hi", ("x",))


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.md"
    path.write_text("# Secret")
    path.chmod(0)
    try:
        with pytest.raises(InvalidInput, match=r"secret\.md: cannot read file: permission denied"):
            read_folder(tmp_path)
    finally:
        path.chmod(0o644)


def test_file_that_fails_to_read_is_a_clear_error(tmp_path: Path) -> None:
    # A regular file whose read fails even for root: the process's own memory at offset 0.
    target = Path("/proc/self/mem")
    if not target.is_file():
        pytest.skip("no /proc/self/mem on this system")
    (tmp_path / "memory.txt").symlink_to(target)
    with pytest.raises(InvalidInput, match=r"memory\.txt: cannot read file"):
        read_folder(tmp_path)


@pytest.mark.parametrize("name", ["bad.txt", "bad.html", "corpus.jsonl"])
def test_invalid_utf8_names_the_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "\xff"}\n')
    with pytest.raises(InvalidInput, match=re.escape(name) + r".*not UTF-8"):
        read_folder(tmp_path)


def test_invalid_utf8_in_a_corpus_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_bytes(
        b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "\xff"}\n'
    )
    with pytest.raises(InvalidInput, match=r"corpus\.jsonl line 2: not UTF-8"):
        read_folder(tmp_path)


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ("tags: [unclosed\n", "invalid sidecar YAML"),
        ("- just\n- a list\n", "invalid sidecar YAML: must be a mapping"),
        ("tags: {a: 1}\n", "invalid metadata: `tags` must be a string or a list"),
        ("allowed_groups: [[nested]]\n", "invalid metadata: `allowed_groups`"),
    ],
)
def test_invalid_sidecar_names_the_sidecar(tmp_path: Path, sidecar: str, message: str) -> None:
    (tmp_path / "doc.txt").write_text("Text.")
    (tmp_path / "doc.txt.meta.yaml").write_text(sidecar)
    with pytest.raises(InvalidInput, match=r"doc\.txt(\.meta\.yaml)?: " + re.escape(message)):
        read_folder(tmp_path)


def test_front_matter_that_is_not_a_mapping_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "list.md").write_text("---\n- a\n- b\n---\nBody.")
    with pytest.raises(InvalidInput, match=r"list\.md: invalid front matter"):
        read_folder(tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('["_id", "text"]', "line 2: not a JSON object"),
        ('{"text": "no id"}', "line 2: missing `_id`"),
        ('{"_id": "", "text": "empty id"}', "line 2: missing `_id`"),
        ('{"_id": "2"}', "line 2: missing `text`"),
        ('{"_id": "2", "text": 5}', "line 2: missing `text`"),
        ('{"_id": "2", "text": "t", "title": 3}', "line 2: `title` must be a string"),
        ('{"_id": "2", "text": "t", "metadata": []}', "line 2: `metadata` must be an object"),
    ],
)
def test_bad_corpus_line_names_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "docs.jsonl").write_text('{"_id": "1", "text": "fine"}\n' + line + "\n")
    with pytest.raises(InvalidInput, match=r"data/docs\.jsonl " + re.escape(message)):
        read_folder(tmp_path)


def test_duplicate_ids_name_both_sources(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nMarkdown.")
    (tmp_path / "a.txt").write_text("Text.")
    with pytest.raises(InvalidInput, match=r"duplicate document id 'a': a\.md and a\.txt"):
        read_folder(tmp_path)

    (tmp_path / "a.txt").unlink()
    (tmp_path / "a.html").write_text("<p>HTML.</p>")
    with pytest.raises(InvalidInput, match=r"'a': a\.html and a\.md"):
        read_folder(tmp_path)


def test_duplicate_corpus_ids_name_both_lines(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "1", "text": "one"}\n{"_id": "2", "text": "two"}\n{"_id": "1", "text": "again"}\n'
    )
    with pytest.raises(InvalidInput, match=r"'1': corpus\.jsonl line 1 and corpus\.jsonl line 3"):
        read_folder(tmp_path)
    with pytest.raises(InvalidInput, match="duplicate document id '1'"):
        read_corpus(tmp_path / "corpus.jsonl", tmp_path)


def test_corpus_id_clashing_with_a_file_id(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "notes", "text": "one"}\n')
    (tmp_path / "notes.txt").write_text("Notes.")
    with pytest.raises(InvalidInput, match=r"'notes': corpus\.jsonl line 1 and notes\.txt"):
        read_folder(tmp_path)


def test_empty_folder_is_left_to_the_caller(tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "empty.md").write_text("")
    assert read_folder(tmp_path) == []
