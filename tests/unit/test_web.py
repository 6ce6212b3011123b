"""Where the log-in form may send a reviewer back to (api/web.py): our pages only."""

from __future__ import annotations

import pytest

from api.web import safe_next


@pytest.mark.parametrize(
    "path", ["/review", "/review/items/12", "/review?reason=sampled&status=open", "/review/ops"]
)
def test_our_pages_are_kept(path: str) -> None:
    assert safe_next(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "//evil.example",
        "https://evil.example/review",
        "/reviewer",
        "/review/../v1/jobs",
        "/review?next=<script>",
        "/v1/jobs",
        "/review//evil.example",
    ],
)
def test_anything_else_is_dropped(path: str) -> None:
    assert safe_next(path) == ""
