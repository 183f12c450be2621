"""A whole day of Dunwell (connect Xero, sync, plan, send reminders by Dunwell's own email, a
token refresh) with every logger at DEBUG: no token, client secret, webhook key or encryption
key appears in any log record or in any column of any table, and the logs name organisations
and invoices by id, never the text a customer was sent."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.integration.conftest import connect, expire_tokens_and_sync, run_jobs
from tests.integration.test_escalation_e2e import smtp  # noqa: F401  (fixture)
from tests.security.conftest import table_rows

pytestmark = pytest.mark.db

# The test's own SMTP sink logs what it receives: it stands in for the customer's mail server.
NOT_DUNWELL = ("mail.log",)


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(NOT_DUNWELL):
            self.records.append(record)

    def text(self, leave_out: tuple[str, ...] = ()) -> str:
        lines = []
        for record in self.records:
            if leave_out and record.name.startswith(leave_out):
                continue
            lines.append(f"{record.name} {record.getMessage()}")
            if record.exc_info:
                lines.append(logging.Formatter().formatException(record.exc_info))
        return "\n".join(lines)


@pytest.fixture
def every_log() -> Iterator[Everything]:
    """Every logger at DEBUG, the ones that do not propagate included."""
    handler = Everything()
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        if lg is logging.getLogger() or not lg.propagate:
            lg.addHandler(handler)
    yield handler
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled
        lg.removeHandler(handler)


def test_no_secret_in_the_database_or_the_logs_and_no_customer_text_in_the_logs(
        app, web, sandbox, clock, smtp, every_log) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from app.extensions import db
    from app.models import Action, Policy

    state, _ = sandbox
    sink, smtp_port = smtp
    # Every secret the running app holds, with values only this test knows.
    second_key = Fernet.generate_key().decode()
    app.config.update(
        TOKEN_ENCRYPTION_KEYS=f"{app.config['TOKEN_ENCRYPTION_KEYS']},{second_key}",
        XERO_WEBHOOK_KEY=state.config.webhook_key,
        WEBHOOK_SIGNING_KEY="stop-service-signing-key-5f0c1e",
        SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, SMTP_STARTTLS=False,
        MAIL_FROM="reminders@example.com")
    app.extensions.pop("dunwell_vault", None)  # the vault is built from the keys above

    connected = connect(app, web)
    with app.app_context():
        from app.models import Organisation
        from jobs.plan import policy_for

        policy_for(db.session, db.session.get(Organisation, connected.org_id))  # made on first use
        row = db.session.scalars(select(Policy).where(
            Policy.org_id == connected.org_id)).one()
        body = json.loads(json.dumps(row.body))
        for step in body["reminder_steps"]:
            step["channel"] = "dunwell_email"  # the reminder text leaves through our SMTP
        row.body = body
        db.session.commit()
    run_jobs(app)  # sync, plan, send
    expire_tokens_and_sync(app, state, clock, connected.org_id)  # and a token refresh

    with app.app_context():
        sent = db.session.scalars(select(Action).where(
            Action.org_id == connected.org_id, Action.kind == "reminder",
            Action.status == "done")).all()
        sent_invoices = {a.invoice_id for a in sent}
    assert sent and len(sink.messages) == len(sent)
    secrets = {
        "access token": set(state.access_tokens),
        "refresh token": set(state.refresh_tokens),
        "client secret": {app.config["XERO_CLIENT_SECRET"]},
        "provider webhook key": {app.config["XERO_WEBHOOK_KEY"]},
        "stop-service signing key": {app.config["WEBHOOK_SIGNING_KEY"]},
        "token encryption key": set(app.config["TOKEN_ENCRYPTION_KEYS"].split(",")),
        "secret key": {app.config["SECRET_KEY"]},
    }
    assert len(secrets["access token"]) >= 2 and len(secrets["refresh token"]) >= 2
    stored = "\n".join(row for rows in table_rows(app).values() for row in rows)
    logged = every_log.text()
    assert len(every_log.records) > 50  # DEBUG from the libraries too, not only ours
    found = {(kind, where) for kind, values in secrets.items() for value in values
             for where, text in (("database", stored), ("logs", logged)) if value in text}
    assert found == set()

    # What the customers were sent stays out of the logs: each line of each body, and their
    # addresses. (The text is kept with its action in the database, as the record of what was
    # sent; SQLAlchemy's statement echo, forced on above, prints every stored value by design
    # and is off unless `echo` is set, which Dunwell never does, so it is left out here. It
    # was searched for secrets above.)
    narrative = every_log.text(leave_out=("sqlalchemy.engine",))
    for message in sink.messages:
        part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        text = part.get_payload(decode=True).decode()
        lines = [line for line in text.splitlines() if len(line.strip()) >= 25]
        assert lines
        assert [line for line in lines if line in narrative] == []
        assert message["To"] not in narrative
    # ... while the logs say which organisation and invoice each reminder was about.
    finished = {int(m.group(1)) for m in re.finditer(
        rf"org {connected.org_id} invoice (\d+) action {connected.org_id}:\1:reminder:\S+: "
        r"done", narrative)}
    assert sent_invoices <= finished
