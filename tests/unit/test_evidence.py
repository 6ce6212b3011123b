"""The item page's evidence (api/evidence.py): draft sentences linked to the passage
sentences that support them, those highlighted in the passage text, placeholders shown as
such, and every piece of stored text escaped."""

from __future__ import annotations

from api.evidence import evidence, placeholders

PASSAGES = [
    {
        "document_id": "hr/leave",
        "title": "Annual Leave",
        "score": 0.71,
        "text": "Annual Leave > Entitlement\nEvery employee gets 25 days of leave a year. "
        "Ask <EMAIL_1> to carry days over.",
    },
    {
        "document_id": "it/<script>",
        "title": "<script>alert(1)</script>",
        "score": 0.2,
        "text": "Handbook > IT\n<script>alert('x')</script> VPN access needs a token.",
    },
]
GROUNDING = [
    {
        "text": "Employees get 25 days of leave.",
        "support": 0.91,
        "supported": True,
        "evidence": "Every employee gets 25 days of leave a year.",
        "passage": 1,
    },
    {
        "text": "Unused days are paid out twice.",
        "support": 0.2,
        "supported": False,
        "evidence": "VPN access needs a token.",
        "passage": 2,
    },
    {"text": "An older job's sentence.", "support": 0.8, "supported": True},
]


def test_a_supported_sentence_is_marked_in_its_passage_and_linked_both_ways() -> None:
    found = evidence(PASSAGES, GROUNDING)
    first, invented, old = found.sentences
    assert (first.supported, first.passage, first.evidence_found) == (True, 1, True)
    text = str(found.passages[0].text)
    assert '<mark id="evidence-1" data-supports="1">' in text
    assert "Every employee gets 25 days of leave a year." in text
    assert '<a href="#draft-1">1</a>' in text
    assert found.passages[0].supports == [1]
    # Unsupported: named, its closest passage not highlighted as evidence.
    assert not invented.supported and "<mark" not in str(found.passages[1].text)
    assert found.unsupported == 1
    # A job graded before evidence was recorded: no link, no error.
    assert old.passage is None and not old.evidence_found


def test_stored_text_is_escaped_and_placeholders_are_shown_as_such() -> None:
    found = evidence(PASSAGES, GROUNDING)
    it = str(found.passages[1].text)
    assert "<script>" not in it and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in it
    assert found.passages[1].title == "<script>alert(1)</script>"  # escaped by the template
    leave = str(found.passages[0].text)
    assert (
        '<span class="pii" title="redacted: the value is not stored">&lt;EMAIL_1&gt;</span>'
        in leave
    )
    assert str(placeholders("a <b>bold</b> <PHONE_NUMBER_2>")) == (
        'a &lt;b&gt;bold&lt;/b&gt; <span class="pii" title="redacted: the value is not '
        'stored">&lt;PHONE_NUMBER_2&gt;</span>'
    )


def test_one_passage_sentence_supporting_two_draft_sentences_is_marked_once() -> None:
    twice = [dict(GROUNDING[0]), {**GROUNDING[0], "text": "The same, said again."}]
    found = evidence(PASSAGES, twice)
    text = str(found.passages[0].text)
    assert text.count("<mark") == 1 and 'data-supports="1 2"' in text
    assert '<span id="evidence-2"></span>' in text
    assert found.passages[0].supports == [1, 2]
