"""Migration r1events0001: activity-log rows written as English sentences get the parameters
app/events.py words them from, where the sentence parses; the rest stay as they were and are
shown as stored. Rows are written at the revision before it, the migration runs, and a parsed
row then reads in German; on SQLite and on PostgreSQL (DUNWELL_TEST_DATABASE)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask_babel import Babel
from sqlalchemy import Engine, MetaData, create_engine, select

from app.events import render_event
from app.languages import init_languages
from migrations import alembic_config
from tests.integration.test_migration_actions_of_a_customer import _before as _builds_on
from tests.integration.test_migration_actions_of_a_customer import _insert

pytestmark = pytest.mark.db

REVISION = "r1events0001"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _events(engine: Engine) -> dict[str, dict[str, Any]]:
    meta = MetaData()
    meta.reflect(bind=engine, only=["audit_events"])
    table = meta.tables["audit_events"]
    with engine.connect() as connection:
        return {row["message"]: {**row, "data": json.loads(row["data"])
                                 if isinstance(row["data"], str) else row["data"]}
                for row in connection.execute(select(table)).mappings()}


def test_old_sentences_get_their_parameters_and_the_rest_stay_as_stored(
        empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, _builds_on(REVISION))
    engine = create_engine(empty_database_url)
    try:
        org = _insert(engine, "organisations", name="Org", country="GB",
                      timezone="Europe/London", base_currency="GBP", created_at=NOW)
        contact = _insert(engine, "contacts", org_id=org, provider_id="c-1", name="Ada")
        invoice = _insert(engine, "invoices", org_id=org, provider_id="i-1", number="INV-1",
                          contact_id=contact, currency="GBP", total="100", amount_paid="0",
                          amount_due="100", status="open")
        action = _insert(engine, "actions", org_id=org, invoice_id=invoice,
                         key=f"{org}:{invoice}:reminder:1", kind="reminder", step_index=1,
                         step_count=4, channel="provider_email", scheduled_for=NOW,
                         status="done", attempts=1, created_at=NOW, updated_at=NOW)
        sentences = {
            "Collection policy version 3 saved by ada@example.com": ("policy_saved", None),
            "Full sync: 212 invoices, 44 contacts, 150 payments read in 9 API calls":
                ("sync_done", None),
            "ada@example.com went live with approvals; fees count lateness from 2026-11-20 on":
                ("went_live", None),
            "Safe mode turned off by ada@example.com; 2 action(s) still wait for approval":
                ("safe_mode", None),
            "Reminder 2 of 4 emailed through Xero": ("action_done", action),
            "Something nobody wrote a pattern for": ("connected", None),
            "A kind that has no text at all": ("retired_kind", None),
        }
        for message, (kind, action_id) in sentences.items():
            _insert(engine, "audit_events", org_id=org, kind=kind, message=message, at=NOW,
                    action_id=action_id, data={"version": 3} if kind == "policy_saved" else None)

        command.upgrade(config, REVISION)
        rows = {message: row["data"] for message, row in _events(engine).items()}
        assert rows == {
            "Collection policy version 3 saved by ada@example.com":
                {"version": 3, "by": "ada@example.com"},
            "Full sync: 212 invoices, 44 contacts, 150 payments read in 9 API calls":
                {"mode": "full", "invoices": 212, "contacts": 44, "payments": 150,
                 "api_calls": 9},
            "ada@example.com went live with approvals; fees count lateness from 2026-11-20 on":
                {"by": "ada@example.com", "approvals": True, "fees": True,
                 "charge_earlier": False, "fees_from": "2026-11-20"},
            "Safe mode turned off by ada@example.com; 2 action(s) still wait for approval":
                {"on": False, "by": "ada@example.com", "waiting": 2},
            "Reminder 2 of 4 emailed through Xero":
                {"key": f"{org}:{invoice}:reminder:1", "action": "reminder", "step": 1,
                 "steps": 4, "channel": "provider_email", "amount": None, "currency": None},
            "Something nobody wrote a pattern for": None,
            "A kind that has no text at all": None,
        }

        # Read in German, the parsed rows are worded anew; the others are shown as stored.
        web = Flask(__name__)
        web.config["SECRET_KEY"] = "test"
        init_languages(web, Babel())
        with web.test_request_context("/", headers={"Accept-Language": "de"}):
            shown = {message: render_event(SimpleNamespace(kind=row["kind"], message=message,
                                                           data=row["data"]))
                     for message, row in _events(engine).items()}
        assert shown["Collection policy version 3 saved by ada@example.com"] == \
            "Version 3 der Inkassoregeln von ada@example.com gespeichert"
        assert shown["Full sync: 212 invoices, 44 contacts, 150 payments read in 9 API "
                     "calls"] == ("Vollständige Synchronisierung: Rechnungen 212, Kontakte 44, "
                                  "Zahlungen 150, gelesen mit API-Aufrufen: 9")
        assert shown["Reminder 2 of 4 emailed through Xero"] == \
            "Erinnerung 2 von 4 per E-Mail gesendet"
        assert shown["Something nobody wrote a pattern for"] == \
            "Something nobody wrote a pattern for"
        assert shown["A kind that has no text at all"] == "A kind that has no text at all"

        # The parameters stay; the schema is unchanged.
        command.downgrade(config, _builds_on(REVISION))
        command.upgrade(config, "heads")
    finally:
        engine.dispose()
