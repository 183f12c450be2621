"""The ledger under contention and unknown outcomes: a thousand deliveries of one action run it
once; a write whose answer was lost is reconciled, not skipped or repeated; the sweeper gives
every open action its job back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import effect_marker
from sandboxes.faults import FaultInjector
from tests.conftest import FakeClock, LiveServer

pytestmark = pytest.mark.db
DROPS_TO_FAIL = 3  # the connector retries a dropped connection twice itself


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    """The Xero sandbox behind a fault injector (`server.faults`)."""
    from sandboxes.xero import SandboxConfig, XeroSandbox, create_app

    state = XeroSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    faults = FaultInjector(create_app(state), "xero", seed=3)
    server = LiveServer(faults)
    server.faults = faults  # type: ignore[attr-defined]
    yield state, server
    server.stop()


def _synced_invoice(app, org_id: int):  # type: ignore[no-untyped-def]
    """The first open invoice whose contact has an email address, after a sync (the queue
    emptied of the connection's first sync)."""
    from jobs.queues import queue
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Contact, Invoice

    sync_org(org_id, plan_after=False)
    queue().empty()
    return db.session.scalars(
        select(Invoice).join(Contact, Invoice.contact_id == Contact.id)
        .where(Invoice.status == "open", Invoice.amount_paid == Decimal("0"),
               Contact.email.is_not(None)).order_by(Invoice.id)).first()


def _action(invoice, kind: str, now, **particulars):  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action

    action = Action(org_id=invoice.org_id, invoice_id=invoice.id,
                    key=f"{invoice.org_id}:{invoice.id}:{kind}:test", kind=kind,
                    status="planned", planned_amount_due=invoice.amount_due, scheduled_for=now,
                    created_at=now, updated_at=now, reason=f"Test {kind}", **particulars)
    db.session.add(action)
    db.session.commit()
    return action


def test_a_thousand_deliveries_of_one_action_run_it_once(app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue

    from collect import ledger
    from collect.providers import redis_client
    from jobs.tasks import enqueue_action, execute_action
    from store import clock
    from store.db import db
    from store.models import Action

    state, _ = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "reminder", clock.now(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        action_id, provider_id = action.id, invoice.provider_id

    def enqueue(_: int) -> None:
        with app.app_context():
            enqueue_action(db.session.get(Action, action_id))
            db.session.remove()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(enqueue, range(1000)))
    with app.app_context():
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        assert queue.job_ids == [f"action-{action_id}"]

    # A thousand claims at once, each in its own session: exactly one wins.
    with app.app_context():
        engine = db.engine
        now = clock.now()

        def claim(n: int) -> bool:
            with Session(engine) as session:
                row = session.get(Action, action_id)
                assert row is not None
                return ledger.claim(session, row, f"worker-{n}", now)

        with ThreadPoolExecutor(12) as pool:
            won = Counter(pool.map(claim, range(1000)))
        assert won == {True: 1, False: 999}
        row = db.session.get(Action, action_id)
        assert (row.status, row.attempts) == ("claimed", 1)
        # The winner died: its lease runs out, and a thousand executions race for the action.
        row.lease_until = now - timedelta(seconds=1)
        db.session.commit()
        db.session.remove()

    def execute(_: int) -> str:
        with app.app_context():
            try:
                return execute_action(action_id)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(12) as pool:
        outcomes = Counter(pool.map(execute, range(1000)))
    assert set(outcomes) <= {"done", "held"} and outcomes["done"] >= 1
    with app.app_context():
        row = db.session.get(Action, action_id)
        assert (row.status, row.attempts) == ("done", 2)  # one claim per execution, ever
    assert [e["InvoiceID"] for e in state.emails(connected.tenant_id)] == [provider_id]
    notes = [h for h in state.history(connected.tenant_id, provider_id)
             if h["Details"].startswith("Dunwell")]
    assert len(notes) == 1


def test_a_discount_whose_allocation_answer_was_lost_is_found_not_skipped(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    """The credit note closed the invoice; the retry must find it, not call the invoice paid
    by someone else."""
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store import clock
    from store.db import db

    state, server = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "discount", clock.now(), amount=invoice.amount_due,
                         currency=invoice.currency, details={"percent": "2"})
        server.faults.add("lost_answer", method="PUT", path="/Allocations$",
                          times=DROPS_TO_FAIL)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.status == "failed" and action.result["writing"] == "credit_note_id"
        assert action.result["error_class"] == "transient"  # worded by the pages
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.result["placed"] == "credit_note" and "writing" not in action.result
        marker = effect_marker(action.key)
    notes = [n for n in state.credit_notes(connected.tenant_id) if marker in n["Reference"]]
    assert len(notes) == 1 and notes[0]["Status"] == "PAID"


def test_a_fee_line_whose_answer_was_lost_is_found_not_replanned(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    """The fee raised the amount due; the retry must find the line, not call the invoice
    changed since planning."""
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store import clock
    from store.db import db

    state, server = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "fee", clock.now(), amount=Decimal("12.50"),
                         currency=invoice.currency, details={"placement": "line"})
        server.faults.add("lost_answer", method="POST",
                          path=f"/Invoices/{invoice.provider_id}$", times=DROPS_TO_FAIL)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert (action.status, action.result["placed"]) == ("done", "line")
        provider_id = invoice.provider_id
        marker = effect_marker(action.key)
    lines = state.tenant(connected.tenant_id).invoices[provider_id]["LineItems"]
    assert sum(1 for line in lines if marker in line["Description"]) == 1


def test_a_reminder_whose_answers_were_lost_emails_and_notes_once(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store import clock

    state, server = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "reminder", clock.now(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        provider_id = invoice.provider_id
        for path in ("/Email$", "/History$"):
            server.faults.add("lost_answer", method="POST|PUT", path=path, times=DROPS_TO_FAIL)
            with pytest.raises(RetryLater):
                execute_action(action.id)
        assert execute_action(action.id) == "done"
    assert [e["InvoiceID"] for e in state.emails(connected.tenant_id)] == [provider_id]
    notes = [h for h in state.history(connected.tenant_id, provider_id)
             if h["Details"].startswith("Dunwell")]
    assert len(notes) == 1


def test_the_sweeper_replaces_a_job_a_killed_worker_left_started(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue
    from rq.job import Job, JobStatus

    from collect.providers import redis_client
    from jobs.tasks import enqueue_action, execute_action, sweep_ledger
    from store.db import db

    state, _ = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "reminder", clock(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        enqueue_action(action)
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        job = queue.dequeue_any([queue], None, connection=redis_client())[0]  # type: ignore[index]
        job.set_status(JobStatus.STARTED)  # as a worker does, and leaves it when killed
        # ...and the worker that took it claimed the action and died with it.
        action.status, action.claimed_by = "claimed", "killed/1"
        action.lease_until = clock() - timedelta(seconds=1)
        db.session.commit()
        enqueue_action(action)  # an ordinary enqueue leaves the "running" job alone
        assert queue.job_ids == []
        assert sweep_ledger(book_next=False) == 1
        assert queue.job_ids == [f"action-{action.id}"]
        assert Job.fetch(f"action-{action.id}", connection=redis_client()).get_status() == \
            JobStatus.QUEUED
        assert execute_action(action.id) == "done"
    assert len(state.emails(connected.tenant_id)) == 1


def test_after_redis_is_flushed_the_sweeper_gives_every_open_action_its_job(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue

    from collect import plan
    from collect.providers import redis_client
    from jobs.tasks import STUCK_AFTER, enqueue_action, sweep_ledger
    from store.db import db
    from store.models import Action, Organisation

    with app.app_context():
        _synced_invoice(app, connected.org_id)
        actions = plan.plan_org(db.session, db.session.get(Organisation, connected.org_id),
                                clock())
        db.session.commit()
        assert len(actions) >= 3
        for action in actions:
            enqueue_action(action)
        actions[0].status, actions[0].claimed_by = "claimed", "gone/1"
        actions[0].lease_until = clock() + timedelta(minutes=1)
        actions[1].status = "failed"
        db.session.commit()
        redis_client().flushdb()  # mid-run: every queued job is gone
        clock.advance(seconds=STUCK_AFTER.total_seconds() + 120)
        assert sweep_ledger(book_next=False) == len(actions)
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        open_ids = db.session.scalars(select(Action.id).where(
            Action.status.in_(("planned", "claimed", "failed")))).all()
        assert sorted(queue.job_ids) == sorted(f"action-{i}" for i in open_ids)
        assert len(open_ids) == len(actions)


def test_a_worker_whose_lease_passed_to_another_writes_nothing_more(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from collect import ledger
    from collect.effects import Effect
    from collect.execute import send_reminder
    from collect.ledger import ClaimLost
    from collect.providers import connector_for
    from store.db import db
    from store.models import Organisation

    state, _ = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "reminder", clock(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        assert ledger.claim(db.session, action, "slow-worker/1", clock())
        clock.advance(minutes=11)  # it stalled; its lease ran out
        assert ledger.claim(db.session, action, "other-worker/1", clock())
        org = db.session.get(Organisation, connected.org_id)
        stalled = Effect(db.session, action, invoice, org, connector_for(org.connection),
                         clock(), owner="slow-worker/1")
        with pytest.raises(ClaimLost):
            send_reminder(stalled)
        db.session.refresh(action)
        assert (action.status, action.claimed_by) == ("claimed", "other-worker/1")
        assert "writing" not in (action.result or {})
    assert state.emails(connected.tenant_id) == []


# --- past the provider's idempotency window: looked up, recorded, never repeated ------------


@pytest.fixture
def qbo_sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    """The QuickBooks sandbox behind a fault injector (`server.faults`)."""
    from sandboxes.quickbooks import QuickBooksSandbox, SandboxConfig, create_app

    state = QuickBooksSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    faults = FaultInjector(create_app(state), "quickbooks", seed=3)
    server = LiveServer(faults)
    server.faults = faults  # type: ignore[attr-defined]
    yield state, server
    server.stop()


# Where each provider's writes go: the email, the note, a new (fee) invoice.
WRITE_PATHS = {
    "xero": {"email": "/Email$", "note": "/History$", "create": "/Invoices$"},
    "quickbooks": {"email": "/send$", "note": "/invoice$", "create": "/invoice$"},
}


class Books:
    """One connected provider sandbox as the tests below read it."""

    def __init__(self, provider: str, app, web, sandbox, qbo_sandbox) -> None:  # type: ignore[no-untyped-def]
        from tests.integration.conftest import connect

        self.provider = provider
        self.state, server = sandbox if provider == "xero" else qbo_sandbox
        self.faults: FaultInjector = server.faults
        self.connected = connect(app, web, provider)
        self.tenant = self.connected.tenant_id
        self.paths = WRITE_PATHS[provider]

    def open_invoice(self, app):  # type: ignore[no-untyped-def]
        """The first open, unpaid invoice whose contact has an email address, after a sync
        (compared in Python: each provider's amounts are stored at their own scale)."""
        from store.db import db
        from store.models import Contact, Invoice

        _synced_invoice(app, self.connected.org_id)
        return next(invoice for invoice in db.session.scalars(
            select(Invoice).join(Contact, Invoice.contact_id == Contact.id)
            .where(Invoice.status == "open", Contact.email.is_not(None)).order_by(Invoice.id))
            if invoice.amount_paid == 0)

    def emails(self, invoice_id: str) -> int:
        if self.provider == "xero":
            return sum(1 for e in self.state.emails(self.tenant)  # type: ignore[attr-defined]
                       if e["InvoiceID"] == invoice_id)
        return sum(1 for e in self.state.emails(self.tenant)  # type: ignore[attr-defined]
                   if str(e["InvoiceId"]) == invoice_id)

    def notes(self, invoice_id: str) -> list[str]:
        if self.provider == "xero":
            return [str(h["Details"]) for h in self.state.history(  # type: ignore[attr-defined]
                self.tenant, invoice_id) if str(h["Details"]).startswith("Dunwell")]
        raw = next(i for i in self.state.invoices(self.tenant)  # type: ignore[attr-defined]
                   if i["Id"] == invoice_id)
        return [line for line in str(raw.get("PrivateNote") or "").splitlines()
                if "Dunwell" in line]

    def invoices_marked(self, marker: str) -> list[str]:
        found = []
        for raw in self.state.invoices(self.tenant):  # type: ignore[attr-defined]
            lines = raw.get("LineItems") or raw.get("Line") or []
            text = " ".join([str(raw.get("Reference") or ""), str(raw.get("PrivateNote") or ""),
                             *(str(line.get("Description") or "") for line in lines)])
            if marker in text:
                found.append(str(raw.get("InvoiceID") or raw.get("Id")))
        return found


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_reminder_past_the_window_is_looked_up_not_sent_or_noted_twice(
        app, web, sandbox, qbo_sandbox, clock, provider) -> None:  # type: ignore[no-untyped-def]
    """Both answers lost and the provider has forgotten the keys: the retry finds the email
    (Xero's History "Sent", QuickBooks' DeliveryInfo) and the note (its marker) and records
    them; one email, one note, the action done."""
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db

    books = Books(provider, app, web, sandbox, qbo_sandbox)
    with app.app_context():
        invoice = books.open_invoice(app)
        action = _action(invoice, "reminder", clock(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        provider_id = invoice.provider_id
        emails = books.emails(provider_id)
        # Rules fire first come, first served: the lost answers go before the forgotten keys.
        books.faults.add("lost_answer", method="POST", path=books.paths["email"],
                         times=DROPS_TO_FAIL)
        books.faults.add("lost_answer", method="POST|PUT", path=books.paths["note"],
                         times=DROPS_TO_FAIL)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.result["writing"] == "emailed" and action.result["writing_since"]
        assert books.emails(provider_id) == emails + 1  # it went; the answer did not come back
        books.faults.add("forget_key", times=None)  # the provider's window has passed
        clock.advance(minutes=20)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.result["emailed"] == "found" and action.result["writing"] == "noted"
        assert len(books.notes(provider_id)) == 1
        clock.advance(minutes=20)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.status == "done" and action.result["noted"] is True
        assert "writing" not in action.result and "writing_since" not in action.result
    assert books.emails(provider_id) == emails + 1
    assert len(books.notes(provider_id)) == 1


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_reminder_whose_email_never_reached_the_provider_is_sent_on_retry(
        app, web, sandbox, qbo_sandbox, clock, provider) -> None:  # type: ignore[no-untyped-def]
    """A 500 in front of the provider: the outcome is unknown to us, the lookup finds no
    send since the write began, so the retry sends it (once)."""
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db

    books = Books(provider, app, web, sandbox, qbo_sandbox)
    with app.app_context():
        invoice = books.open_invoice(app)
        action = _action(invoice, "reminder", clock(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        provider_id = invoice.provider_id
        emails = books.emails(provider_id)
        books.faults.add("server_error", method="POST", path=books.paths["email"])
        with pytest.raises(RetryLater):
            execute_action(action.id)
        assert books.emails(provider_id) == emails
        books.faults.add("forget_key", times=None)
        clock.advance(minutes=20)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.result["emailed"] is True
    assert books.emails(provider_id) == emails + 1
    assert len(books.notes(provider_id)) == 1


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_single_fee_invoice_past_the_window_is_found_by_its_marker(
        app, web, sandbox, qbo_sandbox, clock, provider) -> None:  # type: ignore[no-untyped-def]
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db

    books = Books(provider, app, web, sandbox, qbo_sandbox)
    with app.app_context():
        invoice = books.open_invoice(app)
        action = _action(invoice, "fee", clock(), amount=Decimal("12.50"),
                         currency=invoice.currency, details={"placement": "separate_invoice"})
        marker = effect_marker(action.key)
        books.faults.add("lost_answer", method="POST|PUT", path=books.paths["create"],
                         times=DROPS_TO_FAIL)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        made = books.invoices_marked(marker)
        assert len(made) == 1  # made; the answer lost
        books.faults.add("forget_key", times=None)
        clock.advance(hours=1)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.result["placed"] == "fee_invoice"
        assert action.result["fee_invoice_id"] == made[0]
    assert books.invoices_marked(marker) == made


# --- our own email leaves no trace: never sent twice, the owner told -------------------------


class MailSink:
    """A real SMTP server keeping what it receives; `lose_answers` drops the connection right
    after a message is kept, before the server's 250 reaches the client."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lose_answers = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.messages.append(envelope.content)
        if self.lose_answers:
            self.lose_answers -= 1
            server.transport.abort()
        return "250 OK"


@pytest.fixture
def mail(app) -> Iterator[MailSink]:  # type: ignore[no-untyped-def]
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      MAIL_FROM="dunwell@example.com")
    yield sink
    controller.stop()


def test_our_email_whose_answer_was_lost_is_not_sent_again_and_the_owner_is_told(
        app, connected, sandbox, mail, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.effects import UNCONFIRMED
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db
    from store.models import AuditEvent

    state, _ = sandbox
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "reminder", clock(), channel="dunwell_email",
                         step_index=1, step_count=3, template="firm", tone="firm")
        provider_id = invoice.provider_id
        mail.lose_answers = 1
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.result["writing"] == "emailed"
        assert len(mail.messages) == 1  # the server kept it; we never heard so
        clock.advance(minutes=20)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.result["emailed"] == UNCONFIRMED
        assert action.result["unconfirmed"] == "smtp_answer_lost"
        told = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.action_id == action.id, AuditEvent.kind == "action_done")).one()
        assert "not sent again" in told and "may or may not have reached" in told
    assert len(mail.messages) == 1
    notes = [h["Details"] for h in state.history(connected.tenant_id, provider_id)
             if h["Details"].startswith("Dunwell")]
    assert len(notes) == 1 and "Delivery unconfirmed" in notes[0]


def test_our_email_that_never_reached_the_mail_server_is_sent_on_retry(
        app, connected, sandbox, mail, clock) -> None:  # type: ignore[no-untyped-def]
    """No connection: nothing was handed over, so the retry sends it (once) and says so."""
    import socket

    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db

    port = app.config["SMTP_PORT"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        action = _action(invoice, "reminder", clock(), channel="dunwell_email",
                         step_index=1, step_count=3, template="firm", tone="firm")
        app.config["SMTP_PORT"] = closed
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.status == "failed" and "writing" not in (action.result or {})
        app.config["SMTP_PORT"] = port
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.result["emailed"] is True and "unconfirmed" not in action.result
    assert len(mail.messages) == 1


@pytest.mark.parametrize("kind", ["statement", "retainer_top_up"])
def test_our_other_emails_whose_answer_was_lost_are_not_sent_again(
        app, connected, sandbox, mail, clock, kind) -> None:  # type: ignore[no-untyped-def]
    """Statements and retainer top-up requests go by our email too: the same rule."""
    from collect.effects import UNCONFIRMED
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db
    from store.models import AuditEvent

    with app.app_context():
        invoice = _synced_invoice(app, connected.org_id)
        details = {"contact_id": invoice.contact_id, "period": "2026-11"}
        if kind == "retainer_top_up":
            details.update(balance="300.00", threshold="500.00", top_up_to="2000.00")
        action = _action(invoice, kind, clock(), channel="dunwell_email", template=kind,
                         amount=Decimal("1700.00"), currency=invoice.currency,
                         details=details)
        # A customer's own action: filed under the customer, not one of its invoices.
        action.contact_id, action.invoice_id = invoice.contact_id, None
        db.session.commit()
        mail.lose_answers = 1
        with pytest.raises(RetryLater):
            execute_action(action.id)
        assert len(mail.messages) == 1
        clock.advance(minutes=20)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert (action.result["emailed"], action.result["unconfirmed"]) == (
            UNCONFIRMED, "smtp_answer_lost")
        told = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.action_id == action.id, AuditEvent.kind == "action_done")).one()
        assert "not sent again" in told
    assert len(mail.messages) == 1
