"""The JSON body bound of api/limits.py (JsonShape): its byte counts never refuse a body
within the bound, whatever its strings hold, and refuse every body past it."""

from __future__ import annotations

import json

import pytest

from api.limits import JsonShape


async def _app(scope: object, receive: object, send: object) -> None:  # never reached
    raise AssertionError


SHAPE = JsonShape(_app, max_values=100)


def refused(document: object) -> bool:
    body = json.dumps(document).encode()
    counted = SHAPE._counted(body)
    verdict = SHAPE._parsed(body) if counted == "unsettled" else counted
    # The exact parse agrees with the byte counts whenever they settle it.
    assert verdict == SHAPE._parsed(body)
    return verdict is not None


@pytest.mark.parametrize(
    "document",
    [
        {"question": 'quotes " and \\" and \\\\" inside', "user_id": "u"},
        {"question": "," * 5000, "user_id": "u"},  # commas inside a string: parsed, fine
        {"question": '"' * 5000},  # quote marks inside a string are escaped: not strings
        {"metadata": {f"k{n}": n for n in range(40)}},
        {f"k{n}": f"v{n}" for n in range(45)},  # 90 strings + 46 values: keys counted once
        list(range(99)),
    ],
)
def test_a_body_within_the_bound_passes(document: object) -> None:
    assert not refused(document)


@pytest.mark.parametrize(
    "document",
    [
        {f"k{n}": 1 for n in range(200)},  # the flood: many members
        [0] * 500,  # many values, no strings
        {"a": [[[1, 2]] * 60]},
        ["s"] * 101,
        {f"k{n}": f"v{n}" for n in range(60)},  # 120 strings: keys are values too
        {f"k{n}": n for n in range(60)},  # 60 keys + 60 values, only 60 strings
    ],
)
def test_a_body_past_the_bound_is_refused(document: object) -> None:
    assert refused(document)
