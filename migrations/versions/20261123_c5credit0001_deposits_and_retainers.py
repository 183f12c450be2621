"""deposits and retainers: expected payments of milestone invoices, retainer balances

Revision ID: c5credit0001
Revises: b0merge00001
Create Date: 2026-11-23 16:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "c5credit0001"
down_revision: str | Sequence[str] | None = "b0merge00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, store.types.Money(precision=19, scale=4), nullable=nullable)


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """New tables only: nothing existing changes."""
    op.create_table(
        "expected_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("milestone", sa.Integer(), nullable=False),
        sa.Column("milestones", sa.Integer(), nullable=False),
        _money("percent"), _money("amount"), _money("cumulative"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("met_on", sa.Date(), nullable=True),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_expected_payments_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name=op.f("fk_expected_payments_invoice_id_invoices"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_expected_payments_contact_id_contacts"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expected_payments")),
        sa.UniqueConstraint("invoice_id", "milestone",
                            name=op.f("uq_expected_payments_invoice_id_milestone")),
    )
    with op.batch_alter_table("expected_payments", schema=None) as batch_op:
        batch_op.create_index("ix_expected_payments_org_id_contact_id",
                              ["org_id", "contact_id"], unique=False)
    op.create_table(
        "retainers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _money("threshold"), _money("top_up_to"),
        sa.Column("started_on", sa.Date(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_retainers_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_retainers_contact_id_contacts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retainers")),
        sa.UniqueConstraint("contact_id", name=op.f("uq_retainers_contact_id")),
    )
    with op.batch_alter_table("retainers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retainers_org_id"), ["org_id"], unique=False)
    op.create_table(
        "retainer_top_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("retainer_id", sa.Integer(), nullable=False),
        _money("amount"),
        sa.Column("received_on", sa.Date(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_retainer_top_ups_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["retainer_id"], ["retainers.id"],
                                name=op.f("fk_retainer_top_ups_retainer_id_retainers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retainer_top_ups")),
    )
    with op.batch_alter_table("retainer_top_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retainer_top_ups_retainer_id"), ["retainer_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("retainer_top_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retainer_top_ups_retainer_id"))
    op.drop_table("retainer_top_ups")
    with op.batch_alter_table("retainers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retainers_org_id"))
    op.drop_table("retainers")
    with op.batch_alter_table("expected_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_expected_payments_org_id_contact_id")
    op.drop_table("expected_payments")
