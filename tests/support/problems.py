"""The API's error bodies (RFC 9457 problem details), checked once for every test."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of a response that must have this status."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body
