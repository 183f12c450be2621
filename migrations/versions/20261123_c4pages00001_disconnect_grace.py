"""disconnect grace period

A disconnected organisation keeps its synced data for a grace period (the owner may export
it, delete it at once, or reconnect); then a job deletes it. The connection row carries when
it was disconnected, when its data is due for deletion, and when it was deleted.

Revision ID: c4pages00001
Revises: b0merge00001
Create Date: 2026-11-23 15:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "c4pages00001"
down_revision: str | Sequence[str] | None = "b0merge00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disconnected_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("purge_after", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("purged_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_connections_purge_after", ["purge_after"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index("ix_connections_purge_after")
        batch_op.drop_column("purged_at")
        batch_op.drop_column("purge_after")
        batch_op.drop_column("disconnected_at")
