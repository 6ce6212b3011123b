"""Alembic's environment: the connection is the one ragline.schema hands over; the target is
the models' metadata (autogenerate compares against it)."""

from alembic import context
from sqlmodel import SQLModel

from ragline import models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite alters a table by copying it: later revisions work on both backends.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
