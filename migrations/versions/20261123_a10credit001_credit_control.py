"""credit control: customer credit limits and holds, per-organisation credit settings

Revision ID: a10credit001
Revises: 086e0ec4d9d8
Create Date: 2026-11-23 12:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "a10credit001"
down_revision: str | Sequence[str] | None = "086e0ec4d9d8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Existing customers: no limit of their own, not on hold."""
    op.create_table(
        "credit_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("default_credit_limit", store.types.Money(precision=19, scale=4), nullable=True),
        sa.Column("stop_service_on_hold", sa.Boolean(), nullable=False),
        sa.Column("stop_service_webhook_url", sa.String(length=500), nullable=True),
        sa.Column("statement_day", sa.Integer(), nullable=True),
        sa.Column("statement_time", sa.String(length=5), nullable=False),
        sa.Column("statement_channel", sa.String(length=32), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_credit_settings_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_settings")),
        sa.UniqueConstraint("org_id", name=op.f("uq_credit_settings_org_id")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credit_limit", store.types.Money(precision=19, scale=4),
                                      nullable=True))
        batch_op.add_column(sa.Column("on_hold", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("on_hold_at", store.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("on_hold_at")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("on_hold")
        batch_op.drop_column("credit_limit")
    op.drop_table("credit_settings")
