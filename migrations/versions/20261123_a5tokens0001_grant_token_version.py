"""grant token version and refresh fence

A token refresh saves its pair only if the row is still at the version it read and no later
lock holder has written (compare-and-swap plus a fencing token), so a worker whose lock
expired mid-refresh can never overwrite a newer token.

Revision ID: a5tokens0001
Revises: 086e0ec4d9d8
Create Date: 2026-11-23 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a5tokens0001"
down_revision: str | Sequence[str] | None = "086e0ec4d9d8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_version", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("token_fence", sa.BigInteger(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("token_fence")
        batch_op.drop_column("token_version")
