"""Fixtures and probes shared by the security tests: the integration fixtures (a live web
server, a connected organisation) and a fingerprint of every row in the database."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from tests.integration.conftest import connected, web  # noqa: F401  (fixtures)
from tests.integration.test_settings_page import smtp  # noqa: F401  (a real SMTP sink)


def table_rows(app) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every row of every table, as text, sorted: what "changes nothing" is checked against."""
    from store.db import db

    with app.app_context():
        dump = {table.name: sorted(str(tuple(row)) for row in db.session.execute(
                    text(f'SELECT * FROM "{table.name}"')))
                for table in db.metadata.sorted_tables}
        db.session.remove()
    return dump


def fingerprint(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One hash per table, so a failure names the table that changed."""
    return {name: hashlib.sha256("\n".join(rows).encode()).hexdigest()
            for name, rows in table_rows(app).items()}
