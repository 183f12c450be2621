"""Migration u1cdispute1: a customer marked disputed as a whole gets a dated dispute.

Customers are written at the revision before it (one disputed whose settings were saved twice,
one disputed with no activity log entry, one not disputed), then the migration runs up and
down, on SQLite and on PostgreSQL (DUNWELL_TEST_DATABASE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, inspect, select

from migrations import alembic_config
from tests.integration.test_migration_actions_of_a_customer import _before, _insert

pytestmark = pytest.mark.db

REVISION = "u1cdispute1"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _disputes(engine: Any) -> dict[int, tuple[datetime, datetime | None]]:
    table = MetaData()
    table.reflect(bind=engine, only=["contact_disputes"])
    rows = table.tables["contact_disputes"]
    with engine.connect() as connection:
        return {row.contact_id: (_utc(row.started_at), row.ended_at)
                for row in connection.execute(select(rows))}


def _utc(value: datetime) -> datetime:
    """A time as read back: naive UTC on SQLite, aware on PostgreSQL."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_disputed_customers_get_a_dispute_from_their_settings_entry(
        empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, _before(REVISION))
    engine = create_engine(empty_database_url)
    try:
        org = _insert(engine, "organisations", name="Org", country="GB",
                      timezone="Europe/London", base_currency="GBP", created_at=NOW)
        other = _insert(engine, "organisations", name="Other", country="GB",
                        timezone="Europe/London", base_currency="GBP", created_at=NOW)
        ada = _insert(engine, "contacts", org_id=org, provider_id="c-ada", name="Ada",
                      disputed=True)
        bob = _insert(engine, "contacts", org_id=org, provider_id="c-bob", name="Bob",
                      disputed=True)
        cy = _insert(engine, "contacts", org_id=org, provider_id="c-cy", name="Cy",
                     disputed=False)

        def saved(org_id: int, contact_id: int, at: datetime) -> None:
            _insert(engine, "audit_events", org_id=org_id, kind="contact_settings",
                    message=f"Collection settings changed for contact {contact_id}",
                    at=at, data={"contact_id": contact_id})

        saved(org, ada, NOW - timedelta(days=30))
        saved(org, ada, NOW - timedelta(days=12))  # the latest save with the mark on
        saved(org, cy, NOW - timedelta(days=3))  # not disputed: no dispute
        saved(other, bob, NOW - timedelta(days=1))  # another organisation's entry
        before = datetime.now(UTC).replace(microsecond=0)

        command.upgrade(config, REVISION)
        found = _disputes(engine)
        assert sorted(found) == [ada, bob]
        assert found[ada] == (NOW - timedelta(days=12), None)
        assert before <= found[bob][0] <= datetime.now(UTC) and found[bob][1] is None
        inspector = inspect(engine)
        [fk] = [fk for fk in inspector.get_foreign_keys("contact_disputes")
                if fk["constrained_columns"] == ["contact_id"]]
        assert (fk["referred_table"], fk["options"].get("ondelete")) == ("contacts", "CASCADE")
        assert ["contact_id"] in [ix["column_names"]
                                  for ix in inspector.get_indexes("contact_disputes")]

        command.downgrade(config, _before(REVISION))
        assert "contact_disputes" not in inspect(engine).get_table_names()
        with engine.connect() as connection:  # the mark itself stays on the contact
            table = MetaData()
            table.reflect(bind=connection, only=["contacts"])
            contacts = table.tables["contacts"]
            assert dict(connection.execute(select(contacts.c.id, contacts.c.disputed))
                        .all()) == {ada: True, bob: True, cy: False}

        command.upgrade(config, "heads")  # and up again, to where every later one builds on
        assert sorted(_disputes(engine)) == [ada, bob]
    finally:
        engine.dispose()
