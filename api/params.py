"""Query parameter types the routes share, bounded so that FastAPI refuses what the
database cannot take (422) and the OpenAPI document says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator

from ragline.db import BIGINT_MAX
from ragline.reasons import ReviewReason

Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]


def as_utc(value: datetime) -> datetime:
    """A naive time is read as UTC; an aware one is converted to UTC, where the database
    compares it. A time whose UTC form leaves years 1-9999 (0001-01-01T00:00+14:00) has no
    such form: refuse it here rather than overflow in the query."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time in UTC falls outside years 1-9999") from None


UtcTime = Annotated[datetime, AfterValidator(as_utc)]


def blank_is_absent(value: object) -> object:
    """An empty query value (`?overdue=`, what a form sends for a field left empty) leaves
    the filter unset, rather than a 422 for a flag or a filter that matches nothing."""
    return None if value == "" else value


def _as_utc_if_given(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


OptionalFlag = Annotated[bool | None, BeforeValidator(blank_is_absent)]
OptionalUtcTime = Annotated[
    datetime | None, BeforeValidator(blank_is_absent), AfterValidator(_as_utc_if_given)
]
OptionalText = Annotated[str | None, BeforeValidator(blank_is_absent)]
OptionalReason = Annotated[ReviewReason | None, BeforeValidator(blank_is_absent)]
