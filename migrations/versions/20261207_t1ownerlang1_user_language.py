"""user_language: the language a member last chose for Dunwell's pages, so what Dunwell emails
them (a customer's dispute or plan request from the portal) is in that language too

Revision ID: t1ownerlang1
Revises: s1logos00001
Create Date: 2026-12-07 07:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t1ownerlang1"
down_revision: str | Sequence[str] | None = "s1logos00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
