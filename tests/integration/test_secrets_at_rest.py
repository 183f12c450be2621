"""No token or client secret in plain text: not in any table, not in any log line."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from tests.integration.conftest import expire_tokens_and_sync, run_jobs

pytestmark = pytest.mark.db


def test_tokens_and_secrets_never_appear_in_the_database_or_the_logs(
        app, connected, sandbox, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    from store.db import db

    state, _ = sandbox
    caplog.set_level(logging.DEBUG)
    run_jobs(app)  # sync, plan, send
    expire_tokens_and_sync(app, state, clock, connected.org_id)  # and a refresh

    secrets = {*state.access_tokens, *state.refresh_tokens, app.config["XERO_CLIENT_SECRET"]}
    assert len(secrets) >= 5  # two pairs issued, one refresh, and the client secret
    with app.app_context():
        dump = []
        for table in db.metadata.sorted_tables:
            dump.extend(str(row) for row in db.session.execute(text(f"SELECT * FROM {table.name}")))
    stored = "\n".join(dump)
    logged = caplog.text
    assert "Dunwell: reminder" not in logged  # customer-facing text stays out of logs too
    for secret in secrets:
        assert secret not in stored
        assert secret not in logged
