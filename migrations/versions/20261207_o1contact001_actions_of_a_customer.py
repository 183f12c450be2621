"""actions.contact_id: an action may belong to a customer instead of borrowing an invoice

Statements, retainer top-ups and the stop-service signals of a credit hold or limit are about a
customer, yet each was filed under one of the customer's invoices (the oldest or newest open
one, `details.contact_id` naming the customer). They now carry the customer in `contact_id`
and no invoice. Both keys are SET NULL (a deleted invoice or contact leaves its ledger rows),
so the check is "at most one of the two", not "exactly one". Keys are left as they are: each
was sent to a provider or a mail server as an idempotency key or a Message-ID.

Downgrade: a customer's action is filed again under the customer's oldest open invoice (or,
with nothing open, its newest invoice), with the customer in `details.contact_id`, as the code
before this revision plans them.

Revision ID: o1contact001
Revises: n1pause00001
Create Date: 2026-12-07 05:00:00

"""
import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "o1contact001"
down_revision: str | Sequence[str] | None = "n1pause00001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CUSTOMER_KINDS = ("statement", "retainer_top_up")  # always a customer's
SIGNAL_TRIGGERS = ("credit_hold", "credit_limit")  # a stop_service of these is a customer's
# The signal keys before this revision: <org>:<invoice>:stop_service:hold<contact>:<day> and
# <org>:<invoice>:stop_service:limit<contact>.
SIGNAL_KEY = re.compile(r"^\d+:\d+:stop_service:(?:hold|limit)(\d+)(?::|$)")

actions = sa.table("actions", sa.column("id", sa.Integer), sa.column("org_id", sa.Integer),
                   sa.column("invoice_id", sa.Integer), sa.column("contact_id", sa.Integer),
                   sa.column("key", sa.String), sa.column("kind", sa.String),
                   sa.column("details", sa.JSON))
contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("org_id", sa.Integer))
invoices = sa.table("invoices", sa.column("id", sa.Integer), sa.column("org_id", sa.Integer),
                    sa.column("contact_id", sa.Integer), sa.column("status", sa.String),
                    sa.column("due_date", sa.Date), sa.column("issue_date", sa.Date))


def _details(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # a JSON column read without its type (SQLite keeps text)
        value = json.loads(value)
    return dict(value or {})


def _customer_of(kind: str, key: str, details: dict[str, Any], carrier_contact: int | None
                 ) -> tuple[bool, int | None]:
    """Whether a row of the old shape is a customer's, and which customer's (None: unknown)."""
    if kind in CUSTOMER_KINDS:
        named = details.get("contact_id")
        return True, int(named) if isinstance(named, int | str) and str(named).isdigit() \
            else None
    if kind == "stop_service" and details.get("trigger") in SIGNAL_TRIGGERS:
        found = SIGNAL_KEY.match(key)
        return True, int(found.group(1)) if found else carrier_contact
    return False, None


def upgrade() -> None:
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_actions_contact_id_contacts"), "contacts",
                                    ["contact_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index("ix_actions_org_id_contact_id", ["org_id", "contact_id"],
                              unique=False)

    bind = op.get_bind()
    rows = bind.execute(
        sa.select(actions.c.id, actions.c.org_id, actions.c.kind, actions.c.key,
                  actions.c.details, invoices.c.contact_id)
        .select_from(actions.outerjoin(invoices, invoices.c.id == actions.c.invoice_id))
        .where(actions.c.kind.in_((*CUSTOMER_KINDS, "stop_service")))).all()
    known = {(org_id, contact_id) for contact_id, org_id in bind.execute(
        sa.select(contacts.c.id, contacts.c.org_id))}
    for action_id, org_id, kind, key, details, carrier_contact in rows:
        customers, contact_id = _customer_of(kind, key, _details(details), carrier_contact)
        if not customers:
            continue  # e.g. an escalation's stop_service: its invoice's own
        if contact_id is not None and (org_id, contact_id) not in known:
            contact_id = None  # the customer is gone: filed under nothing, as SET NULL does
        bind.execute(actions.update().where(actions.c.id == action_id)
                     .values(contact_id=contact_id, invoice_id=None))

    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_check_constraint(batch_op.f("ck_actions_filed_under_one"),
                                         "invoice_id IS NULL OR contact_id IS NULL")


def _carrier(bind: sa.engine.Connection, org_id: int, contact_id: int) -> int | None:
    """The invoice the code before this revision files a customer's action under."""
    mine = (invoices.c.org_id == org_id) & (invoices.c.contact_id == contact_id)
    oldest_open = bind.execute(
        sa.select(invoices.c.id).where(mine, invoices.c.status == "open",
                                       invoices.c.due_date.is_not(None))
        .order_by(invoices.c.due_date, invoices.c.id).limit(1)).scalar()
    if oldest_open is not None:
        return int(oldest_open)
    newest = bind.execute(sa.select(invoices.c.id).where(mine).order_by(
        invoices.c.issue_date.desc(), invoices.c.id.desc()).limit(1)).scalar()
    return None if newest is None else int(newest)


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(actions.c.id, actions.c.org_id, actions.c.contact_id,
                                  actions.c.details)
                        .where(actions.c.contact_id.is_not(None))).all()
    carriers: dict[tuple[int, int], int | None] = {}
    for action_id, org_id, contact_id, details in rows:
        if (org_id, contact_id) not in carriers:
            carriers[org_id, contact_id] = _carrier(bind, org_id, contact_id)
        bind.execute(actions.update().where(actions.c.id == action_id).values(
            invoice_id=carriers[org_id, contact_id], contact_id=None,
            details={**_details(details), "contact_id": contact_id}))

    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_actions_filed_under_one"), type_="check")
        batch_op.drop_index("ix_actions_org_id_contact_id")
        batch_op.drop_constraint(batch_op.f("fk_actions_contact_id_contacts"), type_="foreignkey")
        batch_op.drop_column("contact_id")
