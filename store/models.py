"""The schema. Alembic migrations in migrations/ are the only way it changes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store import clock
from store.db import Base
from store.types import Money, UTCDateTime


def utcnow() -> datetime:
    """Column defaults read the time where the rest of Dunwell does (store/clock.py), so a
    row's timestamps and the code that compares them agree (a test's or the demo's clock)."""
    return clock.now()


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    base_currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Safe mode: the daily run's actions wait for the owner's approval instead of going out.
    safe_mode: Mapped[bool] = mapped_column(default=False, server_default=false())
    # review: planning and previews only, nothing reaches the books or a customer (every new
    # organisation starts here, app/setup/); live: the owner said go (live_since).
    mode: Mapped[str] = mapped_column(String(16), default="review", server_default="review")
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Held by the sync that is running (jobs/tasks.py sync_org): two syncs of one book at once
    # would both read every page, and two first syncs would both plan the whole book.
    sync_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    connection: Mapped[Connection | None] = relationship(back_populates="organisation")


class User(Base):
    """Someone who signs in. The attributes Flask-Login asks of a user are plain ones here, so
    the model needs no web framework."""

    __tablename__ = "users"
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The language last chosen for the pages: what Dunwell emails them is written in it too.
    language: Mapped[str | None] = mapped_column(String(8))


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="owner")


class Grant(Base):
    """One OAuth consent: its tokens serve every tenant the consent authorised."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    auth_event_id: Mapped[str | None] = mapped_column(String(64))
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scope: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|revoked
    last_error: Mapped[str | None] = mapped_column(Text)
    # Compare-and-swap for token refreshes: every saved pair moves the version on, and carries
    # the fencing token of the refresh lock it was taken under (collect/tokens.py).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    token_fence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Connection(Base):
    """One provider tenant linked to one organisation, through the grant that reaches it."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("provider", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    grant_id: Mapped[int | None] = mapped_column(
        ForeignKey("grants.id", ondelete="SET NULL"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str] = mapped_column(String(64))
    tenant_name: Mapped[str] = mapped_column(String(255), default="")
    provider_connection_id: Mapped[str | None] = mapped_column(String(64))
    # active | needs_reconnect | disconnected
    status: Mapped[str] = mapped_column(String(16), default="active")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # After a disconnect the synced data is kept until purge_after (the grace period), then
    # deleted by jobs/retention.py; a reconnect clears purge_after.
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship(back_populates="connection")
    grant: Mapped[Grant | None] = relationship()


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("org_id", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    provider_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    is_customer: Mapped[bool] = mapped_column(default=True)
    archived: Mapped[bool] = mapped_column(default=False)
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the owner in Dunwell (the books know nothing of them): rules.ContactOverrides.
    excluded: Mapped[bool] = mapped_column(default=False)
    disputed: Mapped[bool] = mapped_column(default=False)
    is_business: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str | None] = mapped_column(String(8))
    policy_overrides: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set by escalation: the owner's other systems may stop serving this customer.
    stop_service: Mapped[bool] = mapped_column(default=False)
    stop_service_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Credit control, set by the owner: a limit on the open balance (None: the organisation's
    # default, CreditSettings.default_credit_limit) and a hold on new work.
    credit_limit: Mapped[Decimal | None] = mapped_column(Money)
    on_hold: Mapped[bool] = mapped_column(default=False)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    on_hold_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # From the books, for texts (rules/sms.py): as the provider holds them, not normalised.
    mobile: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("org_id", "provider_id"),
        # The daily run asks "what is due now?" of one organisation: it must not scan the
        # whole book. Every query on next_action_at is scoped to an organisation, so this one
        # index serves them all (a single-column one was dropped: e1ingest0001).
        Index("ix_invoices_org_id_next_action_at", "org_id", "next_action_at"),
        # The invoice list's sorts by due date and amount (collect/invoice_list.py): each of
        # its pages is a short range read of one of these, not a sort of the whole book.
        Index("ix_invoices_org_id_due_date_id", "org_id", "due_date", "id"),
        Index("ix_invoices_org_id_amount_due_id", "org_id", "amount_due", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    provider_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64), default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    contact_provider_id: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Money)
    amount_paid: Mapped[Decimal] = mapped_column(Money)
    amount_due: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16))
    provider_status: Mapped[str] = mapped_column(String(32), default="")
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disputed: Mapped[bool] = mapped_column(default=False)

    contact: Mapped[Contact | None] = relationship()


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("org_id", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    provider_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="SET NULL"), index=True
    )
    invoice_provider_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    paid_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Policy(Base):
    """The organisation's collection policy, as the versioned JSON of rules.policy."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Action(Base):
    """The action ledger: every effect on a customer's books or inbox, written before it runs.

    An action is filed under what it is about: an invoice (a reminder, a fee), or a customer
    (a statement, a retainer top-up, a credit hold's stop-service signal), or, for a quote's
    deposit reminder, neither (its quote is in `details`). Either may be deleted later (both
    keys are SET NULL), so the rule is "at most one", not "exactly one"."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_org_id_status", "org_id", "status"),
        Index("ix_actions_org_id_contact_id", "org_id", "contact_id"),
        CheckConstraint("invoice_id IS NULL OR contact_id IS NULL", name="filed_under_one"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    step_index: Mapped[int | None] = mapped_column(Integer)
    step_count: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str | None] = mapped_column(String(64))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    # planned -> claimed -> done | skipped | failed (retryable) | dead
    status: Mapped[str] = mapped_column(String(16), default="planned")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Who holds the claim, and until when: an expired lease may be claimed again.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the invoice looked like when planned; execution re-checks it.
    planned_amount_due: Mapped[Decimal | None] = mapped_column(Money)
    # What rules/ planned: money (fees, discounts), the sentence the owner reads, and the
    # kind's own particulars (channel, tone, fee placement, assignee...).
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(32))
    tone: Mapped[str | None] = mapped_column(String(16))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice | None] = relationship()
    contact: Mapped[Contact | None] = relationship()


