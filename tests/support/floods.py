"""The costly request of issue 20's finding 3: a job whose body holds many unknown fields.
Shared by tests/e2e/test_request_cost.py and bench/request_cost.py."""

from __future__ import annotations

import json

FIELDS = 100_000  # about 930 KB: under the 1 MB body limit, so only the shape refuses it
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def flood_body(fields: int = FIELDS) -> bytes:
    body: dict[str, object] = {"question": "How many days of leave?", "user_id": "u-1"}
    body.update({_name(n): 1 for n in range(fields)})
    return json.dumps(body, separators=(",", ":")).encode()


def _name(number: int) -> str:
    """A short distinct field name (base 36)."""
    name = ""
    while True:
        number, digit = divmod(number, 36)
        name = _DIGITS[digit] + name
        if not number:
            return "_" + name
