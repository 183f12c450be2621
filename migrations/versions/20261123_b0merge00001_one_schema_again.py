"""One schema again: webhooks, token fencing, credit control and the web's accounts, merged.

Revision ID: b0merge00001
Revises: a10credit001, a5tokens0001, a6webhooks01, a7web0000001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "b0merge00001"
down_revision: str | Sequence[str] | None = (
    "a10credit001", "a5tokens0001", "a6webhooks01", "a7web0000001")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # the branches touch different tables; nothing to reconcile


def downgrade() -> None:
    pass
