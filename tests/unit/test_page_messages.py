"""The review pages' messages after a redirect (api/messages.py): codes and numbers in the
link, the text from ragline; a link carrying any other text shows nothing."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from api.messages import redirect_to, shown


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.mark.parametrize(
    ("url", "text"),
    [
        (redirect_to("/review", "decided", item=7, decision="approve"), "item 7: approve"),
        (redirect_to("/review/index", "promoted", version=3), "version 3 promoted"),
        (redirect_to("/review?reason=sampled", "bulk", done=4), "4 marked good"),
        (
            redirect_to("/review?reason=sampled", "bulk_skipped", done=1, skipped="5,9"),
            "1 marked good; skipped 5, 9",
        ),
        (redirect_to("/review", "expired"), "the form expired"),
    ],
)
def test_a_code_and_its_numbers_read_back_as_the_message(url: str, text: str) -> None:
    message = shown(_query(url))
    assert message is not None and message.startswith(text)


@pytest.mark.parametrize(
    "query",
    [
        {"msg": "Your session expired: log in again at https://evil.example"},
        {"msg": "decided", "item": "7", "decision": "approve. Call +1 555 0100 now"},
        {"msg": "promoted", "version": "3 (and call us)"},
        {"msg": "promoted"},
        {"msg": "bulk_skipped", "done": "1", "skipped": "5,<b>x</b>"},
        {"msg": "bulk_skipped", "done": "1", "skipped": ",".join(["1"] * 51)},
        {},
    ],
)
def test_anything_else_in_the_link_shows_nothing(query: dict[str, str]) -> None:
    assert shown(query) is None


def test_a_redirect_keeps_the_query_it_already_had() -> None:
    assert _query(redirect_to("/review?reason=sampled", "bulk", done=2)) == {
        "reason": "sampled",
        "msg": "bulk",
        "done": "2",
    }
