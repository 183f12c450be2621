"""Migrations are the only source of the schema: they must agree with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import store.models  # noqa: F401
from migrations import upgrade
from store.db import db

pytestmark = pytest.mark.db


def test_migrations_and_models_agree(empty_database_url: str) -> None:
    upgrade(url=empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"organisations", "users", "memberships", "grants", "connections", "contacts",
            "invoices", "payments", "policies", "actions", "audit_events", "sync_cursors",
            "sync_runs"} <= tables


def test_next_action_at_is_indexed(empty_database_url: str) -> None:
    upgrade(url=empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        indexes = {tuple(ix["column_names"]) for ix in inspect(connection).get_indexes("invoices")}
    engine.dispose()
    assert ("org_id", "next_action_at") in indexes  # every query on it is per organisation
    assert ("next_action_at",) not in indexes  # dropped (e1ingest0001): the pair serves it


def test_the_migrations_have_one_head() -> None:
    """Two heads mean two branches nobody merged: `downgrade -1` and `upgrade head` then
    fail on an operator's machine. Merge them in a migration of their own."""
    from alembic.script import ScriptDirectory

    from migrations import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, heads
