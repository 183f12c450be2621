"""invoices: indexes for the invoice list's sorts by due date and by amount due

The organisation's invoice list reads a page at a time by keyset, sorted by the next action
(ix_invoices_org_id_next_action_at serves it), the due date or the amount due: with an index
in that order each page is a short range read, not a sort of the whole book. The id closes
each, as it closes the list's order.

Revision ID: m1list00001
Revises: l1cardpay001
Create Date: 2026-12-07 01:30:00

"""
from collections.abc import Sequence

from alembic import op

revision: str = "m1list00001"
down_revision: str | Sequence[str] | None = "l1cardpay001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_org_id_due_date_id", ["org_id", "due_date", "id"],
                              unique=False)
        batch_op.create_index("ix_invoices_org_id_amount_due_id",
                              ["org_id", "amount_due", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_org_id_amount_due_id")
        batch_op.drop_index("ix_invoices_org_id_due_date_id")
