"""Table rows for SQLAlchemy Core statements on the hot path (claim, finish, admission).

The ORM's unit of work costs about as much per statement as the database round trip itself
(session synchronisation, identity map, attribute events); a job makes only a few statements,
so the job path writes rows with Core and builds model objects from RETURNING rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlmodel import SQLModel

Model = TypeVar("Model", bound=SQLModel)


def table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


@cache
def _columns(model: type[SQLModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, column name) pairs: they differ where a column name is reserved
    (Job.meta is stored as "metadata")."""
    mapper = model.__mapper__  # type: ignore[attr-defined]
    return tuple((attribute, column.name) for attribute, column in mapper.columns.items())


def values(obj: SQLModel) -> dict[str, Any]:
    """The object's column values for an INSERT, Python-side defaults applied; a primary
    key still None is left out so the database assigns it."""
    found = {column: getattr(obj, attribute) for attribute, column in _columns(type(obj))}
    for key in table(type(obj)).primary_key.columns:
        if found.get(key.name) is None:
            found.pop(key.name, None)
    return found


def from_row(model: type[Model], row: Mapping[Any, Any]) -> Model:
    """A model object (detached, never flushed) from a row of its table."""
    return model(**{attribute: row[column] for attribute, column in _columns(model)})
