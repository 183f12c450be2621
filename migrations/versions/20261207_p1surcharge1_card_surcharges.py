"""card_surcharges: an organisation's card surcharge (percent, none by default) and the
surcharge each card payment asked on top of its invoice's amount

Revision ID: p1surcharge1
Revises: o1contact001
Create Date: 2026-12-07 04:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "p1surcharge1"
down_revision: str | Sequence[str] | None = "o1contact001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("card_payment_settings") as batch:
        batch.add_column(sa.Column("surcharge_percent", store.types.Money(), nullable=True))
    with op.batch_alter_table("card_payments") as batch:
        batch.add_column(sa.Column("surcharge", store.types.Money(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_payments") as batch:
        batch.drop_column("surcharge")
    with op.batch_alter_table("card_payment_settings") as batch:
        batch.drop_column("surcharge_percent")
