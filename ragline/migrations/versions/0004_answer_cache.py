"""answer cache: answer_cache entries, jobs.use_cache and jobs.cached_from

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

answer_cache starts empty: answers given before the upgrade are not offered to equivalent
questions (they were produced without the entry's question vector). Every existing job
keeps use_cache true and cached_from null.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("served", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id"),
    )
    op.create_index("ix_answer_cache_lookup", "answer_cache", ["account_id", "key", "id"])
    # Plain ADD COLUMN (SQLite takes it with a constant default): a batch operation would
    # copy jobs into a new table, which the foreign keys pointing at jobs refuse.
    op.add_column(
        "jobs", sa.Column("use_cache", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("jobs", sa.Column("cached_from", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("cached_from")
        batch_op.drop_column("use_cache")
    op.drop_index("ix_answer_cache_lookup", table_name="answer_cache")
    op.drop_table("answer_cache")
