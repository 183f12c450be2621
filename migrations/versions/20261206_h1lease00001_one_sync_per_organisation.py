"""one sync per organisation at a time: a lease on the organisation, taken atomically by the
sync that starts and renewed as it stores pages

Revision ID: h1lease00001
Revises: g1review0001
Create Date: 2026-12-06 22:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "h1lease00001"
down_revision: str | Sequence[str] | None = "g1review0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_lease_until", store.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("sync_lease_until")
