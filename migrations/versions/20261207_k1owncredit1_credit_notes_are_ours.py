"""the credit notes of early-payment discounts Dunwell made before they were recorded as its own
documents: recorded now, from the ledger, with the invoice each credits

Revision ID: k1owncredit1
Revises: j1sms0000001
Create Date: 2026-12-07 00:00:00

"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "k1owncredit1"
down_revision: str | Sequence[str] | None = "j1sms0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    actions = sa.table("actions", sa.column("org_id"), sa.column("invoice_id"),
                       sa.column("kind"), sa.column("status"), sa.column("result"),
                       sa.column("finished_at"))
    own = sa.table("own_documents", sa.column("org_id"), sa.column("provider_id"),
                   sa.column("kind"), sa.column("invoice_id"), sa.column("created_at"))
    seen = {(org_id, str(provider_id)) for org_id, provider_id in bind.execute(
        sa.select(own.c.org_id, own.c.provider_id))}
    rows = bind.execute(sa.select(actions.c.org_id, actions.c.invoice_id, actions.c.result,
                                  actions.c.finished_at)
                        .where(actions.c.kind == "discount", actions.c.status == "done"))
    for org_id, invoice_id, result, finished_at in rows.all():
        if isinstance(result, str):
            result = json.loads(result)
        provider_id = (result or {}).get("credit_note_id")
        if not provider_id or (org_id, str(provider_id)) in seen:
            continue
        seen.add((org_id, str(provider_id)))
        bind.execute(own.insert().values(org_id=org_id, provider_id=str(provider_id),
                                         kind="credit_note", invoice_id=invoice_id,
                                         created_at=finished_at or sa.func.now()))


def downgrade() -> None:
    pass  # the rows stay: before this revision they are read as what they are, Dunwell's own
