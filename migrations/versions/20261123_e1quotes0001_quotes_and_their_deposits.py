"""quotes and their deposits: Xero Quotes and QuickBooks Estimates, deposit milestones of
accepted quotes

Revision ID: e1quotes0001
Revises: d0merge00001
Create Date: 2026-11-23 20:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "e1quotes0001"
down_revision: str | Sequence[str] | None = "d0merge00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, store.types.Money(precision=19, scale=4), nullable=nullable)


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """New tables only: nothing existing changes."""
    op.create_table(
        "quotes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("contact_provider_id", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        _money("total"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_status", sa.String(length=32), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=True),
        sa.Column("invoice_provider_ids", sa.JSON(), nullable=True),
        _when("provider_updated_at", nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_quotes_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_quotes_contact_id_contacts"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
        sa.UniqueConstraint("org_id", "provider_id",
                            name=op.f("uq_quotes_org_id_provider_id")),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index("ix_quotes_org_id_status", ["org_id", "status"], unique=False)
    op.create_table(
        "quote_deposits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("quote_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("milestone", sa.Integer(), nullable=False),
        sa.Column("milestones", sa.Integer(), nullable=False),
        _money("percent"), _money("amount"), _money("cumulative"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("met_on", sa.Date(), nullable=True),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_quote_deposits_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"],
                                name=op.f("fk_quote_deposits_quote_id_quotes"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_quote_deposits_contact_id_contacts"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quote_deposits")),
        sa.UniqueConstraint("quote_id", "milestone",
                            name=op.f("uq_quote_deposits_quote_id_milestone")),
    )
    with op.batch_alter_table("quote_deposits", schema=None) as batch_op:
        batch_op.create_index("ix_quote_deposits_org_id_contact_id", ["org_id", "contact_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quote_deposits", schema=None) as batch_op:
        batch_op.drop_index("ix_quote_deposits_org_id_contact_id")
    op.drop_table("quote_deposits")
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_quotes_org_id_status")
    op.drop_table("quotes")
