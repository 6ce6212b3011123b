"""audit trail (append-only, hash-chained), webhook-secret rotation with an overlap, an
index for listing jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

audit_entries starts empty; its triggers refuse UPDATE and DELETE (ragline.audit).
accounts gains the previous webhook secret and until when it still signs deliveries.
jobs gains (account_id, created_at, id) for GET /v1/jobs's cursor pages.
usage_records gains kind (job for every existing row; eval and replay calls are recorded
from now on, with no account).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import: a migration describes the schema as it was at this revision.
APPEND_ONLY = {
    "postgresql": [
        "CREATE OR REPLACE FUNCTION ragline_audit_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'audit_entries is append-only'; END $$",
        "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION ragline_audit_append_only()",
    ],
    "sqlite": [
        "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END",
        "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END",
    ],
}


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("actor_key_id", sa.String(length=16), nullable=True),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_entries_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_entries_actor_key_id"), ["actor_key_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for statement in APPEND_ONLY.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("previous_webhook_secret", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("previous_secret_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="job")
        )
        batch_op.alter_column("account_id", existing_type=sa.String(length=32), nullable=True)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jobs_account_created_id", ["account_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    op.execute("DELETE FROM usage_records WHERE account_id IS NULL")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column("kind")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_account_created_id")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_webhook_secret")
    op.drop_table("audit_head")
    op.drop_table("audit_entries")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ragline_audit_append_only()")
