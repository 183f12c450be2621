"""contact_disputes: when a customer marked disputed as a whole was set and cleared, so that
none of its invoices' fees or interest accrue on those days (as for an invoice's own dispute)

Existing disputed customers get one open dispute. Its start is the time of the customer's
latest "contact_settings" activity log entry (the settings save that set the mark, or a later
save that kept it: the log did not say which fields changed, and the latest is the one that
never covers a day already charged, since nothing was charged while the mark was on); a
disputed customer with no such entry starts on the day this migration runs. Downgrade drops
the table (the mark itself stays on the contact).

Revision ID: u1cdispute1
Revises: t1ownerlang1
Create Date: 2026-12-07 08:50:00

"""
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "u1cdispute1"
down_revision: str | Sequence[str] | None = "t1ownerlang1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

contacts = sa.table("contacts", sa.column("id", sa.Integer()), sa.column("org_id", sa.Integer()),
                    sa.column("disputed", sa.Boolean()))
audit_events = sa.table("audit_events", sa.column("org_id", sa.Integer()),
                        sa.column("kind", sa.String()), sa.column("at", store.types.UTCDateTime()),
                        sa.column("data", sa.JSON()))


def upgrade() -> None:
    disputes = op.create_table(
        "contact_disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("started_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("ended_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_contact_disputes_org_id_organisations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_contact_disputes_contact_id_contacts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["started_by"], ["users.id"],
                                name=op.f("fk_contact_disputes_started_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ended_by"], ["users.id"],
                                name=op.f("fk_contact_disputes_ended_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_disputes")),
    )
    op.create_index(op.f("ix_contact_disputes_contact_id"), "contact_disputes", ["contact_id"],
                    unique=False)
    bind = op.get_bind()
    disputed = dict(bind.execute(sa.select(contacts.c.id, contacts.c.org_id)
                                 .where(contacts.c.disputed.is_(True))).all())
    if not disputed:
        return
    started: dict[int, datetime] = {}
    for org_id, at, data in bind.execute(
            sa.select(audit_events.c.org_id, audit_events.c.at, audit_events.c.data)
            .where(audit_events.c.kind == "contact_settings",
                   audit_events.c.org_id.in_(set(disputed.values())))):
        if isinstance(data, str):
            data = json.loads(data)
        contact_id = (data or {}).get("contact_id")
        if disputed.get(contact_id) == org_id and (
                contact_id not in started or at > started[contact_id]):
            started[contact_id] = at
    today = datetime.now(UTC)
    op.bulk_insert(disputes, [
        {"org_id": org_id, "contact_id": contact_id,
         "started_at": started.get(contact_id, today)}
        for contact_id, org_id in sorted(disputed.items())])


def downgrade() -> None:
    op.drop_index(op.f("ix_contact_disputes_contact_id"), table_name="contact_disputes")
    op.drop_table("contact_disputes")
