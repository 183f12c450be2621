"""safe mode per organisation, and each organisation's own reminder texts

Revision ID: c3settings01
Revises: b0merge00001
Create Date: 2026-11-23 16:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

# revision identifiers, used by Alembic.
revision: str = "c3settings01"
down_revision: str | Sequence[str] | None = "b0merge00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("safe_mode", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "message_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("tone", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_message_texts_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"],
                                name=op.f("fk_message_texts_updated_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_texts")),
        sa.UniqueConstraint("org_id", "language", "tone",
                            name=op.f("uq_message_texts_org_id_language_tone")),
    )


def downgrade() -> None:
    op.drop_table("message_texts")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("safe_mode")
