"""review first: every new organisation starts in review (existing ones stay live), the
documents Dunwell created, each organisation's mail sender, and owners' word on statutory rates

Revision ID: g1review0001
Revises: f1session0001
Create Date: 2026-12-06 19:00:00

"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "g1review0001"
down_revision: str | Sequence[str] | None = "f1session0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FEE_KINDS = ("fee", "interest", "compensation")


def upgrade() -> None:
    # Organisations that exist keep doing what they did: live (their approvals switch, the
    # safe mode, is kept as it is). Rows added from now on start in review.
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=16), nullable=False,
                                      server_default="live"))
        batch_op.add_column(sa.Column("live_since", store.types.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.alter_column("mode", existing_type=sa.String(length=16),
                              server_default="review")
    op.create_table(
        "own_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_own_documents_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name=op.f("fk_own_documents_invoice_id_invoices"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_own_documents")),
        sa.UniqueConstraint("org_id", "provider_id",
                            name=op.f("uq_own_documents_org_id_provider_id")),
    )
    op.create_table(
        "mail_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("security", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_enc", sa.Text(), nullable=True),
        sa.Column("from_name", sa.String(length=255), nullable=False),
        sa.Column("from_email", sa.String(length=255), nullable=True),
        sa.Column("reply_to", sa.String(length=255), nullable=True),
        sa.Column("verified_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_mail_senders_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_senders")),
        sa.UniqueConstraint("org_id", name=op.f("uq_mail_senders_org_id")),
    )
    op.create_table(
        "rate_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("jurisdiction", sa.String(length=2), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("confirmed_by", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_rate_confirmations_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["confirmed_by"], ["users.id"],
                                name=op.f("fk_rate_confirmations_confirmed_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_confirmations")),
        sa.UniqueConstraint("org_id", "jurisdiction", "period_start",
                            name=op.f("uq_rate_confirmations_org_id_jurisdiction_period_start")),
    )
    _backfill_own_documents()


def _backfill_own_documents() -> None:
    """Fee invoices made before the table existed, from the ledger's record of each."""
    bind = op.get_bind()
    actions = sa.table("actions", sa.column("org_id"), sa.column("invoice_id"),
                       sa.column("kind"), sa.column("status"), sa.column("result"),
                       sa.column("finished_at"))
    own = sa.table("own_documents", sa.column("org_id"), sa.column("provider_id"),
                   sa.column("kind"), sa.column("invoice_id"), sa.column("created_at"))
    seen: set[tuple[int, str]] = set()
    rows = bind.execute(sa.select(actions.c.org_id, actions.c.invoice_id, actions.c.result,
                                  actions.c.finished_at)
                        .where(actions.c.kind.in_(FEE_KINDS), actions.c.status == "done"))
    for org_id, invoice_id, result, finished_at in rows:
        if isinstance(result, str):
            result = json.loads(result)
        provider_id = (result or {}).get("fee_invoice_id")
        if not provider_id or (org_id, str(provider_id)) in seen:
            continue
        seen.add((org_id, str(provider_id)))
        bind.execute(own.insert().values(org_id=org_id, provider_id=str(provider_id),
                                         kind="fee_invoice", invoice_id=invoice_id,
                                         created_at=finished_at or sa.func.now()))


def downgrade() -> None:
    op.drop_table("rate_confirmations")
    op.drop_table("mail_senders")
    op.drop_table("own_documents")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("live_since")
        batch_op.drop_column("mode")
