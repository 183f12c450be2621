"""The plain data the planner reads: one invoice as the database holds it, and its ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

InvoiceStatus = Literal["draft", "open", "paid", "voided", "deleted"]
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Instalment:
    due_date: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PaymentPlan:
    """An agreed split of an invoice's balance into dated instalments.

    `paid_before` is what had been paid on the invoice when the plan was agreed: payments above
    it count towards the instalments, in date order.
    """

    plan_id: int
    instalments: tuple[Instalment, ...]
    paid_before: Decimal = ZERO
    status: Literal["active", "cancelled"] = "active"


@dataclass(frozen=True, slots=True)
class Promise:
    """The customer's latest word on the invoice (the portal): paid by `pay_by`. Until that
    day nothing is chased; after it, unpaid, the promise is broken and followed up once."""

    promise_id: int
    pay_by: date
    kept: bool = False  # paid as promised: nothing to follow up


@dataclass(frozen=True, slots=True)
class Pause:
    """A collector paused chasing: nothing is planned before `until` (chasing resumes on that
    day), or at all while `until` is None (until someone resumes it)."""

    until: date | None = None

    def holds(self, today: date) -> bool:
        return self.until is None or today < self.until


@dataclass(frozen=True, slots=True)
class Hold:
    """Days on which no fee or interest accrues: chasing paused by a collector, or the
    invoice in dispute. From `start` (the local day it began) up to, not including, `end`
    (the day chasing resumed); `end` None: it still holds. Fees count only the days outside
    every hold (rules/fees.FeeDays), so a resumed invoice is charged from the resume day on,
    never for the held days at once."""

    start: date
    end: date | None = None


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """What the planner needs to know about one invoice (and its contact)."""

    invoice_id: int
    org_id: int
    number: str
    status: InvoiceStatus  # "open" = approved and not fully paid
    due_date: date  # calendar date in the organisation's zone
    amount_due: Decimal
    currency: str
    has_email: bool = True  # the contact can receive an email
    issue_date: date | None = None
    total: Decimal | None = None  # before any fee Dunwell added; None: amount_due + paid
    payments: tuple[tuple[date, Decimal], ...] = ()  # (payment date, amount)
    is_business: bool = True
    excluded: bool = False  # the owner excluded the contact from collection
    disputed: bool = False  # the invoice (or contact) is in dispute: chase nothing
    plan: PaymentPlan | None = None
    promise: Promise | None = None
    pause: Pause | None = None  # in force or coming to its end; the engine asks holds()
    # Every pause and dispute of the invoice, past and present: days no fee accrues on.
    holds: tuple[Hold, ...] = ()
    contact_id: int | None = None
    # A document Dunwell made (a fee invoice): it belongs to another invoice and is never
    # chased on its own.
    own_document: bool = False

    @property
    def principal(self) -> Decimal:
        if self.total is not None:
            return self.total
        return self.amount_due + sum((amount for _, amount in self.payments), ZERO)


@dataclass(frozen=True, slots=True)
class PastAction:
    """A ledger entry for the invoice, in any state: planned, done, skipped, failed..."""

    key: str
    status: str
    amount: Decimal | None = None  # money it moved (fees, discounts), if any
    at: datetime | None = None  # when it was planned to happen (scheduled_for, aware UTC)