class AuditEvent(Base):
    """What happened, for the owner's activity log and the engineer on call."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_id_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SyncCursor(Base):
    """How far each stream of an organisation has been read (the provider's updated-at)."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("org_id", "stream"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(32))
    cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SyncRun(Base):
    """One sync, with the RQ job that ran it, so a person can watch it."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_org_id_started_at", "org_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(128), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(16))  # full | incremental
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentPlan(Base):
    """Instalments agreed with a customer for one invoice (rules.PaymentPlan)."""

    __tablename__ = "payment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            index=True)
    # [{"due_date": "2026-12-01", "amount": "250.00"}, ...]
    instalments: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    paid_before: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Task(Base):
    """Work for a person, e.g. a phone call an escalation step asked for."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_org_id_status", "org_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("actions.id", ondelete="SET NULL"), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="call")
    assignee: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    """A file Dunwell produced: a final demand (HTML, PDF), a collections-agency case (ZIP)."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("action_id", "filename"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"),
                                                   index=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Base):
    """One change a provider told us about by webhook, stored once (replays are no-ops).

    The event key is the provider's own event id where it sends one (Intuit CloudEvents), else
    a digest of what identifies the change (tenant, entity, id, operation, time)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "tenant_id", "event_key"),
        Index("ix_webhook_events_org_id_processed_at", "org_id", "processed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(128))
    # invoice | contact | payment | credit_note | other (the provider's name is in `kind`)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))  # e.g. INVOICE.UPDATE, qbo.invoice.updated.v1
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"))


class UserIdentity(Base):
    """A provider sign-in (OpenID Connect `sub`) that belongs to one of our users."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invitation(Base):
    """An email link that makes its holder a member with a role; only its hash is stored."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A read token for the JSON API, scoped to one organisation; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CreditSettings(Base):
    """An organisation's credit-control settings: the default limit for customers without
    their own, what a hold does, and when monthly statements go."""

    __tablename__ = "credit_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    default_credit_limit: Mapped[Decimal | None] = mapped_column(Money)
    # Over the limit or on hold: signal stop-service (the escalation's flag and webhook).
    stop_service_on_hold: Mapped[bool] = mapped_column(default=False)
    stop_service_webhook_url: Mapped[str | None] = mapped_column(String(500))
    # Monthly statements: day of month (1-28; None: off), local send time, channel.
    statement_day: Mapped[int | None] = mapped_column(Integer)
    statement_time: Mapped[str] = mapped_column(String(5), default="09:00")
    statement_channel: Mapped[str] = mapped_column(String(32), default="dunwell_email")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MessageText(Base):
    """An organisation's own wording of one reminder tone in one language (the shipped text
    in rules/templates when absent); checked by rules/template_safety.py before it is saved."""

    __tablename__ = "message_texts"
    __table_args__ = (UniqueConstraint("org_id", "language", "tone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    tone: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExpectedPayment(Base):
    """One milestone of an invoice under the policy's deposit rule (rules/deposits.py), as the
    last planning pass saw it: what is expected, by when, and the day it was met."""

    __tablename__ = "expected_payments"
    __table_args__ = (UniqueConstraint("invoice_id", "milestone"),
                      Index("ix_expected_payments_org_id_contact_id", "org_id", "contact_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    milestone: Mapped[int] = mapped_column(Integer)  # 1-based
    milestones: Mapped[int] = mapped_column(Integer)
    percent: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    cumulative: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    met_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Retainer(Base):
    """Money a customer pays in advance, drawn down by their invoices (rules/retainers.py)."""

    __tablename__ = "retainers"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"),
                                        index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    threshold: Mapped[Decimal] = mapped_column(Money)
    top_up_to: Mapped[Decimal] = mapped_column(Money)
    started_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetainerTopUp(Base):
    """A payment into a retainer, recorded by the owner."""

    __tablename__ = "retainer_top_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    retainer_id: Mapped[int] = mapped_column(ForeignKey("retainers.id", ondelete="CASCADE"),
                                             index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    received_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Quote(Base):
    """A Xero Quote or QuickBooks Estimate, as the last sync read it (connectors QuoteRecord).

    `accepted_on` is QuickBooks' AcceptedDate; Xero records none, so it is the day a sync first
    saw the quote accepted, kept while it stays accepted (rules/deposits.py)."""

    __tablename__ = "quotes"
    __table_args__ = (UniqueConstraint("org_id", "provider_id"),
                      Index("ix_quotes_org_id_status", "org_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    provider_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64), default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    contact_provider_id: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16))
    provider_status: Mapped[str] = mapped_column(String(32), default="")
    accepted_on: Mapped[date | None] = mapped_column(Date)
    invoice_provider_ids: Mapped[list[str] | None] = mapped_column(JSON)
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact | None] = relationship()


class QuoteDeposit(Base):
    """A deposit milestone of an accepted quote (rules/deposits.py), as the last planning pass
    saw it: what is expected before work starts, by when, and the day it was met."""

    __tablename__ = "quote_deposits"
    __table_args__ = (UniqueConstraint("quote_id", "milestone"),
                      Index("ix_quote_deposits_org_id_contact_id", "org_id", "contact_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    milestone: Mapped[int] = mapped_column(Integer)  # 1-based
    milestones: Mapped[int] = mapped_column(Integer)
    percent: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    cumulative: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    met_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserSession(Base):
    """One signed-in browser: the session cookie carries its secret, only the hash is stored.
    Ending the row ends the session, wherever a copy of the cookie is (app/auth/sessions.py)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OwnDocument(Base):
    """A document Dunwell created in the books (a fee invoice), by its provider id: a sync
    that reads it back must not take it for a debt of its own to chase (rules.InvoiceState)."""

    __tablename__ = "own_documents"
    __table_args__ = (UniqueConstraint("org_id", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    provider_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="fee_invoice")
    # The invoice it belongs to (the one whose lateness it charges).
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailSender(Base):
    """Who an organisation's own email comes from: its SMTP server (the password encrypted as
    the tokens are) or the server-wide relay, verified by a test send."""

    __tablename__ = "mail_senders"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    transport: Mapped[str] = mapped_column(String(16), default="relay")  # relay | smtp
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(16), default="starttls")  # starttls | tls
    username: Mapped[str | None] = mapped_column(String(255))
    password_enc: Mapped[str | None] = mapped_column(Text)
    from_name: Mapped[str] = mapped_column(String(255), default="")
    from_email: Mapped[str | None] = mapped_column(String(255))
    reply_to: Mapped[str | None] = mapped_column(String(255))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RateConfirmation(Base):
    """An owner's or admin's word on a statutory rate period the shipped table has not
    verified: the rate they confirmed, or the last verified rate chosen instead."""

    __tablename__ = "rate_confirmations"
    __table_args__ = (UniqueConstraint("org_id", "jurisdiction", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    period_start: Mapped[date] = mapped_column(Date)
    choice: Mapped[str] = mapped_column(String(16))  # confirmed | last_verified
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortalAccess(Base):
    """A customer's portal link: its key is part of every link signed for them, so a new key
    (rotation) ends every link given out before, while links stay stateless to check."""

    __tablename__ = "portal_access"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"),
                                        index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            unique=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortalSettings(Base):
    """What an organisation lets its customers ask for in the portal."""

    __tablename__ = "portal_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    plan_max_instalments: Mapped[int] = mapped_column(Integer, default=3)
    plan_max_days: Mapped[int] = mapped_column(Integer, default=90)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaymentPromise(Base):
    """A customer's word that an invoice will be paid by a day: reminders wait until then."""

    __tablename__ = "payment_promises"
    __table_args__ = (Index("ix_payment_promises_org_id_contact_id", "org_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            index=True)
    pay_by: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    # The invoice's amount paid when promised: kept once it has grown by `amount` by pay_by.
    paid_before: Mapped[Decimal] = mapped_column(Money)
    # open (pay_by not passed) | kept | broken | replaced (by a newer promise)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InvoiceDispute(Base):
    """A customer's dispute of an invoice: chasing and fees stop until the owner resolves it.
    An attachment is kept as bytes and only ever served back as a download."""

    __tablename__ = "invoice_disputes"
    __table_args__ = (Index("ix_invoice_disputes_org_id_status", "org_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    attachment_name: Mapped[str | None] = mapped_column(String(255))
    attachment_type: Mapped[str | None] = mapped_column(String(100))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution: Mapped[str | None] = mapped_column(Text)


class InvoicePause(Base):
    """Chasing of one invoice paused by a collector, until a day (chasing resumes on it) or
    until someone resumes it; planning reads the pause in force (collect/book.py)."""

    __tablename__ = "invoice_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            index=True)
    until: Mapped[date | None] = mapped_column(Date)  # None: until someone resumes it
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # resumed by hand
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ContactDispute(Base):
    """A customer marked disputed as a whole (the customer's page), from the day it was set
    to the day it was cleared: no fee or interest accrues on any of its invoices meanwhile
    (their holds, collect/book.py), as for an invoice's own dispute."""

    __tablename__ = "contact_disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: still disputed
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class PlanRequest(Base):
    """A customer's request to pay an invoice in instalments, for the owner to decide."""

    __tablename__ = "plan_requests"
    __table_args__ = (Index("ix_plan_requests_org_id_status", "org_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            index=True)
    instalments: Mapped[int] = mapped_column(Integer)
    first_on: Mapped[date] = mapped_column(Date)
    every_days: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|declined
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_plans.id", ondelete="SET NULL"))


class SmsSettings(Base):
    """An organisation's texts: its own Twilio account (the auth token encrypted as the OAuth
    tokens are) or the server-wide one, the sender (a number, or an alphanumeric ID where the
    customer's country allows it) and what a segment costs it, for the preview."""

    __tablename__ = "sms_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    account_sid: Mapped[str | None] = mapped_column(String(64))  # None: the server's account
    auth_token_enc: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(32))
    cost_per_segment: Mapped[Decimal | None] = mapped_column(Money)
    cost_currency: Mapped[str | None] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SmsOptOut(Base):
    """A number that replied STOP (opted_out) or START again: no text goes to it while out."""

    __tablename__ = "sms_opt_outs"
    __table_args__ = (UniqueConstraint("org_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(20))  # E.164
    opted_out: Mapped[bool] = mapped_column(default=True)
    keyword: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsMessage(Base):
    """A text we sent (or tried to) for an action, and what Twilio says became of it."""

    __tablename__ = "sms_messages"
    __table_args__ = (Index("ix_sms_messages_org_id_number", "org_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("actions.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    number: Mapped[str] = mapped_column(String(20))
    sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    segments: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[str] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CardPaymentSettings(Base):
    """An organisation's own Stripe account for the portal's card payments: the secret key and
    the webhook signing secret encrypted as the OAuth tokens are."""

    __tablename__ = "card_payment_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    secret_key_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    account_code: Mapped[str | None] = mapped_column(String(64))  # where the books deposit it
    book_fees: Mapped[bool] = mapped_column(default=False)
    # A card surcharge, percent of the amount (None: none), where the law allows one and never
    # above the card's cost (rules/card_payments.py).
    surcharge_percent: Mapped[Decimal | None] = mapped_column(Money)
    # A payment refunded in full through Stripe is taken off its invoice in the books too.
    refunds_in_books: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CardPayment(Base):
    """One payment a customer started from the portal (a Checkout Session), and what became of
    it: paid, failed, refunded, and the Payment it was booked as in the books (at most one:
    the processor's payment id is unique)."""

    __tablename__ = "card_payments"
    __table_args__ = (Index("ix_card_payments_org_id_invoice_id", "org_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # pi_...
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)  # asked for, towards the invoice
    surcharge: Mapped[Decimal | None] = mapped_column(Money)  # asked on top of the amount
    received: Mapped[Decimal | None] = mapped_column(Money)
    fee: Mapped[Decimal | None] = mapped_column(Money)
    refunded: Mapped[Decimal | None] = mapped_column(Money)
    # open | paid | failed | expired ("failed": the last attempt; the customer may try again)
    status: Mapped[str] = mapped_column(String(16), default="open")
    failure: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    books_payment_id: Mapped[str | None] = mapped_column(String(64))
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    booking_error: Mapped[str | None] = mapped_column(String(255))
    books_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # refunded in full
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProcessorEvent(Base):
    """A payment processor's webhook event, stored before anything acts on it (a replay is a
    no-op; one stored but not yet applied is applied by the next job). Only the event's type
    and the id of its object are kept: the processor is asked for the rest."""

    __tablename__ = "processor_events"
    __table_args__ = (UniqueConstraint("org_id", "event_id"),
                      Index("ix_processor_events_org_id_processed_at", "org_id", "processed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BusinessLogo(Base):
    """The business's logo as the portal shows it: read from the books where the provider
    keeps one (`source` "books", `source_url` the address it was fetched from) or uploaded by
    the owner ("upload"); only ever a checked PNG or JPEG (collect/logos.py). A books row
    without `content` records that the books had none when last looked (`checked_at`)."""

    __tablename__ = "business_logos"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # books | upload
    source_url: Mapped[str | None] = mapped_column(String(2048))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str | None] = mapped_column(String(32))
    digest: Mapped[str | None] = mapped_column(String(64))  # sha256 of content
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
