"""One schema again: quotes and their deposits, and the dropped single-column next-action
index, merged.

Revision ID: e2merge00001
Revises: e1ingest0001, e1quotes0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "e2merge00001"
down_revision: str | Sequence[str] | None = ("e1ingest0001", "e1quotes0001")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # the branches touch different tables; nothing to reconcile


def downgrade() -> None:
    pass
