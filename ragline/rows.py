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
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class
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


@cache
def _manager(model: type[SQLModel]) -> Any:
    # Attribute access needs configured mappers; __init__ would have configured them, and
    # a process may build rows before its first ORM query does.
    configure_mappers()
    return manager_of_class(model)


def from_row(model: type[Model], row: Mapping[Any, Any]) -> Model:
    """A model object (transient, never flushed) from a row of its table.

    Built the way SQLAlchemy's own loader builds one, without __init__: SQLModel's
    constructor sets every field through the instrumented attributes (a history event
    each), about 120 us for a Job against 7 here, paid on every admission, claim and
    finish. The row comes from the table, so there is nothing to validate."""
    found = {attribute: row[column] for attribute, column in _columns(model)}
    obj: Model = _manager(model).new_instance()
    obj.__dict__.update(found)
    object.__setattr__(obj, "__pydantic_fields_set__", set(found))
    return obj
