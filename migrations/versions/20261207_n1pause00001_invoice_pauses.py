"""invoice_pauses: a collector pauses chasing of an invoice until a day, or until resumed

Revision ID: n1pause00001
Revises: m1list00001
Create Date: 2026-12-07 04:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "n1pause00001"
down_revision: str | Sequence[str] | None = "m1list00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ended_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoice_pauses_invoice_id", "invoice_pauses", ["invoice_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_invoice_pauses_invoice_id", table_name="invoice_pauses")
    op.drop_table("invoice_pauses")
