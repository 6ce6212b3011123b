"""Every row of every table, as plain values: what a test compares before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel


def every_row(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Table name -> its rows as the models read them (datetimes as ISO 8601)."""

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    with engine.connect() as connection:
        return {
            table.name: [
                {key: plain(value) for key, value in row._mapping.items()}
                for row in connection.execute(select(table))
            ]
            for table in SQLModel.metadata.sorted_tables
        }
