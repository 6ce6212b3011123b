"""sealed webhook secrets: room for them encrypted (accounts.webhook_secret, 512 chars)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Only the columns widen here: a migration holds no key. The secrets stored in the clear are
sealed under RAGLINE_SECRET_KEY by the first ragline process that starts after the upgrade
(ragline.secret_box.reseal); until then they are read as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"webhook_secret": False, "previous_webhook_secret": True}  # name: nullable


def upgrade() -> None:
    _retype(64, 512)


def downgrade() -> None:
    # Sealed values do not fit 64 characters: open them first (a release that reads them).
    _retype(512, 64)


def _retype(length: int, new_length: int) -> None:
    with op.batch_alter_table("accounts") as batch_op:
        for name, nullable in COLUMNS.items():
            batch_op.alter_column(
                name,
                existing_type=sa.String(length=length),
                type_=sa.String(length=new_length),
                existing_nullable=nullable,
            )
