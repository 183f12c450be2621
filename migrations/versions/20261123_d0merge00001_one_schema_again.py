"""One schema again: safe mode and reminder texts, the disconnect grace period, deposits and
retainers, merged.

Revision ID: d0merge00001
Revises: c3settings01, c4pages00001, c5credit0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

revision: str = "d0merge00001"
down_revision: str | Sequence[str] | None = ("c3settings01", "c4pages00001", "c5credit0001")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # the branches touch different tables and columns; nothing to reconcile


def downgrade() -> None:
    pass
