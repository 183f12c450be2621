"""refunds_in_books: a card payment refunded in full through Stripe taken off its invoice in
the books (an organisation's choice), and when that was done

Revision ID: q1refunds001
Revises: p1surcharge1
Create Date: 2026-12-07 05:05:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "q1refunds001"
down_revision: str | Sequence[str] | None = "p1surcharge1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("card_payment_settings") as batch:
        batch.add_column(sa.Column("refunds_in_books", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("card_payments") as batch:
        batch.add_column(sa.Column("books_removed_at",
                                   store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_payments") as batch:
        batch.drop_column("books_removed_at")
    with op.batch_alter_table("card_payment_settings") as batch:
        batch.drop_column("refunds_in_books")
