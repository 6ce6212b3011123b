"""idempotency per API key: jobs unique on (key_id, idempotency_key)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Idempotency keys were unique per account, so a second key of the account (perhaps with
fewer document groups) got the first key's job back. Every stored row stays valid: a key
belongs to one account, so rows unique per account are unique per key.

Replays now compare a hash of the request as sent (before redaction), salted with the key:
a retry of a job submitted before the upgrade with the same key is answered 409, not
replayed, when its question held text the guardrails redact. Submit it with a new key.

SQLite rebuilds the jobs table for this (ragline.schema runs it with foreign keys off and
checks them before committing); back up the file first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PER_KEY = "uq_jobs_key_idempotency"
# What a SQLite rebuild calls the account's constraint, which it reflects without a name.
PER_ACCOUNT = "uq_jobs_account_id_idempotency_key"
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _named(columns: list[str]) -> str:
    """The name the database gave the unique constraint on columns (PostgreSQL's own,
    e.g. jobs_account_id_idempotency_key_key), or the naming convention's on SQLite."""
    for found in sa.inspect(op.get_bind()).get_unique_constraints("jobs"):
        if found["column_names"] == columns:
            return found["name"] or PER_ACCOUNT
    raise RuntimeError(f"jobs has no unique constraint on {columns}")


def upgrade() -> None:
    old = _named(["account_id", "idempotency_key"])
    with op.batch_alter_table("jobs", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(old, type_="unique")
        batch_op.create_unique_constraint(PER_KEY, ["key_id", "idempotency_key"])


def downgrade() -> None:
    # Refused if two keys of one account used the same idempotency key since the upgrade.
    with op.batch_alter_table("jobs", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(PER_KEY, type_="unique")
        batch_op.create_unique_constraint(PER_ACCOUNT, ["account_id", "idempotency_key"])
