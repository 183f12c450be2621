"""Migration o1contact001: a customer's actions carry the customer, not a borrowed invoice.

Rows of both shapes are written at the revision before it (a statement, a retainer top-up and a
credit hold's stop-service signal each filed under one of the customer's invoices, beside an
invoice's own reminder and escalation), then the migration runs up and down, on SQLite and on
PostgreSQL (DUNWELL_TEST_DATABASE)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    create_engine,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError

from migrations import alembic_config

pytestmark = pytest.mark.db

REVISION = "o1contact001"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _before(revision: str = REVISION) -> str:
    """The revision a migration builds on (what the database holds before it)."""
    down = ScriptDirectory.from_config(alembic_config()).get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


def _filler(column: Any) -> object:
    """A value for a NOT NULL column the test does not care about."""
    kind = column.type
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 0
    if isinstance(kind, DateTime):
        return NOW
    if isinstance(kind, Date):
        return NOW.date()
    if isinstance(kind, Numeric):
        return Decimal(0)
    if isinstance(kind, String | Text):
        return "x"
    return "0"  # the project's own column types (money as text on SQLite, times)


def _insert(engine: Engine, table_name: str, /, **values: object) -> int:
    table = MetaData()
    table.reflect(bind=engine, only=[table_name])
    reflected = table.tables[table_name]
    row = dict(values)
    for column in reflected.columns:
        if column.name not in row and not column.nullable and not column.primary_key \
                and column.server_default is None:
            row[column.name] = _filler(column)
    if "details" in row and row["details"] is not None:
        row["details"] = json.dumps(row["details"])
    with engine.begin() as connection:
        found = connection.execute(reflected.insert().values(**row)
                                   .returning(reflected.c.id)).scalar_one()
    return int(found)


def _rows(engine: Engine) -> dict[str, dict[str, Any]]:
    table = MetaData()
    table.reflect(bind=engine, only=["actions"])
    actions = table.tables["actions"]
    with engine.connect() as connection:
        found = {}
        for row in connection.execute(select(actions)).mappings():
            details = row["details"]
            found[row["key"]] = {**row, "details": json.loads(details)
                                 if isinstance(details, str) else details}
    return found


def test_customer_actions_move_to_the_customer_and_back(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, _before())
    engine = create_engine(empty_database_url)
    try:
        org = _insert(engine, "organisations", name="Org", country="GB",
                      timezone="Europe/London", base_currency="GBP", created_at=NOW)
        other_org = _insert(engine, "organisations", name="Other", country="GB",
                            timezone="Europe/London", base_currency="GBP", created_at=NOW)
        ada = _insert(engine, "contacts", org_id=org, provider_id="c-ada", name="Ada")
        bob = _insert(engine, "contacts", org_id=org, provider_id="c-bob", name="Bob")
        stranger = _insert(engine, "contacts", org_id=other_org, provider_id="c-s", name="S")

        def invoice(contact: int, number: str, due: date, status: str = "open") -> int:
            return _insert(engine, "invoices", org_id=org, provider_id=number, number=number,
                           contact_id=contact, currency="GBP", due_date=due,
                           issue_date=due.replace(day=1), total="100", amount_paid="0",
                           amount_due="100", status=status)

        old = invoice(ada, "INV-1", date(2026, 10, 15))
        new = invoice(ada, "INV-2", date(2026, 11, 15))
        bobs = invoice(bob, "INV-3", date(2026, 11, 1), status="paid")

        def action(key: str, kind: str, invoice_id: int | None,
                   details: dict[str, object] | None) -> None:
            _insert(engine, "actions", org_id=org, invoice_id=invoice_id, key=key, kind=kind,
                    scheduled_for=NOW, status="done", attempts=1, created_at=NOW,
                    updated_at=NOW, details=details)

        # Customer-level rows as they were planned, each under a borrowed invoice.
        action(f"{org}:contact{ada}:statement:2026-11", "statement", old,
               {"contact_id": ada, "period": "2026-11"})
        action(f"{org}:contact{ada}:retainer_top_up:1", "retainer_top_up", new,
               {"contact_id": ada, "balance": "10"})
        action(f"{org}:{old}:stop_service:hold{ada}:2026-11-20", "stop_service", old,
               {"trigger": "credit_hold", "webhook_url": None})
        action(f"{org}:{bobs}:stop_service:limit{bob}", "stop_service", bobs,
               {"trigger": "credit_limit", "webhook_url": None})
        # A statement naming a customer of another organisation: filed under nothing.
        action(f"{org}:contact{stranger}:statement:2026-10", "statement", old,
               {"contact_id": stranger, "period": "2026-10"})
        # An invoice's own: left as they are.
        action(f"{org}:{old}:reminder:0", "reminder", old, None)
        action(f"{org}:{new}:stop_service", "stop_service", new, {"webhook_url": None})
        action(f"{org}:{new}:terms_change:2026-11-08", "terms_change", new,
               {"due_date": "2026-11-08", "contact_id": ada})

        command.upgrade(config, REVISION)
        rows = _rows(engine)
        owners = {key: (row["invoice_id"], row["contact_id"]) for key, row in rows.items()}
        assert owners == {
            f"{org}:contact{ada}:statement:2026-11": (None, ada),
            f"{org}:contact{ada}:retainer_top_up:1": (None, ada),
            f"{org}:{old}:stop_service:hold{ada}:2026-11-20": (None, ada),
            f"{org}:{bobs}:stop_service:limit{bob}": (None, bob),
            f"{org}:contact{stranger}:statement:2026-10": (None, None),
            f"{org}:{old}:reminder:0": (old, None),
            f"{org}:{new}:stop_service": (new, None),
            f"{org}:{new}:terms_change:2026-11-08": (new, None),
        }
        inspector = inspect(engine)
        assert ["org_id", "contact_id"] in [ix["column_names"]
                                            for ix in inspector.get_indexes("actions")]
        [fk] = [fk for fk in inspector.get_foreign_keys("actions")
                if fk["constrained_columns"] == ["contact_id"]]
        assert (fk["referred_table"], fk["options"].get("ondelete")) == ("contacts", "SET NULL")
        assert "ck_actions_filed_under_one" in {
            c["name"] for c in inspector.get_check_constraints("actions")}
        with pytest.raises(IntegrityError):  # at most one of the two
            _insert(engine, "actions", org_id=org, invoice_id=old, contact_id=ada,
                    key=f"{org}:both", kind="statement", scheduled_for=NOW, status="planned",
                    created_at=NOW, updated_at=NOW, details=None)
        # A row of the new shape, planned after the migration, goes down with the rest.
        _insert(engine, "actions", org_id=org, invoice_id=None, contact_id=bob,
                key=f"{org}:contact{bob}:statement:2026-12", kind="statement",
                scheduled_for=NOW, status="planned", created_at=NOW, updated_at=NOW,
                details={"period": "2026-12"})

        command.downgrade(config, _before())
        rows = _rows(engine)
        assert "contact_id" not in next(iter(rows.values()))
        # Filed again as the code before plans them: the oldest open invoice of the
        # customer, else (Bob has nothing open) the newest; the customer in the details.
        back = {key: (row["invoice_id"], (row["details"] or {}).get("contact_id"))
                for key, row in rows.items()}
        assert back == {
            f"{org}:contact{ada}:statement:2026-11": (old, ada),
            f"{org}:contact{ada}:retainer_top_up:1": (old, ada),
            f"{org}:{old}:stop_service:hold{ada}:2026-11-20": (old, ada),
            f"{org}:{bobs}:stop_service:limit{bob}": (bobs, bob),
            f"{org}:contact{stranger}:statement:2026-10": (None, stranger),
            f"{org}:contact{bob}:statement:2026-12": (bobs, bob),
            f"{org}:{old}:reminder:0": (old, None),
            f"{org}:{new}:stop_service": (new, None),
            f"{org}:{new}:terms_change:2026-11-08": (new, ada),
        }
        assert rows[f"{org}:contact{bob}:statement:2026-12"]["details"]["period"] == "2026-12"
        names = {c["name"] for c in inspect(engine).get_check_constraints("actions")}
        assert "ck_actions_filed_under_one" not in names

        command.upgrade(config, "heads")  # and up again, to where every later one builds on
        assert _rows(engine)[f"{org}:contact{bob}:statement:2026-12"]["contact_id"] == bob
    finally:
        engine.dispose()
