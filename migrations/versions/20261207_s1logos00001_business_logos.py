"""business_logos: the business's logo for the customer's portal, read from the books (Xero's
branding theme) or uploaded by the owner (QuickBooks keeps none that its API serves)

Revision ID: s1logos00001
Revises: r1events0001
Create Date: 2026-12-07 07:45:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "s1logos00001"
down_revision: str | Sequence[str] | None = "r1events0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "business_logos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_url", sa.String(length=2048), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("content_type", sa.String(length=32), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("checked_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_business_logos_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_logos")),
        sa.UniqueConstraint("org_id", name=op.f("uq_business_logos_org_id")),
    )


def downgrade() -> None:
    op.drop_table("business_logos")
