"""invoices: drop ix_invoices_next_action_at, which ix_invoices_org_id_next_action_at serves

Every query on next_action_at is scoped to one organisation (the planning pass, the dashboard,
the practice view, the organisation page), so the (org_id, next_action_at) index answers it;
the single-column one only cost each written invoice a fourth index entry.

Revision ID: e1ingest0001
Revises: d0merge00001
Create Date: 2026-11-23 19:40:00

"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e1ingest0001"
down_revision: str | Sequence[str] | None = "d0merge00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_next_action_at")


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_next_action_at", ["next_action_at"], unique=False)
