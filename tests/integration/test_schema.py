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


def _upgraded_schema(url: str) -> tuple[list[object], set[str]]:
    """Upgraded to the head: how its schema differs from the models', and its tables."""
    upgrade(url=url)
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    return diff, tables


def test_migrations_and_models_agree(empty_database_url: str) -> None:
    diff, tables = _upgraded_schema(empty_database_url)
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


def test_every_migration_goes_down_to_an_empty_database_and_up_again(
        empty_database_url: str) -> None:
    """Rolling a deploy back runs the downgrades: all of them, newest first, leave nothing
    behind (only alembic's own table, at no revision), and the whole chain then upgrades
    again to the schema the models describe."""
    from alembic import command

    from migrations import alembic_config

    config = alembic_config(empty_database_url)
    upgrade(url=empty_database_url)
    command.downgrade(config, "base")
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        left = set(inspect(connection).get_table_names())
        revision = MigrationContext.configure(connection).get_current_heads()
    engine.dispose()
    assert left <= {"alembic_version"}, left
    assert revision == ()
    diff, tables = _upgraded_schema(empty_database_url)
    assert diff == [] and "actions" in tables
